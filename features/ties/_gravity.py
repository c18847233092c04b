"""Gravity / spatial-interaction models fitted by Poisson maximum likelihood over ALL ordered pairs, the one
deterrence kernel d**-gamma, and gravity-weighted partner means.

- :func:`fit_gravity` -> :class:`GravityFit`: the unconstrained model E[T_ij] = k P_i^alpha P_j^beta d_ij^-gamma
  (exact Newton over all n(n-1) pairs without a design matrix) or the doubly constrained model
  T_ij = A_i O_i B_j D_j d_ij^-gamma (Furness balancing inside a secant search on gamma; Wilson 1967).
- :func:`deterrence_kernel` – d**-gamma with a zero diagonal; every kernel in tiecast is built here.
- :class:`GravityVolume` – the expected-volume matrix E + E^T of an unconstrained fit as a linear operator,
  and :func:`weighted_partner_mean` – sum_j w_ij x_j / sum_j w_ij over partners with known x_j.

Units: flows in persons or trips per year, masses in persons, distances in km.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from tiecast.common import ConfigError

from ._checks import FloatArray, IntArray, clean_pairs, row_blocks
from ._geometry import MIN_DISTANCE_KM, log_distance, log_distance_pairs

Constraint = Literal["none", "doubly"]
BALANCE_TOL = 1e-11  # Furness stops when every expected outflow is within this share of the largest one

__all__ = ["BALANCE_TOL", "Constraint", "GravityFit", "GravityVolume", "deterrence_kernel", "fit_gravity",
           "fit_gravity_logd", "weighted_partner_mean"]


def _kernel_rows(logd_rows: NDArray[np.floating], gamma: float, r0: int, out: FloatArray,
                 scratch: NDArray[np.float32] | None = None, shift: float = 0.0) -> None:
    """Rows ``r0..`` of K = exp(-gamma (log d - shift)) into ``out`` (float64), diagonal set to 0.

    With a float32 ``scratch`` the exp runs in float32 (4x faster; ~1e-6 relative rounding, unbiased), as the
    fits do; without it in float64 ("exact"), matching :meth:`GravityFit.expected` to the last bit.
    """
    rows = out.shape[0]
    if scratch is not None:
        eb = scratch[:rows]
        if shift:
            np.subtract(logd_rows, np.float32(shift), out=eb)
            np.multiply(eb, np.float32(-gamma), out=eb)
        else:
            np.multiply(logd_rows, np.float32(-gamma), out=eb)
        with np.errstate(over="ignore"):
            np.exp(eb, out=eb)
        out[...] = eb
    else:
        if shift:
            np.subtract(logd_rows, shift, out=out, dtype=np.float64)
            np.multiply(out, -gamma, out=out)
        else:
            np.multiply(logd_rows, -gamma, out=out, dtype=np.float64)
        np.exp(out, out=out)
    out[np.arange(rows), np.arange(r0, r0 + rows)] = 0.0


def deterrence_kernel(logd: NDArray[np.floating], gamma: float, out: FloatArray | None = None,
                      exact: bool = True) -> FloatArray:
    """Dense deterrence matrix K_ij = d_ij**-gamma with a zero diagonal (float64, built in row blocks).

    ``logd`` is :func:`log_distance` (float32 or float64). ``exact=False`` evaluates the exp in float32 (the
    fits' inner loops); ``exact=True`` in float64.
    """
    n = logd.shape[0]
    k = np.empty((n, n), dtype=np.float64) if out is None else out
    blocks = row_blocks(n)
    scratch = None if exact else np.empty((blocks[0][1], n), dtype=np.float32)
    for r0, r1 in blocks:
        _kernel_rows(logd[r0:r1], gamma, r0, k[r0:r1], scratch)
    return k

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
        logd = log_distance_pairs(np.asarray(dist_km), self.min_distance_km)
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
    blocks = row_blocks(n)
    w = np.empty((blocks[0][1], n), dtype=np.float32)
    e = np.empty_like(w)
    k = np.empty(w.shape)
    for r0, r1 in blocks:
        wb, kb = w[: r1 - r0], k[: r1 - r0]
        np.subtract(np.float32(lbar), logd[r0:r1], out=wb)
        # K = exp(g w) = d^-g up to the constant exp(g lbar): exp in float32 (4x faster here; ~1e-6 relative
        # rounding), every sum in float64
        _kernel_rows(logd[r0:r1], g, r0, kb, e, shift=lbar)
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


@dataclass(frozen=True)
class _NewtonFit:
    """Result of the unconstrained Newton fit: parameters, mu at the observed pairs, the sum of mu over all
    pairs, the number of iterations and whether it converged."""

    log_k: float
    alpha: float
    beta: float
    gamma: float
    mu_obs: FloatArray
    mu_total: float
    iterations: int
    converged: bool


def _fit_unconstrained(
    o: IntArray, d: IntArray, y: FloatArray, mass: FloatArray, logd: NDArray[np.float32],
    tol: float, max_iter: int, start: FloatArray | None = None,
) -> _NewtonFit:
    """Newton-Raphson (= IRLS for the canonical log link) with step halving on the log-likelihood.

    ``start`` = (log_k, alpha, beta, gamma) to start from. Converged = full Newton step below sqrt(tol):
    quadratic convergence leaves an error of order tol.
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
    return _NewtonFit(log_k, a, b, g, mu_obs, float(score[0]), it, converged)


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
    return np.array([sub.log_k, sub.alpha, sub.beta, sub.gamma]) if sub.converged else None



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



@dataclass(frozen=True)
class _DoublyFit:
    """Result of the doubly constrained fit: gamma, the balancing factors A_i O_i and B_j D_j, mu at the
    observed pairs, the Furness sweeps summed over the gamma search and whether it converged."""

    gamma: float
    origin_factor: FloatArray
    dest_factor: FloatArray
    mu_obs: FloatArray
    sweeps: int
    converged: bool


def _fit_doubly(
    o: IntArray, d: IntArray, y: FloatArray, logd: NDArray[np.float32], gamma0: float,
    tol: float, max_iter: int,
) -> _DoublyFit:
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
    blocks = row_blocks(n)
    work = np.empty((blocks[0][1], n))
    a = np.zeros(n)
    b = np.ones(n)
    sweeps = 0

    balance_tol = 1e-6

    def gap(gamma: float) -> tuple[float, float]:
        """f(gamma) and the origin-conditional approximation of its slope."""
        nonlocal a, b, sweeps
        deterrence_kernel(logd, gamma, out=k, exact=False)
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
    deterrence_kernel(logd, g, out=k, exact=True)
    a, b, its = _furness(k, out_flow, in_flow, b, BALANCE_TOL, 50 * max_iter)
    sweeps += its
    converged = bool(abs(f) < 1e-6 and np.isfinite(g))
    mu_obs = a[o] * b[d] * np.exp(-g * logd[o, d].astype(np.float64))
    return _DoublyFit(float(g), a, b, mu_obs, sweeps, converged)



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
    dist = np.asarray(dist_km)
    if dist.shape != (n_units, n_units):
        raise ConfigError(f"dist_km must be an ({n_units}, {n_units}) matrix of distances (km)")
    logd = log_distance(dist, min_distance_km)
    return fit_gravity_logd(origin_idx, dest_idx, value, mass, logd, n_units, constraint,
                             min_distance_km=min_distance_km, tol=tol, max_iter=max_iter,
                             start_gamma=start_gamma)


def fit_gravity_logd(
    origin_idx: ArrayLike, dest_idx: ArrayLike, value: ArrayLike, mass: ArrayLike | None,
    logd: NDArray[np.float32], n_units: int, constraint: Constraint, *, min_distance_km: float,
    tol: float = 1e-9, max_iter: int = 100, start_gamma: float = 1.0,
) -> GravityFit:
    """:func:`fit_gravity` on a precomputed float32 log-distance matrix (see :func:`log_distance`)."""
    if constraint not in ("none", "doubly"):
        raise ConfigError(f"constraint must be 'none' or 'doubly', got {constraint!r}")
    if n_units < 3:
        raise ConfigError("a gravity model needs at least 3 units")
    o, d, y = clean_pairs(origin_idx, dest_idx, value, n_units)
    if y.size == 0:
        raise ConfigError("no off-diagonal flows > 0 to fit a gravity model to")
    n_pairs = n_units * (n_units - 1)
    null_dev = _null_deviance(y, n_pairs)
    if constraint == "none":
        m = _positive_mass(mass if mass is not None else np.zeros(n_units), n_units)
        start = _subsample_start(o, d, y, m, logd, tol) if n_units > 2 * _WARM_START_UNITS else None
        nf = _fit_unconstrained(o, d, y, m, logd, tol, max_iter, start)
        dev = _poisson_deviance(y, nf.mu_obs, nf.mu_total)
        return GravityFit("none", nf.log_k, nf.alpha, nf.beta, nf.gamma, dev, null_dev, 1.0 - dev / null_dev,
                          n_pairs, n_units, int(y.size), float(y.sum()), nf.iterations, nf.converged,
                          min_distance_km)
    df = _fit_doubly(o, d, y, logd, start_gamma, tol, max_iter)
    dev = _poisson_deviance(y, df.mu_obs, float(y.sum())) if df.converged else float("nan")
    nan = float("nan")
    return GravityFit("doubly", nan, nan, nan, df.gamma, dev, null_dev, 1.0 - dev / null_dev, n_pairs, n_units,
                      int(y.size), float(y.sum()), df.sweeps, df.converged, min_distance_km, df.origin_factor,
                      df.dest_factor)



def weighted_partner_mean(w: sparse.csr_matrix | sparse.csr_array | GravityVolume, values: ArrayLike) -> FloatArray:
    """sum_j w_ij x_j / sum_j w_ij over partners with known x_j (NaN when no partner has data).

    ``w`` is any n x n weight operator supporting ``@`` (sparse flow volumes, contiguity, :class:`GravityVolume`);
    it need not be row-normalised: the normalisation cancels in the ratio.
    """
    x = np.asarray(values, dtype=np.float64)
    known = np.isfinite(x)
    num = w @ np.where(known, x, 0.0)
    den = w @ known.astype(float)
    return np.divide(num, den, out=np.full(len(x), np.nan), where=den > 0)


class GravityVolume:
    """The expected-volume matrix E + E^T of an unconstrained gravity model as a linear operator, never stored.

    E_ij = c m_i^alpha m_j^beta K_ij with K = :func:`deterrence_kernel` (zero diagonal), so
    (E + E^T) x = c [m^alpha * K (m^beta * x) + m^beta * K (m^alpha * x)]: two dense mat-vecs per vector with a
    kernel shared by every year with the same gamma. The constant c cancels in weighted means, so it is left
    out. Units with unknown or non-positive mass get zero weight.
    """

    def __init__(self, kernel: FloatArray, mass: ArrayLike, alpha: float, beta: float) -> None:
        m = np.asarray(mass, dtype=np.float64)
        known = np.isfinite(m) & (m > 0)
        safe = np.where(known, m, 1.0)
        # Scale masses to ~1 before powering so that large exponents cannot overflow.
        scaled = safe / np.exp(np.mean(np.log(safe)))
        self.kernel = kernel
        self.m_alpha = np.where(known, scaled**alpha, 0.0)
        self.m_beta = np.where(known, scaled**beta, 0.0)

    @classmethod
    def from_fit(cls, fit: GravityFit, logd: NDArray[np.floating], mass: ArrayLike) -> GravityVolume:
        """The operator of an unconstrained :class:`GravityFit` (persons as mass, ``logd`` = :func:`log_distance`)."""
        if fit.constraint != "none":
            raise ConfigError("GravityVolume needs an unconstrained gravity fit (constraint='none')")
        return cls(deterrence_kernel(logd, float(fit.gamma)), mass, float(fit.alpha), float(fit.beta))

    def __matmul__(self, x: NDArray[np.floating]) -> FloatArray:
        return np.asarray(self.m_alpha * (self.kernel @ (self.m_beta * x))
                          + self.m_beta * (self.kernel @ (self.m_alpha * x)))
