"""Explanation reports for officials: one self-contained HTML page per unit, and a national summary.

A report is one HTML file that needs nothing else: inline CSS, charts as base64 PNG, the Korean font
(NanumGothic, OFL) embedded as a base64 ``@font-face`` subset, no script, no link to the network. It prints to
A4 pages (one section per page; ``--pdf`` prints it with headless Chromium).

Per unit (``write_unit_report``): the forecast trajectories of population and income without and with a
cooperation scenario (80% and 90% intervals); why the model forecasts what it does (SHAP by feature group and
the top drivers in plain words); the cooperation effect, which partners drive it and how the two trajectories
differ, by the reported estimator (double ML); the strongest reciprocal ties (table and map); caveats.

National (``write_summary``): small and mid-size provincial cities ranked by forecast decline and by expected
gain, the response level of every unit (rule: :data:`TIER_RULE`) against the 89 designated population-decline
areas, a choropleth and a map of the strongest ties, and the global SHAP summary. ``write_all_reports`` writes
every unit's report and the summary with the models fitted once (:class:`ReportContext`).

Year convention: ``origin`` is the last data year; a target whose data end earlier (income: 2023) is forecast
from its own last year. Horizons count years from each target's start.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tiecast.common import ConfigError, atomic_write, stage
from tiecast.features import (
    BUILTIN_SCENARIOS,
    Dataset,
    PanelFeatures,
    Scenario,
    builtin_scenario,
    load_dataset,
    pair_indices,
    read_scenarios,
)
from tiecast.training import MODEL_ERROR, REPORTED_METHOD, ScenarioForecaster, tie_strength

from ._charts import (
    DIFFERENCE_LEGEND,
    TRAJECTORY_LEGEND,
    MapData,
    TrajectoryPanel,
    beeswarm_chart,
    chart_style,
    choropleth_chart,
    difference_chart,
    group_bar_chart,
    national_ties_chart,
    tie_map_chart,
    trajectory_chart,
    waterfall_chart,
)
from ._explain import Explanation, explain_forecast, top_drivers
from ._font import CSS_FAMILY, FONT_LICENSE, font_face_css
from ._text import check_lang, feature_label, format_change, format_number, format_pct, group_label
from ._words import w

__all__ = [
    "DEFAULT_SCENARIO",
    "TIER_RULE",
    "Evidence",
    "ReportContext",
    "UnitNumbers",
    "check_scenario",
    "load_evidence",
    "log_reports_to_mlflow",
    "report_context",
    "reported_rows",
    "resolve_unit",
    "summary_html",
    "unit_numbers",
    "unit_report_html",
    "write_all_reports",
    "write_summary",
    "write_unit_report",
]

REPORT_HORIZON = 10       # years of the population trajectory and of the response level
SHAP_HORIZON = 5          # years explained by SHAP (the pooled booster's direct horizons)
INCOME_HORIZON = 5        # income is shown to 5 years from its last data year (longer chains are too wide)
TOP_TIES = 10
HISTORY_YEARS = 12     # years of history drawn before each target's last data year
DEFAULT_SCENARIO = "top3"
FONT_PLACEHOLDER = "/*@@TIECAST_FONT@@*/"
# Response level (대응 수준) from the population forecast over REPORT_HORIZON years (change in % and its 90%
# interval); the first rule that holds applies.
TIERS = (
    ("1", "심각", "severe", "90% 구간 전체가 감소(상한 < 0): 감소가 거의 확실",
     "the whole 90% interval below zero: decline near certain"),
    ("2", "경계", "high", "80% 구간 전체가 감소(상한 < 0): 감소 가능성 높음",
     "the whole 80% interval below zero: decline likely"),
    ("3", "주의", "watch", "예측은 감소이나 80% 구간이 0을 포함", "forecast decline, the 80% interval includes zero"),
    ("4", "안정", "stable", "예측 변화 0 이상", "forecast change of zero or more"),
)
TIER_RULE = "; ".join(f"{t[0]} {t[2]}: {t[4]}" for t in TIERS)

# Pinned copy of `tiecast effects validate --seed 0` (benchmarks/results/effects_validation/, 4 worlds x 15
# scenarios, h = 5; placebos 10 draws each), used where that folder is absent (an installed wheel). A test
# checks it equals the folder's CSV files.
PINNED_TABLE = [
    ("zero", "focal", 60, 3.842669540205457, -3.842669540205457, 5.680029559292689, math.nan, 1.0),
    ("forecaster_whatif", "focal", 60, 3.842669540205457, -3.1583175018636798, 5.009952837284083, math.nan,
     0.8820293600563502),
    ("dml", "focal", 60, 3.842669540205457, -1.376314021707831, 1.683061317376531, 0.85, 0.29631207017628897),
    ("zero", "partner", 180, 1.401231401466662, -1.401231401466662, 2.0102183842992947, math.nan, 1.0),
    ("forecaster_whatif", "partner", 180, 1.401231401466662, -1.2104824754101455, 1.7720395862822407, math.nan,
     0.8815159587250136),
    ("dml", "partner", 180, 1.401231401466662, -0.32771134670185514, 0.5631953636265894, 0.8833333333333333,
     0.2801662585644412),
]
PINNED_PLACEBO = [
    ("permuted partners", 10, -0.0013532511526766933, 0.005304020402026188, 0.0, True),
    ("fake cooperation start", 10, 0.003062724098049069, 0.00594532735653495, 0.0, True),
]
TABLE_COLUMNS = ["estimator", "role", "n", "mean_truth", "bias", "sqrt_pehe", "coverage90", "pehe_vs_zero"]
PLACEBO_COLUMNS = ["placebo", "draws", "mean_estimate", "mean_se", "rejection_rate_10pct", "passes"]
Z80, Z90 = float(stats.norm.ppf(0.9)), float(stats.norm.ppf(0.95))
EVIDENCE_FOLDER = Path("benchmarks") / "results" / "effects_validation"
PLACEBO_NAMES = {"permuted partners": ("상대 무작위 교체", "permuted partners"),
                 "fake cooperation start": ("가짜 협력 시작", "fake cooperation start")}
KIND_NAMES = {"si": ("시", "city"), "gun": ("군", "county"), "gu": ("자치구", "district")}


# ---- evidence of the effect estimate --------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """The semi-synthetic benchmark table and the real-data placebos (``tiecast effects validate``)."""

    table: pd.DataFrame
    placebo: pd.DataFrame
    source: str

    def row(self, estimator: str, role: str) -> dict[str, Any]:
        hit = self.table[(self.table["estimator"] == estimator) & (self.table["role"] == role)]
        return {str(k): v for k, v in hit.iloc[0].to_dict().items()} if len(hit) else {}


def load_evidence(folder: str | Path | None = None) -> Evidence:
    """The validation results from ``folder`` (``table.csv``, ``placebo.csv``); by default the project's
    ``benchmarks/results/effects_validation`` when it exists, else the pinned copy (:data:`PINNED_TABLE`)."""
    candidates = [Path(folder)] if folder is not None else [
        Path.cwd() / EVIDENCE_FOLDER, Path(__file__).resolve().parent.parent / EVIDENCE_FOLDER]
    for cand in candidates:
        if (cand / "table.csv").is_file() and (cand / "placebo.csv").is_file():
            shown = str(folder) if folder is not None else EVIDENCE_FOLDER.as_posix()
            return Evidence(pd.read_csv(cand / "table.csv"), pd.read_csv(cand / "placebo.csv"),
                            f"tiecast effects validate ({shown})")
    if folder is not None:
        raise ConfigError(f"validation folder {folder} lacks table.csv and placebo.csv (write them with "
                          "`tiecast effects validate --out DIR`)", parameter="validation")
    return Evidence(pd.DataFrame(PINNED_TABLE, columns=TABLE_COLUMNS),
                    pd.DataFrame(PINNED_PLACEBO, columns=PLACEBO_COLUMNS),
                    "tiecast effects validate --seed 0 (pinned copy)")


# ---- the fitted context ---------------------------------------------------------------------------------------
@dataclass
class ReportContext:
    """Everything reports share, computed once: the fitted :class:`ScenarioForecaster`, forecasts with both
    intervals, SHAP explanations of every unit, the tie table, the map, peers and response levels."""

    ds: Dataset
    sf: ScenarioForecaster
    evidence: Evidence
    names: pd.Series
    catalog: dict[str, Any]
    groups: dict[str, str]
    starts: dict[str, int]
    rows: dict[str, pd.DataFrame]
    forecasts: dict[str, pd.DataFrame]
    levels: dict[str, pd.Series]
    explanations: dict[str, Explanation]
    ranges: dict[str, pd.DataFrame]
    pairs: pd.DataFrame
    flow_kind: str | None
    flow_year: int | None
    size_class: pd.Series
    tiers: pd.DataFrame
    md: MapData | None
    group_contrib: dict[str, pd.DataFrame] = field(default_factory=dict)  # target -> units x groups (SHAP)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit -> scenario summary (filled on use)

    @property
    def origin(self) -> int:
        return int(self.sf.origin)

    @property
    def horizon(self) -> int:
        return int(self.sf.horizons)

    @property
    def primary(self) -> str:
        return self.ds.primary_target

    def resolve_unit(self, text: str) -> str:
        return resolve_unit(self.ds, text)

    def peers(self, unit: str) -> list[str]:
        cls = self.size_class.get(unit)
        return list(self.size_class.index[self.size_class == cls]) if cls is not None else []

    def flag(self, unit: Any, column: str) -> bool:
        u = self.ds.units.set_index(self.ds.units["unit_id"].astype(str))
        value: Any = u.loc[unit, column] if column in u.columns else 0
        return bool(float(value or 0) == 1)


def resolve_unit(ds: Dataset, text: str) -> str:
    """A unit id from a code or a unique name (Korean, romanized, or the display name such as "중구 (서울특별시)")."""
    units = ds.units.assign(unit_id=ds.units["unit_id"].astype(str))
    if text in set(units["unit_id"]):
        return text
    shown = ds.display_names().astype(str).reindex(units["unit_id"]).to_numpy()
    hits = units[(units["name"] == text) | (units.get("name_en", pd.Series(dtype=str)) == text) | (shown == text)]
    if len(hits) != 1:
        how = "matches several units: give the code" if len(hits) else "is neither a unit code nor a unit name"
        raise ConfigError(f"unit {text!r} {how} of dataset {ds.name!r}", parameter="unit")
    return str(hits["unit_id"].iloc[0])


def check_scenario(spec: str | None) -> None:
    """Fail early (before any fitting) on a scenario that is neither built in nor a readable file."""
    if spec and not (spec in BUILTIN_SCENARIOS or (spec.startswith("top") and spec[3:].isdigit())):
        read_scenarios(spec)


def report_context(source: Dataset | str | ScenarioForecaster, *, horizons: int = REPORT_HORIZON, seed: int = 0,
                   n_jobs: int = 2, params: dict[str, Any] | None = None, features: PanelFeatures | None = None,
                   evidence: Evidence | None = None) -> ReportContext:
    """Fit the models once (or reuse a fitted :class:`ScenarioForecaster`) and precompute what every report
    needs. ``source``: a dataset, its folder or bundled name, or a fitted forecaster (its horizons are used)."""
    if isinstance(source, ScenarioForecaster):
        sf = source
        if not hasattr(sf, "forecaster_"):
            sf.fit()
    else:
        ds0 = source if isinstance(source, Dataset) else load_dataset(source)
        sf = ScenarioForecaster(ds0, horizons=horizons, seed=seed, n_jobs=n_jobs, params=params,
                                features=features).fit()
    ds, fc, pf = sf.ds, sf.forecaster_, sf.pf_
    catalog = {s.name: s for s in pf.catalog}
    groups = {s.name: s.group for s in pf.catalog}
    starts = {t: int(y) for t, y in fc.data_end_.items()}
    rows, forecasts, levels, explanations, ranges = {}, {}, {}, {}, {}
    for target, start in starts.items():
        r = pf.frame[pf.frame["year"] == start].reset_index(drop=True)
        rows[target] = r
        out = fc.predict(r)
        forecasts[target] = out[out["target"] == target].assign(unit_id=lambda d: d["unit_id"].astype(str))
        panel = ds.panel[ds.panel["year"] == start]
        levels[target] = panel.set_index(panel["unit_id"].astype(str))[target]
        explanations[target] = explain_forecast(fc, r, target, min(SHAP_HORIZON, sf.horizons))
        train = pf.frame[pf.frame["year"] < start].reindex(columns=fc.feature_names_)
        ranges[target] = train.quantile([0.01, 0.99]).T
    kind = ds.main_flow_kind
    flow_year = None
    pairs = pd.DataFrame(columns=["origin", "destination", "flow_ij", "flow_ji", "volume", "tie_index"])
    if kind is not None:
        years = ds.flows.loc[(ds.flows["kind"] == kind) & (ds.flows["year"] <= sf.origin), "year"]
        if len(years):
            flow_year = int(years.max())
            flows = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] == flow_year)]
            mass = ds.panel[ds.panel["year"] == min(flow_year, sf.origin)]
            if {"lat", "lon"} <= set(ds.units.columns) and ds.units[["lat", "lon"]].notna().all().all():
                pairs = pair_indices(flows, ds.units, mass.set_index(mass["unit_id"].astype(str))[ds.mass_column])
            else:  # no coordinates: volumes and reciprocity only (the gravity-based indices need distances)
                pairs = _plain_pairs(flows)
            pairs = pairs.assign(origin=pairs["origin"].astype(str), destination=pairs["destination"].astype(str))
    at_origin = ds.panel[ds.panel["year"] == sf.origin]
    size: pd.Series = at_origin.set_index(at_origin["unit_id"].astype(str))[ds.mass_column].dropna()
    ranks = size.rank(method="first").to_numpy(float)
    size_class = pd.Series(pd.qcut(ranks, 5, labels=False), index=size.index).astype(int)
    boundaries = Path(ds.path) / "boundaries.geojson"
    md = MapData.load(boundaries, ds.units) if boundaries.is_file() else None
    ctx = ReportContext(ds=ds, sf=sf, evidence=evidence or load_evidence(), names=ds.display_names().astype(str),
                        catalog=catalog, groups=groups, starts=starts, rows=rows, forecasts=forecasts, levels=levels,
                        explanations=explanations, ranges=ranges, pairs=pairs, flow_kind=kind, flow_year=flow_year,
                        size_class=size_class, tiers=pd.DataFrame(), md=md)
    ctx.tiers = _tiers(ctx)
    ctx.group_contrib = {t: e.by_group(groups) for t, e in explanations.items()}
    return ctx


def _plain_pairs(flows: pd.DataFrame) -> pd.DataFrame:
    """Ordered pairs with volumes and reciprocity, without the indices that need distances (NaN)."""
    f = flows[flows["origin"].astype(str) != flows["destination"].astype(str)]
    f = f.assign(origin=f["origin"].astype(str), destination=f["destination"].astype(str))
    ij = f.groupby(["origin", "destination"])["value"].sum()
    ji = ij.copy()
    ji.index = pd.MultiIndex.from_arrays([ij.index.get_level_values(1), ij.index.get_level_values(0)])
    both = pd.concat([ij.rename("flow_ij"), ji.rename("flow_ji")], axis=1).fillna(0.0).reset_index()
    both = both.rename(columns={"level_0": "origin", "level_1": "destination"})
    volume = both["flow_ij"] + both["flow_ji"]
    both["volume"] = volume
    both["reciprocity"] = np.where(volume > 0, 2 * np.minimum(both["flow_ij"], both["flow_ji"]) / volume, 0.0)
    for col in ("distance_km", "expected_gravity", "strength_log", "tie_index"):
        both[col] = np.nan
    both["is_dominant"] = False
    return both


def _tiers(ctx: ReportContext) -> pd.DataFrame:
    """Response level of every unit from the primary target's forecast change to the report horizon."""
    target = ctx.primary
    h = min(REPORT_HORIZON, ctx.horizon)
    f = ctx.forecasts[target]
    f = f[f["horizon"] == h].set_index("unit_id")
    level = ctx.levels[target].reindex(f.index)
    out = pd.DataFrame({"change": 100 * (f["point"] / level - 1), "lower90": 100 * (f["lower90"] / level - 1),
                        "upper90": 100 * (f["upper90"] / level - 1), "lower80": 100 * (f["lower80"] / level - 1),
                        "upper80": 100 * (f["upper80"] / level - 1), "year": f["target_year"].astype(int)})
    tier = np.where(out["upper90"] < 0, "1", np.where(out["upper80"] < 0, "2", np.where(out["change"] < 0, "3", "4")))
    out["tier"] = np.where(out["change"].notna(), tier, "")
    out["horizon"] = h
    return out


