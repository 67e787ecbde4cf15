"""Terminal output: progress bars with rate and ETA, quiet mode, one console per command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")


class Reporter:
    """Progress reporting that stages can use without knowing whether output is on."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def stage(self, description: str, total: int) -> Stage:
        if self._progress is None or total == 0:
            return Stage(None, None)
        return Stage(self._progress, self._progress.add_task(description, total=total))


class Stage:
    def __init__(self, progress: Progress | None, task_id: object) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, n)  # type: ignore[arg-type]


@contextmanager
def reporter(console: Console | None = None, *, quiet: bool = False) -> Iterator[Reporter]:
    if quiet:
        yield Reporter(None)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress:
        yield Reporter(progress)
