"""Pairwise tie indices and per-unit network measures of the flows between units.

Inputs follow the dataset contract:

- ``flows``: columns ``origin, destination, year, kind, value`` (unit_id strings, value >= 0 persons or
  trips per year). Diagonal rows (origin == destination) are moves inside a unit and are dropped from
  every tie index and network measure; duplicated keys are summed.
- ``units``: columns ``unit_id, lat, lon`` (degrees, WGS84).
- ``population``: persons per unit, a ``pd.Series`` indexed by unit_id (one year) or by a
  ``(unit_id, year)`` MultiIndex (several years).

Public functions (all vectorised over pairs; loops run only over years/kinds, iterations or row blocks):

- :func:`reciprocity_index`, :func:`haversine_km`, :func:`distance_matrix_km`
- :func:`fit_gravity` -> :class:`GravityFit` (unconstrained Poisson gravity model or doubly constrained
  spatial-interaction model, both fitted over *all* ordered off-diagonal pairs, zeros included)
- :func:`dominant_flows` (Nystuen–Dacey hierarchy), :func:`functional_regions` (Louvain, stable labels)
- :func:`strength_share`, :func:`volume_share`, :func:`composite_tie_index`, :func:`reciprocal_tie_index`
- :func:`pair_indices`, :func:`gravity_fits`, :func:`unit_tie_measures`

The network measures of :func:`unit_tie_measures` reproduce those of the dongwoo migration panel
(networkx on the directed flow graph; see that function for the exact definitions and tolerances).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import dijkstra

from features._errors import ConfigError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Constraint = Literal["none", "doubly"]

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
SMOOTHING = 0.5  # added to observed and expected flows so that log ratios of zero flows stay finite
MIN_DISTANCE_KM = 1.0  # distances are clamped here so that coincident centroids keep log d finite
PAGERANK_ALPHA = 0.85
BALANCE_TOL = 1e-11  # Furness stops when every expected outflow is within this share of the largest one
# Dense n x n work is done in row blocks of about this many cells (2 MB per float64 block, so the several
# passes over one block stay in cache) with preallocated buffers: fresh large temporaries page-fault.
_BLOCK_CELLS = 1 << 18
# Path-based centralities (betweenness, closeness) run exactly up to this many units with path_sources="auto".
AUTO_EXACT_PATH_UNITS = 1000
AUTO_PATH_SOURCES = 128  # ~45 ms per source at 3,500 units / 2.6 M edges
# Louvain on every tie is slow beyond ~1,000 units (46 s at 3,500 units / 1.3 M ties); "auto" then keeps
# each unit's heaviest ties only (3 s), which leaves the strong ties that shape regions.
AUTO_REGION_PARTNERS = 20

FLOW_COLUMNS = ("origin", "destination", "year", "kind", "value")


# ---------------------------------------------------------------------------------------------------------
# elementary indices
# ---------------------------------------------------------------------------------------------------------
def _nonnegative(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError(f"{name} must be finite and >= 0 (flows are counts of persons or trips)")
    return arr


def reciprocity_index(f_ij: ArrayLike, f_ji: ArrayLike) -> FloatArray:
    """Reciprocity of a pair, R = 1 - |F_ij - F_ji| / (F_ij + F_ji) = 2 min(F_ij, F_ji) / (F_ij + F_ji).

    ``f_ij``, ``f_ji`` are flows (persons or trips, >= 0, broadcastable). R is dimensionless in [0, 1]:
    1 for perfectly balanced exchange, 0 for a one-way flow. A pair without flow in either direction has
    no tie to be reciprocal, so R = 0 there too (never NaN). Negative or non-finite flows raise ConfigError.
    """
    a = _nonnegative("f_ij", f_ij)
    b = _nonnegative("f_ji", f_ji)
    total = a + b
    safe = np.where(total > 0, total, 1.0)
    return np.asarray(np.where(total > 0, 2.0 * np.minimum(a, b) / safe, 0.0), dtype=np.float64)


def haversine_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> FloatArray:
    """Great-circle distance in km between points given in degrees (broadcasting numpy arrays)."""
    p1, l1, p2, l2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (lat1, lon1, lat2, lon2))
    h = np.sin((p2 - p1) / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2.0) ** 2
    # clip: rounding can push h a hair above 1 for antipodal points
    return np.asarray(2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


def distance_matrix_km(lat: ArrayLike, lon: ArrayLike, dtype: type = np.float32) -> NDArray[np.floating]:
    """Dense n x n great-circle distance matrix (km) between unit centroids (degrees), in row blocks.

    Same haversine distance as :func:`haversine_km`, computed from unit vectors: sin^2(theta/2) =
    (1 - x_i.x_j) / 2 with a BLAS product (float64, ~1e-8 relative even at 1 km). float32 output by
    default (4 bytes/cell: 49 MB at 3,500 units).
    """
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    if la.shape != lo.shape or la.ndim != 1:
        raise ConfigError("lat and lon must be 1-D arrays of the same length")
    if not (np.all(np.isfinite(la)) and np.all(np.isfinite(lo))):
        raise ConfigError("every unit needs finite lat/lon (degrees) to compute distances")
    xyz = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    n = la.size
    out: NDArray[np.floating] = np.empty((n, n), dtype=dtype)
    blocks = _row_blocks(n)
    h = np.empty((blocks[0][1], n)) if n else np.empty((0, 0))
    tmp = np.empty_like(h)
    h32 = np.empty(h.shape, dtype=np.float32)
    for r0, r1 in blocks:
        hb, tb, hb32 = h[: r1 - r0], tmp[: r1 - r0], h32[: r1 - r0]
        # x_i . x_j by three outer products (a k=3 matrix product is slow in BLAS)
        np.multiply.outer(xyz[r0:r1, 0], xyz[:, 0], out=hb)
        for c in (1, 2):
            np.multiply.outer(xyz[r0:r1, c], xyz[:, c], out=tb)
            np.add(hb, tb, out=hb)
        np.multiply(hb, -0.5, out=hb)
        np.add(hb, 0.5, out=hb)
        np.clip(hb, 0.0, 1.0, out=hb)
        np.sqrt(hb, out=hb)
        hb32[...] = hb
        np.arcsin(hb32, out=hb32)  # float32 arcsin: ~1e-7 relative, 3x faster than float64
        np.multiply(hb32, np.float32(2.0 * EARTH_RADIUS_KM), out=out[r0:r1], casting="same_kind")
        out[np.arange(r0, r1), np.arange(r0, r1)] = 0.0
    return out


# ---------------------------------------------------------------------------------------------------------
# gravity / spatial-interaction models
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GravityFit:
    """A gravity model fitted to one (kind, year) of flows by Poisson maximum likelihood.

    ``constraint="none"``: E[T_ij] = exp(log_k) * P_i**alpha * P_j**beta * d_ij**-gamma.
    ``constraint="doubly"``: E[T_ij] = A_i O_i * B_j D_j * d_ij**-gamma; ``origin_factor`` holds A_i O_i and
    ``dest_factor`` holds B_j D_j (flows per unit of d**-gamma), so that the expected row and column sums
    equal the observed out- and inflows O_i, D_j. ``log_k``, ``alpha``, ``beta`` are NaN for this variant.

    Distances (km) are clamped below at ``min_distance_km``. ``deviance`` is the Poisson deviance over all
    ``n_pairs = n_units (n_units - 1)`` ordered off-diagonal pairs, ``null_deviance`` that of the
    intercept-only model, ``pseudo_r2 = 1 - deviance / null_deviance`` (share of deviance explained).
    ``n_nonzero`` counts pairs with flow > 0, ``total_flow`` is their sum; ``iterations`` counts Newton
    steps (``"none"``) or Furness sweeps summed over the gamma search (``"doubly"``).
    """

    constraint: Constraint
    log_k: float
    alpha: float
    beta: float
    gamma: float
    deviance: float
    null_deviance: float
    pseudo_r2: float
    n_pairs: int
    n_units: int
    n_nonzero: int
    total_flow: float
    iterations: int
    converged: bool
    min_distance_km: float = MIN_DISTANCE_KM
    origin_factor: FloatArray | None = None
    dest_factor: FloatArray | None = None

    def expected(
        self, origin_idx: ArrayLike, dest_idx: ArrayLike, mass: ArrayLike | None, dist_km: ArrayLike
    ) -> FloatArray:
        """Expected flow (same unit as the fitted values) for pairs given by index and distance (km).

        ``mass`` (length n_units, persons) is needed only for ``constraint="none"``; ``dist_km`` is the
        per-pair distance aligned with the index arrays. Diagonal pairs get 0 (they are not modelled).
        """
        o = np.asarray(origin_idx, dtype=np.int64)
        d = np.asarray(dest_idx, dtype=np.int64)
        logd = _log_clamped(np.asarray(dist_km), self.min_distance_km).astype(np.float64)
        lm = None if self.constraint == "doubly" or mass is None else np.log(_positive_mass(mass, self.n_units))
        if self.constraint == "none" and lm is None:
            raise ConfigError("GravityFit.expected needs mass for the unconstrained model")
        return self._expected_log(o, d, lm, logd)

    def _expected_log(self, o: IntArray, d: IntArray, log_mass: FloatArray | None, logd: FloatArray) -> FloatArray:
        """:meth:`expected` from log mass per unit and log clamped distance per pair (no checks)."""
        if self.constraint == "doubly":
            assert self.origin_factor is not None and self.dest_factor is not None
            out = self.origin_factor[o] * self.dest_factor[d] * np.exp(-self.gamma * logd)
        else:
            assert log_mass is not None
            out = np.exp(self.log_k + self.alpha * log_mass[o] + self.beta * log_mass[d] - self.gamma * logd)
        return np.asarray(np.where(o == d, 0.0, out), dtype=np.float64)

    def params(self) -> dict[str, float | int | bool | str]:
        """Scalar parameters and fit statistics as a flat dict (one row of :func:`gravity_fits`)."""
        keys = ("constraint", "log_k", "alpha", "beta", "gamma", "deviance", "null_deviance", "pseudo_r2",
                "n_pairs", "n_units", "n_nonzero", "total_flow", "iterations", "converged")
        return {k: getattr(self, k) for k in keys}


def _positive_mass(mass: ArrayLike, n_units: int) -> FloatArray:
    m = np.asarray(mass, dtype=np.float64)
    if m.shape != (n_units,):
        raise ConfigError(f"mass must have one value per unit ({n_units}), got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ConfigError("mass (population, persons) must be finite and > 0 for every unit")
    return m


def _clean_pairs(
    origin_idx: ArrayLike, dest_idx: ArrayLike, value: ArrayLike, n_units: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Off-diagonal, non-zero flows with duplicate (origin, destination) pairs summed, sorted by key."""
    o = np.asarray(origin_idx, dtype=np.int64)
    d = np.asarray(dest_idx, dtype=np.int64)
    v = _nonnegative("value", value)
    if not (o.shape == d.shape == v.shape) or o.ndim != 1:
        raise ConfigError("origin_idx, dest_idx and value must be 1-D arrays of the same length")
    if o.size and (o.min() < 0 or d.min() < 0 or o.max() >= n_units or d.max() >= n_units):
        raise ConfigError(f"origin/destination indices must lie in [0, {n_units})")
    keep = (o != d) & (v > 0)
    # CSR construction sums duplicates and sorts by (origin, destination) in C; np.unique is far slower
    return _csr_triplets(sparse.csr_array((v[keep], (o[keep], d[keep])), shape=(n_units, n_units)))


