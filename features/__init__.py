"""tiecast.features: the dataset contract, tie-strength indices and the leak-free panel feature builder.

Public API (everything else is private):

- :func:`load_dataset`, :func:`check_dataset`, :class:`Dataset` – the dataset contract.
- :class:`TiecastError`, :class:`DatasetError`, :class:`ConfigError`, :class:`TrackingError`,
  :class:`Problem` – the one error hierarchy.
"""

from ._dataset import Dataset, bundled_datasets, check_dataset, load_dataset
from ._errors import ConfigError, DatasetError, Problem, TiecastError, TrackingError

__all__ = [
    "ConfigError",
    "Dataset",
    "DatasetError",
    "Problem",
    "TiecastError",
    "TrackingError",
    "bundled_datasets",
    "check_dataset",
    "load_dataset",
]
