"""Typed plugin configuration: dataclass fields that carry their default, type, range and one-line help, and one validator.

Every configurable part of ooc-bench (each generator, the classifier recipe, the ``[data]``, ``[matrix]`` and
``[quality]`` tables of a spec) declares one dataclass whose fields are made with :func:`option`. The spec
loader, the CLI (``--param KEY=VALUE``, ``--set TABLE.KEY=VALUE``), ``ooc-bench list`` and the docs all read
that one declaration, so adding a setting is adding one line::

    @dataclass
    class MyConfig:
        steps: int = option(1000, "training steps", low=1)
        sampler: str = option("euler", "sampler", choices=("euler", "ddim"))

    check_table(MyConfig, {"steps": 0}, where="spec.toml [generators.x]")
    # UserInputError: spec.toml [generators.x]: steps = 0 is out of range; valid: >= 1
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Iterable, Mapping, Union

from .errors import UserInputError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def option(default: Any, help: str, *, choices: Iterable[Any] | None = None, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False, runtime: bool = False) -> Any:
    """A dataclass field with a default, a one-line ``help``, optional ``choices`` or a ``[low, high]`` range.

    ``low_open``/``high_open`` make a bound exclusive. ``runtime=True`` marks a setting that changes how a job
    runs but not its result (device, progress output, checkpoint interval): it is kept out of cache keys.
    Mutable defaults (lists, dicts) are copied per instance.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "low": low, "high": high,
            "low_open": low_open, "high_open": high_open, "runtime": runtime}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    """What one option is, for messages, ``ooc-bench list`` and the docs."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    valid: str
    runtime: bool


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "none"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _valid_text(meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return ", ".join(str(c) for c in meta["choices"])
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        return f"{'(' if meta.get('low_open') else '['}{low:g}, {high:g}{')' if meta.get('high_open') else ']'}"
    if low is not None:
        return f"{'>' if meta.get('low_open') else '>='} {low:g}"
    if high is not None:
        return f"{'<' if meta.get('high_open') else '<='} {high:g}"
    return ""


def _default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def options(cls: type) -> list[OptionInfo]:
    """Every option of a config dataclass, in declaration order."""
    hints = _hints(cls)
    return [OptionInfo(name=f.name, type=_type_name(hints[f.name]), default=_default(f), help=f.metadata.get("help", ""),
                       choices=f.metadata.get("choices"), valid=_valid_text(f.metadata),
                       runtime=bool(f.metadata.get("runtime", False)))
            for f in dataclasses.fields(cls)]


def defaults(cls: type) -> dict[str, Any]:
    """Option name -> default value."""
    return {o.name: o.default for o in options(cls)}


def runtime_keys(cls: type) -> set[str]:
    """Options marked ``runtime=True`` (kept out of cache keys)."""
    return {o.name for o in options(cls) if o.runtime}


class _Bad(ValueError):
    """A value that does not fit a type (the message says what was expected)."""


def _convert(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp``; strings from the command line are parsed; anything else must already fit."""
    if tp is Any:
        return value
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        raise _Bad("none")
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        # try the exact kind first (a string stays a string when str is allowed), then conversions
        for a in sorted(args, key=lambda a: 0 if a is type(None) else 1 if isinstance(value, _base(a)) else 2):
            try:
                return _convert(a, value)
            except _Bad:
                continue
        raise _Bad(_type_name(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if isinstance(value, str):
            value = [v.strip() for v in value.strip().strip("()[]").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise _Bad(_type_name(tp))
        inner = args[0] if len(args) == 1 or (args and Ellipsis in typing.get_args(tp)) else None
        if inner is None and args and len(args) != len(value):
            raise _Bad(f"{_type_name(tp)} of {len(args)} items")
        return [_convert(inner if inner is not None else args[i] if args else Any, v) for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise _Bad("a table / JSON object") from None
        if not isinstance(value, dict):
            raise _Bad("a table / JSON object")
        kt, vt = (typing.get_args(tp) + (Any, Any))[:2]
        return {_convert(kt, k): _convert(vt, v) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad("true or false")
    if tp is int:
        if isinstance(value, bool):
            raise _Bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise _Bad("an integer") from None
            if f.is_integer():
                return int(f)
        raise _Bad("an integer")
    if tp is float:
        if isinstance(value, bool):
            raise _Bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _Bad("a number") from None
        raise _Bad("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _Bad("a string")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _Bad(_type_name(tp))


def _base(tp: Any) -> tuple[type, ...]:
    origin = typing.get_origin(tp) or tp
    if origin is float:
        return (float, int)
    return (origin,) if isinstance(origin, type) else (object,)


def _in_range(meta: Mapping[str, Any], value: Any) -> bool:
    if meta.get("choices") and value is not None:
        vals = value if isinstance(value, list) else [value]
        return all(v in meta["choices"] for v in vals)
    if isinstance(value, list):  # a range applies to every element of a list option
        return all(_in_range(meta, v) for v in value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value <= low if meta.get("low_open") else value < low):
        return False
    if high is not None and (value >= high if meta.get("high_open") else value > high):
        return False
    return True


def _prefix(where: str, table: str) -> tuple[str, str]:
    return (f"{where}: " if where else ""), (f" in {table}" if table else "")


def check_value(cls: type, key: str, value: Any, where: str = "", table: str = "", noun: str = "key") -> Any:
    """One value converted to its option's type and checked against its range; a clear error otherwise.

    Messages read ``WHERE: TABLE KEY = VALUE is out of range; valid: RANGE`` (``where``: a file or a CLI flag,
    ``table``: e.g. ``[generators.gan]``).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix, _ = _prefix(where, table)
    if key not in fields:
        raise UserInputError(f"{prefix}unknown {noun} {key!r}{_prefix(where, table)[1]}; valid keys: {', '.join(fields)}")
    f = fields[key]
    name = f"{table} {key}" if table else key
    try:
        out = _convert(_hints(cls)[key], value)
    except _Bad as exc:
        raise UserInputError(f"{prefix}{name} = {value!r} is not {exc}") from None
    if not _in_range(f.metadata, out):
        what = "not a valid choice" if f.metadata.get("choices") else "out of range"
        raise UserInputError(f"{prefix}{name} = {value!r} is {what}; valid: {_valid_text(f.metadata)}")
    return out


def check_table(cls: type, table: Mapping[str, Any], where: str = "", name: str = "", noun: str = "key") -> dict[str, Any]:
    """Every key of ``table`` checked (unknown keys listed with the valid ones); the given keys, converted.

    ``where`` names the origin for messages (a spec file, ``--param``), ``name`` the table (``[generators.gan]``).
    """
    valid = [f.name for f in dataclasses.fields(cls)]
    bad = [k for k in table if k not in valid]
    if bad:
        prefix, suffix = _prefix(where, name)
        raise UserInputError(f"{prefix}unknown {noun}(s) {', '.join(map(str, bad))}{suffix}; valid keys: {', '.join(valid)}")
    return {k: check_value(cls, k, v, where, name, noun) for k, v in table.items()}


def build(cls: type, table: Mapping[str, Any] | None = None, where: str = "", name: str = "", noun: str = "key") -> Any:
    """An instance of ``cls`` from a (partial) table, every value checked; then ``instance.validate()`` if defined.

    A ``validate`` method checks what depends on several fields and raises ``UserInputError``.
    """
    obj = cls(**check_table(cls, dict(table or {}), where, name, noun))
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except (UserInputError, ValueError) as exc:
            prefix = " ".join(p for p in (where, name) if p)
            if prefix and not str(exc).startswith(where or name):
                raise UserInputError(f"{prefix}: {exc}") from None
            raise UserInputError(str(exc)) from None
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A config instance as a plain JSON-able dict (field order kept)."""
    return {f.name: copy.deepcopy(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def parse_assignments(items: Iterable[str], flag: str = "--param") -> dict[str, Any]:
    """``KEY=VALUE`` strings -> dict; values are JSON-parsed when possible (numbers, true/false, null, lists)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserInputError(f"{flag} {item!r}: expected KEY=VALUE (e.g. {flag} "
                                 f"{'generators.gan.kimg=0.5' if flag == '--set' else 'steps=200'})")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def format_default(value: Any) -> str:
    """A default as users would type it (TOML-ish)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if value == "" else value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def markdown_table(cls: type) -> str:
    """The options of ``cls`` as a Markdown table (key, type, default, valid, help), for docs."""
    lines = ["| key | type | default | valid | help |", "|---|---|---|---|---|"]
    for o in options(cls):
        lines.append(f"| `{o.name}` | {o.type} | `{format_default(o.default)}` | {o.valid} | {o.help} |")
    return "\n".join(lines)


__all__ = ["option", "OptionInfo", "options", "defaults", "runtime_keys", "check_value", "check_table", "build",
           "to_dict", "parse_assignments", "format_default", "markdown_table"]