# ---- one unit's numbers ---------------------------------------------------------------------------------------
def _scenario(ctx: ReportContext, unit: str, spec: str | Scenario | None) -> Scenario:
    if isinstance(spec, Scenario):
        sc = spec
    else:
        name = spec or DEFAULT_SCENARIO
        if name in BUILTIN_SCENARIOS or (name.startswith("top") and name[3:].isdigit() and not Path(name).exists()):
            sc = builtin_scenario(name, unit, ctx.origin)
        else:
            found = [s for s in read_scenarios(name) if str(s.unit) == unit]
            if len(found) != 1:
                raise ConfigError(f"scenario {name}: {len(found)} scenarios for unit {unit} (need exactly one)",
                                  parameter="scenario")
            sc = found[0]
    if str(sc.unit) != unit:
        raise ConfigError(f"scenario {sc.id!r} is for unit {sc.unit}, not {unit}", parameter="scenario")
    return sc


@dataclass
class UnitNumbers:
    unit: str
    scenario: Scenario
    partners: tuple[str, ...]
    answer: pd.DataFrame           # the reported method's rows for the unit and its partners
    alone: pd.DataFrame            # partner, effect of the partner alone on the unit (persons at the horizon)
    delta_t: pd.Series             # change of tie strength per unit (the scenario)
    ties: pd.DataFrame             # the unit's strongest ties
    treatment_before: float


