"""Generator registry in the timm style: small builder functions registered under a name, plus short aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import UserInputError
from .base import Generator, read_generator_config

_BUILDERS: dict[str, Callable[..., Generator]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_generator(name: str, aliases: tuple[str, ...] = (), description: str = "") -> Callable:
    """Decorator: register ``fn(**config) -> Generator`` under ``name`` (the CLI name) and ``aliases``."""

    def deco(fn: Callable[..., Generator]) -> Callable[..., Generator]:
        _BUILDERS[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().split("\n")[0]
        for a in aliases:
            _ALIASES[a] = name
        return fn

    return deco


def resolve_generator_name(name: str) -> str:
    """Canonical registry name for a name or alias; a clear error listing valid names otherwise."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS:
        valid = ", ".join(sorted(set(_BUILDERS) | set(_ALIASES)))
        raise UserInputError(f"unknown generator {name!r}; valid generators: {valid}")
    return key


def create_generator(name: str, **config: Any) -> Generator:
    """Build a generator by registry name or alias with the given config."""
    return _BUILDERS[resolve_generator_name(name)](**config)


def list_generators() -> dict[str, str]:
    """Registry name -> one-line description."""
    return dict(sorted(_DESCRIPTIONS.items()))


def generator_aliases() -> dict[str, str]:
    """Alias -> registry name."""
    return dict(_ALIASES)


def load_generator(path: Path) -> Generator:
    """Rebuild a generator saved with ``save(path)``: config from ``config.json``, then its weights."""
    cfg = read_generator_config(path)
    gen = create_generator(cfg["generator"], **cfg.get("config", {}))
    gen.classes = list(cfg.get("classes", []))
    gen.load_state(Path(path))
    return gen
