"""The effect of tie strength on growth: orthogonal (double machine learning) local projections.

Treatment. The tie measure the data support every year is the unit's **balanced two-way tie volume** with all
other units: the flows of the dataset's main kind (migration for the bundled data) in year s,
``tie_strength_s = log(1000 * 2 min(in_strength_s, out_strength_s) / population_(s-1))`` – log of the
reciprocated exchange of people (the part of the flows matched in both directions) per 1,000 residents at the
start of the year. Why balanced: the unit's gross volume in + out also rises with a one-way in-migration boom,
which is population growth itself; the matched part is the reciprocal tie the cooperation question is about
(``VOLUME = "two_way"`` gives in + out). The start-of-year population keeps the year's own population change out
of the treatment. For the bundled data it comes from the panel's yearly network
columns 2008–2025 (computed by the panel's author from the yearly migration OD; tiecast reproduces the 2025
ones exactly from ``flows.csv``); for a dataset without such columns, from its yearly flows. A cooperation
scenario changes it by recomputing the strengths from the scenario's flows, for the focal unit and its
partners; other units' tie strength does not change, so this estimate gives them no effect (spillovers through
prices, jobs or third-party shares are not modelled here; the forecaster's what-if recomputes every feature).

Estimand. A scenario raises tie strength in every year of cooperation. For each target and horizon h (years)
the *cumulative multiplier* theta_h(x) = effect on log y_{t+h} - log y_t per unit of cumulative tie strength
sum_{k=1..h} T_{t+k} (Ramey & Zubairy 2018), estimated as the ratio of two local projections (Jordà 2005) on
the first year's tie strength T_{t+1} given the state W_t at the origin: beta_h(x) (outcome) over pi_h (how much
of a tie shock persists: the projection of the cumulative tie strength on T_{t+1}). A scenario sustaining a
change dT for k years therefore moves the log level by theta_k(x) * k * dT. theta_h(x) = (b0 + b'x) / pi_h is
heterogeneous in a few unit characteristics x (log size and aging ratio by default, standardised).

Estimator (partially linear model, Chernozhukov et al. 2018, as EconML's ``LinearDML``):

1. nuisances E[Y | W, x] and E[T | W, x] by LightGBM, **cross-fitted** in 5 folds grouped by unit (a unit's
   years never train the model that residualises them);
2. final stage: OLS of the outcome residual on the treatment residual times (1, x), with **unit-clustered**
   (sandwich) covariance – EconML's LinearDML offers only heteroskedasticity-robust covariance, and a unit's
   overlapping h-year windows are strongly correlated, which is why the final stage is computed here (its point
   estimate equals LinearDML's on the same folds: tested); pi_h likewise from the cross-fitted residual of the
   cumulative tie strength. The standard error of theta divides that of beta by pi_h (pi_h is estimated far more
   precisely than beta_h; its own uncertainty is ignored).

Controls W (all known at t): each target's log level and 1/3/5-year growth, demography, fiscal and income
covariates and their 3-year changes, the net migration rate, **lagged treatment** (tie strength in years t
and t-2), each target's mean yearly growth over the unit's history up to t (a proxy of its persistent growth,
the unit effect) and the year itself (national shocks and trends). Why: growing places attract flows
(confounding through past growth: lagged outcomes, history drift), ties are persistent (lagged treatment
separates the change from the level), and gross in/out migration counts are left out because they are the
treatment itself under another name.

Year convention: rows (unit, t) with ``t + h <= end`` (nested: ``end`` is the last year the fit may use) and no
boundary break in (t, t + h].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import GroupKFold

from tiecast.common import ConfigError
from tiecast.features import Dataset, PanelFeatures

from ._data import target_matrix

__all__ = ["TREATMENT", "CooperationEffects", "EffectFit", "tie_strength"]

TREATMENT = "tie_strength"
VOLUME = "balanced"
TREATMENT_UNIT = "log persons per 1,000 residents"
MAX_EFFECT_HORIZON = 5
MIN_ROWS = 60
CONTROL_GROUPS = ("history", "demography", "fiscal", "income")
CONTROL_EXTRA = ("net_rate", "net_rate_chg3")
# Single-threaded: under OMP_WAIT_POLICY=PASSIVE (which the CLI sets) two OpenMP threads made each of these
# small fits (~3,000 rows) 6x slower (1.9 s vs 0.32 s; the bundled effect model 258 s vs 40 s, identical
# coefficients).
NUISANCE_PARAMS: dict[str, Any] = {
    "objective": "l2", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20, "bagging_fraction": 0.8,
    "bagging_freq": 1, "feature_fraction": 0.8, "lambda_l2": 1.0, "max_bin": 63, "num_threads": 1,
    "deterministic": True, "force_row_wise": True, "verbosity": -1,
}
NUISANCE_ROUNDS = 200


def _volume(inflow: pd.Series, outflow: pd.Series) -> pd.Series:
    """The tie volume of the treatment: VOLUME == "two_way" -> in + out; "balanced" -> 2 min(in, out)."""
    if VOLUME == "balanced":
        return pd.Series(2.0 * np.minimum(inflow.to_numpy(float), outflow.to_numpy(float)), index=inflow.index)
    return inflow + outflow


def tie_strength(ds: Dataset, panel: pd.DataFrame | None = None, flows: pd.DataFrame | None = None) -> pd.Series:
    """Tie strength per (unit_id, year) in log persons per 1,000 residents (see the module docstring).

    Uses the panel columns mapped to ``in_strength``/``out_strength`` of the main flow kind where the dataset
    declares them, else the main kind's flows of each year. NaN where neither exists.
    """
    panel = ds.panel if panel is None else panel
    flows = ds.flows if flows is None else flows
    kind = ds.main_flow_kind
    if kind is None:
        raise ConfigError("effects need yearly flows of an observed kind (e.g. migration); the dataset has none",
                          parameter="data")
    mapping = {v: k for k, v in ds.panel_flow_measures(kind).items()}
    mass = panel.set_index(["unit_id", "year"])[ds.mass_column].astype(float)
    # population at the start of the year = the previous year-end (by year, so gaps stay gaps)
    start = mass.copy()
    start.index = pd.MultiIndex.from_arrays([mass.index.get_level_values(0), mass.index.get_level_values(1) + 1])
    start = start.reindex(mass.index)
    if "in_strength" in mapping and "out_strength" in mapping:
        p = panel.set_index(["unit_id", "year"])
        volume = _volume(p[mapping["in_strength"]].astype(float), p[mapping["out_strength"]].astype(float))
    else:
        f = flows[(flows["kind"] == kind) & (flows["origin"] != flows["destination"])]
        inflow = f.groupby(["destination", "year"])["value"].sum()
        outflow = f.groupby(["origin", "year"])["value"].sum()
        inflow.index.names = outflow.index.names = ["unit_id", "year"]
        volume = _volume(inflow.reindex(mass.index).fillna(0.0), outflow.reindex(mass.index).fillna(0.0))
        volume[~volume.index.get_level_values(1).isin(set(f["year"]))] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log(1000.0 * volume.to_numpy(float) / start.to_numpy(float))
    return pd.Series(np.where(np.isfinite(values), values, np.nan), index=mass.index, name=TREATMENT)


@dataclass(frozen=True)
class EffectFit:
    """theta_h(x) = coef @ (1, (x - x_mean) / x_std) / persistence for one target and horizon.

    ``coef``/``cov``: the outcome projection's final-stage coefficients (log points per unit of first-year tie
    strength) and their unit-clustered covariance; ``persistence``: pi_h, cumulative tie strength per unit of
    first-year tie strength; ``modifiers``: names of x; ``n_rows``/``n_units``: the estimation sample; ``end``:
    the last target year used.
    """

    target: str
    horizon: int
    coef: np.ndarray
    cov: np.ndarray
    modifiers: tuple[str, ...]
    x_mean: np.ndarray
    x_std: np.ndarray
    n_rows: int
    n_units: int
    end: int
    persistence: float
    y_res: np.ndarray = field(repr=False)
    t_res: np.ndarray = field(repr=False)

    def design(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, float) - self.x_mean) / self.x_std
        return np.column_stack([np.ones(len(z)), z])

    def theta(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta_h(x) (log points per unit of cumulative tie strength) and its standard error, per row of x."""
        d = self.design(x)
        return (d @ self.coef) / self.persistence, np.sqrt(np.einsum("ij,jk,ik->i", d, self.cov, d)) / self.persistence


