"""Target matrices, (origin, horizon) training pairs and unit groups, vectorised over units.

Year convention: the origin year ``t`` is the last year of data used; horizon ``h`` targets ``t + h`` steps.
Panels are observed every ``step`` years (1 for yearly data; census panels 5 or 10): training works in
*periods*, ``period = (year - offset) / step`` (:class:`Calendar`), which equal the calendar years of a yearly
panel. A target's *log growth* over ``h`` steps is ``log(y_{t+h}) - log(y_t)`` (log points). A pair
``(t, t+h)`` is dropped when a boundary break (merger/recode, ``ds.break_column`` = 1) lies in ``(t, t+h]``:
the jump of the level there is not growth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tiecast.common import ConfigError
from tiecast.features import Dataset, infer_step

__all__ = ["GROUPS", "Calendar", "TargetMatrix", "target_matrix", "unit_groups"]

GROUPS = ("all", "capital", "small_mid", "other")


@dataclass(frozen=True)
class Calendar:
    """Calendar years <-> observation periods: ``year = period * step + offset`` (identity when yearly)."""

    step: int = 1
    offset: int = 0

    @classmethod
    def of_years(cls, years: Iterable[int], step: int | None = None) -> Calendar:
        """The calendar of observed years (step inferred unless given; offset = their residue mod step)."""
        values = np.asarray(list(years), dtype=np.int64)
        k = infer_step(values) if step is None else int(step)
        if k < 1:
            raise ConfigError(f"step must be a positive number of years; got {step!r}", parameter="step")
        offset = int(values.min() % k) if len(values) else 0
        off_grid = np.unique(values[(values - offset) % k != 0])
        if len(off_grid):
            raise ConfigError(f"years {', '.join(map(str, off_grid[:5]))} are not on the grid of one observation "
                              f"every {k} years", parameter="step")
        return cls(k, offset)

    @property
    def yearly(self) -> bool:
        return self.step == 1

    def period(self, year: int) -> int:
        return int((int(year) - self.offset) // self.step)

    def periods(self, years: pd.Series | np.ndarray) -> np.ndarray:
        return (np.asarray(years, dtype=np.int64) - self.offset) // self.step

    def on_grid(self, years: pd.Series | np.ndarray) -> np.ndarray:
        return (np.asarray(years, dtype=np.int64) - self.offset) % self.step == 0

    def year(self, period: int) -> int:
        return int(period) * self.step + self.offset

    def to_periods(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with ``year`` in periods; rows whose year is off the grid are dropped."""
        if self.yearly:
            return frame
        keep = self.on_grid(frame["year"].to_numpy())
        out = frame[keep]
        return out.assign(year=self.periods(out["year"].to_numpy()))

    def describe(self) -> str:
        """'' for yearly data, else how often the data are observed."""
        return "" if self.yearly else f"one observation every {self.step} years"

    def unit(self) -> str:
        """What a horizon counts: 'years', or 'steps of k years'."""
        return "years" if self.yearly else f"steps of {self.step} years"


