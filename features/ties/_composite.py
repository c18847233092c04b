"""The composite reciprocal tie index and its components: one kernel, used by the public functions (which check
their inputs first) and by :func:`pair_indices` (whose inputs are valid by construction).

RTI = (R * S * U) ** (1/3) for an unordered pair (i, j) with flows F_ij, F_ji (persons or trips per year):

- R = 2 min(F_ij, F_ji) / (F_ij + F_ji) – reciprocity (symmetry; Limtanakool, Dijst & Schwanen 2007);
- S = (V + s) / (V + E + 2s) – strength beyond the doubly constrained gravity expectation E = E_ij + E_ji,
  V = F_ij + F_ji, s = 0.5 (the logistic of log((V + s)/(E + s)); 0.5 = as expected);
- U = V / sqrt(T_i T_j) – the tie's share in each unit's total in+out flow T (Limtanakool et al. 2007).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tiecast.common import ConfigError

from ._checks import FloatArray, nonnegative

SMOOTHING = 0.5  # added to observed and expected flows so that log ratios of zero flows stay finite

__all__ = ["SMOOTHING", "composite_tie_index", "reciprocal_tie_index", "reciprocity_index", "strength_share",
           "tie_components", "volume_share"]


# ---- the kernel (no input checks) ------------------------------------------------------------------------
def _reciprocity(a: FloatArray, b: FloatArray) -> FloatArray:
    total = a + b
    safe = np.where(total > 0, total, 1.0)
    return np.asarray(np.where(total > 0, 2.0 * np.minimum(a, b) / safe, 0.0), dtype=np.float64)


def _strength(volume: FloatArray, expected: FloatArray, smoothing: float) -> FloatArray:
    return np.asarray((volume + smoothing) / (volume + expected + 2.0 * smoothing), dtype=np.float64)


def _volume_share(volume: FloatArray, total_i: FloatArray, total_j: FloatArray) -> FloatArray:
    den = np.sqrt(total_i * total_j)
    return np.asarray(np.divide(volume, den, out=np.zeros(np.broadcast(volume, den).shape), where=den > 0))


def _index(r: FloatArray, s: FloatArray, u: FloatArray) -> FloatArray:
    return np.asarray(np.cbrt(r * s * u), dtype=np.float64)


def tie_components(f_ij: FloatArray, f_ji: FloatArray, expected_volume: FloatArray, total_i: FloatArray,
                   total_j: FloatArray, smoothing: float = SMOOTHING
                   ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(R, S, U, RTI) of pairs from valid inputs (flows >= 0, volume <= each total): the one kernel."""
    volume = f_ij + f_ji
    r = _reciprocity(f_ij, f_ji)
    s = _strength(volume, expected_volume, smoothing)
    u = _volume_share(volume, total_i, total_j)
    return r, s, u, _index(r, s, u)


# ---- public functions with input checks --------------------------------------------------------------------
def reciprocity_index(f_ij: ArrayLike, f_ji: ArrayLike) -> FloatArray:
    """Reciprocity of a pair, R = 1 - |F_ij - F_ji| / (F_ij + F_ji) = 2 min(F_ij, F_ji) / (F_ij + F_ji).

    ``f_ij``, ``f_ji`` are flows (persons or trips, >= 0, broadcastable). R is dimensionless in [0, 1]:
    1 for perfectly balanced exchange, 0 for a one-way flow. A pair without flow in either direction has
    no tie to be reciprocal, so R = 0 there too (never NaN). Negative or non-finite flows raise ConfigError.
    """
    return _reciprocity(nonnegative("f_ij", f_ij), nonnegative("f_ji", f_ji))


def strength_share(volume: ArrayLike, expected: ArrayLike, smoothing: float = SMOOTHING) -> FloatArray:
    """Strength component S = (V + s) / (V + E + 2s) in (0, 1) for observed volume V and expected E.

    It is the logistic transform of the smoothed log ratio log((V + s) / (E + s)) (s = ``smoothing``,
    0.5 persons/trips): S = 0.5 when the tie is as strong as the gravity model expects, -> 1 when far
    stronger, -> 0 when far weaker; increasing in V, decreasing in E.
    """
    return _strength(nonnegative("volume", volume), nonnegative("expected", expected), smoothing)


def volume_share(volume: ArrayLike, total_i: ArrayLike, total_j: ArrayLike) -> FloatArray:
    """Volume component U = V_ij / sqrt(T_i T_j) in [0, 1].

    V_ij = F_ij + F_ji; T_i = sum_k (F_ik + F_ki) is unit i's total off-diagonal in+out flow, so U is the
    geometric mean of the tie's share in each partner's interaction (1 only when i and j interact with
    nobody else). U increases with V_ij even though T_i, T_j grow with it. 0 when there is no flow.
    """
    v = nonnegative("volume", volume)
    ti = nonnegative("total_i", total_i)
    tj = nonnegative("total_j", total_j)
    if np.any(v > np.minimum(ti, tj) * (1 + 1e-9)):
        raise ConfigError("a pair volume cannot exceed either unit's total flow")
    return _volume_share(v, ti, tj)


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
    return _index(*parts)


def reciprocal_tie_index(
    f_ij: ArrayLike, f_ji: ArrayLike, expected_ij: ArrayLike, expected_ji: ArrayLike,
    total_i: ArrayLike, total_j: ArrayLike,
) -> FloatArray:
    """Composite reciprocal tie index of an unordered pair, RTI in [0, 1] (dimensionless).

    RTI = (R * S * U) ** (1/3), components as in the module docstring, E from the doubly constrained gravity
    model.

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
    a = nonnegative("f_ij", f_ij)
    b = nonnegative("f_ji", f_ji)
    e = nonnegative("expected_ij", expected_ij) + nonnegative("expected_ji", expected_ji)
    ti = nonnegative("total_i", total_i)
    tj = nonnegative("total_j", total_j)
    if np.any(a + b > np.minimum(ti, tj) * (1 + 1e-9)):
        raise ConfigError("a pair volume cannot exceed either unit's total flow")
    return tie_components(a, b, e, ti, tj)[3]