def unit_numbers(ctx: ReportContext, unit: str, scenario: str | Scenario | None = None) -> UnitNumbers:
    """The numbers of one unit's report: the scenario's reported estimate for the unit and its partners (as
    :meth:`ScenarioForecaster.answer` computes them, without the network measures the estimate does not need),
    each partner's part of it, the unit's strongest ties."""
    sf = ctx.sf
    sc = _scenario(ctx, unit, scenario)
    applied = sf.apply(sc)
    partners = tuple(applied.partners)
    delta, _, _ = sf.delta_treatment(applied, full_measures=False)
    ans = reported_rows(sf, applied, delta, [unit, *partners])
    alone = _alone(ctx, applied, delta, ans)
    mine = ctx.pairs[ctx.pairs["origin"] == unit].sort_values(["tie_index", "volume"], ascending=False,
                                                               na_position="last")
    before = float(sf.treatment_.xs(ctx.origin, level="year").get(unit, np.nan))
    return UnitNumbers(unit=unit, scenario=sc, partners=partners, answer=ans, alone=alone, delta_t=delta,
                       ties=mine.head(TOP_TIES).reset_index(drop=True), treatment_before=before)


def reported_rows(sf: ScenarioForecaster, applied: Any, delta: pd.Series, units: Sequence[str]) -> pd.DataFrame:
    """The reported (DML) rows of an applied scenario for ``units`` in the forecast schema
    (:meth:`ScenarioForecaster.dml_rows`, the numbers of ``sf.answer(scenario, units, methods=("dml",))``) from a
    tie-strength change ``delta`` computed with ``full_measures=False`` (the estimate needs only the strengths)."""
    return sf.dml_rows(applied, delta, [str(u) for u in units]).reset_index(drop=True)


def _alone(ctx: ReportContext, applied: Any, delta: pd.Series, ans: pd.DataFrame) -> pd.DataFrame:
    """Each partner's part of the unit's effect: the unit's tie-strength change if the scenario touched only the
    flows with that partner, and the effect it implies at the report's effect horizon (the reported effect is
    linear in the unit's tie-strength change, theta * k * dT)."""
    sf, ds = ctx.sf, ctx.ds
    unit, partners = applied.scenario.unit, tuple(applied.partners)
    year = ctx.origin + min(SHAP_HORIZON, ctx.horizon)
    r = ans[(ans["unit_id"] == unit) & (ans["target"] == ctx.primary) & (ans["year"] == year)]
    base = float(r["baseline"].iloc[0]) if len(r) else float("nan")
    total_log = math.log(float(r["cooperation"].iloc[0]) / base) if len(r) and base > 0 else float("nan")
    total_dt = float(delta.get(unit, 0.0))
    mapping = {v: k for k, v in ds.panel_flow_measures(applied.kind).items()}
    pairs = ctx.pairs[ctx.pairs["origin"] == unit].set_index("destination")
    dts: dict[str, float] = {}
    if ("in_strength" in mapping and "out_strength" in mapping and applied.kind == ctx.flow_kind
            and applied.flow_year == ctx.flow_year):
        # the panel strengths of the unit change by the partner's extra flows only (as scenario_state does)
        p = ds.panel[(ds.panel["unit_id"].astype(str) == unit) & ds.panel["year"].between(ctx.origin - 1, ctx.origin)]
        frames = []
        for q in partners:
            extra = applied.pair_factor.get(q, 1.0) - 1.0
            flow_out = float(pairs["flow_ij"].get(q, 0.0)) if q in pairs.index else 0.0
            flow_in = float(pairs["flow_ji"].get(q, 0.0)) if q in pairs.index else 0.0
            f = p.assign(unit_id=f"{unit}|{q}")
            at = (f["year"] == ctx.origin).to_numpy()
            f.loc[at, mapping["in_strength"]] = f.loc[at, mapping["in_strength"]].astype(float) + extra * flow_in
            f.loc[at, mapping["out_strength"]] = f.loc[at, mapping["out_strength"]].astype(float) + extra * flow_out
            frames.append(f)
        if frames:
            ts = tie_strength(ds, pd.concat(frames, ignore_index=True)).xs(ctx.origin, level="year")
            t0 = float(sf.treatment_.xs(ctx.origin, level="year").get(unit, np.nan))
            dts = {q: float(ts.get(f"{unit}|{q}", np.nan)) - t0 for q in partners}
    else:  # any other scenario: one scenario per partner (slower, same result)
        for q in partners:
            one = sf.apply(dataclasses.replace(applied.scenario, id=f"{applied.id}_alone_{q}", partners=(q,)))
            dts[q] = float(sf.delta_treatment(one, full_measures=False)[0].get(unit, 0.0))
    rows = []
    for q in partners:
        share = dts.get(q, np.nan) / total_dt if total_dt else float("nan")
        rows.append({"partner": q, "delta_t": dts.get(q, np.nan), "persons": base * math.expm1(total_log * share)})
    return pd.DataFrame(rows, columns=["partner", "delta_t", "persons"])


