"""Is the cooperation effect trustworthy? A semi-synthetic benchmark with known effects, and real-data placebos.

Semi-synthetic world (:func:`simulate_world`), built from the dataset itself: its real units, contiguity, size and
aging ratio, and the tie structure of its latest observed flows (pair affinities A_ij). Each year t:

- tie propensity u_it = phi u_i,t-1 + kappa_alpha alpha_i + kappa g_i,t-1 + nu_it: ties respond to past growth and
  to the unobserved unit effect alpha_i (confounding), with their own noise;
- flows F_ijt = A_ij exp(u_it + u_jt + eta_ijt) sqrt(P_i,t-1 P_j,t-1 / (P_i,0 P_j,0)) (pair noise eta);
- tie strength T_it = log(1000 * 2 min(in_it, out_it) / P_i,t-1), as :func:`tie_strength` computes it;
- growth g_it = mu + alpha_i + rho (g_i,t-1 - mu - alpha_i) + beta z_aging,it + theta_it (T_it - T0)
  + s mean_{j contiguous} (T_jt - T0) + eps_it, with a heterogeneous effect theta_it = theta0
  + theta_aging z_aging,it + theta_size z_size,it (z = standardised aging ratio and log population) and
  spillovers s to neighbours; P_it = P_i,t-1 exp(g_it).

The estimators see what the real data would show – the panel up to the origin (population, aging ratio,
fiscal capacity, in/out strengths) and the flows of the origin year only – and answer cooperation scenarios
(a random focal unit, its top-3 partners, flows x2 from the year after the origin). Ground truth: both worlds are
simulated forward with the **same noise**, so the true effect on every unit at the horizon is known, feedback
through growth -> ties included. Reported per estimator (``zero`` = no effect, ``forecaster_whatif``, ``dml``)
for focal units and partners: bias of the mean effect and sqrt-PEHE (root mean squared unit-level error), both
in % of the baseline level, and the coverage of the 90% interval.

Placebos on the real data (:func:`placebo_checks`): the DML estimate with (1) tie strengths assigned to
randomly permuted units within each year ("permuted partners": the ties no longer belong to the unit) and (2) a
fake cooperation – an indicator switched on for a random half of the units from a fake start year before
the data end –
must be indistinguishable from zero: the pass rule is a rejection rate at the 10% level of at most 20% over the
draws (the nominal rate is 10%; 20% allows for few draws) and a pooled mean effect whose 90% interval covers 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tiecast.common import ConfigError
from tiecast.features import Dataset, Scenario, build_features

from ._cooperation import MODEL_ERROR, ScenarioForecaster
from ._effects import TREATMENT, CooperationEffects, clustered_final_stage, cross_fit_residuals, tie_strength

__all__ = ["PlaceboResult", "SemiSyntheticConfig", "ValidationResult", "placebo_checks", "simulate_world",
           "validate_effects"]

GOALS: dict[str, Any] = {"pehe_ratio_max": 0.25, "coverage_focal": (0.85, 0.97), "coverage_partner_min": 0.80}


@dataclass(frozen=True)
class SemiSyntheticConfig:
    """Parameters of the semi-synthetic world (yearly; growth in log points)."""

    seed: int = 0
    scenarios: int = 30
    factor: float = 2.0
    partners: str = "top3"
    horizon: int = 5
    mu: float = -0.003
    sigma_alpha: float = 0.006
    rho: float = 0.4
    beta_aging: float = -0.002
    theta0: float = 0.03
    theta_aging: float = -0.012
    theta_size: float = 0.008
    spill: float = 0.005
    # Tie process: None = estimated on the dataset itself (within-unit regression of tie strength on its lag and
    # on the previous year's growth; :func:`tie_process`), so the confounding is as strong as the data show.
    phi: float | None = None
    kappa: float | None = None
    kappa_alpha: float = 1.0
    sigma_nu: float | None = None
    sigma_eta: float = 0.08
    sigma_eps: float = 0.008


@dataclass
class _World:
    cfg: SemiSyntheticConfig
    ds: Dataset
    simulate: Callable[[int | None, tuple[str, ...], float], np.ndarray]  # -> population at the horizon per unit
    origin: int


def _neighbours(ds: Dataset, index: pd.Index) -> np.ndarray:
    """Row-normalised contiguity matrix (dense; units x units)."""
    n = len(index)
    w = np.zeros((n, n))
    kinds = [k for k in ds.time_invariant_kinds if k in set(ds.flows["kind"])]
    if kinds:
        c = ds.flows[ds.flows["kind"] == kinds[0]]
        o, d = index.get_indexer(pd.Index(c["origin"])), index.get_indexer(pd.Index(c["destination"]))
        keep = (o >= 0) & (d >= 0) & (o != d)
        w[o[keep], d[keep]] = 1.0
        w = np.maximum(w, w.T)
    rows = w.sum(axis=1, keepdims=True)
    return np.divide(w, rows, out=np.zeros_like(w), where=rows > 0)


def tie_process(ds: Dataset) -> tuple[float, float, float]:
    """(phi, kappa, sigma_nu) of the real tie strength: T_s = phi T_(s-1) + kappa g_(s-1) + unit effect + nu,
    estimated within units (demeaned OLS) on the dataset's years; clipped to phi in [0.3, 0.95], kappa in [0, 2]."""
    t = tie_strength(ds).rename("T").reset_index()
    p = ds.panel[["unit_id", "year", ds.mass_column]].copy()
    p["g"] = np.log(p[ds.mass_column].where(p[ds.mass_column] > 0)).groupby(p["unit_id"]).diff()
    if ds.break_column:
        p.loc[ds.panel[ds.break_column].fillna(0).to_numpy() == 1, "g"] = np.nan
    d = t.merge(p, on=["unit_id", "year"]).sort_values(["unit_id", "year"])
    d["T_lag"] = d.groupby("unit_id")["T"].shift(1)
    d["g_lag"] = d.groupby("unit_id")["g"].shift(1)
    d = d.dropna(subset=["T", "T_lag", "g_lag"])
    if len(d) < 30:
        return 0.8, 0.3, 0.05
    cols = ["T", "T_lag", "g_lag"]
    w = d[cols] - d.groupby("unit_id")[cols].transform("mean")
    X = w[["T_lag", "g_lag"]].to_numpy(float)
    coef = np.linalg.lstsq(X, w["T"].to_numpy(float), rcond=None)[0]
    resid = w["T"].to_numpy(float) - X @ coef
    return float(np.clip(coef[0], 0.3, 0.95)), float(np.clip(coef[1], 0.0, 2.0)), float(np.std(resid))


