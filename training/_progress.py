"""One rich progress bar per stage of a long command (silent when disabled)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from features._progress import progress_bar

__all__ = ["stage"]


@contextmanager
def stage(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar for one stage; yields ``advance(n=1)``."""
    with progress_bar(enabled) as bar:
        task = bar.add_task(description, total=max(total, 1))

        def advance(n: float = 1) -> None:
            bar.advance(task, n)

        yield advance
