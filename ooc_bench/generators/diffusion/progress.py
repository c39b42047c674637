"""A rich progress bar for generator training loops (step, total, loss).

It follows the rule of ``ooc_bench.data.progress.progress_bar`` (stderr; off when ``OOC_BENCH_NO_PROGRESS``
is set) and adds what that helper lacks: a running loss column and a bar that stays after the loop.
"""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """Context manager around ``rich.progress``; call ``update(step, total, loss)`` after each optimisation step."""

    def __init__(self, title: str, enabled: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        from ...settings import no_progress

        enabled = enabled and not no_progress()
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                                  TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)
        self._title = title
        self._task: Any = None

    def __enter__(self) -> "ProgressBar":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def update(self, step: int, total: int, loss: float) -> None:
        """Show step ``step`` of ``total`` (a resumed run starts the bar at its first new step)."""
        if self._task is None:
            self._task = self._progress.add_task(self._title, total=total, completed=step - 1, loss=loss)
        self._progress.update(self._task, completed=step, loss=loss)
