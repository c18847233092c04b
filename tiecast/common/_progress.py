"""Progress bars for long work (rich), or a silent stand-in when disabled (tests, library use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["progress_bar", "stage"]


class _SilentProgress:
    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        return None

    def update(self, task: int, **_: Any) -> None:
        return None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress display when ``enabled``; otherwise an object with the same methods doing nothing."""
    if not enabled:
        yield _SilentProgress()
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=False,
    ) as bar:
        yield bar


@contextmanager
def stage(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar for one stage of a long command; yields ``advance(n=1)``."""
    with progress_bar(enabled) as bar:
        task = bar.add_task(description, total=max(total, 1))

        def advance(n: float = 1) -> None:
            bar.advance(task, n)

        yield advance
