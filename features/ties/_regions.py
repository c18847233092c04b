"""Functional regions: Louvain communities of the two-way tie graph, with labels stable across years."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from tiecast.common import ConfigError

from ._checks import FloatArray, IntArray, csr_triplets
from ._inputs import flow_indices

__all__ = ["functional_regions"]


def _undirected_volume(
    o: IntArray, d: IntArray, y: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Unordered pairs i < j with volume F_ij + F_ji (sorted by i, j)."""
    lo, hi = np.minimum(o, d), np.maximum(o, d)
    return csr_triplets(sparse.csr_array((y, (lo, hi)), shape=(n, n)))


def _prune_to_top_partners(
    i: IntArray, j: IntArray, w: FloatArray, n: int, k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Keep an undirected edge when it is among the k heaviest edges of either endpoint."""
    ends = np.concatenate([i, j])
    weights = np.concatenate([w, w])
    edge = np.concatenate([np.arange(i.size), np.arange(i.size)])
    order = np.lexsort((-weights, ends))
    starts = np.searchsorted(ends[order], np.arange(n))
    rank = np.arange(order.size) - starts[ends[order]]
    keep = np.zeros(i.size, dtype=bool)
    keep[edge[order][rank < k]] = True
    return i[keep], j[keep], w[keep]


def _match_labels(
    community: IntArray, hub_label: NDArray[np.object_], unit_ids: Sequence[str], previous: pd.Series | None
) -> NDArray[np.object_]:
    """Label each community: the previous year's label it overlaps most (one-to-one), else its hub."""
    labels = hub_label.copy()
    if previous is not None and len(previous):
        prev_by_id = pd.Series(previous.to_numpy(dtype=object), index=previous.index.astype(str))
        prev = prev_by_id.reindex(pd.Index(unit_ids)).to_numpy(dtype=object)
        known = pd.notna(prev)
        codes, names = pd.factorize(prev[known], sort=True)
        overlap = np.zeros((hub_label.size, names.size))
        np.add.at(overlap, (community[known], codes), 1.0)
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        hit = overlap[rows, cols] > 0
        labels[rows[hit]] = np.asarray(names, dtype=object)[cols[hit]]
        # an unmatched community may have a hub whose id is a label kept by another community
        taken = set(labels[rows[hit]])
        for c in np.setdiff1d(np.arange(hub_label.size), rows[hit]):
            base, suffix = str(labels[c]), 2
            while labels[c] in taken:
                labels[c] = f"{base}~{suffix}"
                suffix += 1
            taken.add(labels[c])
    return labels


def functional_regions(
    flows: pd.DataFrame,
    unit_ids: Sequence[str],
    size: pd.Series | None = None,
    *,
    previous: pd.Series | None = None,
    seed: int = 0,
    resolution: float = 1.0,
    max_partners: int | None = None,
) -> pd.Series:
    """Functional regions: Louvain communities of the undirected tie graph, with year-stable labels.

    ``flows`` holds one (kind, year) with columns ``origin, destination, value``; edge weight is the pair
    volume F_ij + F_ji (diagonal dropped). Louvain (networkx, ``seed``, ``resolution``) runs on a graph
    whose nodes and edges are inserted in sorted unit_id order, so the result does not depend on row order.
    ``max_partners`` keeps only each unit's heaviest ties (speeds up very large graphs).

    Labels: a community keeps the label of the ``previous`` region (Series unit_id -> label) with which it
    shares most units, matched one-to-one by maximum total overlap (Hungarian assignment), so region ids
    do not jump between years even when the largest member changes. Other communities are named after
    their hub, the member with the largest ``size`` (e.g. population; default total in+out flow).
    Returns a Series unit_id -> label (str), named ``functional_region``.
    """
    uids = pd.Index(sorted(map(str, unit_ids)))
    if uids.has_duplicates:
        raise ConfigError("unit_ids must be unique")
    n = uids.size
    o, d, y = flow_indices(flows, uids)
    i, j, w = _undirected_volume(o, d, y, n)
    if max_partners is not None:
        if max_partners < 1:
            raise ConfigError("max_partners must be >= 1 or None")
        i, j, w = _prune_to_top_partners(i, j, w, n, max_partners)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(i.tolist(), j.tolist(), w.tolist(), strict=True))
    parts = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    # order communities by their smallest member so that community numbers are reproducible
    parts = sorted((sorted(p) for p in parts), key=lambda p: p[0])
    community = np.empty(n, dtype=np.int64)
    for c, members in enumerate(parts):  # loop over communities, not pairs
        community[members] = c
    if size is None:
        sz = np.bincount(o, weights=y, minlength=n) + np.bincount(d, weights=y, minlength=n)
    else:
        sz = size.reindex(uids).to_numpy(dtype=np.float64)
        if np.isnan(sz).any():
            raise ConfigError("size must have a value for every unit")
    # hub = largest member; ties -> lowest unit_id (lexsort is stable on the index order)
    order = np.lexsort((np.arange(n), -sz, community))
    first = order[np.r_[True, community[order][1:] != community[order][:-1]]]
    hub_label = np.asarray(uids.to_numpy(dtype=object)[first], dtype=object)
    labels = _match_labels(community, hub_label, list(uids), previous)
    return pd.Series(labels[community], index=uids, name="functional_region", dtype=object)
