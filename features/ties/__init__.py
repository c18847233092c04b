"""tiecast.features.ties: tie-strength indices between units and per-unit network measures of their flows.

One module per concept (all private; this is the public API):

- ``_geometry`` – :func:`haversine_km`, :func:`distance_matrix_km`, :func:`log_distance` (km, WGS84 degrees);
- ``_gravity`` – :func:`fit_gravity` -> :class:`GravityFit` (unconstrained Poisson gravity model or doubly
  constrained spatial-interaction model over *all* ordered pairs), the one :func:`deterrence_kernel`,
  :class:`GravityVolume` and :func:`weighted_partner_mean`;
- ``_dominance`` – :func:`dominant_flows` (Nystuen–Dacey hierarchy);
- ``_regions`` – :func:`functional_regions` (Louvain, labels stable across years);
- ``_composite`` – :func:`reciprocity_index`, :func:`strength_share`, :func:`volume_share`,
  :func:`composite_tie_index`, :func:`reciprocal_tie_index` and their one kernel :func:`tie_components`;
- ``_centrality`` – PageRank, betweenness, closeness (networkx definitions, vectorised);
- ``_inputs`` / ``_frames`` – input checks and the DataFrame front-ends :func:`pair_indices`,
  :func:`gravity_fits`, :func:`unit_tie_measures`.

All vectorised over pairs; loops run only over years/kinds, iterations or row blocks. The network measures of
:func:`unit_tie_measures` reproduce those of the dongwoo migration panel (networkx on the directed flow graph).
"""

from ._composite import (
    SMOOTHING,
    composite_tie_index,
    reciprocal_tie_index,
    reciprocity_index,
    strength_share,
    tie_components,
    volume_share,
)
from ._dominance import dominant_flows
from ._frames import PAIR_COLUMNS, UNIT_COLUMNS, gravity_fits, pair_indices, unit_tie_measures
from ._geometry import EARTH_RADIUS_KM, MIN_DISTANCE_KM, distance_matrix_km, haversine_km, log_distance
from ._gravity import (
    GravityFit,
    GravityVolume,
    deterrence_kernel,
    fit_gravity,
    weighted_partner_mean,
)
from ._inputs import FLOW_COLUMNS, unit_positions
from ._regions import functional_regions

__all__ = [
    "EARTH_RADIUS_KM",
    "FLOW_COLUMNS",
    "MIN_DISTANCE_KM",
    "PAIR_COLUMNS",
    "SMOOTHING",
    "UNIT_COLUMNS",
    "GravityFit",
    "GravityVolume",
    "composite_tie_index",
    "deterrence_kernel",
    "distance_matrix_km",
    "dominant_flows",
    "fit_gravity",
    "functional_regions",
    "gravity_fits",
    "haversine_km",
    "log_distance",
    "pair_indices",
    "reciprocal_tie_index",
    "reciprocity_index",
    "strength_share",
    "tie_components",
    "unit_positions",
    "unit_tie_measures",
    "volume_share",
    "weighted_partner_mean",
]