# ---- HTML helpers ---------------------------------------------------------------------------------------------
def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _legend(entries: Sequence[tuple[str, str, str, float]], labels: dict[str, str]) -> str:
    """A chart legend in HTML (see :data:`TRAJECTORY_LEGEND`): swatches drawn with CSS."""
    items = []
    for key, kind, color, alpha in entries:
        rgb = ",".join(str(int(color[i:i + 2], 16)) for i in (1, 3, 5))
        if kind == "band":
            style = f"background:rgba({rgb},{alpha});height:9px"
        elif kind == "marker":
            style = f"border-top:2px solid {color};height:0"
        else:
            line = {"line": "solid", "dashed": "dashed", "dotted": "dotted"}[kind]
            style = f"border-top:2px {line} {color};height:0"
        items.append(f'<span class="lg"><span class="sw" style="{style}"></span>{esc(labels.get(key, key))}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


CSS = """
@page { size: A4; margin: 11mm 12mm; }
* { box-sizing: border-box; }
html { font-family: '%(family)s', sans-serif; font-size: 10pt; color: #1d1d1d; background: #fff; }
body { margin: 0 auto; max-width: 800px; padding: 14px 18px; line-height: 1.42; }
section.page { break-after: page; page-break-after: always; padding-bottom: 6px; }
section.page:last-of-type { break-after: auto; page-break-after: auto; }
h1 { font-size: 16pt; margin: 0 0 2px; }
h2 { font-size: 12.5pt; margin: 10px 0 6px; padding-bottom: 2px; border-bottom: 2px solid #1f5fa8; }
h3 { font-size: 10.5pt; margin: 8px 0 4px; }
p { margin: 4px 0; }
.meta { color: #555; font-size: 8.5pt; }
.cards { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; margin: 6px 0; }
.card { border: 1px solid #d6dce5; border-radius: 5px; padding: 6px 9px; background: #f6f8fb; }
.card .k { font-size: 8.5pt; color: #555; }
.card .v { font-size: 12.5pt; font-weight: 700; }
.card .s { font-size: 8.5pt; }
table { border-collapse: collapse; width: 100%%; font-size: 8.5pt; margin: 4px 0; }
th { background: #eef2f7; font-weight: 700; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 2px 5px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.l, th.l { text-align: left; white-space: normal; }
table.rank td:nth-child(2), table.rank th:nth-child(2) { text-align: left; }
img { width: 100%%; height: auto; display: block; margin: 4px 0; }
img.half { width: 49%%; display: inline-block; }
.legend { text-align: center; font-size: 8pt; color: #333; margin: -2px 0 4px; }
.lg { display: inline-block; margin: 0 7px; white-space: nowrap; }
.sw { display: inline-block; width: 18px; margin-right: 4px; vertical-align: middle; }
ul { margin: 4px 0 4px 18px; padding: 0; }
li { margin: 2px 0; }
.note { font-size: 8pt; color: #555; }
.tier { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 700; font-size: 8.5pt; }
.tier-1 { background: #b03a2e; color: #fff; } .tier-2 { background: #e67e22; color: #fff; }
.tier-3 { background: #f4d03f; color: #222; } .tier-4 { background: #58a55c; color: #fff; }
.pos { color: #1e7d46; } .neg { color: #b03a2e; }
a { color: #1f5fa8; }
@media print { body { max-width: none; padding: 0; } a { color: inherit; text-decoration: none; } }
"""


def _document(title: str, body: str, lang: str) -> str:
    css = CSS % {"family": CSS_FAMILY}
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f'<style>\n{FONT_PLACEHOLDER}\n{css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n')


def _strip_images(text: str) -> str:
    return "".join(part.split('"', 1)[-1] for part in text.split("base64,"))


def embed_font(document: str, chars: str | None = None) -> str:
    """Replace the font placeholder by the embedded font subset for the document's characters (or ``chars``)."""
    return document.replace(FONT_PLACEHOLDER, font_face_css(chars if chars is not None else _strip_images(document)))


def _tier_badge(tier: str, lang: str) -> str:
    t = next((x for x in TIERS if x[0] == tier), None)
    if t is None:
        return "–"
    return f'<span class="tier tier-{t[0]}">{t[0]} {esc(t[1] if lang == "ko" else t[2])}</span>'


def _number(x: Any, decimals: int, suffix: str, sign: bool) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "–"
    return (f"{x:+,.{decimals}f}" if sign else f"{x:,.{decimals}f}") + suffix


def _persons(x: Any, lang: str, sign: bool = False) -> str:
    return _number(x, 0, "명" if lang == "ko" else "", sign)


def _money(x: Any, lang: str, sign: bool = False) -> str:
    return _number(x, 2, " 백만 원" if lang == "ko" else " M KRW", sign)


def _fmt_target(target: str, x: Any, lang: str, sign: bool = False) -> str:
    return _persons(x, lang, sign) if target == "population" else (
        _money(x, lang, sign) if target == "income" else _number(x, 2, "", sign))


def _names(ctx: ReportContext, ids: Iterable[Any]) -> str:
    return ", ".join(str(ctx.names.get(i, i)) for i in ids)


def _scenario_text(ctx: ReportContext, sc: Scenario, partners: Sequence[str], lang: str) -> str:
    kind = str(sc.flow_kind or ctx.flow_kind or "")
    values = {"partners": _names(ctx, partners), "kind": _kind_label(kind, lang), "start": sc.start_year,
              "end": f"–{sc.end_year}" if sc.end_year else "", "id": sc.id}
    if sc.to_quantile is not None:
        return w("scenario_quantile", lang, q=f"{sc.to_quantile:.0%}", **values)
    return w("scenario_factor", lang, factor=f"{sc.factor:g}", **values)


def _kind_label(kind: str, lang: str) -> str:
    return {"migration": ("인구이동", "migration"), "trips": ("통행", "trips")}.get(kind, (kind, kind))[
        0 if lang == "ko" else 1]


def _interval(lo: Any, hi: Any, fmt: Callable[[Any], str]) -> str:
    return f"{fmt(lo)} ~ {fmt(hi)}"


# ---- one unit's report ----------------------------------------------------------------------------------------
def unit_report_html(ctx: ReportContext, unit: str, scenario: str | Scenario | None = None, lang: str = "ko",
                     embed: bool = True, numbers: UnitNumbers | None = None) -> str:
    """The HTML of one unit's report (``embed=False``: with the font placeholder, for :func:`embed_font`)."""
    lang = check_lang(lang)
    unit = ctx.resolve_unit(unit)
    num = numbers or unit_numbers(ctx, unit, scenario)
    name = str(ctx.names.get(unit, unit))
    urow: Any = ctx.ds.units.set_index(ctx.ds.units["unit_id"].astype(str)).loc[unit]
    with chart_style():
        parts = [_page_forecast(ctx, num, name, urow, lang), _page_why(ctx, num, lang),
                 _page_cooperation(ctx, num, lang), _page_ties(ctx, num, lang), _page_caveats(ctx, num, lang)]
    doc = _document(w("title", lang, name=name, unit=unit), "\n".join(parts), lang)
    return embed_font(doc) if embed else doc


def _trajectory(ctx: ReportContext, num: UnitNumbers, target: str, horizon: int) -> pd.DataFrame:
    f = ctx.forecasts[target]
    f = f[(f["unit_id"] == num.unit) & (f["horizon"] <= horizon)].sort_values("horizon")
    out = pd.DataFrame({"year": f["target_year"].astype(int).to_numpy(), "horizon": f["horizon"].to_numpy(int),
                        "point": f["point"].to_numpy(float), "lower80": f["lower80"].to_numpy(float),
                        "upper80": f["upper80"].to_numpy(float), "lower90": f["lower90"].to_numpy(float),
                        "upper90": f["upper90"].to_numpy(float)})
    a = num.answer[(num.answer["unit_id"] == num.unit) & (num.answer["target"] == target)]
    a = a.set_index("year").reindex(out["year"])
    ratio = (a["cooperation"] / a["baseline"]).to_numpy(float)
    for col in ("cooperation", "cooperation_lower90", "cooperation_upper90", "difference", "difference_lower80",
                "difference_upper80", "difference_lower90", "difference_upper90", "extrapolation"):
        out[col] = a[col].to_numpy(float)
    out["cooperation_lower80"] = out["lower80"] * ratio
    out["cooperation_upper80"] = out["upper80"] * ratio
    return out


def _history(ctx: ReportContext, unit: str, target: str) -> pd.Series:
    p = ctx.ds.panel[ctx.ds.panel["unit_id"].astype(str) == unit]
    p = p[p["year"] <= ctx.starts[target]]
    return p.set_index("year")[target].dropna().astype(float)


def _horizons(ctx: ReportContext, target: str) -> int:
    return min(ctx.horizon, REPORT_HORIZON if target == ctx.primary else INCOME_HORIZON)


def _unit_word(target: str, lang: str) -> str:
    return w("persons", lang) if target == "population" else w("money", lang) if target == "income" else target


