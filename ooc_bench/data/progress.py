"""A rich progress bar on stderr for long loops (hashing, decoding, demo generation); silent for short ones."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


@contextlib.contextmanager
def progress_bar(description: str, total: int, min_total: int = 64) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; shows a transient bar when ``total >= min_total``, stderr is a terminal and OOC_BENCH_NO_PROGRESS is unset."""
    from ..settings import no_progress

    if total < min_total or no_progress() or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
