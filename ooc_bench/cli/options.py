"""The one CLI vocabulary: option names shared by every command, and the hidden deprecated aliases of old names.

| what                | option                          | old names still accepted (hidden)                    |
|---------------------|---------------------------------|------------------------------------------------------|
| dataset             | ``--data PATH``                 | ``score --real``; the positional PATH of ``data ...``|
| split manifest      | ``--split-manifest FILE``       | ``train/generate --split``                           |
| split name          | ``--split-name train|val|test`` | ``score --split``                                    |
| working size        | ``--working-size N``            | ``train --img-size``, ``score/data cache --size``, ``generate --resolution`` |
| output size         | ``--output-size N``             | ``generate/data demo --size``                        |
| plots               | ``--plots/--no-plots``          | ``train --plot``                                     |
| seeds               | ``--seed S`` (one; ``run``: repeatable), ``run --seeds LIST`` / ``--n-seeds N`` | |
"""

from __future__ import annotations

from typing import Any, Optional, TypeVar

T = TypeVar("T")


def note(text: str) -> None:
    """A one-line note on stderr (never on stdout, which may be JSON)."""
    from rich.markup import escape

    from . import err_console

    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


def alias(new_value: Optional[T], old_value: Optional[T], new: str, old: str, default: Any = None) -> Any:
    """The value of option ``new``, or of its deprecated alias ``old`` (with a note); both given: an error."""
    from ..errors import UserInputError

    if old_value is None:
        return default if new_value is None else new_value
    if new_value is not None:
        raise UserInputError(f"{old} is the old name of {new}; pass only {new}")
    note(f"{old} is deprecated; use {new}")
    return old_value


def dataset_path(option: Optional[T], positional: Optional[T], command: str) -> T:
    """``--data PATH`` or the positional PATH (both: an error; neither: an error naming --data)."""
    from ..errors import UserInputError

    if option is not None and positional is not None:
        raise UserInputError(f"`ooc-bench {command}`: give the dataset once, as --data PATH or as PATH")
    value = option if option is not None else positional
    if value is None:
        raise UserInputError(f"`ooc-bench {command}`: no dataset; pass --data PATH")
    return value