def _csr_triplets(a: sparse.csr_array) -> tuple[IntArray, IntArray, FloatArray]:
    """(row, column, value) of the stored entries of a CSR matrix in canonical (row, column) order."""
    a.sum_duplicates()
    rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr))
    return rows, a.indices.astype(np.int64), np.asarray(a.data)


def _log_clamped(dist_km: NDArray[np.generic], min_distance_km: float) -> NDArray[np.float32]:
    """log(max(d, min_distance_km)) computed in float32, exactly as the fit's log-distance matrix."""
    return np.log(np.maximum(dist_km.astype(np.float32, copy=False), np.float32(min_distance_km)))


def _log_distance(dist_km: ArrayLike, n_units: int, min_distance_km: float) -> NDArray[np.float32]:
    """log(max(d, min_distance_km)) as float32 with a zero diagonal (the diagonal is masked everywhere).

    float32 halves memory (49 MB at 3,500 units); :meth:`GravityFit.expected` rounds the same way, so
    expected flows are exactly the fitted ones.
    """
    dist = np.asarray(dist_km)
    if dist.shape != (n_units, n_units):
        raise ConfigError(f"dist_km must be an ({n_units}, {n_units}) matrix of distances (km)")
    if not min_distance_km > 0:
        raise ConfigError("min_distance_km must be > 0")
    logd = np.empty((n_units, n_units), dtype=np.float32)
    for r0, r1 in _row_blocks(n_units):
        logd[r0:r1] = dist[r0:r1]
        np.maximum(logd[r0:r1], np.float32(min_distance_km), out=logd[r0:r1])
        np.log(logd[r0:r1], out=logd[r0:r1])
    if np.isnan(logd).any():
        raise ConfigError("dist_km contains NaN")
    np.fill_diagonal(logd, 0.0)
    return logd