def _lgb(X: np.ndarray, y: np.ndarray, seed: int) -> lgb.Booster:
    return lgb.train({**NUISANCE_PARAMS, "seed": seed}, lgb.Dataset(X, y, params={"max_bin": 63}),
                     num_boost_round=NUISANCE_ROUNDS)


def cross_fit_residuals(columns: Sequence[np.ndarray], XW: np.ndarray, groups: np.ndarray, n_splits: int,
                        seed: int) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Out-of-fold residuals v - E[v | XW] of each column (LightGBM), folds grouped by ``groups``."""
    folds = list(GroupKFold(n_splits=n_splits).split(XW, columns[0], groups))
    fitted = [np.empty_like(v) for v in columns]

    for train, test in folds:
        for c, v in enumerate(columns):
            fitted[c][test] = _lgb(XW[train], v[train], seed).predict(XW[test])
    return [v - f for v, f in zip(columns, fitted, strict=True)], folds


def clustered_final_stage(y_res: np.ndarray, t_res: np.ndarray, design: np.ndarray,
                          groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS of y_res on t_res * design with cluster-robust covariance (CR1 small-sample factor)."""
    Z = t_res[:, None] * design
    bread = np.linalg.pinv(Z.T @ Z)
    coef = bread @ Z.T @ y_res
    e = y_res - Z @ coef
    codes, uniq = pd.factorize(groups)
    G, n, k = len(uniq), len(y_res), Z.shape[1]
    score = np.zeros((G, k))
    np.add.at(score, codes, Z * e[:, None])
    meat = score.T @ score
    factor = G / max(G - 1, 1) * (n - 1) / max(n - k, 1)
    return coef, factor * bread @ meat @ bread