def _card(ctx: ReportContext, target: str, label: str, traj: pd.DataFrame, h: int, level0: float, lang: str) -> str:
    r = traj.iloc[h - 1]
    start = ctx.starts[target]
    chg = 100 * (r["point"] / level0 - 1)

    def f(x: float, sign: bool = False) -> str:
        return _fmt_target(target, x, lang, sign)

    return (f'<div class="card"><div class="k">{esc(label)} {start} → {int(r["year"])}</div>'
            f'<div class="v">{f(r["point"])} <span class="{"neg" if chg < 0 else "pos"}">({format_pct(chg)})'
            f'</span></div><div class="s">{start}: {f(level0)} · 90% {f(r["lower90"])} – {f(r["upper90"])}</div>'
            f'<div class="s">{w("with_coop", lang)}: {f(r["difference"], True)} '
            f'[90% {f(r["difference_lower90"], True)}, {f(r["difference_upper90"], True)}]</div></div>')


def _page_forecast(ctx: ReportContext, num: UnitNumbers, name: str, urow: Any, lang: str) -> str:
    ko = lang == "ko"
    unit = num.unit
    flags = [w(key, lang) for key, col in (("small_mid", "small_mid_city"), ("designated", "depopulation_area"))
             if ctx.flag(unit, col)]
    kind = str(urow.get("kind", "") or "")
    kind = KIND_NAMES.get(kind, (kind, kind))[0 if ko else 1]
    meta = " · ".join([x for x in (str(urow.get("group", "") or ""), kind, *flags) if x])
    labels = {k: w(k, lang) for k in ("observed", "baseline", "cooperation", "band80", "band90", "coop80", "coop90")}
    labels["history"] = labels.pop("observed")
    panels, cards, rows = [], [], []
    for target in ctx.starts:
        traj = _trajectory(ctx, num, target, _horizons(ctx, target))
        hist = _history(ctx, unit, target)
        hist = hist.loc[hist.index >= ctx.starts[target] - HISTORY_YEARS]
        label = feature_label(target, lang)
        end = int(traj["year"].max()) if len(traj) else ""
        panels.append(TrajectoryPanel(title=f"{label} ({hist.index.min()}–{end})", ylabel=_unit_word(target, lang),
                                      history=hist, forecast=traj, labels=labels))
        for r in traj.itertuples(index=False):
            rows.append([esc(label), str(r.year), _fmt_target(target, r.point, lang),
                         _interval(r.lower80, r.upper80, partial(_fmt_target, target, lang=lang)),
                         _interval(r.lower90, r.upper90, partial(_fmt_target, target, lang=lang)),
                         _fmt_target(target, r.cooperation, lang), _fmt_target(target, r.difference, lang, True)])
        level0 = float(ctx.levels[target].get(unit, np.nan))
        cards += [_card(ctx, target, label, traj, h, level0, lang) for h in sorted({min(5, len(traj)), len(traj)})
                  if h >= 1]
    chart = trajectory_chart(panels)
    tier_html = ""
    tier = ctx.tiers.loc[unit] if unit in ctx.tiers.index else None
    if tier is not None and tier["tier"]:
        rule = next(t for t in TIERS if t[0] == tier["tier"])
        tier_html = (f'<p>{w("response_level", lang)}: {_tier_badge(tier["tier"], lang)} <span class="note">'
                     f'({esc(rule[3] if ko else rule[4])}; {ctx.origin}→{int(tier["year"])} '
                     f'{format_pct(tier["change"])} [80% {format_pct(tier["lower80"])}, {format_pct(tier["upper80"])}; '
                     f'90% {format_pct(tier["lower90"])}, {format_pct(tier["upper90"])}])</span></p>')
    intro = w("intro", lang, name=esc(name), scenario=esc(_scenario_text(ctx, num.scenario, num.partners, lang)))
    header = (f'<h1>{esc(name)} <span class="meta">({esc(unit)})</span></h1><div class="meta">{esc(meta)} · '
              f'{w("data_span", lang, first=ctx.ds.years[0], origin=ctx.origin)}</div>')
    table = _table(["", w("year", lang), w("baseline", lang), w("interval80", lang), w("interval90", lang),
                    w("coop_col", lang), w("difference", lang)], rows, "small")
    return (f'<section class="page" id="forecast">{header}{intro}{tier_html}<div class="cards">{"".join(cards)}'
            f'</div><h2>{w("h_outlook", lang)}</h2>{_img(chart, "trajectories")}'
            f'{_legend(TRAJECTORY_LEGEND, {**labels, "history": w("observed", lang)})}{table}</section>')


def _page_why(ctx: ReportContext, num: UnitNumbers, lang: str) -> str:
    unit = num.unit
    panels, lists = [], []
    peers = ctx.peers(unit)
    for target, expl in ctx.explanations.items():
        i = expl.index(unit)
        by_group = ctx.group_contrib[target].iloc[i]
        steps = sorted([(group_label(str(g), lang), 100 * float(v)) for g, v in by_group.items() if abs(v) > 0],
                       key=lambda s: -abs(s[1]))
        steps.append((group_label("horizon", lang), 100 * float(expl.horizon_term[i])))
        steps.append((w("combination", lang), 100 * float(expl.other[i])))
        label = feature_label(target, lang)
        panels.append((w("growth_title", lang, label=label, years=expl.horizon), w("typical", lang),
                       100 * float(expl.base[i]), steps, w("this_unit", lang), 100 * float(expl.growth[i])))
        drivers = top_drivers(expl, unit, catalog=ctx.catalog, peers=peers, lang=lang, n=6, target_label=label)
        items = "".join(f"<li>{esc(d.text)} <span class='note'>[{esc(d.group)}]</span></li>" for d in drivers)
        start = ctx.starts[target]
        lists.append(f"<h3>{esc(w('top_drivers', lang, label=label, start=start, end=start + expl.horizon))}</h3>"
                     f"<ul>{items}</ul>")
    chart = waterfall_chart(panels)
    weights = ", ".join(f"{m} {v:.0%}" for m, v in ctx.explanations[ctx.primary].weights.items() if v > 0)
    text = w("why_text", lang, h=min(SHAP_HORIZON, ctx.horizon), weights=esc(weights), origin=ctx.origin,
             peers=len(peers))
    return (f'<section class="page" id="why"><h2>{w("h_why", lang)}</h2>{text}{_img(chart, "SHAP waterfall")}'
            f'{"".join(lists)}{w("why_caution", lang)}</section>')


def _partner_rows(ctx: ReportContext, num: UnitNumbers, year: int, lang: str) -> list[list[str]]:
    a = num.answer
    alone = num.alone.set_index("partner")["persons"]
    total = float(alone.sum()) if len(alone) else float("nan")
    ties = ctx.pairs[ctx.pairs["origin"] == num.unit].set_index("destination")
    last = a[(a["target"] == ctx.primary) & (a["year"] == year)].set_index("unit_id")
    rows = []
    for p in num.partners:
        one = float(alone.get(p, np.nan))
        share = 100 * one / total if total else float("nan")
        pr = last.loc[p] if p in last.index else None
        own = "–" if pr is None else (f"{_persons(float(pr['difference']), lang, True)} ["
                                      f"{_persons(float(pr['difference_lower90']), lang, True)}, "
                                      f"{_persons(float(pr['difference_upper90']), lang, True)}]")
        t = ties.loc[p] if p in ties.index else None
        rows.append([esc(ctx.names.get(p, p)), "–" if t is None else format_number(float(t["flow_ij"])),
                     "–" if t is None else format_number(float(t["flow_ji"])),
                     "–" if t is None else format_number(float(t["tie_index"]), 3), _persons(one, lang, True),
                     f"{share:.0f}%" if math.isfinite(share) else "–", own,
                     w("yes", lang) if pr is not None and pr["extrapolation"] else ""])
    return rows


