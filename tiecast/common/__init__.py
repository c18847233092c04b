"""tiecast.common: plumbing shared by every tiecast package (it imports no other tiecast package).

- :class:`TiecastError`, :class:`DatasetError`, :class:`ConfigError`, :class:`TrackingError`,
  :class:`Problem` – the one error hierarchy;
- :func:`atomic_write`, :func:`write_table`, :func:`check_table_path`, ``TABLE_SUFFIXES`` – outputs are written
  to a temporary file and renamed into place, never half-written;
- :func:`progress_bar`, :func:`stage` – rich progress bars for long work (silent when disabled).
"""

from ._errors import ConfigError, DatasetError, Problem, Severity, TiecastError, TrackingError
from ._io import TABLE_SUFFIXES, atomic_write, check_table_path, write_table
from ._progress import progress_bar, stage

__all__ = [
    "TABLE_SUFFIXES",
    "ConfigError",
    "DatasetError",
    "Problem",
    "Severity",
    "TiecastError",
    "TrackingError",
    "atomic_write",
    "check_table_path",
    "progress_bar",
    "stage",
    "write_table",
]
