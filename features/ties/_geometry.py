"""Great-circle distances between unit centroids and the clamped log-distance matrix (the one place for both).

Coordinates are WGS84 degrees, distances km. ``log d`` is clamped below at ``MIN_DISTANCE_KM`` so that
coincident centroids keep it finite; its diagonal is 0 (the diagonal is masked everywhere).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tiecast.common import ConfigError

from ._checks import FloatArray, row_blocks

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
MIN_DISTANCE_KM = 1.0  # distances are clamped here so that coincident centroids keep log d finite

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
    blocks = row_blocks(n)
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


def log_distance(dist_km: ArrayLike, min_distance_km: float = MIN_DISTANCE_KM,
                 dtype: type = np.float32) -> NDArray[np.floating]:
    """log(max(d, min_distance_km)) of a square distance matrix (km), with a zero diagonal, in row blocks.

    ``dtype`` float32 (default) halves memory for the gravity fits (49 MB at 3,500 units);
    :meth:`GravityFit.expected` rounds the same way (:func:`log_distance_pairs`), so expected flows are
    exactly the fitted ones. float64 is used where the feature panel needs it.
    """
    dist = np.asarray(dist_km)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ConfigError(f"dist_km must be a square (n, n) matrix of distances (km); got shape {dist.shape}")
    if not min_distance_km > 0:
        raise ConfigError("min_distance_km must be > 0")
    n = dist.shape[0]
    logd: NDArray[np.floating] = np.empty((n, n), dtype=dtype)
    for r0, r1 in row_blocks(n):
        logd[r0:r1] = dist[r0:r1]
        np.maximum(logd[r0:r1], dtype(min_distance_km), out=logd[r0:r1])
        np.log(logd[r0:r1], out=logd[r0:r1])
    if np.isnan(logd).any():
        raise ConfigError("dist_km contains NaN")
    np.fill_diagonal(logd, 0.0)
    return logd


def log_distance_pairs(dist_km: NDArray[np.generic], min_distance_km: float = MIN_DISTANCE_KM) -> FloatArray:
    """Per-pair log(max(d, min_distance_km)) rounded exactly as the float32 :func:`log_distance` matrix."""
    clamped = np.maximum(dist_km.astype(np.float32, copy=False), np.float32(min_distance_km))
    return np.log(clamped).astype(np.float64)