def simulate_world(ds: Dataset, cfg: SemiSyntheticConfig, replication: int = 0) -> _World:
    """The semi-synthetic dataset (same units and contract) and a function simulating its future.

    ``world.simulate(focal, partners, factor)`` returns every unit's population at ``origin + horizon`` in the
    world where the flows between ``focal`` and each partner are multiplied by ``factor`` from ``origin + 1``
    (``focal=None``: the baseline world); all noise is drawn once, so both worlds share it.
    """
    phi0, kappa0, nu0 = tie_process(ds)
    cfg = dataclasses.replace(cfg, phi=phi0 if cfg.phi is None else cfg.phi,
                              kappa=kappa0 if cfg.kappa is None else cfg.kappa,
                              sigma_nu=nu0 if cfg.sigma_nu is None else cfg.sigma_nu)
    phi, kappa, sigma_nu = float(cfg.phi or phi0), float(cfg.kappa if cfg.kappa is not None else kappa0), \
        float(cfg.sigma_nu or nu0)
    rng = np.random.default_rng([cfg.seed, replication])
    index = pd.Index(ds.units["unit_id"].astype(str))
    n = len(index)
    kind = ds.main_flow_kind
    if kind is None:
        raise ConfigError("the semi-synthetic benchmark needs observed flows (e.g. migration)", parameter="data")
    years_all = sorted(ds.panel["year"].unique())
    first, origin = int(years_all[0]), int(years_all[-1])
    latest = int(ds.flows.loc[ds.flows["kind"] == kind, "year"].max())
    f = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] == latest)]
    o = index.get_indexer(pd.Index(f["origin"].astype(str)))
    d = index.get_indexer(pd.Index(f["destination"].astype(str)))
    keep = (o >= 0) & (d >= 0) & (o != d) & (f["value"].to_numpy(float) > 0)
    po, pd_, aff = o[keep], d[keep], f["value"].to_numpy(float)[keep]
    m = len(aff)
    years = np.arange(first, origin + cfg.horizon + 1)
    Y = len(years)
    pop_panel = ds.panel.pivot(index="unit_id", columns="year", values=ds.mass_column).reindex(index)
    p0 = pop_panel[first].to_numpy(float)
    p0 = np.where(np.isfinite(p0) & (p0 > 0), p0, np.nanmedian(p0))
    aging_frame = (ds.panel.pivot(index="unit_id", columns="year", values="aging_ratio").reindex(index)
                   if "aging_ratio" in ds.panel.columns else pd.DataFrame(0.0, index=index, columns=years_all))
    fill = float(np.nanmean(aging_frame.to_numpy(float)))
    aging = aging_frame.reindex(columns=years).ffill(axis=1).bfill(axis=1).fillna(fill).to_numpy(float)
    a_mean, a_sd = float(aging.mean()), max(float(aging.std()), 1e-9)
    z_aging = (aging - a_mean) / a_sd
    alpha = rng.normal(0.0, cfg.sigma_alpha, n)
    nu = rng.normal(0.0, sigma_nu, (Y, n))
    eta = rng.normal(0.0, cfg.sigma_eta, (Y, m))
    eps = rng.normal(0.0, cfg.sigma_eps, (Y, n))
    W = _neighbours(ds, index)
    lp_mean, lp_sd = np.log(p0).mean(), max(np.log(p0).std(), 1e-9)
    t_ref = float("nan")

    k_o = int(np.flatnonzero(years == origin)[0])

    def run(focal: int | None, partners: tuple[int, ...], factor: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Populations, tie strengths, in/out strengths (years x units) and the origin year's pair flows."""
        nonlocal t_ref
        P = np.empty((Y, n))
        T = np.empty((Y, n))
        IN, OUT = np.empty((Y, n)), np.empty((Y, n))
        u = cfg.kappa_alpha * alpha / (1 - phi)
        g_prev = cfg.mu + alpha
        p_prev = p0.copy()
        mult = np.ones(m)
        flow_origin = np.empty(m)
        if focal is not None:
            pair = ((po == focal) & np.isin(pd_, partners)) | ((pd_ == focal) & np.isin(po, partners))
            mult = np.where(pair, factor, 1.0)
        for k in range(Y):
            u = phi * u + cfg.kappa_alpha * alpha + kappa * (g_prev - cfg.mu - alpha) + nu[k]
            size = np.sqrt(p_prev[po] * p_prev[pd_] / (p0[po] * p0[pd_]))
            flow = aff * np.exp(u[po] + u[pd_] - 2 * cfg.kappa_alpha * alpha.mean() / (1 - phi) + eta[k]) * size
            if years[k] > origin:
                flow = flow * mult
            if k == k_o:
                flow_origin = flow
            out_s = np.bincount(po, weights=flow, minlength=n)
            in_s = np.bincount(pd_, weights=flow, minlength=n)
            t = np.log(1000.0 * 2.0 * np.minimum(in_s, out_s) / p_prev)
            if not np.isfinite(t_ref):
                t_ref = float(np.nanmean(t))
            tc = np.nan_to_num(t - t_ref)
            z_size = (np.log(p_prev) - lp_mean) / lp_sd
            theta = cfg.theta0 + cfg.theta_aging * z_aging[:, k] + cfg.theta_size * z_size
            g = (cfg.mu + alpha + cfg.rho * (g_prev - cfg.mu - alpha) + cfg.beta_aging * z_aging[:, k]
                 + theta * tc + cfg.spill * (W @ tc) + eps[k])
            p = p_prev * np.exp(g)
            P[k], T[k], IN[k], OUT[k] = p, t, in_s, out_s
            g_prev, p_prev = g, p
        return P, T, IN, OUT, flow_origin

    P, _, IN, OUT, flow_o = run(None, (), 1.0)
    hist = years <= origin
    panel = pd.DataFrame({
        "unit_id": np.repeat(index.to_numpy(), hist.sum()),
        "year": np.tile(years[hist], n),
        ds.mass_column: P[hist].T.ravel().round(),
        "aging_ratio": aging[:, hist].ravel(),
        "in_strength": IN[hist].T.ravel(), "out_strength": OUT[hist].T.ravel(),
    })
    # the origin year's flows of the baseline world are the observed OD (as in the real data)
    od = pd.DataFrame({"origin": index.to_numpy()[po], "destination": index.to_numpy()[pd_],
                       "year": origin, "kind": kind, "value": flow_o})
    contig = ds.flows[ds.flows["kind"].isin(ds.time_invariant_kinds)]
    flows = pd.concat([od, contig], ignore_index=True)
    meta: dict[str, Any] = {
        "name": f"{ds.name}-semisynthetic", "targets": [ds.mass_column], "primary_target": ds.mass_column,
        "columns": {ds.mass_column: {"unit": "persons", "group": "demography"},
                    "aging_ratio": {"unit": "%", "group": "demography"},
                    "in_strength": {"unit": "persons", "group": "network"},
                    "out_strength": {"unit": "persons", "group": "network"}},
        "flows": {"time_invariant": list(ds.time_invariant_kinds), "main_kind": kind,
                  "kinds": {kind: {"panel_measures": {"in_strength": "in_strength",
                                                      "out_strength": "out_strength"}}}},
        "features": {"network_lags": [f"{ds.mass_column}_growth_1y", f"{ds.mass_column}_growth_3y"]},
    }
    units = ds.units.drop(columns=[c for c in ("small_mid_city",) if c in ds.units.columns]).assign(
        small_mid_city=ds.units.get("small_mid_city", 0))
    sim = dataclasses.replace(ds, name=str(meta["name"]), meta=meta, panel=panel, flows=flows, units=units,
                              fingerprint=f"semisynthetic-{cfg.seed}-{replication}")
    k_h = int(np.flatnonzero(years == origin + cfg.horizon)[0])
    baseline_h = P[k_h].copy()

    def simulate(focal: int | None, partners: tuple[str, ...], factor: float) -> np.ndarray:
        if focal is None:
            return baseline_h
        return run(focal, tuple(int(i) for i in index.get_indexer(pd.Index(list(partners)))), factor)[0][k_h]

    return _World(cfg, sim, simulate, origin)


@dataclass
class ValidationResult:
    """The benchmark table (estimator x role: bias, sqrt-PEHE, coverage, ratio to zero) and the unit rows."""

    table: pd.DataFrame
    units: pd.DataFrame
    config: SemiSyntheticConfig
    goals: dict[str, Any] = field(default_factory=lambda: dict(GOALS))

    def value(self, estimator: str, role: str, column: str) -> float:
        t = self.table
        row = t[(t["estimator"] == estimator) & (t["role"] == role)]
        return float(row[column].iloc[0]) if len(row) else float("nan")

    def passes(self) -> dict[str, bool]:
        """The issue's goals, each with its verdict."""
        lo, hi = GOALS["coverage_focal"]
        return {
            "dml sqrt-PEHE <= 25% of zero (focal)": self.value("dml", "focal", "pehe_vs_zero")
            <= GOALS["pehe_ratio_max"],
            "dml 90% coverage 0.85-0.97 (focal)": lo <= self.value("dml", "focal", "coverage90") <= hi,
            "dml 90% coverage >= 0.80 (partners)": self.value("dml", "partner", "coverage90")
            >= GOALS["coverage_partner_min"],
            "dml beats the forecaster what-if (focal)": self.value("dml", "focal", "sqrt_pehe")
            < self.value("forecaster_whatif", "focal", "sqrt_pehe"),
        }


def validate_effects(ds: Dataset, cfg: SemiSyntheticConfig = SemiSyntheticConfig(), replications: int = 1,
                     progress: Callable[[], None] | None = None, model_error: float = MODEL_ERROR) -> ValidationResult:
    """Run the semi-synthetic benchmark (see the module docstring) and tabulate the estimators."""
    rows = []
    resolved = cfg
    for r in range(replications):
        world = simulate_world(ds, cfg, r)
        resolved = world.cfg
        sf = ScenarioForecaster(world.ds, horizons=cfg.horizon, seed=cfg.seed, model_error=model_error).fit()
        rng = np.random.default_rng([cfg.seed, r, 1])
        ids = world.ds.units["unit_id"].astype(str).to_numpy()
        focal_units = rng.choice(ids, size=min(cfg.scenarios, len(ids)), replace=False)
        base_h = world.simulate(None, (), 1.0)
        index = pd.Index(ids)
        for f in focal_units:
            sc = Scenario(id=f"sim_{f}", unit=str(f), partners=cfg.partners, start_year=world.origin + 1,
                          factor=cfg.factor)
            answer = sf.answer(sc)
            applied_partners = tuple(answer.loc[answer["role"] == "partner", "unit_id"].unique())
            coop_h = world.simulate(int(index.get_indexer(pd.Index([f]))[0]), applied_partners, cfg.factor)
            truth = 100 * (coop_h / base_h - 1)
            at = answer[(answer["horizon"] == cfg.horizon) & answer["role"].isin(["focal", "partner"])]
            for _, row in at.iterrows():
                i = index.get_loc(row["unit_id"])
                est = 100 * row["difference"] / row["baseline"]
                lo = 100 * row["difference_lower90"] / row["baseline"]
                hi = 100 * row["difference_upper90"] / row["baseline"]
                rows.append({"replication": r, "scenario": sc.id, "unit_id": row["unit_id"], "role": row["role"],
                             "estimator": row["method"], "truth": truth[i], "estimate": est, "lower90": lo,
                             "upper90": hi})
            if progress is not None:
                progress()
    units = pd.DataFrame(rows)
    zero = units[units["estimator"] == "dml"].assign(estimator="zero", estimate=0.0, lower90=0.0, upper90=0.0)
    units = pd.concat([units, zero], ignore_index=True)
    units["error"] = units["estimate"] - units["truth"]
    units["covered"] = ((units["truth"] >= units["lower90"]) & (units["truth"] <= units["upper90"])).astype(float)
    units.loc[units["estimator"] != "dml", "covered"] = np.nan
    table = units.groupby(["estimator", "role"]).agg(
        n=("error", "size"), mean_truth=("truth", "mean"), bias=("error", "mean"),
        sqrt_pehe=("error", lambda e: float(np.sqrt(np.mean(np.square(e))))), coverage90=("covered", "mean"),
    ).reset_index()
    zero_pehe = table[table["estimator"] == "zero"].set_index("role")["sqrt_pehe"]
    table["pehe_vs_zero"] = table["sqrt_pehe"] / table["role"].map(zero_pehe)
    order = {"zero": 0, "forecaster_whatif": 1, "dml": 2}
    table = table.sort_values(["role", "estimator"], key=lambda s: s.map(order) if s.name == "estimator" else s)
    return ValidationResult(table.reset_index(drop=True), units, resolved)


@dataclass
class PlaceboResult:
    """Per placebo: the draws (estimate, se, z) and the pass rule's verdict."""

    draws: pd.DataFrame
    summary: pd.DataFrame


def _dml_scalar(ds: Dataset, frame: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray, controls: list[str],
                groups: np.ndarray, seed: int) -> tuple[float, float]:
    XW = frame[controls].to_numpy(float)
    (y_res, t_res), _ = cross_fit_residuals([outcome, treatment], XW, groups, 5, seed)
    coef, cov = clustered_final_stage(y_res, t_res, np.ones((len(y_res), 1)), groups)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def placebo_checks(ds: Dataset, draws: int = 10, horizon: int = 5, seed: int = 0,
                   progress: Callable[[], None] | None = None) -> PlaceboResult:
    """Placebo estimates on the real data (see the module docstring): permuted ties and fake cooperation."""
    pf = build_features(ds)
    ce = CooperationEffects(horizons=horizon, seed=seed)
    treat = tie_strength(ds)
    frame = ce.design_rows(pf.frame, treat, horizon)
    groups_ = pf.groups()
    controls = [c for g in ("history", "demography", "fiscal", "income") for c in groups_.get(g, [])]
    controls += [f"{TREATMENT}_0", f"{TREATMENT}_-2", "year"]
    target = ds.primary_target
    from ._data import target_matrix

    tm = target_matrix(ds.panel, target, ds.break_column, pd.Index(sorted(ds.units["unit_id"].astype(str))))
    growth = pd.Series(np.concatenate([tm.growth(int(y), horizon) for y in tm.years]),
                       index=pd.MultiIndex.from_product([list(tm.years.astype(int)), list(tm.units)]).swaplevel())
    key = pd.MultiIndex.from_arrays([frame["unit_id"].astype(str), frame["year"].astype(int)])
    Y = growth.reindex(key).to_numpy(float)
    first = frame[f"{TREATMENT}_1"].to_numpy(float)
    ok = np.isfinite(Y) & np.isfinite(first)
    sub = frame[ok].reset_index(drop=True)
    y, t1 = Y[ok], first[ok]
    groups = sub["unit_id"].astype(str).to_numpy()
    years = sub["year"].to_numpy(int)
    rng = np.random.default_rng(seed)
    rows = []
    last = int(years.max())
    for k in range(draws):
        perm = t1.copy()
        for yr in np.unique(years):  # permute the ties across units within each year
            at = np.flatnonzero(years == yr)
            perm[at] = t1[rng.permutation(at)]
        est, se = _dml_scalar(ds, sub, perm, y, controls, groups, seed)
        rows.append({"placebo": "permuted partners", "draw": k, "estimate": est, "se": se})
        if progress is not None:
            progress()
        # half of the units "cooperate" from the fake start: with few treated clusters, clustered standard errors
        # are known to be too small (Conley & Taber 2011), which would test that and not the estimator
        chosen = set(rng.choice(np.unique(groups), size=max(5, len(np.unique(groups)) // 2), replace=False))
        start = int(rng.integers(int(years.min()) + 3, last - 1))
        fake = (np.isin(groups, list(chosen)) & (years >= start)).astype(float)
        est, se = _dml_scalar(ds, sub, fake, y, controls, groups, seed)
        rows.append({"placebo": "fake cooperation start", "draw": k, "estimate": est, "se": se})
        if progress is not None:
            progress()
    d = pd.DataFrame(rows)
    d["z"] = d["estimate"] / d["se"]
    d["reject10"] = (d["z"].abs() > stats.norm.ppf(0.95)).astype(float)
    summ = []
    for name, g in d.groupby("placebo", sort=False):
        mean, se_mean = g["estimate"].mean(), np.sqrt(np.mean(g["se"] ** 2) / len(g))
        rate = g["reject10"].mean()
        covers = abs(mean) <= stats.norm.ppf(0.95) * se_mean * np.sqrt(len(g))  # draws share data: conservative
        summ.append({"placebo": name, "draws": len(g), "mean_estimate": mean, "mean_se": g["se"].mean(),
                     "rejection_rate_10pct": rate, "passes": bool(rate <= 0.2 and covers)})
    return PlaceboResult(d, pd.DataFrame(summ))
