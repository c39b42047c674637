"""Generator registry in the timm style: builder functions registered under a name with aliases and a config dataclass."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..config import check_table, runtime_keys
from ..errors import UserInputError
from .base import Generator, read_generator_config

_BUILDERS: dict[str, Callable[..., Generator]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}
_CONFIGS: dict[str, type] = {}
_RESOLVERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register_generator(name: str, aliases: tuple[str, ...] = (), description: str = "", config: type | None = None,
                       resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Callable:
    """Decorator: register ``fn(**config) -> Generator`` under ``name`` (the CLI name) and ``aliases``.

    ``config`` is the generator's settings dataclass (fields made with ``ooc_bench.config.option``): every
    table, ``--param`` and ``--set`` is checked against it before the builder runs. ``resolve`` maps a checked
    table to the full config the generator will run with (device-dependent and ``auto`` values filled in);
    by default the dataclass defaults are filled in.
    """

    def deco(fn: Callable[..., Generator]) -> Callable[..., Generator]:
        _BUILDERS[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().split("\n")[0]
        if config is not None:
            _CONFIGS[name] = config
        if resolve is not None:
            _RESOLVERS[name] = resolve
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


def generator_config_class(name: str) -> type | None:
    """The settings dataclass of a generator (None for one registered without)."""
    return _CONFIGS.get(resolve_generator_name(name))


def check_generator_config(name: str, config: dict[str, Any], where: str = "", table: str = "") -> dict[str, Any]:
    """Every key and value of a generator table checked against its dataclass; the given keys, converted.

    Errors name ``where`` (file and table, or the CLI flag), the key, and the valid keys or range.
    """
    canonical = resolve_generator_name(name)
    cls = _CONFIGS.get(canonical)
    if cls is None:
        return dict(config)
    return check_table(cls, config, where or (canonical if not table else ""), table, noun="setting")


def resolve_generator_config(name: str, config: dict[str, Any], where: str = "", table: str = "") -> dict[str, Any]:
    """The full config a generator runs with: defaults, cross-field checks and ``auto``/device values resolved.

    This (minus ``runtime`` options) is what cache keys hash, so a value resolved differently on another
    machine changes the key of exactly the jobs that depend on it.
    """
    canonical = resolve_generator_name(name)
    checked = check_generator_config(canonical, config, where, table)
    prefix = " ".join(p for p in (where, table) if p)
    try:  # building a generator is cheap (weights load in fit/sample): its config is exactly what will run
        if canonical in _RESOLVERS:
            return _RESOLVERS[canonical](checked)
        return dict(_BUILDERS[canonical](**checked).config)
    except UserInputError as exc:
        raise UserInputError(f"{prefix}: {exc}" if prefix else str(exc)) from None


def generator_runtime_keys(name: str) -> set[str]:
    """Options of a generator that do not change its result (kept out of cache keys)."""
    cls = _CONFIGS.get(resolve_generator_name(name))
    return runtime_keys(cls) if cls is not None else set()


def create_generator(name: str, **config: Any) -> Generator:
    """Build a generator by registry name or alias with the given config (checked against its dataclass first)."""
    canonical = resolve_generator_name(name)
    return _BUILDERS[canonical](**check_generator_config(canonical, config))


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
