"""Pluggable synthetic-image generators: ``create_generator(name, **config)``; names are the CLI names.

Backends register themselves on import; heavy libraries (diffusers, peft, transformers) are imported
lazily inside the backends so that ``import ooc_bench.generators`` stays fast.
"""

from .base import Generator, SampleSet, TrainingSet, per_image_seed
from .registry import create_generator, generator_aliases, list_generators, load_generator, register_generator, resolve_generator_name

# backend modules register themselves on import
from . import aug  # noqa: E402,F401
from . import folder  # noqa: E402,F401
from . import stylegan  # noqa: E402,F401
from . import diffusion  # noqa: E402,F401

__all__ = ["Generator", "SampleSet", "TrainingSet", "per_image_seed", "create_generator", "list_generators",
           "load_generator", "register_generator", "resolve_generator_name", "generator_aliases"]
