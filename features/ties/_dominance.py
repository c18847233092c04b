"""Nystuen & Dacey (1961) dominant flows: each unit's largest outflow and the hierarchy it induces."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tiecast.common import ConfigError

from ._checks import IntArray, clean_pairs

__all__ = ["dominant_flows"]


def _root_and_depth(parent: IntArray) -> tuple[IntArray, IntArray]:
    """Root and depth of every node of a forest given by parent pointers (roots point to themselves).

    Pointer jumping (list ranking): about log2(depth) vectorised passes instead of walking each chain.
    """
    p = parent.copy()
    depth = (p != np.arange(p.size)).astype(np.int64)
    for _ in range(64):
        pp = p[p]
        if np.array_equal(pp, p):
            break
        depth = depth + depth[p]
        p = pp
    return p, depth


def dominant_flows(
    origin_idx: ArrayLike, dest_idx: ArrayLike, value: ArrayLike, size: ArrayLike | None, n_units: int
) -> pd.DataFrame:
    """Nystuen & Dacey (1961) dominant-flow hierarchy of a directed flow network.

    Each unit's dominant flow is its largest outflow to another unit (ties -> the larger partner by
    ``size``, then the lower index). A unit is *subordinate* when its dominant flow goes to a larger unit
    (strictly, by ``size``; default = total inflow, the classic choice, or e.g. population); otherwise it
    is a terminal point (hub) of the hierarchy. Following dominant flows from subordinate units upwards
    ends at a hub; sizes strictly increase along the way, so there are no cycles.

    Returns a DataFrame indexed 0..n_units-1 with ``dominant_partner`` (index, -1 when the unit sends no
    flow), ``dominant_flow`` (flow unit), ``dominant_out_share`` (dominant flow / total outflow),
    ``size``, ``subordinate`` (bool), ``hub`` (index of the terminal unit; itself for hubs) and
    ``hierarchy_level`` (0 for hubs, 1 for units whose dominant flow goes directly to a hub, ...).
    """
    o, d, v = clean_pairs(origin_idx, dest_idx, value, n_units)
    if size is None:
        sz = np.bincount(d, weights=v, minlength=n_units).astype(np.float64)
    else:
        sz = np.asarray(size, dtype=np.float64)
        if sz.shape != (n_units,) or not np.all(np.isfinite(sz)):
            raise ConfigError(f"size must be {n_units} finite values (one per unit)")
    partner = np.full(n_units, -1, dtype=np.int64)
    dom_flow = np.zeros(n_units)
    if v.size:
        # o, d, v are sorted by (origin, destination): per-origin reductions over contiguous runs
        starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
        counts = np.diff(np.r_[starts, v.size])
        cand = v == np.repeat(np.maximum.reduceat(v, starts), counts)
        cand_size = np.where(cand, sz[d], -np.inf)  # ties on flow -> the larger partner
        cand &= cand_size == np.repeat(np.maximum.reduceat(cand_size, starts), counts)
        pos = np.flatnonzero(cand)  # remaining ties -> the lowest destination index (first in the run)
        first = pos[np.r_[True, o[pos][1:] != o[pos][:-1]]]
        partner[o[first]] = d[first]
        dom_flow[o[first]] = v[first]
    out_total = np.bincount(o, weights=v, minlength=n_units)
    has = partner >= 0
    subordinate = has & (sz[np.where(has, partner, 0)] > sz)
    parent = np.where(subordinate, partner, np.arange(n_units))
    hub, level = _root_and_depth(parent)
    share = np.divide(dom_flow, out_total, out=np.zeros(n_units), where=out_total > 0)
    return pd.DataFrame(
        {
            "dominant_partner": partner,
            "dominant_flow": dom_flow,
            "dominant_out_share": share,
            "size": sz,
            "subordinate": subordinate,
            "hub": hub,
            "hierarchy_level": level,
        }
    )
