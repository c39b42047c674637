"""Progress of a benchmark run: a rich bar on a terminal, one short line per finished job in a log (Slurm, `> run.log`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape

from .plan import Job

STATUS_COLOUR = {"done": "green", "failed": "red", "skipped": "yellow"}

# options of `generate` / `score` that job errors name, and the spec key `ooc-bench run` sets the same thing with
RUN_SPELLING = {
    "--path": "generators.{g}.path", "--strength": "generators.{g}.strength", "--steps": "generators.{g}.steps",
    "--kimg": "generators.{g}.kimg", "--gan-pkl": "generators.{g}.gan_pkl", "--resolution": "generators.{g}.resolution",
    "--param": "generators.{g}.KEY", "--inception-weights": "quality.inception_weights",
    "--dinov2-weights": "quality.dinov2_weights", "--features": "quality.features", "--metrics": "quality.metrics",
    "--domain-model": "quality.domain_model", "--domain-epochs": "quality.domain_epochs",
    "--dinov2-model": "quality.dinov2_model", "--per-class": "matrix.ratios", "--per-image": "matrix.ratios",
}


def run_spelling(text: object, job: Job | None = None) -> str:
    """A job's error as `ooc-bench run` should say it: options of other commands (``--path``, ``--inception-weights``)
    become the spec keys the run sets them with (``generators.LABEL.path``, ``quality.inception_weights``), with a
    pointer to ``--set KEY=VALUE``."""
    import re

    label = str((job.params or {}).get("generator", "LABEL")) if job is not None else "LABEL"
    swapped = []

    def swap(m: "re.Match[str]") -> str:
        flag = m.group(0)
        if flag not in RUN_SPELLING:
            return flag
        swapped.append(RUN_SPELLING[flag].format(g=label))
        return swapped[-1]

    out = re.sub(r"(?<![\w-])--[a-z][a-z0-9-]*", swap, str(text))
    return out + (f" (set {swapped[0]} in the spec or with --set {swapped[0]}=VALUE)" if swapped else "")


def format_duration(seconds: float) -> str:
    """``1:02:03`` / ``2:03`` style, like rich's elapsed column."""
    s = int(round(max(seconds, 0.0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def shorten(text: str, width: int) -> str:
    """``text`` cut in the middle with an ellipsis so that it fits in ``width`` characters."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


class JobProgress:
    """Reports finished jobs. On a terminal a live bar; elsewhere (a log file, a pipe) one line per job:

    ``[ 3/12] done    cnn · aug · add 0.5 · seed 1  4.2s · 0:15 elapsed, ETA 0:45 · 1 failed``

    (finished/total, the job's status, label and time, the run's elapsed time and ETA, and failures so far).
    Lines are cut to the console width (80 in a log, labels shortened in the middle), so nothing wraps.
    ETA = elapsed / finished × jobs left.
    """

    def __init__(self, console: Console, total: int, live: bool | None = None) -> None:
        self.console = console
        self.total = max(int(total), 0)
        self.counts: Counter[str] = Counter()
        self.t0 = time.time()
        self.live = console.is_terminal if live is None else live
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "JobProgress":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                                 console=self.console, transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("benchmark", total=self.total, last="")
        elif self.total:
            self.console.print(f"running {self.total} job(s); one line per finished job", highlight=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def eta_s(self) -> float | None:
        """Seconds left at the mean pace so far (None before the first job)."""
        if not self.finished:
            return None
        left = max(self.total - self.finished, 0)
        return (time.time() - self.t0) / self.finished * left

    def line(self, job: Job, rec: dict[str, Any], width: int) -> str:
        """The plain (log) line for one finished job, at most ``width`` characters."""
        status = str(rec.get("status", "?"))
        n = self.finished
        w = len(str(self.total))
        eta = self.eta_s()
        failed = f" · {self.counts['failed']} failed" if self.counts["failed"] else ""
        tail = (f"  {float(rec.get('time_s', 0) or 0):.1f}s · {format_duration(time.time() - self.t0)} elapsed, "
                f"ETA {format_duration(eta) if eta is not None else '?'}{failed}")
        head = f"[{n:>{w}}/{self.total}] {status:<7} "
        room = max(width - 1 - len(head) - len(tail), 8)
        return head + shorten(job.label, room) + tail

    def update(self, job: Job, rec: dict[str, Any]) -> None:
        """One job finished (done, failed or skipped)."""
        status = str(rec.get("status", "?"))
        self.counts[status] += 1
        colour = STATUS_COLOUR.get(status, "white")
        if self._bar is not None:
            self._bar.update(self._task, advance=1, last=f"[{colour}]{status}[/] {escape(job.label)}")
            if status == "failed":
                self._bar.console.print(f"[red]failed:[/] {escape(job.label)}: {escape(run_spelling(rec.get('error'), job))}",
                                        highlight=False, soft_wrap=True)
            return
        width = min(self.console.width, 120)
        text = self.line(job, rec, width)
        self.console.print(f"[{colour}]{escape(text)}[/]", highlight=False, soft_wrap=True)
        if status == "failed":
            err = shorten(run_spelling(str(rec.get("error", "")).splitlines()[0], job) if rec.get("error") else "",
                          width - 10)
            self.console.print(f"  [red]error:[/] {escape(err)}", highlight=False, soft_wrap=True)
