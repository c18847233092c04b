"""Input checks and the sparse pair and row-block helpers every tie module shares.

Flows are indexed by unit position (0..n-1): ``o``/``d`` origin and destination positions, ``y`` the flow values
(persons or trips per year, >= 0). Diagonal pairs (moves inside a unit) are dropped everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from tiecast.common import ConfigError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Dense n x n work is done in row blocks of about this many cells (2 MB per float64 block, so the several
# passes over one block stay in cache) with preallocated buffers: fresh large temporaries page-fault.
BLOCK_CELLS = 1 << 18


def nonnegative(name: str, values: ArrayLike) -> FloatArray:
    """``values`` as float64, raising :class:`ConfigError` unless every value is finite and >= 0."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError(f"{name} must be finite and >= 0 (flows are counts of persons or trips)")
    return arr


def clean_pairs(
    origin_idx: ArrayLike, dest_idx: ArrayLike, value: ArrayLike, n_units: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Off-diagonal, non-zero flows with duplicate (origin, destination) pairs summed, sorted by key."""
    o = np.asarray(origin_idx, dtype=np.int64)
    d = np.asarray(dest_idx, dtype=np.int64)
    v = nonnegative("value", value)
    if not (o.shape == d.shape == v.shape) or o.ndim != 1:
        raise ConfigError("origin_idx, dest_idx and value must be 1-D arrays of the same length")
    if o.size and (o.min() < 0 or d.min() < 0 or o.max() >= n_units or d.max() >= n_units):
        raise ConfigError(f"origin/destination indices must lie in [0, {n_units})")
    keep = (o != d) & (v > 0)
    # CSR construction sums duplicates and sorts by (origin, destination) in C; np.unique is far slower
    return csr_triplets(sparse.csr_array((v[keep], (o[keep], d[keep])), shape=(n_units, n_units)))


def csr_triplets(a: sparse.csr_array) -> tuple[IntArray, IntArray, FloatArray]:
    """(row, column, value) of the stored entries of a CSR matrix in canonical (row, column) order."""
    a.sum_duplicates()
    rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr))
    return rows, a.indices.astype(np.int64), np.asarray(a.data)


def row_blocks(n: int) -> list[tuple[int, int]]:
    """Consecutive row ranges [r0, r1) covering 0..n-1 with about BLOCK_CELLS cells each."""
    step = max(1, BLOCK_CELLS // max(n, 1))
    return [(r0, min(n, r0 + step)) for r0 in range(0, n, step)]
