"""tiecast.features: the dataset contract, tie-strength indices and the leak-free panel feature builder.

Public API (everything else is private):

- :func:`load_dataset`, :func:`check_dataset`, :class:`Dataset`, :func:`bundled_datasets`,
  :func:`apply_small_mid_rule`, :func:`infer_step` (years between observations) – the dataset contract
  (errors: :class:`DatasetError` with ``.problems``);
- :mod:`tiecast.features.ties` – tie-strength indices between units; the most used ones are re-exported here:
  :func:`pair_indices`, :func:`unit_tie_measures`, :func:`reciprocity_index`, :func:`fit_gravity`,
  :func:`dominant_flows`, :func:`functional_regions`;
- :func:`build_features` -> :class:`PanelFeatures` – the leak-free feature panel (one row per unit and origin
  year), :func:`flow_sources` – which flow year feeds which origin year, ``FEATURE_GROUPS``;
- :class:`Scenario`, :func:`read_scenarios`, :func:`builtin_scenario`, :func:`apply_scenario`,
  :func:`scenario_state` – cooperation scenarios, applied to flows and recomputed into panel measures.

Imports only :mod:`tiecast.common`.
"""

if __name__ != "tiecast.features":  # pragma: no cover - a second copy would have its own error classes
    raise ImportError("import this package as tiecast.features (e.g. `from tiecast.features import load_dataset`)")

from tiecast.common import DatasetError, Problem

from . import ties
from ._dataset import Dataset, apply_small_mid_rule, bundled_datasets, check_dataset, infer_step, load_dataset
from ._panel import FEATURE_GROUPS, FeatureSpec, PanelFeatures, build_features, flow_sources
from ._scenarios import (
    BUILTIN_SCENARIOS,
    SCENARIO_KEYS,
    AppliedScenario,
    Scenario,
    apply_scenario,
    builtin_scenario,
    observed_flow_measures,
    parse_scenario,
    read_scenarios,
    scenario_state,
)
from .ties import (
    dominant_flows,
    fit_gravity,
    functional_regions,
    pair_indices,
    reciprocity_index,
    unit_tie_measures,
)

__all__ = [
    "BUILTIN_SCENARIOS",
    "FEATURE_GROUPS",
    "SCENARIO_KEYS",
    "AppliedScenario",
    "Dataset",
    "DatasetError",
    "FeatureSpec",
    "PanelFeatures",
    "Problem",
    "Scenario",
    "apply_scenario",
    "apply_small_mid_rule",
    "build_features",
    "builtin_scenario",
    "bundled_datasets",
    "check_dataset",
    "dominant_flows",
    "fit_gravity",
    "flow_sources",
    "functional_regions",
    "infer_step",
    "load_dataset",
    "observed_flow_measures",
    "pair_indices",
    "parse_scenario",
    "read_scenarios",
    "reciprocity_index",
    "scenario_state",
    "ties",
    "unit_tie_measures",
]