def _history_drift(ds: Dataset, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per target, (log y_t - log y_first) / (t - first) over the unit's years up to t (same boundary segment)."""
    units = pd.Index(sorted(ds.units["unit_id"].astype(str)))
    out: dict[str, np.ndarray] = {}
    for target in ds.targets:
        tm = target_matrix(ds.panel, target, ds.break_column, units)
        drift = np.full(tm.log.shape, np.nan)
        cols = np.arange(len(tm.years))
        rows = np.arange(len(units))
        for k in cols:  # a loop over years, vectorised over units; uses columns <= k only
            valid = (tm.segment == tm.segment[:, k:k + 1]) & (cols[None, :] <= k) & np.isfinite(tm.log)
            first = np.argmax(valid, axis=1)
            span = k - first
            with np.errstate(divide="ignore", invalid="ignore"):
                drift[:, k] = np.where(valid.any(axis=1) & (span > 0),
                                       (tm.log[:, k] - tm.log[rows, first]) / span, np.nan)
        series = pd.Series(drift.ravel(), index=pd.MultiIndex.from_product([list(units), list(tm.years.astype(int))]))
        keys = pd.MultiIndex.from_arrays([frame["unit_id"].astype(str), frame["year"].astype(int)])
        out[f"{target}_history_drift"] = series.reindex(keys).to_numpy(float)
    return out


class CooperationEffects:
    """Double-ML local-projection effects of tie strength on each target's growth, per horizon 1..5.

    scikit-learn style: ``__init__`` stores parameters, :meth:`fit` returns ``self``, fitted attributes end in
    ``_`` (``fits_``: (target, h) -> :class:`EffectFit`, ``controls_``, ``notes_``). Horizons beyond 5 are
    chained: theta_h = theta_5 + theta_(h-5) (the tie change is sustained).
    """

    def __init__(self, horizons: int = MAX_EFFECT_HORIZON, modifiers: Sequence[str] | None = None, n_splits: int = 5,
                 seed: int = 0) -> None:
        self.horizons = horizons
        self.modifiers = modifiers
        self.n_splits = n_splits
        self.seed = seed

    def _modifier_frame(self, ds: Dataset, frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
        names = list(self.modifiers) if self.modifiers is not None else ["log_size", "aging_ratio"]
        out = pd.DataFrame(index=frame.index)
        used = []
        for name in names:
            if name == "log_size":
                col = f"{ds.mass_column}_log"
                if col in frame.columns:
                    out[name] = frame[col]
                    used.append(name)
            elif name in frame.columns:
                out[name] = frame[name]
                used.append(name)
        return out, tuple(used)

    def design_rows(self, features: pd.DataFrame, treatment: pd.Series, horizon: int = 0) -> pd.DataFrame:
        """Feature rows (unit_id, year = t) with the tie strength of years t + k (``tie_strength_k``, k = -2..0
        as controls, 1..horizon for the projections)."""
        keys = pd.MultiIndex.from_arrays([features["unit_id"].astype(str), features["year"].astype(int)])
        frame = features.reset_index(drop=True).copy()
        for k in range(-2, horizon + 1):
            shifted = pd.MultiIndex.from_arrays([keys.get_level_values(0), keys.get_level_values(1) + k])
            frame[f"{TREATMENT}_{k}"] = treatment.reindex(shifted).to_numpy(float)
        return frame

    def fit(self, ds: Dataset, features: PanelFeatures, end: int | None = None,
            treatment: pd.Series | None = None) -> CooperationEffects:
        """Fit on the feature panel with outcomes (and tie strengths) up to year ``end`` (default: each target's
        last year). Rows: origins t with t + h <= end, no break in (t, t + h], tie strength known in t+1..t+h."""
        if not 1 <= int(self.horizons) <= 10:
            raise ConfigError(f"horizons must be 1–10; got {self.horizons}", parameter="horizons")
        treat = tie_strength(ds) if treatment is None else treatment
        groups = features.groups()
        controls = [c for g in CONTROL_GROUPS for c in groups.get(g, [])]
        controls += [c for c in CONTROL_EXTRA if c in features.frame.columns and c not in controls]
        H = min(int(self.horizons), MAX_EFFECT_HORIZON)
        frame = self.design_rows(features.frame, treat, H)
        # the origin year: national shocks and trends move ties and growth together (year effects)
        controls += [f"{TREATMENT}_0", f"{TREATMENT}_-2", "year"]
        # each target's mean yearly growth over the unit's history up to t: a proxy of the unit's persistent
        # growth (its fixed effect), which drives ties as well as growth
        for name, values in _history_drift(ds, frame).items():
            frame[name] = values
            controls.append(name)
        x_frame, mods = self._modifier_frame(ds, frame)
        self.fits_: dict[tuple[str, int], EffectFit] = {}
        self.notes_: dict[str, str] = {}
        self.controls_ = controls
        self.modifiers_ = mods
        units = pd.Index(sorted(ds.units["unit_id"].astype(str)))
        key = pd.MultiIndex.from_arrays([frame["unit_id"].astype(str), frame["year"].astype(int)])
        first = frame[f"{TREATMENT}_1"].to_numpy(float)
        x_all = x_frame.to_numpy(float)
        W_all = frame[controls].to_numpy(float)
        for target in ds.targets:
            tm = target_matrix(ds.panel, target, ds.break_column, units)
            last = tm.last_year()
            stop = last if end is None or last is None else min(end, last)
            if stop is None:
                continue
            for h in range(1, H + 1):
                growth = pd.Series(np.concatenate([tm.growth(int(y), h) for y in tm.years]),
                                   index=pd.MultiIndex.from_product([list(tm.years.astype(int)),
                                                                     list(tm.units)]).swaplevel())
                Y = growth.reindex(key).to_numpy(float)
                cumulative = frame[[f"{TREATMENT}_{k}" for k in range(1, h + 1)]].sum(axis=1, min_count=h)
                C = cumulative.to_numpy(float)
                ok = (np.isfinite(Y) & np.isfinite(first) & np.isfinite(C) & np.isfinite(x_all).all(axis=1)
                      & (frame["year"].to_numpy(int) + h <= stop))
                if ok.sum() < MIN_ROWS or frame.loc[ok, "unit_id"].nunique() < self.n_splits:
                    self.notes_[f"{target}_h{h}"] = f"{int(ok.sum())} rows: too few to estimate"
                    continue
                XW = np.column_stack([x_all[ok], W_all[ok]])
                g = frame.loc[ok, "unit_id"].astype(str).to_numpy()
                (y_res, t_res, c_res), _ = cross_fit_residuals([Y[ok], first[ok], C[ok]], XW, g, self.n_splits,
                                                               self.seed)
                persistence = float(t_res @ c_res / (t_res @ t_res))
                if not persistence > 0.1:
                    self.notes_[f"{target}_h{h}"] = f"tie shocks do not persist (pi = {persistence:.2f})"
                    continue
                x = x_all[ok]
                x_mean, x_std = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
                design = np.column_stack([np.ones(len(x)), (x - x_mean) / x_std])
                coef, cov = clustered_final_stage(y_res, t_res, design, g)
                self.fits_[(target, h)] = EffectFit(target, h, coef, cov, mods, x_mean, x_std, int(ok.sum()),
                                                    len(set(g)), int(stop), persistence, y_res, t_res)
        return self

    def effect(self, target: str, years: int, x: np.ndarray, delta_t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Effect on the log level of a tie-strength change ``delta_t`` sustained for ``years`` years (per row of
        ``x``, the modifiers in ``modifiers_`` order): (log points, standard error); theta_k * k * dT, chained
        in blocks of 5 years beyond 5. NaN when not estimable."""
        n = len(delta_t)
        parts = [MAX_EFFECT_HORIZON] * ((years - 1) // MAX_EFFECT_HORIZON) + [(years - 1) % MAX_EFFECT_HORIZON + 1]
        point, se = np.zeros(n), np.zeros(n)
        for k in parts:
            fit = self.fits_.get((target, k))
            if fit is None:
                return np.full(n, np.nan), np.full(n, np.nan)
            th, th_se = fit.theta(x)
            point += th * k * delta_t
            se += th_se * k * np.abs(delta_t)  # chained parts: perfectly correlated (conservative)
        return point, se

    def summary(self) -> pd.DataFrame:
        """One row per (target, horizon): theta at the mean unit (log points per unit of cumulative tie strength),
        its clustered standard error, z and p, the persistence pi_h, rows, units."""
        rows = []
        for (target, h), f in sorted(self.fits_.items()):
            se = math.sqrt(f.cov[0, 0])
            z = f.coef[0] / se if se > 0 else float("nan")
            rows.append({"target": target, "horizon": h, "theta_mean": f.coef[0] / f.persistence,
                         "se": se / f.persistence, "z": z, "p": 2 * stats.norm.sf(abs(z)),
                         "persistence": f.persistence, "rows": f.n_rows, "units": f.n_units, "end": f.end})
        return pd.DataFrame(rows)
