"""tiecast.features: the dataset contract, tie-strength indices and the leak-free panel feature builder.

Public API (everything else is private):

- :func:`load_dataset`, :func:`check_dataset`, :class:`Dataset` – the dataset contract.
- :func:`pair_indices`, :func:`unit_tie_measures`, :func:`reciprocity_index`, :func:`fit_gravity`,
  :func:`dominant_flows`, :func:`functional_regions` – tie-strength indices between units.
- :func:`build_features` -> :class:`PanelFeatures` – the leak-free feature panel (one row per unit and
  origin year), :func:`flow_sources` – which flow year feeds which origin year.
- :func:`write_table` – atomic CSV/Parquet output.
- :class:`TiecastError`, :class:`DatasetError`, :class:`ConfigError`, :class:`TrackingError`,
  :class:`Problem` – the one error hierarchy.
"""

from ._dataset import Dataset, bundled_datasets, check_dataset, load_dataset
from ._errors import ConfigError, DatasetError, Problem, TiecastError, TrackingError
from ._io import write_table
from ._panel import FEATURE_GROUPS, FeatureSpec, PanelFeatures, build_features, flow_sources
from ._ties import (
    dominant_flows,
    fit_gravity,
    functional_regions,
    pair_indices,
    reciprocity_index,
    unit_tie_measures,
)

__all__ = [
    "FEATURE_GROUPS",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "FeatureSpec",
    "PanelFeatures",
    "Problem",
    "TiecastError",
    "TrackingError",
    "build_features",
    "bundled_datasets",
    "check_dataset",
    "dominant_flows",
    "fit_gravity",
    "flow_sources",
    "functional_regions",
    "load_dataset",
    "pair_indices",
    "reciprocity_index",
    "unit_tie_measures",
    "write_table",
]
