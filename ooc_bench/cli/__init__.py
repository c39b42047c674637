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


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors become one red line and a non-zero exit, never a traceback."""
    try:
        app(args=argv, prog_name="ooc-bench")
    except OocBenchError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
