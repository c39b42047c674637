"""`ooc-bench list --options` / `--generators`: every option of every plugin and spec table with its default, from the config dataclasses."""

from __future__ import annotations

from typing import Any


def option_sections(generators: bool = True, tables: bool = True) -> list[tuple[str, type]]:
    """(section title, config dataclass) for every generator and every spec table, in the order users meet them."""
    from ..classifiers import TrainConfig
    from ..generators import list_generators
    from ..generators.registry import generator_config_class
    from ..matrix.spec_config import SPEC_TABLES

    out: list[tuple[str, type]] = []
    if generators:
        for name in list_generators():
            cls = generator_config_class(name)
            if cls is not None:
                out.append((f"[generators.*] type = \"{name}\"  (generate -g {name} --param KEY=VALUE)", cls))
    if tables:
        out.append(("[training] / [models.*]  (train --param KEY=VALUE)", TrainConfig))
        out += [(f"[{name}]", cls) for name, cls in SPEC_TABLES.items()]
    return out


def option_rows(cls: type) -> list[dict[str, Any]]:
    """One JSON-able row per option: key, type, default, valid range or choices, help."""
    from ..config import format_default, options

    return [{"key": o.name, "type": o.type, "default": format_default(o.default), "valid": o.valid, "help": o.help,
             "runtime": o.runtime} for o in options(cls)]


def print_options(console: Any, sections: list[tuple[str, type]]) -> None:
    """One rich table per section; runtime options (kept out of cache keys) marked with *."""
    from rich.markup import escape
    from rich.table import Table

    for title, cls in sections:
        t = Table(title=escape(title), title_justify="left", header_style="bold")
        for col in ("key", "default", "valid", "help"):
            t.add_column(col, overflow="fold")
        for r in option_rows(cls):
            t.add_row(r["key"] + (" *" if r["runtime"] else ""), r["default"], r["valid"], r["help"])
        console.print(t)
    console.print("* runtime option: changes how a job runs, not its result (not part of cache keys). "
                  "Set any key in a spec table, with `run --set TABLE.KEY=VALUE`, or `--param KEY=VALUE`.",
                  highlight=False)
