"""The ``ooc-bench`` command line: one typer app; each sub-module registers its commands."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..errors import OocBenchError

app = typer.Typer(
    name="ooc-bench",
    help="Does synthetic data help my classifier, and which generator makes it best?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: wraps to any width (80 columns) and never cuts a default or a name
)
err_console = Console(stderr=True)


@app.callback()
def _global(offline: bool = typer.Option(False, "--offline", help="Never contact the Hugging Face hub (sets HF_HUB_OFFLINE=1).")) -> None:
    """ooc-bench: generators x classifiers on small biomedical image sets."""
    if offline:
        from ..runtime import set_offline

        set_offline(True)


def _register_all() -> None:
    from . import data_cmd, generate_cmd, run_cmd, score_cmd, train_cmd

    for module in (data_cmd, train_cmd, generate_cmd, score_cmd, run_cmd):
        module.register(app)
    for typer_app in (app, data_cmd.data_app):
        for info in typer_app.registered_commands:  # whole first lines in command lists (click would cut them)
            if info.short_help is None and info.callback is not None and info.callback.__doc__:
                info.short_help = info.callback.__doc__.strip().splitlines()[0]


_register_all()


_INVOCATION: list[str] = []


def invocation() -> list[str]:
    """The command line of this ``ooc-bench`` call (``ooc-bench ARGS``), for provenance and resume hints."""
    return ["ooc-bench", *(_INVOCATION or sys.argv[1:])]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors become one red line and a non-zero exit, never a traceback.

    Exit codes: 0 success, 2 bad input, 3 data leakage refused, 4 `run`: some jobs failed, 130 interrupted.
    """
    _INVOCATION[:] = list(argv) if argv is not None else sys.argv[1:]
    try:
        app(args=argv, prog_name="ooc-bench")
    except OocBenchError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