@dataclass(frozen=True)
class TargetMatrix:
    """One target as a units x periods matrix.

    ``log`` holds the log level (NaN where missing or not positive), ``segment`` a counter that increases at
    every boundary break of the unit (two periods are comparable when their segments are equal). Rows follow
    ``units``, columns ``years``: every period from the first to the last panel period (so gaps are NaN).
    Every "year" below is a period of ``calendar`` (the calendar year itself for yearly data).
    """

    target: str
    units: pd.Index
    years: np.ndarray
    log: np.ndarray
    segment: np.ndarray
    calendar: Calendar = Calendar()

    def col(self, year: int) -> int:
        return int(year - self.years[0])

    def has_year(self, year: int) -> bool:
        return bool(self.years[0] <= year <= self.years[-1])

    def level(self, year: int) -> np.ndarray:
        """Levels in year ``year`` (NaN outside the span)."""
        if not self.has_year(year):
            return np.full(len(self.units), np.nan)
        return np.exp(self.log[:, self.col(year)])

    def growth(self, origin: int, h: int) -> np.ndarray:
        """Log growth ``log y_{t+h} - log y_t`` per unit; NaN when either is missing or a break intervenes."""
        if not (self.has_year(origin) and self.has_year(origin + h)):
            return np.full(len(self.units), np.nan)
        a, b = self.col(origin), self.col(origin + h)
        out = self.log[:, b] - self.log[:, a]
        return np.where(self.segment[:, b] == self.segment[:, a], out, np.nan)

    def last_year(self) -> int | None:
        """Last calendar year in which any unit has the target."""
        cols = np.flatnonzero(np.isfinite(self.log).any(axis=0))
        return int(self.years[cols[-1]]) if len(cols) else None

    def first_year(self) -> int | None:
        cols = np.flatnonzero(np.isfinite(self.log).any(axis=0))
        return int(self.years[cols[0]]) if len(cols) else None

    def pairs(self, h: int, max_year: int) -> pd.DataFrame:
        """All (unit, origin t) with a valid growth over ``h`` and ``t + h <= max_year``.

        Columns ``unit_id``, ``year`` (origin t), ``growth`` (log points).
        """
        frames = []
        for t in self.years:
            if t + h > max_year or not self.has_year(int(t) + h):
                continue
            g = self.growth(int(t), h)
            keep = np.isfinite(g)
            if keep.any():
                frames.append(pd.DataFrame({"unit_id": self.units[keep], "year": int(t), "growth": g[keep]}))
        if not frames:
            return pd.DataFrame({"unit_id": pd.Series(dtype=str), "year": pd.Series(dtype=int),
                                 "growth": pd.Series(dtype=float)})
        return pd.concat(frames, ignore_index=True)

    def history(self, origin: int) -> np.ndarray:
        """Log levels up to ``origin`` masked to the unit's current segment (years before a break are NaN).

        Shape units x (years <= origin).
        """
        if origin < self.years[0]:
            return np.empty((len(self.units), 0))
        end = min(self.col(origin), len(self.years) - 1) + 1
        hist = self.log[:, :end].copy()
        current = self.segment[:, end - 1:end]
        hist[self.segment[:, :end] != current] = np.nan
        return hist


def target_matrix(panel: pd.DataFrame, target: str, break_column: str | None,
                  units: pd.Index | None = None, calendar: Calendar | None = None) -> TargetMatrix:
    """Units x periods matrix of a target's log levels and break segments from a contract panel (calendar
    years; the calendar is inferred from them unless given)."""
    calendar = Calendar.of_years(panel["year"]) if calendar is None else calendar
    panel = calendar.to_periods(panel)
    units = pd.Index(sorted(panel["unit_id"].unique())) if units is None else units
    first, last = int(panel["year"].min()), int(panel["year"].max())
    years = np.arange(first, last + 1)
    values = panel.pivot(index="unit_id", columns="year", values=target).reindex(index=units, columns=years)
    arr = values.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.where(arr > 0, np.log(np.where(arr > 0, arr, 1.0)), np.nan)
    if break_column:
        brk = panel.pivot(index="unit_id", columns="year", values=break_column).reindex(index=units, columns=years)
        segment = np.cumsum(np.nan_to_num(brk.to_numpy(float)) > 0, axis=1)
    else:
        segment = np.zeros_like(log, dtype=int)
    return TargetMatrix(target, units, years, log, segment.astype(int), calendar)


def unit_groups(ds: Dataset) -> dict[str, np.ndarray]:
    """Unit ids per reporting group: ``all``, ``capital`` (capital_region == 1), ``small_mid``
    (small_mid_city == 1) and ``other`` (neither). Columns absent from ``units`` count as 0."""
    units = ds.units
    ids = units["unit_id"].to_numpy()

    def flag(col: str) -> np.ndarray:
        if col not in units.columns:
            return np.zeros(len(units), dtype=bool)
        return units[col].fillna(0).astype(float).to_numpy() == 1

    capital, small_mid = flag("capital_region"), flag("small_mid_city")
    return {"all": ids, "capital": ids[capital], "small_mid": ids[small_mid], "other": ids[~capital & ~small_mid]}
