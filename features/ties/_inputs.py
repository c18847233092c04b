"""Input checks of the DataFrame front-ends: units, unit positions, flows of one (kind, year), population."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from tiecast.common import ConfigError

from ._checks import FloatArray, IntArray, clean_pairs, csr_triplets

FLOW_COLUMNS = ("origin", "destination", "year", "kind", "value")

__all__ = ["FLOW_COLUMNS", "flow_groups", "flow_indices", "pair_table", "population_for", "unit_frame",
           "unit_positions"]


def unit_frame(units: pd.DataFrame, need_coords: bool) -> pd.DataFrame:
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


def flow_indices(flows: pd.DataFrame, uids: pd.Index) -> tuple[IntArray, IntArray, FloatArray]:
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
    return clean_pairs(o, d, flows["value"].to_numpy(dtype=np.float64), uids.size)


def population_for(population: pd.Series | None, year: object, uids: pd.Index) -> FloatArray | None:
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


def pair_table(
    o: IntArray, d: IntArray, y: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Ordered pairs (i, j) with a non-zero flow in at least one direction, and F_ij, F_ji.

    Sorted by (i, j). One sparse sum A + 1j A' carries F_ij in the real and F_ji in the imaginary part
    over the union of both patterns (flows are > 0, so nothing cancels).
    """
    a = sparse.csr_array((y, (o, d)), shape=(n, n))
    both = sparse.csr_array(a.astype(np.complex128) + 1j * a.T.tocsr())
    i, j, val = csr_triplets(both)
    return i, j, val.real.copy(), val.imag.copy()


def flow_groups(flows: pd.DataFrame) -> list[tuple[object, object, pd.DataFrame]]:
    missing = [c for c in FLOW_COLUMNS if c not in flows.columns]
    if missing:
        raise ConfigError(f"flows is missing columns {missing} (contract: {', '.join(FLOW_COLUMNS)})")
    return [(kind, year, g) for (kind, year), g in flows.groupby(["kind", "year"], sort=True)]