def _page_cooperation(ctx: ReportContext, num: UnitNumbers, lang: str) -> str:
    unit = num.unit
    name = esc(ctx.names.get(unit, unit))
    a = num.answer
    horizon_year = ctx.origin + min(SHAP_HORIZON, ctx.horizon)
    panels = []
    for target in ctx.starts:
        f = a[(a["unit_id"] == unit) & (a["target"] == target)].sort_values("year")
        last = ctx.starts[target] + _horizons(ctx, target) if target != ctx.primary else horizon_year
        panels.append((w("difference_title", lang, label=feature_label(target, lang)), f[f["year"] <= last],
                       _unit_word(target, lang)))
    legend_labels = {"band80": w("band80", lang), "band90": w("band90", lang), "difference": w("difference", lang)}
    chart = difference_chart(panels, legend_labels)
    focal = a[(a["unit_id"] == unit) & (a["target"] == ctx.primary)].sort_values("year")
    hit = focal[focal["year"] == horizon_year]
    r = hit.iloc[0] if len(hit) else focal.iloc[-1]
    year = int(r["year"])
    base, diff = float(r["baseline"]), float(r["difference"])
    dt = float(num.delta_t.get(unit, 0.0))
    t0 = num.treatment_before
    k = year - num.scenario.start_year + 1
    log_e = math.log(float(r["cooperation"]) / base) if base > 0 and float(r["cooperation"]) > 0 else float("nan")
    theta = log_e / (k * dt) if dt and k > 0 else float("nan")

    def persons(x: float) -> str:
        return _persons(x, lang, True)

    zero = float(r["difference_lower90"]) <= 0 <= float(r["difference_upper90"])
    head = w("coop_head", lang, scenario=esc(_scenario_text(ctx, num.scenario, num.partners, lang)), year=year,
             name=name, diff=persons(diff), pct=format_pct(100 * diff / base if base else float("nan"), 2),
             i80=_interval(float(r["difference_lower80"]), float(r["difference_upper80"]), persons),
             i90=_interval(float(r["difference_lower90"]), float(r["difference_upper90"]), persons),
             zero=w("coop_zero", lang) if zero else "")
    why = w("coop_why", lang, method=REPORTED_METHOD.upper(), name=name,
            b0=format_number(math.exp(t0), 1) if math.isfinite(t0) else "–",
            b1=format_number(math.exp(t0 + dt), 1) if math.isfinite(t0) else "–", dt=format_change(dt, 3),
            first=ctx.ds.years[0], origin=ctx.origin, theta=format_number(100 * theta, 2), k=k, year=year,
            effect=format_pct(100 * math.expm1(log_e), 2), allowance=f"{MODEL_ERROR:.0%}")
    flows = w("flows_of", lang, year=ctx.flow_year, kind=_kind_label(str(ctx.flow_kind or ""), lang))
    partners = w("coop_partners", lang, name=name, year=year, flows=esc(flows))
    table = _table([w(c, lang) for c in ("partner", "out", "in")] + ["RTI"] +
                   [w(c, lang) for c in ("alone", "share", "partner_change", "extrap")],
                   _partner_rows(ctx, num, year, lang))
    income = ""
    inc = a[(a["unit_id"] == unit) & (a["target"] == "income")].sort_values("year")
    if "income" in ctx.starts and len(inc):
        ir = inc[inc["year"] <= ctx.starts["income"] + _horizons(ctx, "income")].iloc[-1]
        lo, hi = float(ir["difference_lower90"]), float(ir["difference_upper90"])
        income = w("income_effect", lang, year=int(ir["year"]), diff=_money(float(ir["difference"]), lang, True),
                   lo=_money(lo, lang, True), hi=_money(hi, lang, True),
                   zero=w("income_zero", lang) if lo <= 0 <= hi else "", end=ctx.starts["income"],
                   start=num.scenario.start_year)
    ev = ctx.evidence
    d, dp, wi = ev.row("dml", "focal"), ev.row("dml", "partner"), ev.row("forecaster_whatif", "focal")
    method = w("coop_method", lang, truth=format_pct(d.get("mean_truth", np.nan), 2),
               bias=format_change(d.get("bias", np.nan), 2), cov=_share(d.get("coverage90")),
               covp=_share(dp.get("coverage90")),
               whatif=format_pct(wi.get("mean_truth", np.nan) + wi.get("bias", np.nan), 2))
    return (f'<section class="page" id="cooperation"><h2>{w("h_coop", lang)}</h2>{head}'
            f'{_img(chart, "cooperation effect")}{_legend(DIFFERENCE_LEGEND, legend_labels)}{why}{partners}{table}'
            f'{income}{method}</section>')


def _share(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.0%}" if math.isfinite(v) else "–"


def _page_ties(ctx: ReportContext, num: UnitNumbers, lang: str) -> str:
    unit = num.unit
    name = str(ctx.names.get(unit, unit))
    t = num.ties
    rows = [[esc(ctx.names.get(r.destination, r.destination)) + (" ●" if r.destination in num.partners else ""),
             format_number(r.flow_ij), format_number(r.flow_ji), format_number(r.reciprocity, 2),
             format_number(r.expected_gravity), format_change(r.strength_log, 2), format_number(r.tie_index, 3),
             format_number(r.distance_km)] for r in t.itertuples(index=False)]
    table = _table([w(c, lang) for c in ("partner", "out", "in", "reciprocity", "expected", "strength")] +
                   ["RTI", w("km", lang)], rows)
    kind = _kind_label(str(ctx.flow_kind or ""), lang)
    if ctx.md is not None and len(t) and unit in ctx.md.points.index:
        png = tie_map_chart(ctx.md, unit, t[["destination", "tie_index", "volume"]], ctx.names.to_dict(),
                            w("ties_map_title", lang, name=name, year=ctx.flow_year, kind=kind),
                            {"note": w("ties_map_note", lang, name=name)})
        map_html = _img(png, "tie map")
    else:
        map_html = w("no_map", lang)
    text = w("ties_text", lang, year=ctx.flow_year, kind=esc(kind), name=esc(name), n=len(t))
    return f'<section class="page" id="ties"><h2>{w("h_ties", lang)}</h2>{text}{map_html}{table}</section>'


def _page_caveats(ctx: ReportContext, num: UnitNumbers, lang: str) -> str:
    unit, ds = num.unit, ctx.ds
    spans = []
    for target, start in ctx.starts.items():
        years = ds.panel.loc[ds.panel[target].notna(), "year"]
        spans.append(f"{feature_label(target, lang)} {int(years.min())}–{start}")
    flows = ds.flows.groupby("kind")["year"].agg(["min", "max"])
    flow_txt = ", ".join(f"{_kind_label(str(kd), lang)} {int(r['min'])}" +
                         (f"–{int(r['max'])}" if r["max"] != r["min"] else "")
                         for kd, r in flows.iterrows() if kd not in ds.time_invariant_kinds) or w("none", lang)
    row = ctx.rows[ctx.primary]
    mine = row[row["unit_id"].astype(str) == unit].reindex(columns=ctx.sf.forecaster_.feature_names_)
    missing = [c for c in mine.columns if mine[c].isna().all()]
    counts: dict[str, int] = {}
    for c in missing:
        g = group_label(ctx.groups.get(c, "other"), lang)
        counts[g] = counts.get(g, 0) + 1
    examples = ", ".join(feature_label(c, lang) for c in missing[:4])
    ends = ", ".join(f"{feature_label(t, lang)} {y}" for t, y in ctx.starts.items())
    items = [w("cav_data", lang, spans=esc(", ".join(spans)), ends=esc(ends),
               flows=esc(flow_txt), origin=ctx.origin, total=mine.shape[1], missing=len(missing),
               groups=esc(", ".join(f"{g} {n}" for g, n in counts.items()) or w("none", lang)),
               examples=w("examples", lang, items=esc(examples)) if examples else "")]
    col = ds.break_column
    breaks = sorted(int(y) for y in ds.panel.loc[(ds.panel["unit_id"].astype(str) == unit) & (ds.panel[col] == 1),
                                                 "year"]) if col else []
    reviewed = [str(x) for x in ds.meta.get("breaks", {}).get("reviewed", []) if str(x).startswith(unit + "@")]
    rev = w("cav_reviewed", lang, items=esc(", ".join(reviewed))) if reviewed else ""
    items.append(w("cav_breaks_yes", lang, years=", ".join(map(str, breaks)), reviewed=rev) if breaks else
                 w("cav_breaks_no", lang, first=ds.years[0], reviewed=rev))
    rng = ctx.ranges[ctx.primary]
    vals = mine.iloc[0] if len(mine) else pd.Series(dtype=float)
    outside = [c for c in vals.index if np.isfinite(vals[c]) and c in rng.index and np.isfinite(rng.loc[c]).all()
               and not rng.loc[c, 0.01] <= vals[c] <= rng.loc[c, 0.99]]
    extrap = list(num.answer.loc[num.answer["extrapolation"] == 1, "unit_id"].unique())
    listed = ", ".join(feature_label(c, lang) for c in outside[:5])
    coop = w("cav_extrap_coop", lang, units=esc(_names(ctx, extrap))) if extrap else w("cav_extrap_ok", lang)
    items.append(w("cav_extrap", lang, n=len(outside), items=f" ({esc(listed)})" if listed else "", coop=coop))
    items.append(w("cav_shap", lang))
    items.append(_validation_text(ctx.evidence, lang))
    direct = min(ctx.horizon, int(ctx.sf.forecaster_.direct_horizons))
    chained = w("cav_chained", lang, first=direct + 1, last=ctx.horizon, direct=direct) if ctx.horizon > direct else ""
    items.append(w("cav_intervals", lang, chained=chained))
    footer = w("footer", lang, font=esc(FONT_LICENSE), boundaries=esc(_boundary_source(ds)), version=esc(_version()),
               fingerprint=esc(ds.fingerprint[:12]))
    body = "".join(f"<li>{x}</li>" for x in items)
    return f'<section class="page" id="caveats"><h2>{w("h_caveats", lang)}</h2><ul>{body}</ul>{footer}</section>'