def _row_blocks(n: int) -> list[tuple[int, int]]:
    """Consecutive row ranges [r0, r1) covering 0..n-1 with about _BLOCK_CELLS cells each."""
    step = max(1, _BLOCK_CELLS // max(n, 1))
    return [(r0, min(n, r0 + step)) for r0 in range(0, n, step)]


def _poisson_deviance(y: FloatArray, mu_obs: FloatArray, mu_total: float) -> float:
    """2 * sum[y log(y/mu) - (y - mu)] over all pairs, from the non-zero pairs and the total of mu."""
    return float(2.0 * (np.sum(y * np.log(y / mu_obs)) - y.sum() + mu_total))


def _null_deviance(y: FloatArray, n_pairs: int) -> float:
    # intercept-only model: mu = mean flow over all ordered pairs; sum(y - mu) = 0
    return float(2.0 * np.sum(y * np.log(y / (y.sum() / n_pairs))))


def _unconstrained_moments(
    theta: FloatArray, u: FloatArray, logd: NDArray[np.float32], lbar: float
) -> tuple[FloatArray, FloatArray]:
    """Score terms X'mu (4,) and information X'diag(mu)X (4, 4) over all off-diagonal pairs.

    Design row of pair (i, j): x = (1, u_i, u_j, w_ij) with u = centred log mass, w = -(log d - mean).
    mu_ij = p_i q_j K_ij with p = exp(c + a u), q = exp(b u), K = exp(g w) (zero diagonal), so every sum
    is a BLAS mat-vec of a row block of K, K*w or K*w*w: mu itself is never stored.
    """
    c, a, b, g = theta
    n = u.size
    with np.errstate(over="ignore"):
        p = np.exp(c + a * u)
        q = np.exp(b * u)
    rhs = np.column_stack([q, q * u])
    kq = np.empty((n, 2))
    col = np.zeros(n)
    kw_q = np.empty(n)
    col_w = np.zeros(n)
    kww_q = np.empty(n)
    blocks = _row_blocks(n)
    w = np.empty((blocks[0][1], n), dtype=np.float32)
    e = np.empty_like(w)
    k = np.empty(w.shape)
    for r0, r1 in blocks:
        wb, eb, kb = w[: r1 - r0], e[: r1 - r0], k[: r1 - r0]
        np.subtract(np.float32(lbar), logd[r0:r1], out=wb)
        # exp in float32 (4x faster here; K carries ~1e-6 relative rounding), every sum in float64
        np.multiply(wb, np.float32(g), out=eb)
        with np.errstate(over="ignore"):
            np.exp(eb, out=eb)
        kb[...] = eb
        kb[np.arange(r1 - r0), np.arange(r0, r1)] = 0.0
        kq[r0:r1] = kb @ rhs
        col += p[r0:r1] @ kb
        np.multiply(kb, wb, out=kb)  # now K * w
        kw_q[r0:r1] = kb @ q
        col_w += p[r0:r1] @ kb
        np.multiply(kb, wb, out=kb)  # now K * w * w
        kww_q[r0:r1] = kb @ q
    row = p * kq[:, 0]
    col = q * col
    row_w = p * kw_q
    col_w = q * col_w
    s0 = row.sum()
    su, sv, sw = u @ row, u @ col, row_w.sum()
    s_uv = (p * u) @ kq[:, 1]
    score = np.array([s0, su, sv, sw])
    info = np.array(
        [
            [s0, su, sv, sw],
            [su, (u * u) @ row, s_uv, u @ row_w],
            [sv, s_uv, (u * u) @ col, u @ col_w],
            [sw, u @ row_w, u @ col_w, p @ kww_q],
        ]
    )
    return score, info


# Above this many units the Newton iterations start from a fit on a random subset of units, which has the
# same parameters (the model is defined pair by pair), so only ~3 full-size iterations remain.
_WARM_START_UNITS = 600


def _fit_unconstrained(
    o: IntArray, d: IntArray, y: FloatArray, mass: FloatArray, logd: NDArray[np.float32],
    tol: float, max_iter: int, start: FloatArray | None = None,
) -> tuple[float, float, float, float, FloatArray, float, int, bool]:
    """Newton-Raphson (= IRLS for the canonical log link) with step halving on the log-likelihood.

    ``start`` = (log_k, alpha, beta, gamma) to start from; returns log_k, alpha, beta, gamma, mu at the
    observed pairs, the sum of mu over all pairs, the number of iterations and whether it converged
    (full Newton step below sqrt(tol): quadratic convergence leaves an error of order tol).
    """
    n = mass.size
    n_pairs = n * (n - 1)
    lm = np.log(mass)
    lm_bar = float(lm.mean())
    u = lm - lm_bar
    lbar = float(logd.sum(dtype=np.float64) / n_pairs)  # diagonal of logd is 0
    w_obs = lbar - logd[o, d].astype(np.float64)
    suff = np.array([y.sum(), y @ u[o], y @ u[d], y @ w_obs])  # X'y: all the data the likelihood needs
    if start is None:
        theta = np.array([math.log(y.sum() / n_pairs), 0.0, 0.0, 0.0])
    else:
        lk, a0, b0, g0 = start
        theta = np.array([lk + (a0 + b0) * lm_bar - g0 * lbar, a0, b0, g0])
    score, info = _unconstrained_moments(theta, u, logd, lbar)
    loglik = float(theta @ suff - score[0])
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        step = np.linalg.solve(info, suff - score)
        # Newton decrement: half of it is the log-likelihood gain the quadratic model predicts. Once that
        # is tiny the full step is taken unchecked: the float32 kernel makes log-likelihood differences
        # this small unreliable, and Newton is in its quadratic phase anyway.
        predicted_gain = 0.5 * float(step @ (suff - score))
        quadratic_phase = predicted_gain < 1e-6 * max(1.0, abs(loglik))
        t = 1.0
        while True:
            cand = theta + t * step
            c_score, c_info = _unconstrained_moments(cand, u, logd, lbar)
            c_loglik = float(cand @ suff - c_score[0])
            if quadratic_phase or (np.isfinite(c_loglik) and c_loglik >= loglik) or t < 1e-6:
                break
            t /= 2.0
        theta, score, info, loglik = cand, c_score, c_info, c_loglik
        if t == 1.0 and np.max(np.abs(step)) < math.sqrt(tol):
            converged = True
            break
    c, a, b, g = (float(x) for x in theta)
    log_k = c - a * lm_bar - b * lm_bar + g * lbar
    mu_obs = np.exp(c + a * u[o] + b * u[d] + g * w_obs)
    return log_k, a, b, g, mu_obs, float(score[0]), it, converged


def _subsample_start(
    o: IntArray, d: IntArray, y: FloatArray, mass: FloatArray, logd: NDArray[np.float32], tol: float
) -> FloatArray | None:
    """(log_k, alpha, beta, gamma) fitted on the pairs among a fixed random subset of units."""
    n = mass.size
    pick = np.sort(np.random.default_rng(0).choice(n, size=_WARM_START_UNITS, replace=False))
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[pick] = np.arange(pick.size)
    keep = (new_index[o] >= 0) & (new_index[d] >= 0)
    if keep.sum() < 10:
        return None
    sub = _fit_unconstrained(new_index[o[keep]], new_index[d[keep]], y[keep], mass[pick],
                             logd[np.ix_(pick, pick)], max(tol, 1e-8), 50)
    return np.array(sub[:4]) if sub[7] else None


def _kernel(
    logd: NDArray[np.float32], gamma: float, out: FloatArray | None = None, exact: bool = False
) -> FloatArray:
    """Dense deterrence matrix d**-gamma with a zero diagonal (float64, built in row blocks).

    The exp runs in float32 (see _unconstrained_moments) unless ``exact``: then in float64, matching
    :meth:`GravityFit.expected` to the last bit.
    """
    n = logd.shape[0]
    k = np.empty((n, n), dtype=np.float64) if out is None else out
    blocks = _row_blocks(n)
    e = np.empty((blocks[0][1], n), dtype=np.float32)
    for r0, r1 in blocks:
        if exact:
            np.multiply(logd[r0:r1], -gamma, out=k[r0:r1], dtype=np.float64)
            np.exp(k[r0:r1], out=k[r0:r1])
        else:
            eb = e[: r1 - r0]
            np.multiply(logd[r0:r1], np.float32(-gamma), out=eb)
            with np.errstate(over="ignore"):
                np.exp(eb, out=eb)
            k[r0:r1] = eb
        k[np.arange(r0, r1), np.arange(r0, r1)] = 0.0
    return k


def _furness(
    k: FloatArray, out_flow: FloatArray, in_flow: FloatArray, b: FloatArray, tol: float, max_iter: int,
) -> tuple[FloatArray, FloatArray, int]:
    """Furness/IPF balancing: a = O / (K b), b = D / (K' a) until row sums match O (relative ``tol``)."""
    scale = max(float(out_flow.max()), 1e-300)
    kb = k @ b
    a = np.zeros_like(out_flow)
    it = 0
    while it < max_iter:
        it += 1
        a = np.divide(out_flow, kb, out=np.zeros_like(out_flow), where=kb > 0)
        ka = a @ k
        b = np.divide(in_flow, ka, out=np.zeros_like(in_flow), where=ka > 0)
        kb = k @ b
        # column sums are exact right after the b update; the row sums carry the remaining error
        if np.max(np.abs(a * kb - out_flow)) <= tol * scale:
            break
    return a, b, it


def _fit_doubly(
    o: IntArray, d: IntArray, y: FloatArray, logd: NDArray[np.float32], gamma0: float,
    tol: float, max_iter: int,
) -> tuple[float, FloatArray, FloatArray, FloatArray, int, bool]:
    """Doubly constrained model = Poisson GLM with origin and destination fixed effects.

    The ML equations are: expected margins = observed margins (Furness balancing for a given gamma) and
    f(gamma) = sum(mu log d) / sum(y) - mean observed log distance = 0, with f decreasing in gamma. The
    1-D equation is solved by secant steps (the first slope being the origin-conditional variance of
    log d), kept inside the bracket found so far by bisection; each step warm-starts the balancing.
    """
    n = logd.shape[0]
    total = float(y.sum())
    out_flow = np.bincount(o, weights=y, minlength=n).astype(np.float64, copy=False)
    in_flow = np.bincount(d, weights=y, minlength=n).astype(np.float64, copy=False)
    target = float(y @ logd[o, d].astype(np.float64)) / total
    k = np.empty((n, n), dtype=np.float64)
    blocks = _row_blocks(n)
    work = np.empty((blocks[0][1], n))
    a = np.zeros(n)
    b = np.ones(n)
    sweeps = 0

    balance_tol = 1e-6

    def gap(gamma: float) -> tuple[float, float]:
        """f(gamma) and the origin-conditional approximation of its slope."""
        nonlocal a, b, sweeps
        _kernel(logd, gamma, out=k)
        a, b, its = _furness(k, out_flow, in_flow, b, balance_tol, 50 * max_iter)
        sweeps += its
        row_l = np.empty(n)
        row_ll = np.empty(n)
        for r0, r1 in blocks:
            kl = work[: r1 - r0]
            np.multiply(k[r0:r1], logd[r0:r1], out=kl)
            row_l[r0:r1] = kl @ b
            np.multiply(kl, logd[r0:r1], out=kl)
            row_ll[r0:r1] = kl @ b
        row_l *= a
        cond = np.divide(row_l * row_l, out_flow, out=np.zeros(n), where=out_flow > 0)
        return row_l.sum() / total - target, -float((a * row_ll).sum() - cond.sum()) / total

    g, (f, slope) = gamma0, gap(gamma0)
    lo, hi = -np.inf, np.inf  # f > 0 below the root, f < 0 above it
    g_prev: float | None = None
    f_prev: float | None = None
    for _ in range(max_iter):
        if f > 0:
            lo = max(lo, g)
        elif f < 0:
            hi = min(hi, g)
        else:
            break
        if g_prev is not None and f_prev is not None and f != f_prev:
            g_new = g - f * (g - g_prev) / (f - f_prev)
        else:
            g_new = g - f / slope if slope < 0 else g + (1.0 if f > 0 else -1.0)
        if not lo < g_new < hi:
            g_new = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else g + (1.0 if f > 0 else -1.0)
        g_prev, f_prev = g, f
        # balancing only as tight as the current step needs; tight at the end (same kernel, below)
        balance_tol = float(np.clip(abs(f) * 1e-3, BALANCE_TOL, 1e-6))
        g, (f, slope) = g_new, gap(g_new)
        # the float32 kernel leaves f with ~1e-9 noise: gamma is not resolvable beyond ~1e-7
        if abs(g - g_prev) < max(tol, 1e-7):
            break
    # final balancing on the float64 kernel that GravityFit.expected uses, so margins match to BALANCE_TOL
    _kernel(logd, g, out=k, exact=True)
    a, b, its = _furness(k, out_flow, in_flow, b, BALANCE_TOL, 50 * max_iter)
    sweeps += its
    converged = bool(abs(f) < 1e-6 and np.isfinite(g))
    mu_obs = a[o] * b[d] * np.exp(-g * logd[o, d].astype(np.float64))
    return float(g), a, b, mu_obs, sweeps, converged


def fit_gravity(
    origin_idx: ArrayLike,
    dest_idx: ArrayLike,
    value: ArrayLike,
    mass: ArrayLike | None,
    dist_km: ArrayLike,
    n_units: int,
    constraint: Constraint = "none",
    *,
    min_distance_km: float = MIN_DISTANCE_KM,
    tol: float = 1e-9,
    max_iter: int = 100,
    start_gamma: float = 1.0,
) -> GravityFit:
    """Fit a gravity model to one (kind, year) of flows by Poisson maximum likelihood over ALL pairs.

    Parameters: ``origin_idx``/``dest_idx`` index units 0..n_units-1; ``value`` are the observed flows
    (persons or trips, >= 0; diagonal and zero rows are ignored, duplicates summed). ``mass`` is the
    population (persons, > 0) per unit, used by ``constraint="none"`` only. ``dist_km`` is the dense
    (n_units, n_units) distance matrix in km (see :func:`distance_matrix_km`; clamped below at
    ``min_distance_km``).

    ``constraint="none"``: log E[T_ij] = log_k + alpha log P_i + beta log P_j - gamma log d_ij, a Poisson GLM
    over every ordered off-diagonal pair, absent pairs being observed zeros. The fit is exact, not
    sampled: the likelihood needs only X'y (from the non-zero pairs) and X'mu, X'diag(mu)X, which are
    reduced from mu block by block without a design matrix, so memory is O(n^2) float32 for the
    log-distance matrix plus ~50 MB of blocks (3,500 units: 12.2 M pairs, ~0.1 GB).

    ``constraint="doubly"``: T_ij = A_i O_i B_j D_j d_ij**-gamma (Wilson 1967), equivalently a Poisson GLM
    with origin and destination fixed effects; solved by Furness balancing inside a safeguarded secant
    search on gamma, starting at ``start_gamma``. Expected margins equal the observed ones to 1e-11 of
    the largest margin. Needs a dense float64 n x n deterrence matrix (98 MB at 3,500 units).

    Numerics: d**-gamma is evaluated with a float32 exp (relative rounding ~1e-6 per pair, unbiased);
    every sum and the balancing run in float64. ``tol`` bounds the final Newton/secant step.
    """
    logd = _log_distance(dist_km, n_units, min_distance_km)
    return _fit_gravity_logd(origin_idx, dest_idx, value, mass, logd, n_units, constraint,
                             min_distance_km=min_distance_km, tol=tol, max_iter=max_iter,
                             start_gamma=start_gamma)


def _fit_gravity_logd(
    origin_idx: ArrayLike, dest_idx: ArrayLike, value: ArrayLike, mass: ArrayLike | None,
    logd: NDArray[np.float32], n_units: int, constraint: Constraint, *, min_distance_km: float,
    tol: float = 1e-9, max_iter: int = 100, start_gamma: float = 1.0,
) -> GravityFit:
    """:func:`fit_gravity` on a precomputed log-distance matrix (see :func:`_log_distance`)."""
    if constraint not in ("none", "doubly"):
        raise ConfigError(f"constraint must be 'none' or 'doubly', got {constraint!r}")
    if n_units < 3:
        raise ConfigError("a gravity model needs at least 3 units")
    o, d, y = _clean_pairs(origin_idx, dest_idx, value, n_units)
    if y.size == 0:
        raise ConfigError("no off-diagonal flows > 0 to fit a gravity model to")
    n_pairs = n_units * (n_units - 1)
    null_dev = _null_deviance(y, n_pairs)
    if constraint == "none":
        m = _positive_mass(mass if mass is not None else np.zeros(n_units), n_units)
        start = _subsample_start(o, d, y, m, logd, tol) if n_units > 2 * _WARM_START_UNITS else None
        log_k, a, b, g, mu_obs, mu_total, its, ok = _fit_unconstrained(o, d, y, m, logd, tol, max_iter, start)
        dev = _poisson_deviance(y, mu_obs, mu_total)
        return GravityFit("none", log_k, a, b, g, dev, null_dev, 1.0 - dev / null_dev, n_pairs, n_units,
                          int(y.size), float(y.sum()), its, ok, min_distance_km)
    g, fa, fb, mu_obs, its, ok = _fit_doubly(o, d, y, logd, start_gamma, tol, max_iter)
    dev = _poisson_deviance(y, mu_obs, float(y.sum())) if ok else float("nan")
    nan = float("nan")
    return GravityFit("doubly", nan, nan, nan, g, dev, null_dev, 1.0 - dev / null_dev, n_pairs, n_units,
                      int(y.size), float(y.sum()), its, ok, min_distance_km, fa, fb)


def _gravity_volume_weighted_mean(fit: GravityFit, mass: FloatArray, logd: NDArray[np.float32]) -> FloatArray:
    """sum_j E_vol_ij P_j / sum_j E_vol_ij with E_vol_ij = E_ij + E_ji of an unconstrained fit (persons).

    E_ij = k m_i^a m_j^b d_ij^-g, and d is symmetric, so both sums are two dense mat-vecs with d^-g.
    """
    lm = np.log(mass)
    ma, mb = np.exp(fit.alpha * lm), np.exp(fit.beta * lm)
    n = mass.size
    # outgoing part m_i^a sum_j K_ij m_j^b (.) plus incoming part m_i^b sum_j K_ij m_j^a (.)
    sums = np.empty((n, 4))
    rhs = np.column_stack([mb * mass, ma * mass, mb, ma])
    blocks = _row_blocks(n)
    e = np.empty((blocks[0][1], n), dtype=np.float32)
    k = np.empty(e.shape)
    for r0, r1 in blocks:
        eb, kb = e[: r1 - r0], k[: r1 - r0]
        np.multiply(logd[r0:r1], np.float32(-fit.gamma), out=eb)
        np.exp(eb, out=eb)
        kb[...] = eb
        kb[np.arange(r1 - r0), np.arange(r0, r1)] = 0.0
        sums[r0:r1] = kb @ rhs
    num = ma * sums[:, 0] + mb * sums[:, 1]
    den = ma * sums[:, 2] + mb * sums[:, 3]
    return np.asarray(num / den, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------
# Nystuen–Dacey dominant flows
# ---------------------------------------------------------------------------------------------------------
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
    o, d, v = _clean_pairs(origin_idx, dest_idx, value, n_units)
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


# ---------------------------------------------------------------------------------------------------------
# functional regions
# ---------------------------------------------------------------------------------------------------------
def _undirected_volume(
    o: IntArray, d: IntArray, y: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Unordered pairs i < j with volume F_ij + F_ji (sorted by i, j)."""
    lo, hi = np.minimum(o, d), np.maximum(o, d)
    return _csr_triplets(sparse.csr_array((y, (lo, hi)), shape=(n, n)))


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
    o, d, y = _flow_indices(flows, uids)
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


# ---------------------------------------------------------------------------------------------------------
# composite reciprocal tie index
# ---------------------------------------------------------------------------------------------------------
def strength_share(volume: ArrayLike, expected: ArrayLike, smoothing: float = SMOOTHING) -> FloatArray:
    """Strength component S = (V + s) / (V + E + 2s) in (0, 1) for observed volume V and expected E.

    It is the logistic transform of the smoothed log ratio log((V + s) / (E + s)) (s = ``smoothing``,
    0.5 persons/trips): S = 0.5 when the tie is as strong as the gravity model expects, -> 1 when far
    stronger, -> 0 when far weaker; increasing in V, decreasing in E.
    """
    v = _nonnegative("volume", volume)
    e = _nonnegative("expected", expected)
    return np.asarray((v + smoothing) / (v + e + 2.0 * smoothing), dtype=np.float64)


def volume_share(volume: ArrayLike, total_i: ArrayLike, total_j: ArrayLike) -> FloatArray:
    """Volume component U = V_ij / sqrt(T_i T_j) in [0, 1].

    V_ij = F_ij + F_ji; T_i = sum_k (F_ik + F_ki) is unit i's total off-diagonal in+out flow, so U is the
    geometric mean of the tie's share in each partner's interaction (1 only when i and j interact with
    nobody else). U increases with V_ij even though T_i, T_j grow with it. 0 when there is no flow.
    """
    v = _nonnegative("volume", volume)
    ti = _nonnegative("total_i", total_i)
    tj = _nonnegative("total_j", total_j)
    den = np.sqrt(ti * tj)
    if np.any(v > np.minimum(ti, tj) * (1 + 1e-9)):
        raise ConfigError("a pair volume cannot exceed either unit's total flow")
    return np.asarray(np.divide(v, den, out=np.zeros(np.broadcast(v, den).shape), where=den > 0))


def composite_tie_index(reciprocity: ArrayLike, strength: ArrayLike, volume: ArrayLike) -> FloatArray:
    """Reciprocal tie index RTI = (R * S * U) ** (1/3), the geometric mean of three [0, 1] components.

    R = reciprocity (:func:`reciprocity_index`), S = strength relative to the doubly constrained gravity
    expectation (:func:`strength_share`), U = symmetric volume share (:func:`volume_share`). See
    :func:`reciprocal_tie_index` for the reasoning. Each component must lie in [0, 1].
    """
    parts = [np.asarray(x, dtype=np.float64) for x in (reciprocity, strength, volume)]
    for name, x in zip(("reciprocity", "strength", "volume"), parts, strict=True):
        if not np.all((x >= 0) & (x <= 1)):
            raise ConfigError(f"{name} component must lie in [0, 1]")
    return np.asarray(np.cbrt(parts[0] * parts[1] * parts[2]), dtype=np.float64)


def reciprocal_tie_index(
    f_ij: ArrayLike, f_ji: ArrayLike, expected_ij: ArrayLike, expected_ji: ArrayLike,
    total_i: ArrayLike, total_j: ArrayLike,
) -> FloatArray:
    """Composite reciprocal tie index of an unordered pair, RTI in [0, 1] (dimensionless).

    RTI = (R * S * U) ** (1/3) with

    - R = 2 min(F_ij, F_ji) / (F_ij + F_ji) – reciprocity (symmetry; Limtanakool, Dijst & Schwanen 2007);
    - S = (V + 0.5) / (V + E + 1) – strength beyond expectation, V = F_ij + F_ji and E = E_ij + E_ji from the
      doubly constrained gravity model (the logistic of log((V + 0.5)/(E + 0.5)); 0.5 = as expected);
    - U = V / sqrt(T_i T_j) – volume: the geometric mean of the tie's share in each unit's total flow
      (T_i, T_j; strength of a link relative to the nodes, Limtanakool et al. 2007).

    Reasoning. A reciprocal tie in the sense of Meijers & Burger (2017, Urban Studies 54(1)) – the
    network-externality channel through which a city "borrows size" (Alonso 1973) from its partners – must
    be (i) two-way rather than a one-directional drain, which is why the dominant-flow hierarchy of
    Nystuen & Dacey (1961) is not enough; (ii) stronger than size and distance alone predict, otherwise it
    is just gravity; and (iii) material for both partners. The doubly constrained benchmark is used for
    (ii) because it controls each unit's total emission and attraction, so S measures pair-specific
    affinity rather than size. A geometric mean is used because the components are not substitutes: a
    one-way flow (R = 0) or a negligible tie (U = 0) has no reciprocal tie however large the other
    components are. Properties (tested): 0 <= RTI <= 1, strictly increasing in each of R, S, U when the
    others are positive, symmetric in (i, j), scale-free (multiplying all flows and expectations by c
    changes only the 0.5 smoothing), and RTI = 0 for one-way or absent flows.
    """
    r = reciprocity_index(f_ij, f_ji)
    v = np.asarray(f_ij, dtype=np.float64) + np.asarray(f_ji, dtype=np.float64)
    e = np.asarray(expected_ij, dtype=np.float64) + np.asarray(expected_ji, dtype=np.float64)
    return composite_tie_index(r, strength_share(v, e), volume_share(v, total_i, total_j))


# ---------------------------------------------------------------------------------------------------------
# DataFrame front-ends
# ---------------------------------------------------------------------------------------------------------
def _unit_frame(units: pd.DataFrame, need_coords: bool) -> pd.DataFrame:
    if "unit_id" not in units.columns:
        raise ConfigError("units must have a 'unit_id' column")
    frame = units.assign(unit_id=units["unit_id"].astype(str))
    if frame["unit_id"].duplicated().any():
        dup = frame.loc[frame["unit_id"].duplicated(), "unit_id"].iloc[:5].tolist()
        raise ConfigError(f"units has duplicated unit_id values, e.g. {dup}")
    if need_coords:
        missing = [c for c in ("lat", "lon") if c not in frame.columns]
        if missing:
            raise ConfigError(f"units needs columns {missing} (degrees) for distances; "
                              "pass gravity=False to skip gravity-based measures")
        bad = frame.loc[~np.isfinite(frame[["lat", "lon"]].to_numpy(dtype=np.float64)).all(axis=1), "unit_id"]
        if len(bad):
            raise ConfigError(f"units without finite lat/lon, e.g. {bad.iloc[:5].tolist()}")
    return frame.sort_values("unit_id").reset_index(drop=True)


def unit_positions(ids: pd.Series, uids: pd.Index) -> IntArray:
    """Position of each id in ``uids`` (-1 when absent).

    Categorical columns are mapped through their categories (a few thousand lookups) and their integer codes,
    which at millions of flows is far faster than hashing every string.
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):
        cats = uids.get_indexer(pd.Index(ids.cat.categories.astype(str)))
        codes = ids.cat.codes.to_numpy()
        return np.where(codes >= 0, cats[codes], -1).astype(np.int64)
    return np.asarray(uids.get_indexer(pd.Index(ids.astype(str))), dtype=np.int64)


def _flow_indices(flows: pd.DataFrame, uids: pd.Index) -> tuple[IntArray, IntArray, FloatArray]:
    """Unit indices and values of the off-diagonal non-zero flows (duplicates summed)."""
    missing = [c for c in ("origin", "destination", "value") if c not in flows.columns]
    if missing:
        raise ConfigError(f"flows is missing columns {missing}")
    o = unit_positions(flows["origin"], uids)
    d = unit_positions(flows["destination"], uids)
    unknown = (o < 0) | (d < 0)
    if unknown.any():
        bad = flows.loc[unknown, ["origin", "destination"]].astype(str).to_numpy().ravel()
        examples = sorted(set(bad) - set(uids))[:5]
        raise ConfigError(f"flows refer to units missing from units, e.g. {examples}")
    return _clean_pairs(o, d, flows["value"].to_numpy(dtype=np.float64), uids.size)


def _population_for(population: pd.Series | None, year: object, uids: pd.Index) -> FloatArray | None:
    """Population (persons) per unit for one year; Series by unit_id or by a (unit_id, year) MultiIndex."""
    if population is None:
        return None
    if not isinstance(population, pd.Series):
        raise ConfigError("population must be a pandas Series indexed by unit_id or (unit_id, year)")
    if isinstance(population.index, pd.MultiIndex):
        try:
            pop = population.xs(year, level=1)
        except KeyError as exc:
            raise ConfigError(f"population has no values for year {year}") from exc
    else:
        pop = population
    pop = pop.copy()
    pop.index = pop.index.astype(str)
    values = pop.reindex(uids).to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise ConfigError(f"population must be > 0 for every unit (year {year}), "
                          f"missing or invalid for e.g. {list(uids[bad][:5])}")
    return values


def _pair_table(
    o: IntArray, d: IntArray, y: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Ordered pairs (i, j) with a non-zero flow in at least one direction, and F_ij, F_ji.

    Sorted by (i, j). One sparse sum A + 1j A' carries F_ij in the real and F_ji in the imaginary part
    over the union of both patterns (flows are > 0, so nothing cancels).
    """
    a = sparse.csr_array((y, (o, d)), shape=(n, n))
    both = sparse.csr_array(a.astype(np.complex128) + 1j * a.T.tocsr())
    i, j, val = _csr_triplets(both)
    return i, j, val.real.copy(), val.imag.copy()


def _groups(flows: pd.DataFrame) -> list[tuple[object, object, pd.DataFrame]]:
    missing = [c for c in FLOW_COLUMNS if c not in flows.columns]
    if missing:
        raise ConfigError(f"flows is missing columns {missing} (contract: {', '.join(FLOW_COLUMNS)})")
    return [(kind, year, g) for (kind, year), g in flows.groupby(["kind", "year"], sort=True)]


def _fit_both(
    o: IntArray, d: IntArray, y: FloatArray, mass: FloatArray, logd: NDArray[np.float32], n: int
) -> tuple[GravityFit, GravityFit]:
    fit_none = _fit_gravity_logd(o, d, y, mass, logd, n, "none", min_distance_km=MIN_DISTANCE_KM)
    start = fit_none.gamma if np.isfinite(fit_none.gamma) else 1.0
    fit_doubly = _fit_gravity_logd(o, d, y, None, logd, n, "doubly", min_distance_km=MIN_DISTANCE_KM,
                                   start_gamma=start)
    return fit_none, fit_doubly


_FittedGroup = tuple[object, object, tuple[IntArray, IntArray, FloatArray], FloatArray, tuple[GravityFit, GravityFit]]


def _fitted_groups(flows: pd.DataFrame, uids: pd.Index, population: pd.Series,
                   logd: NDArray[np.float32]) -> Iterator[_FittedGroup]:
    """Per (kind, year) with flows: kind, year, (o, d, y), mass and both gravity fits."""
    for kind, year, g in _groups(flows):
        o, d, y = _flow_indices(g, uids)
        if y.size == 0:
            continue
        mass = _population_for(population, year, uids)
        if mass is None:
            raise ConfigError("population (persons per unit) is needed for the gravity models")
        yield kind, year, (o, d, y), mass, _fit_both(o, d, y, mass, logd, uids.size)


def gravity_fits(flows: pd.DataFrame, units: pd.DataFrame, population: pd.Series) -> pd.DataFrame:
    """Fitted gravity parameters per (kind, year) and constraint, one row each (see :class:`GravityFit`)."""
    frame = _unit_frame(units, need_coords=True)
    uids = pd.Index(frame["unit_id"])
    logd = _log_distance(distance_matrix_km(frame["lat"], frame["lon"]), uids.size, MIN_DISTANCE_KM)
    rows = [{"kind": kind, "year": year, **fit.params()}
            for kind, year, _, _, fits in _fitted_groups(flows, uids, population, logd) for fit in fits]
    return pd.DataFrame(rows)


PAIR_COLUMNS = (
    "kind", "year", "origin", "destination", "flow_ij", "flow_ji", "volume", "reciprocity", "distance_km",
    "expected_gravity", "expected_doubly", "strength_log", "strength_doubly_log", "is_dominant",
    "strength_share", "volume_share", "tie_index",
)


def pair_indices(flows: pd.DataFrame, units: pd.DataFrame, population: pd.Series) -> pd.DataFrame:
    """Tie indices of every ordered pair with a non-zero flow in at least one direction, per (kind, year).

    Columns (flows in the flows' unit, persons or trips per year):

    - ``flow_ij``, ``flow_ji`` (i = origin, j = destination), ``volume`` = flow_ij + flow_ji;
    - ``reciprocity`` (:func:`reciprocity_index`), ``distance_km`` (great circle between centroids);
    - ``expected_gravity`` / ``expected_doubly``: E[F_ij] under the unconstrained / doubly constrained
      gravity model fitted to that (kind, year) over all pairs (:func:`fit_gravity`);
    - ``strength_log`` = log((flow_ij + 0.5) / (expected_gravity + 0.5)), ``strength_doubly_log`` likewise
      with the doubly constrained expectation (0.5 keeps zero flows finite; > 0 = stronger than expected);
    - ``is_dominant``: j is i's Nystuen–Dacey dominant flow (largest outflow of i);
    - ``strength_share``, ``volume_share``, ``tie_index``: the components S, U and the composite RTI of the
      unordered pair (identical for (i, j) and (j, i)); see :func:`reciprocal_tie_index`.

    ``population`` (persons) is a Series by unit_id, or by (unit_id, year) when flows span several years.
    The fitted parameters are in ``result.attrs["gravity_fits"]`` (a list of dicts, one per kind, year and
    constraint); :func:`gravity_fits` returns them as a DataFrame. Rows are sorted by kind, year, origin,
    destination.
    """
    frame = _unit_frame(units, need_coords=True)
    uids = pd.Index(frame["unit_id"])
    n = uids.size
    lat = frame["lat"].to_numpy(dtype=np.float64)
    lon = frame["lon"].to_numpy(dtype=np.float64)
    dist = distance_matrix_km(lat, lon)
    logd = _log_distance(dist, n, MIN_DISTANCE_KM)
    ids = uids.to_numpy(dtype=object)
    out: list[pd.DataFrame] = []
    fits: list[dict[str, object]] = []
    for kind, year, (o, d, y), mass, (fit_none, fit_doubly) in _fitted_groups(flows, uids, population, logd):
        fits += [{"kind": kind, "year": year, **f.params()} for f in (fit_none, fit_doubly)]
        i, j, f_ij, f_ji = _pair_table(o, d, y, n)
        dkm = dist[i, j].astype(np.float64)
        logd_pair = logd[i, j].astype(np.float64)
        e_g = fit_none._expected_log(i, j, np.log(mass), logd_pair)
        e_d_ij = fit_doubly._expected_log(i, j, None, logd_pair)
        e_d_ji = fit_doubly._expected_log(j, i, None, logd_pair)
        total = np.bincount(o, weights=y, minlength=n) + np.bincount(d, weights=y, minlength=n)
        dom = dominant_flows(o, d, y, None, n)["dominant_partner"].to_numpy()
        vol = f_ij + f_ji
        # components without the public functions' input checks: every pair here has vol > 0
        r = 2.0 * np.minimum(f_ij, f_ji) / vol
        s = (vol + SMOOTHING) / (vol + e_d_ij + e_d_ji + 2.0 * SMOOTHING)
        u = vol / np.sqrt(total[i] * total[j])
        out.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "year": year,
                    "origin": ids[i],
                    "destination": ids[j],
                    "flow_ij": f_ij,
                    "flow_ji": f_ji,
                    "volume": vol,
                    "reciprocity": r,
                    "distance_km": dkm,
                    "expected_gravity": e_g,
                    "expected_doubly": e_d_ij,
                    "strength_log": np.log((f_ij + SMOOTHING) / (e_g + SMOOTHING)),
                    "strength_doubly_log": np.log((f_ij + SMOOTHING) / (e_d_ij + SMOOTHING)),
                    "is_dominant": dom[i] == j,
                    "strength_share": s,
                    "volume_share": u,
                    "tie_index": np.cbrt(r * s * u),
                },
                copy=False,  # no block consolidation: it would copy every column once more
            )
        )
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=list(PAIR_COLUMNS))
    result.attrs["gravity_fits"] = fits
    return result


# ---------------------------------------------------------------------------------------------------------
# per-unit network measures
# ---------------------------------------------------------------------------------------------------------
def _pagerank(o: IntArray, d: IntArray, y: FloatArray, n: int, alpha: float = PAGERANK_ALPHA,
              tol: float = 1e-6, max_iter: int = 100) -> FloatArray:
    """Weighted PageRank exactly as networkx ``pagerank(G, alpha, weight="weight")`` (same iteration).

    Transition = flow share of the origin's outflow; units without outflow (dangling) teleport uniformly;
    teleport uniform; start uniform; stop when the L1 change < n * tol.
    """
    a = sparse.csr_array((y, (o, d)), shape=(n, n))
    s = np.asarray(a.sum(axis=1), dtype=np.float64)
    inv = np.divide(1.0, s, out=np.zeros(n), where=s != 0)
    a = sparse.csr_array(sparse.dia_array((inv[None, :], 0), shape=(n, n)).tocsr() @ a)
    x = np.full(n, 1.0 / n)
    p = np.full(n, 1.0 / n)
    dangling = np.where(s == 0)[0]
    for _ in range(max_iter):
        last = x
        x = alpha * (x @ a + x[dangling].sum() * p) + (1.0 - alpha) * p
        if np.abs(x - last).sum() < n * tol:
            break
    return np.asarray(x, dtype=np.float64)


def _path_centralities(
    o: IntArray, d: IntArray, y: FloatArray, n: int, sources: IntArray, batch_cells: int = 1 << 22
) -> tuple[FloatArray, FloatArray]:
    """Betweenness and closeness on the directed graph with edge length 1 / flow (flow = affinity).

    Dijkstra (scipy) from ``sources``; Brandes dependency accumulation vectorised over a batch of sources
    and all edges: an edge (u, v) is on a shortest path from s iff dist(s,u) + len(u,v) == dist(s,v)
    (exact float equality, as networkx), path counts sigma and dependencies delta are then fixed points
    of sparse edge sums, reached after (longest shortest path in edges) passes.

    Betweenness: networkx ``betweenness_centrality(G, weight=1/flow, normalized=True)``; with k < n sampled
    sources the networkx estimator (scale 1/((k-1)(n-2)) for sampled, 1/(k(n-2)) for other units).
    Closeness: networkx ``closeness_centrality(G, distance=1/flow)`` (Wasserman–Faust improved): for unit u,
    r = number of units that reach u, closeness = (r / total distance to u) * (r / (n-1)); with sampled
    sources both sums are estimated from the sampled units.
    """
    bc = np.zeros(n)
    dist_sum = np.zeros(n)
    reach = np.zeros(n)
    if y.size == 0 or n < 2:
        return bc, np.zeros(n)
    cost = 1.0 / y
    graph = sparse.csr_array((cost, (o, d)), shape=(n, n))
    batch = max(1, batch_cells // max(y.size, n))
    for b0 in range(0, sources.size, batch):
        src = sources[b0:b0 + batch]
        nb = src.size
        dist = np.atleast_2d(dijkstra(graph, directed=True, indices=src))
        finite = np.isfinite(dist)
        dist_sum += np.where(finite, dist, 0.0).sum(axis=0)
        reach += finite.sum(axis=0)
        reach[src] -= 1.0  # a source reaches itself at distance 0: not a unit reaching it
        du = dist[:, o]
        tight = np.isfinite(du) & (du + cost == dist[:, d])
        bi, ei = np.nonzero(tight)
        flat_u = bi * n + o[ei]
        flat_v = bi * n + d[ei]
        self_cell = np.arange(nb) * n + src
        sigma = np.zeros(nb * n)
        sigma[self_cell] = 1.0
        for _ in range(n):
            new = np.bincount(flat_v, weights=sigma[flat_u], minlength=nb * n).astype(np.float64, copy=False)
            new[self_cell] = 1.0
            if np.array_equal(new, sigma):
                break
            sigma = new
        coef = sigma[flat_u] / sigma[flat_v]
        delta = np.zeros(nb * n)
        for _ in range(n):
            weights = coef * (1.0 + delta[flat_v])
            new = np.bincount(flat_u, weights=weights, minlength=nb * n).astype(np.float64, copy=False)
            if np.array_equal(new, delta):
                break
            delta = new
        delta[self_cell] = 0.0
        bc += delta.reshape(nb, n).sum(axis=0)
    k = sources.size
    if n > 2:
        if k == n:
            bc /= (n - 1) * (n - 2)
        else:
            in_sample = np.zeros(n, dtype=bool)
            in_sample[sources] = True
            scale_source = 1.0 / ((k - 1) * (n - 2)) if k > 1 else math.nan
            bc *= np.where(in_sample, scale_source, 1.0 / (k * (n - 2)))
    else:
        bc[:] = 0.0
    # sources other than u that were sampled: k, or k - 1 when u itself is a sampled source
    in_sample = np.zeros(n, dtype=bool)
    in_sample[sources] = True
    others = k - in_sample.astype(np.float64)
    factor = np.divide(n - 1.0, others, out=np.zeros(n), where=others > 0)
    r_est = reach * factor
    tot_est = dist_sum * factor
    closeness = np.divide(r_est * r_est, tot_est * (n - 1), out=np.zeros(n), where=tot_est > 0)
    return bc, closeness


def _resolve_sources(path_sources: int | Literal["auto"] | None, n: int, seed: int) -> IntArray | None:
    if path_sources is None:
        return np.arange(n)
    if path_sources == "auto":
        path_sources = n if n <= AUTO_EXACT_PATH_UNITS else AUTO_PATH_SOURCES
    if isinstance(path_sources, bool) or not isinstance(path_sources, int | np.integer):
        raise ConfigError("path_sources must be 'auto', None (all units), 0 (skip) or a positive int")
    if path_sources < 0:
        raise ConfigError("path_sources must be >= 0")
    if path_sources == 0:
        return None
    if path_sources >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(path_sources), replace=False)).astype(np.int64)


UNIT_COLUMNS = (
    "in_strength", "out_strength", "total_strength", "in_degree_centrality", "out_degree_centrality",
    "degree_centrality", "pagerank", "betweenness", "closeness", "reciprocal_strength", "reciprocated_share",
    "partner_entropy", "dominant_share", "dominant_partner", "hub", "hierarchy_level",
    "borrowed_size_observed", "borrowed_size_gravity", "functional_region",
)


def unit_tie_measures(
    flows_one_group: pd.DataFrame,
    units: pd.DataFrame,
    population: pd.Series | None = None,
    *,
    path_sources: int | Literal["auto"] | None = "auto",
    seed: int = 0,
    gravity: bool = True,
    gravity_fit: GravityFit | None = None,
    regions: bool = True,
    previous_regions: pd.Series | None = None,
    region_max_partners: int | Literal["auto"] | None = "auto",
    dominance_size: Literal["inflow", "population"] = "inflow",
) -> pd.DataFrame:
    """Per-unit tie and network measures of one (kind, year) of flows, indexed by unit_id (all units).

    Graph: directed, one node per unit of ``units`` (n nodes, isolated units included), an edge i->j with
    weight F_ij for every off-diagonal flow > 0. Units without flows get 0 (or their own id / level 0).

    Reproduces the dongwoo panel's 2025 measures (networkx on this graph; column in brackets):

    - ``in_strength``, ``out_strength`` [in/out_strength]: sums of in/out flows; ``total_strength``
      [total_strength] = in + out. Exact.
    - ``in/out_degree_centrality``, ``degree_centrality`` [in/out_deg_cent, deg_cent]: number of partners
      with non-zero in/out flow (edge counts, unweighted) / (n - 1); degree = in + out, so up to 2.
      networkx ``*_degree_centrality``. Exact (max abs error 7e-16).
    - ``pagerank`` [pagerank]: networkx ``pagerank(G, alpha=0.85, weight="weight")`` – weighted by flow,
      uniform teleport, reimplemented with scipy.sparse (max rel error 1e-13).
    - ``betweenness`` [betweenness]: networkx ``betweenness_centrality(G, weight=1/flow, normalized=True)``
      (directed, /((n-1)(n-2))): shortest paths where edge length = 1/flow (max abs error 1e-16).
    - ``closeness`` [closeness]: networkx ``closeness_centrality(G, distance=1/flow)`` – incoming distances
      (from the other units to u), Wasserman–Faust improved: (r/sum of distances)(r/(n-1)), r = units
      reaching u; values of ~200 because 1/flow lengths are small (max rel error 1e-15).

    ``path_sources`` controls betweenness/closeness: None = exact (all units as Dijkstra sources), an int
    k = k units sampled with ``seed`` (networkx's k-sample estimator), 0 = skip (NaN), "auto" = exact up to
    1,000 units, 128 sampled sources beyond (~6 s at 3,500 units / 2.6 M edges).

    Tie measures (flows in persons/trips): ``reciprocal_strength`` = sum_j min(F_ij, F_ji);
    ``reciprocated_share`` = 2 reciprocal_strength / total_strength, the share of the unit's in+out flow
    matched by a counter-flow, in [0, 1]; ``partner_entropy`` = Shannon entropy of the partner shares
    V_ij / sum_k V_ik (V_ij = F_ij + F_ji) divided by log(number of partners), in [0, 1] (0 with < 2
    partners); ``dominant_share`` = max_j V_ij / sum_k V_ik (the top partner by volume).

    Nystuen–Dacey (:func:`dominant_flows`, size = total inflow or population per ``dominance_size``):
    ``dominant_partner`` (unit_id of the largest outflow, None without outflow), ``hub`` (unit_id of the
    terminal unit), ``hierarchy_level`` (0 = hub).

    Borrowed size (Alonso 1973), in persons: ``borrowed_size_observed`` = sum_j w_ij P_j with
    w_ij = V_ij / sum_k V_ik – the population of the typical partner, weighted by observed tie volume
    (0 without flows); ``borrowed_size_gravity`` = the same with w from the unconstrained gravity model's
    expected volume E_ij + E_ji over every other unit (defined without any flow). Needs ``population``
    and, unless ``gravity_fit`` is given, lat/lon; ``gravity=False`` skips it (NaN).

    ``functional_region``: :func:`functional_regions` (labels stable w.r.t. ``previous_regions``; hub =
    largest population if given, else volume); ``regions=False`` skips it (None).
    ``region_max_partners``: None = Louvain on every tie, an int k = on each unit's k heaviest ties,
    "auto" = every tie up to 1,000 units, 20 beyond.
    """
    uframe = _unit_frame(units, need_coords=gravity)
    uids = pd.Index(uframe["unit_id"])
    n = uids.size
    if n < 2:
        raise ConfigError("unit_tie_measures needs at least 2 units")
    year: object = None
    for col in ("kind", "year"):
        if col in flows_one_group.columns and flows_one_group[col].nunique() > 1:
            raise ConfigError(f"flows_one_group must hold one (kind, year); found several values of '{col}'")
    if "year" in flows_one_group.columns and len(flows_one_group):
        year = flows_one_group["year"].iloc[0]
    if dominance_size not in ("inflow", "population"):
        raise ConfigError("dominance_size must be 'inflow' or 'population'")
    pop = _population_for(population, year, uids)
    if pop is None and (dominance_size == "population" or gravity):
        raise ConfigError("population is needed for dominance_size='population' and gravity measures "
                          "(pass gravity=False to skip borrowed_size_gravity)")
    o, d, y = _flow_indices(flows_one_group, uids)

    in_s = np.bincount(d, weights=y, minlength=n)
    out_s = np.bincount(o, weights=y, minlength=n)
    total = in_s + out_s
    res = pd.DataFrame(index=pd.Index(uids, name="unit_id"))
    res["in_strength"] = in_s
    res["out_strength"] = out_s
    res["total_strength"] = total
    in_deg = np.bincount(d, minlength=n).astype(np.float64, copy=False)
    out_deg = np.bincount(o, minlength=n).astype(np.float64, copy=False)
    res["in_degree_centrality"] = in_deg / (n - 1)
    res["out_degree_centrality"] = out_deg / (n - 1)
    res["degree_centrality"] = (in_deg + out_deg) / (n - 1)
    res["pagerank"] = _pagerank(o, d, y, n)
    sources = _resolve_sources(path_sources, n, seed)
    if sources is None:
        res["betweenness"] = np.nan
        res["closeness"] = np.nan
    else:
        bc, cl = _path_centralities(o, d, y, n, sources)
        res["betweenness"] = bc
        res["closeness"] = cl

    i, j, f_ij, f_ji = _pair_table(o, d, y, n)  # every (i, partner) with flow either way, from i's side
    vol = f_ij + f_ji
    recip = np.bincount(i, weights=np.minimum(f_ij, f_ji), minlength=n)
    res["reciprocal_strength"] = recip
    res["reciprocated_share"] = np.divide(2.0 * recip, total, out=np.zeros(n), where=total > 0)
    p = vol / total[i]
    partners = np.bincount(i, minlength=n)
    entropy = -np.bincount(i, weights=p * np.log(p), minlength=n)
    res["partner_entropy"] = np.divide(entropy, np.log(np.maximum(partners, 1)), out=np.zeros(n),
                                       where=partners > 1)
    top = np.zeros(n)
    np.maximum.at(top, i, vol)
    res["dominant_share"] = np.divide(top, total, out=np.zeros(n), where=total > 0)

    size = pop if dominance_size == "population" else None
    nd = dominant_flows(o, d, y, size, n)
    partner = nd["dominant_partner"].to_numpy()
    ids = uids.to_numpy(dtype=object)
    res["dominant_partner"] = pd.Series(np.where(partner >= 0, ids[np.maximum(partner, 0)], None),
                                        index=res.index, dtype=object)
    res["hub"] = ids[nd["hub"].to_numpy()]
    res["hierarchy_level"] = nd["hierarchy_level"].to_numpy()

    if pop is not None:
        res["borrowed_size_observed"] = np.divide(np.bincount(i, weights=vol * pop[j], minlength=n), total,
                                                  out=np.zeros(n), where=total > 0)
    else:
        res["borrowed_size_observed"] = np.nan
    if gravity and pop is not None:
        min_d = gravity_fit.min_distance_km if gravity_fit is not None else MIN_DISTANCE_KM
        logd = _log_distance(distance_matrix_km(uframe["lat"], uframe["lon"]), n, min_d)
        fit = gravity_fit
        if fit is None:
            fit = _fit_gravity_logd(o, d, y, pop, logd, n, "none", min_distance_km=min_d)
        if fit.constraint != "none" or fit.n_units != n:
            raise ConfigError("gravity_fit must be an unconstrained fit over the same units")
        res["borrowed_size_gravity"] = _gravity_volume_weighted_mean(fit, pop, logd)
    else:
        res["borrowed_size_gravity"] = np.nan

    if regions:
        region_size = pd.Series(pop, index=uids) if pop is not None else None
        if region_max_partners == "auto":
            region_max_partners = None if n <= AUTO_EXACT_PATH_UNITS else AUTO_REGION_PARTNERS
        res["functional_region"] = functional_regions(
            pd.DataFrame({"origin": ids[o], "destination": ids[d], "value": y}), list(uids), region_size,
            previous=previous_regions, seed=seed, max_partners=region_max_partners,
        ).to_numpy()
    else:
        res["functional_region"] = None
    return res
