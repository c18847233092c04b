"""The one error hierarchy of tiecast.

Every failure a user can cause (bad data, bad parameters, missing runs) is raised as a subclass of
:class:`TiecastError`; the command-line interface prints its message and exits with status 1, never a
traceback. Programming errors inside tiecast stay ordinary Python exceptions.

- :class:`TiecastError` – base class.
- :class:`DatasetError` – a dataset folder breaks the contract; ``.problems`` lists every problem found.
- :class:`ConfigError` – an invalid parameter value (also a ``ValueError``).
- :class:`TrackingError` – MLflow state needed by a command is missing (no run, no registered model, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ConfigError", "DatasetError", "Problem", "Severity", "TiecastError", "TrackingError"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem found in a dataset folder.

    ``file`` is the file name inside the folder, ``row`` the line and key of the offending row, ``column``
    the column concerned, ``message`` what is wrong and ``fix`` what to do about it. ``row`` reads
    ``line N (key=value, ...)`` where N is the file's line number (the header is line 1).
    """

    severity: Severity
    file: str
    message: str
    row: str | None = None
    column: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        text = f"{self.severity.upper()} {where}: {self.message}"
        if self.fix:
            text += f" -> {self.fix}"
        return text


class TiecastError(Exception):
    """Base class of every error tiecast raises on purpose."""


class ConfigError(TiecastError, ValueError):
    """An invalid parameter value; the message names the parameter and the accepted values.

    ``parameter`` is the library parameter concerned (e.g. ``"origins"``) when there is one: the command line
    translates it into its own option name, so library messages never name command-line flags.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message)


class TrackingError(TiecastError):
    """MLflow state that a command needs is missing or inconsistent."""


class DatasetError(TiecastError):
    """A dataset folder does not follow the contract.

    ``problems`` holds every problem found (errors and warnings), not just the first.
    """

    def __init__(self, folder: str, problems: list[Problem]):
        self.folder = folder
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        lines = [f"dataset {folder!s}: {len(errors)} error(s)"]
        lines += [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]