def _validation_text(ev: Evidence, lang: str) -> str:
    d, dp = ev.row("dml", "focal"), ev.row("dml", "partner")
    placebos = "; ".join(w("placebo", lang, name=PLACEBO_NAMES.get(str(r["placebo"]), (r["placebo"],) * 2)[
                               0 if lang == "ko" else 1], mean=format_change(float(r["mean_estimate"]), 4),
                           se=format_number(float(r["mean_se"]), 4), rate=_share(r["rejection_rate_10pct"]),
                           verdict=w("pass" if bool(r["passes"]) else "fail", lang))
                         for r in ev.placebo.to_dict("records"))
    vs_zero = float(d.get("pehe_vs_zero", np.nan))
    return w("cav_validation", lang, n=int(d.get("n", 0)), truth=format_pct(d.get("mean_truth", np.nan), 2),
             bias=format_change(d.get("bias", np.nan), 2), pehe=format_number(d.get("sqrt_pehe", np.nan), 2),
             vs_zero=_share(vs_zero), goal=w("goal_met" if vs_zero <= 0.25 else "goal_not_met", lang),
             cov=_share(d.get("coverage90")), covp=_share(dp.get("coverage90")), placebos=esc(placebos),
             source=esc(ev.source))


def _boundary_source(ds: Dataset) -> str:
    for s in ds.meta.get("sources", []):
        if "geojson" in str(s.get("note", "")) or "boundar" in str(s.get("name", "")).lower() \
                or "topojson" in str(s.get("name", "")).lower():
            return f"{s.get('name', '')} ({s.get('license', '')})"
    return "boundaries.geojson"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tiecast")
    except Exception:  # pragma: no cover - running from a source tree without metadata
        return "dev"


# ---- writing ------------------------------------------------------------------------------------------------
def _write_html(path: str | Path, document: str) -> Path:
    if not str(path).lower().endswith((".html", ".htm")):
        raise ConfigError(f"cannot write {path}: a report is an .html file", parameter="out")
    def write(tmp: Path) -> None:
        tmp.write_text(document, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # a report is for reading: the usual file mode, not the temporary file's 0600

    return atomic_write(path, write)


def write_unit_report(source: ReportContext | ScenarioForecaster | Dataset | str, unit: str, out: str | Path, *,
                      scenario: str | Scenario | None = None, lang: str = "ko", pdf: str | Path | None = None) -> Path:
    """Write one unit's self-contained HTML report to ``out`` (and print it to ``pdf`` with headless Chromium).

    ``source``: a :class:`ReportContext` (fitted once, reused), or a fitted :class:`ScenarioForecaster` (e.g. the
    demo's), or a dataset / its name (fits the models: about 30 s on the bundled data). Returns the HTML path.
    """
    check_lang(lang)
    ctx = source if isinstance(source, ReportContext) else report_context(source)
    path = _write_html(out, unit_report_html(ctx, unit, scenario, lang))
    if pdf is not None:
        from ._browser import print_pdf

        print_pdf(path, pdf)
    return path


# ---- national summary -----------------------------------------------------------------------------------------
def _gain(ctx: ReportContext, unit: str) -> dict[str, Any]:
    """The default scenario's reported effect on the unit at the SHAP horizon (cached per unit)."""
    if unit not in ctx.gains:
        num = unit_numbers(ctx, unit, DEFAULT_SCENARIO)
        ctx.gains[unit] = _gain_from(ctx, num)
    return ctx.gains[unit]


def _gain_from(ctx: ReportContext, num: UnitNumbers) -> dict[str, Any]:
    year = ctx.origin + min(SHAP_HORIZON, ctx.horizon)
    a = num.answer
    r = a[(a["unit_id"] == num.unit) & (a["target"] == ctx.primary) & (a["year"] == year)]
    if not len(r):
        return {"gain": np.nan, "lower90": np.nan, "upper90": np.nan, "persons": np.nan, "partners": "",
                "extrapolation": 0}
    r0 = r.iloc[0]
    b = float(r0["baseline"])
    return {"gain": 100 * r0["difference"] / b, "lower90": 100 * r0["difference_lower90"] / b,
            "upper90": 100 * r0["difference_upper90"] / b, "persons": float(r0["difference"]),
            "partners": _names(ctx, num.partners), "extrapolation": int(r0["extrapolation"])}


def summary_html(ctx: ReportContext, lang: str = "ko", links: bool = True, embed: bool = True,
                 progress: Callable[[], None] | None = None) -> str:
    """The national summary page (``links``: link each unit to ``report_<unit_id>.html`` beside it)."""
    lang = check_lang(lang)
    ko = lang == "ko"
    ds, names, tiers = ctx.ds, ctx.names, ctx.tiers
    small = [u for u in tiers.index if ctx.flag(u, "small_mid_city")]
    h = int(tiers["horizon"].iloc[0]) if len(tiers) else ctx.horizon
    end_year = ctx.origin + h

    def link(u: Any) -> str:
        label = esc(names.get(u, u))
        return f'<a href="report_{esc(u)}.html">{label}</a>' if links else label

    yes = w("yes", lang)
    rank = tiers.reindex(small).sort_values("change")
    t1 = _table([w("rank", lang), w("unit", lang), f"{ctx.origin}→{end_year}", w("interval90", lang),
                 w("level", lang), w("designated_col", lang)],
                [[str(i), link(u), format_pct(r["change"]), _interval(r["lower90"], r["upper90"], format_pct),
                  _tier_badge(r["tier"], lang), yes if ctx.flag(u, "depopulation_area") else ""]
                 for i, (u, r) in enumerate(rank.iterrows(), start=1)], "rank")
    for u in small:
        _gain(ctx, u)
        if progress is not None:
            progress()
    g = pd.DataFrame({u: ctx.gains[u] for u in small}).T
    g = g.sort_values("gain", ascending=False) if len(g) else g
    gy = ctx.origin + min(SHAP_HORIZON, ctx.horizon)

    def pct2(x: float) -> str:
        return format_pct(x, 2)

    t2 = _table([w("rank", lang), w("unit", lang), str(gy), w("interval90", lang), w("persons", lang),
                 w("partners", lang), ""],
                [[str(i), link(u), pct2(float(r["gain"])), _interval(float(r["lower90"]), float(r["upper90"]), pct2),
                  _persons(float(r["persons"]), lang, True), f"<span class='l'>{esc(r['partners'])}</span>",
                  "*" if r["extrapolation"] else ""] for i, (u, r) in enumerate(g.iterrows(), start=1)], "rank")
    desig = pd.Series({u: ctx.flag(u, "depopulation_area") for u in tiers.index})
    declining = tiers["tier"].isin(["1", "2"])
    counts = pd.crosstab(tiers["tier"], desig).reindex(["1", "2", "3", "4"]).fillna(0).astype(int)
    t3 = _table([w("level", lang), w("designated_col", lang), w("not_designated", lang), w("total", lang)],
                [[_tier_badge(t, lang), str(int(counts.loc[t].get(True, 0))), str(int(counts.loc[t].get(False, 0))),
                  str(int(counts.loc[t].sum()))] for t in counts.index])
    not_seen = [u for u in tiers.index if desig[u] and not declining[u]]
    undesignated = [u for u in tiers.index if declining[u] and not desig[u]]
    lists = "".join(f"<p><b>{w(key, lang)} ({len(us)}):</b> {', '.join(link(u) for u in us) or '–'}</p>"
                    for key, us in (("s_not_seen", not_seen), ("s_undesignated", undesignated)))
    agree = int((declining == desig.reindex(tiers.index)).sum())
    rule = "".join(f"<li>{_tier_badge(t[0], lang)} {esc(t[3] if ko else t[4])}</li>" for t in TIERS)
    with chart_style():
        maps = _summary_maps(ctx, desig, end_year, lang)
        shap_html = _summary_shap(ctx, small, lang)
    body = [
        f'<section class="page"><h1>{w("s_h1", lang)}</h1>'
        + w("s_intro", lang, dataset=esc(ds.name), n=len(tiers), origin=ctx.origin, end=end_year, small=len(small),
            start=ctx.origin + 1)
        + f'<h2>{w("s_rule_h", lang)}</h2>{w("s_rule", lang, origin=ctx.origin, end=end_year)}<ul>{rule}</ul>'
        + f'<h2>{w("s_agree_h", lang)}</h2>{t3}{w("s_agree", lang, agree=agree, n=len(tiers))}{lists}</section>',
        f'<section class="page"><h2>{w("s_decline_h", lang)}</h2>{t1}</section>',
        f'<section class="page"><h2>{w("s_gain_h", lang)}</h2>'
        f'{w("s_gain_note", lang, method=REPORTED_METHOD.upper())}{t2}</section>',
        f'<section class="page"><h2>{w("s_maps_h", lang)}</h2>{maps}</section>',
        f'<section class="page"><h2>{w("s_shap_h", lang)}</h2>{shap_html}</section>',
    ]
    doc = _document(w("s_title", lang), "\n".join(body), lang)
    return embed_font(doc) if embed else doc


def _summary_maps(ctx: ReportContext, desig: pd.Series, end_year: int, lang: str) -> str:
    if ctx.md is None:
        return w("no_map", lang)
    title = w("s_choropleth", lang, origin=ctx.origin, end=end_year)
    ch = choropleth_chart(ctx.md, ctx.tiers["change"], title, "%", outline=[u for u in desig.index if desig[u]])
    p = ctx.pairs
    if p["tie_index"].isna().all():  # no coordinates: rank by volume
        p = p.assign(tie_index=p["volume"] / max(float(p["volume"].max()), 1e-9))
    und = p[p["origin"] < p["destination"]].sort_values("tie_index", ascending=False).head(60)
    nt = national_ties_chart(ctx.md, und, ctx.names.to_dict(), w("s_ties", lang, n=len(und), year=ctx.flow_year))
    return f'{_img(ch, "choropleth")}{w("s_outline", lang)}{_img(nt, "ties map")}'


def _summary_shap(ctx: ReportContext, small: list[str], lang: str) -> str:
    expl = ctx.explanations[ctx.primary]
    order = np.argsort(-np.abs(expl.contributions).mean(axis=0))[:15]
    labels = [feature_label(expl.features[j], lang, getattr(ctx.catalog.get(expl.features[j]), "description", None))
              for j in order]
    title = w("s_shap_title", lang, label=feature_label(ctx.primary, lang), h=expl.horizon)
    bee = beeswarm_chart(100 * expl.contributions[:, order], expl.values[:, order], labels, title, "%p",
                         (w("low", lang), w("high", lang)))
    grouped = ctx.group_contrib[ctx.primary].abs()
    table = pd.DataFrame({w("s_all", lang): 100 * grouped.mean(),
                          w("s_small", lang): 100 * grouped.reindex(small).mean()})
    table.index = [group_label(x, lang) for x in table.index]
    table = table.sort_values(table.columns[0], ascending=False)
    gb = group_bar_chart(table, w("s_groups", lang), "%p")
    return f'{_img(bee, "beeswarm")}{_img(gb, "grouped SHAP")}{w("s_shap_note", lang, font=esc(FONT_LICENSE))}'


def write_summary(source: ReportContext | Dataset | str, out: str | Path, *, lang: str = "ko", links: bool = True,
                  progress: bool = False) -> Path:
    """Write the national summary HTML (the small/mid cities' scenarios are computed on the way)."""
    ctx = source if isinstance(source, ReportContext) else report_context(source)
    small = [u for u in ctx.tiers.index if ctx.flag(u, "small_mid_city")]
    with stage(progress, "scenarios", len(small)) as advance:
        document = summary_html(ctx, lang, links=links, progress=advance)
    return _write_html(out, document)


# ---- all reports ----------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _one(task: tuple[str, str]) -> tuple[str, str, dict[str, Any]]:
    unit, lang = task
    ctx: ReportContext = _WORKER["ctx"]
    num = unit_numbers(ctx, unit, DEFAULT_SCENARIO)
    return unit, unit_report_html(ctx, unit, lang=lang, embed=False, numbers=num), _gain_from(ctx, num)


def write_all_reports(source: ReportContext | Dataset | str, out_dir: str | Path, *, lang: str = "ko",
                      jobs: int = 2, progress: bool = False, units: Sequence[str] | None = None) -> list[Path]:
    """Every unit's report (``report_<unit_id>.html``) and ``summary.html`` in ``out_dir``, from models fitted
    once; ``jobs`` worker processes render the reports (forked after the models are fitted: they only compute
    scenarios and draw charts, never call LightGBM)."""
    check_lang(lang)
    ctx = source if isinstance(source, ReportContext) else report_context(source)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {folder}: cannot create it ({exc})", parameter="out") from exc
    todo = [ctx.resolve_unit(u) for u in units] if units is not None else list(ctx.tiers.index)
    tasks = [(u, lang) for u in todo]
    documents: dict[str, str] = {}
    _WORKER["ctx"] = ctx
    with stage(progress, "reports", len(tasks) + 1) as advance:
        if jobs > 1 and len(tasks) > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for unit, doc, gain in pool.imap_unordered(_one, tasks, chunksize=4):
                    documents[unit], ctx.gains[unit] = doc, gain
                    advance()
        else:
            for task in tasks:
                unit, doc, gain = _one(task)
                documents[unit], ctx.gains[unit] = doc, gain
                advance()
        summary = summary_html(ctx, lang, links=True, embed=False)
        advance()
    _WORKER.clear()
    # one font subset with every character of every page
    chars = set(_strip_images(summary))
    for doc in documents.values():
        chars |= set(_strip_images(doc))
    font = font_face_css("".join(sorted(chars)))
    paths = [_write_html(folder / f"report_{u}.html", documents[u].replace(FONT_PLACEHOLDER, font)) for u in todo]
    paths.append(_write_html(folder / "summary.html", summary.replace(FONT_PLACEHOLDER, font)))
    return paths


def log_reports_to_mlflow(paths: Sequence[str | Path], run_id: str, artifact_path: str = "reports") -> None:
    """Log report files to an existing MLflow run (tracking store: :func:`tiecast.training.tracking_uri`)."""
    from mlflow.tracking import MlflowClient

    from tiecast.common import TrackingError
    from tiecast.training import tracking_uri

    client = MlflowClient(tracking_uri())
    try:
        client.get_run(run_id)
        for p in paths:
            client.log_artifact(run_id, str(p), artifact_path)
    except Exception as exc:
        raise TrackingError(f"cannot log the reports to MLflow run {run_id}: {exc}") from exc

