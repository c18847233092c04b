"""The champion as ONE MLflow pyfunc model that answers forecasts, scenarios and explanations.

:class:`TiecastService` holds a fitted :class:`~tiecast.training.ScenarioForecaster`: the forecaster's boosters
and conformal calibration, the effect model, the feature state of every unit and the dataset tables that
scenarios are applied to. It is logged with the tiecast code itself (``code_paths``), so it loads with only its
logged requirements: no checkout, no dataset folder, no editable install.

Request (one row per question; MLflow's ``dataframe_split`` / ``dataframe_records`` JSON or a DataFrame):

- ``unit_id`` – unit code (string), ``target`` – e.g. ``population``, ``horizon`` – years ahead (integer, in
  steps of the dataset's step), ``scenario`` – empty or ``baseline``, a built-in name (``hub``, ``region``,
  ``contiguous``, ``topN``) or a scenario object as a JSON string (the format of scenario files; ``unit`` may be
  left out: it is the row's unit).

``params`` (declared in the signature): ``explain`` (bool, default false), ``levels`` (interval levels among 80
and 90, default both), ``methods`` (``dml``, the reported estimate, by default; add ``forecaster_whatif`` for
the forecaster's what-if, which recomputes every feature and is slower), ``trajectory`` (bool, default true;
false answers only the question's horizon year: one row per question and method, in the request's order, as
``mlflow.pyfunc.spark_udf`` needs).

Response: one row per (question, year ``origin + 1 .. origin + horizon``, method) in the columns of
``tiecast forecast`` (:data:`RESPONSE_COLUMNS`; interval columns only for the requested levels), plus
``question`` (the request row). With ``explain``: ``shap_<group>`` (SHAP contributions of the forecast summed by
feature group, log points of growth over the row's horizon), ``shap_base``, ``shap_other`` and ``top_drivers``
(JSON list of ``{"feature", "value", "contribution"}``, the largest absolute contributions). SHAP explains the
model's forecast, not causes.

Every bad request raises an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``: the scoring server answers
HTTP 400 with the message (which row, which column, what to do).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from tiecast.common import ConfigError, TiecastError
from tiecast.features import Scenario, builtin_scenario, parse_scenario
from tiecast.training import (
    FORECAST_COLUMNS,
    LEVELS_COOPERATION,
    METHODS_COOPERATION,
    REPORTED_METHOD,
    ScenarioForecaster,
)

from ._explain import explain_forecast

__all__ = ["MAX_QUESTIONS", "REQUEST_COLUMNS", "RESPONSE_COLUMNS", "TOP_DRIVERS", "ServiceAnswer",
           "TiecastService", "answer_questions"]

REQUEST_COLUMNS = ("unit_id", "target", "horizon", "scenario")
RESPONSE_COLUMNS = ["question", *FORECAST_COLUMNS]
# Questions per request: a national baseline batch is 229 units x 2 targets; larger batches go to `tiecast sweep`
# or `tiecast predict` in pieces (a 400 says so rather than tying up the server).
MAX_QUESTIONS = 5000
TOP_DRIVERS = 5
_BASELINE = ("", "baseline")
_CACHE = 512  # answered (unit, scenario, methods): identical questions are served from memory


def _bad(message: str) -> ConfigError:
    return ConfigError(message, parameter="model_input")


@dataclass(frozen=True)
class ServiceAnswer:
    """Rows answering the questions of one request (:data:`RESPONSE_COLUMNS`, plus explanation columns)."""

    frame: pd.DataFrame
    levels: tuple[int, ...]
    explained: bool


@dataclass
class _Parsed:
    explain: bool
    levels: tuple[int, ...]
    methods: tuple[str, ...]
    questions: pd.DataFrame = field(default_factory=pd.DataFrame)


def _params(params: Mapping[str, Any] | None) -> tuple[bool, bool, tuple[int, ...], tuple[str, ...]]:
    params = dict(params or {})
    unknown = sorted(set(params) - {"explain", "levels", "methods", "trajectory"})
    if unknown:
        raise ConfigError(f"unknown params {unknown}; allowed: explain (true/false), levels (e.g. [80, 90]), "
                          f"methods (e.g. [\"dml\"]), trajectory (true/false)", parameter="params")
    explain, trajectory = _flag(params, "explain", False), _flag(params, "trajectory", True)
    levels_in = params.get("levels", list(LEVELS_COOPERATION))
    levels_in = [levels_in] if np.isscalar(levels_in) else list(levels_in)
    levels = []
    for lv in levels_in:
        if isinstance(lv, (bool, np.bool_)) or not isinstance(lv, (int, np.integer, float)) \
                or float(lv) not in LEVELS_COOPERATION:
            raise ConfigError(f"params.levels: {lv!r} is not an interval level; use "
                              f"{' and/or '.join(map(str, LEVELS_COOPERATION))}", parameter="params")
        levels.append(int(lv))
    if not levels:
        raise ConfigError("params.levels is empty; use [80], [90] or [80, 90]", parameter="params")
    methods_in = params.get("methods", [REPORTED_METHOD])
    methods = [methods_in] if isinstance(methods_in, str) else [str(m) for m in methods_in]
    bad = [m for m in methods if m not in METHODS_COOPERATION]
    if bad or not methods:
        raise ConfigError(f"params.methods: {bad or '[]'} unknown; use {', '.join(METHODS_COOPERATION)}",
                          parameter="params")
    return explain, trajectory, tuple(sorted(set(levels))), tuple(dict.fromkeys(methods))


def _flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"params.{name} must be true or false; got {value!r}", parameter="params")
    return bool(value)


def _questions(frame: pd.DataFrame, sf: ScenarioForecaster) -> pd.DataFrame:
    """The request rows checked one by one; the error names the row and the column."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    missing = [c for c in REQUEST_COLUMNS if c not in frame.columns]
    if missing:
        raise _bad(f"the request lacks the column(s) {missing}; every row needs {', '.join(REQUEST_COLUMNS)} "
                   "(scenario may be empty)")
    if frame.empty:
        raise _bad("the request has no rows; send at least one question (unit_id, target, horizon, scenario)")
    if len(frame) > MAX_QUESTIONS:
        raise _bad(f"the request has {len(frame):,} rows; at most {MAX_QUESTIONS:,} per request: split it or use "
                   "`tiecast predict` / `tiecast sweep` for batches")
    units = _unit_set(sf)
    horizons = sf.horizons
    rows = []
    for i, (unit, target, horizon, scenario) in enumerate(frame[list(REQUEST_COLUMNS)].itertuples(index=False)):
        where = f"row {i}"
        unit = "" if unit is None or (isinstance(unit, float) and np.isnan(unit)) else str(unit).strip()
        if unit not in units:
            raise _bad(f"{where}, column unit_id: unknown unit {unit!r} of dataset {sf.ds.name!r} (codes such as "
                       f"{', '.join(sorted(units)[:3])}, ...)")
        if target not in sf.targets:
            raise _bad(f"{where}, column target: unknown target {target!r}; use {', '.join(sf.targets)}")
        try:
            sf.check_forecastable([unit], [str(target)], where)
        except ConfigError as e:
            raise _bad(str(e)) from None
        h = _horizon(horizon, horizons, where)
        text = "" if scenario is None or (isinstance(scenario, float) and np.isnan(scenario)) else str(scenario)
        rows.append((i, unit, str(target), h, text.strip()))
    return pd.DataFrame(rows, columns=["question", "unit_id", "target", "horizon", "scenario"])


_UNIT_SETS: dict[int, tuple[Any, frozenset[str]]] = {}


def _unit_set(sf: ScenarioForecaster) -> frozenset[str]:
    """The dataset's unit codes, computed once per fitted model (every request checks against them)."""
    hit = _UNIT_SETS.get(id(sf))
    if hit is None or hit[0] is not sf.ds:
        hit = (sf.ds, frozenset(sf.ds.units["unit_id"].astype(str)))
        _UNIT_SETS[id(sf)] = hit
    return hit[1]


def _horizon(value: Any, horizons: int, where: str) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        ok, value = True, int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        ok, value = True, int(value)
    if not ok or not 1 <= int(value) <= horizons:
        raise _bad(f"{where}, column horizon: {value!r} is not an integer from 1 to {horizons} (years ahead the "
                   "model was trained for)")
    return int(value)


def _scenario(text: str, unit: str, sf: ScenarioForecaster, where: str) -> Scenario | None:
    if text.lower() in _BASELINE:
        return None
    if not text.startswith("{"):
        try:
            return builtin_scenario(text, unit, sf.origin)
        except ConfigError as e:
            raise _bad(f"{where}, column scenario: {e} (or a scenario object as JSON text)") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(f"{where}, column scenario: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") \
            from None
    if not isinstance(spec, dict):
        raise _bad(f"{where}, column scenario: a JSON scenario must be an object")
    spec.setdefault("unit", unit)
    if str(spec["unit"]) != unit:
        raise _bad(f"{where}, column scenario: the scenario's unit {spec['unit']!r} differs from the row's "
                   f"unit_id {unit!r}; leave 'unit' out or make them equal")
    try:
        sc = parse_scenario(spec, where=f"{where}, column scenario", default_id="custom")
        sf.apply(sc)  # partners, start year and flow kind checked against the data now, with the row named
    except ConfigError as e:
        raise _bad(str(e)) from None
    return sc


def answer_questions(sf: ScenarioForecaster, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None,
                     cache: OrderedDict[Any, pd.DataFrame] | None = None,
                     explanations: dict[Any, tuple[np.ndarray, str]] | None = None) -> ServiceAnswer:
    """Answer a request (see the module docstring) with a fitted ScenarioForecaster; raises ConfigError."""
    explain, trajectory, levels, methods = _params(params)
    q = _questions(model_input, sf)
    is_base = q["scenario"].str.lower().isin(_BASELINE)
    parts = []
    if is_base.any():  # every baseline question of the request in one call
        parts.append(_select(sf.baseline(list(q.loc[is_base, "unit_id"].unique())), q[is_base], trajectory))
    for (unit, text), grp in q[~is_base].groupby(["unit_id", "scenario"], sort=False):
        unit, text = str(unit), str(text)
        key = (unit, text, methods)
        rows = cache.get(key) if cache is not None else None
        if rows is None:
            sc = _scenario(text, unit, sf, f"row {int(grp['question'].iloc[0])}")
            assert sc is not None
            rows = sf.answer(sc, units=[unit], methods=methods)
            if cache is not None:
                cache[key] = rows
                while len(cache) > _CACHE:
                    cache.popitem(last=False)
        elif cache is not None:
            cache.move_to_end(key)
        parts.append(_select(rows, grp, trajectory))
    out = pd.concat(parts, ignore_index=True).sort_values(["question", "method", "year"], kind="stable")
    out = out[RESPONSE_COLUMNS].reset_index(drop=True)
    drop = [c for c in out.columns if any(c.endswith(f"er{lv}") for lv in LEVELS_COOPERATION if lv not in levels)]
    out = out.drop(columns=drop)
    if explain:
        out = _explained(sf, out, explanations)
    return ServiceAnswer(frame=out, levels=levels, explained=explain)


def _select(rows: pd.DataFrame, questions: pd.DataFrame, trajectory: bool) -> pd.DataFrame:
    """The answer rows of each question: its unit and target, years up to its horizon (or only that year)."""
    if len(questions) > 8:  # a batch: one merge
        asked = questions[["question", "unit_id", "target", "horizon"]].rename(columns={"horizon": "asked"})
        m = asked.merge(rows, on=["unit_id", "target"], how="inner")
        keep = m["horizon"] <= m["asked"] if trajectory else m["horizon"] == m["asked"]
        return m[keep.to_numpy()].drop(columns="asked")
    # a few questions (the interactive case): boolean masks are much cheaper than a merge
    unit, target, horizon = (rows[c].to_numpy() for c in ("unit_id", "target", "horizon"))
    parts = []
    for q, u, t, h in questions[["question", "unit_id", "target", "horizon"]].itertuples(index=False):
        mask = (unit == u) & (target == t) & ((horizon <= h) if trajectory else (horizon == h))
        part = rows[mask]
        parts.append(part.assign(question=np.full(len(part), q)))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _explained(sf: ScenarioForecaster, out: pd.DataFrame, cache: dict[Any, tuple[np.ndarray, str]] | None = None
               ) -> pd.DataFrame:
    """SHAP columns for every row: the forecaster's forecast of the row's target and horizon for its unit, from
    the origin's feature rows (baseline and dml rows; the DML effect is not a LightGBM output). ``cache`` keeps
    each (target, horizon, unit)'s explanation: it depends on nothing else."""
    fc = sf.forecaster_
    groups = {f: g for g, names in sf.pf_.groups().items() for f in names}
    group_names = list(dict.fromkeys(groups.values()))
    cache = {} if cache is None else cache
    values = np.zeros((len(out), len(group_names) + 2))  # groups, base, other
    drivers = np.empty(len(out), dtype=object)
    for key, grp in out.groupby(["target", "horizon"], sort=False):
        target, horizon = str(key[0]), int(str(key[1]))  # type: ignore[index]
        units = grp["unit_id"].astype(str).unique()
        todo = [u for u in units if (target, horizon, u) not in cache]
        if todo:
            frame = sf.pf_.frame
            rows = frame[(frame["year"] == fc.data_end_[target]) & frame["unit_id"].astype(str).isin(todo)]
            expl = explain_forecast(fc, rows.reset_index(drop=True), target, horizon)
            by_group = expl.by_group(groups).reindex(columns=group_names, fill_value=0.0).to_numpy(float)
            order = np.argsort(-np.abs(expl.contributions), axis=1, kind="stable")[:, :TOP_DRIVERS]
            for i, u in enumerate(expl.unit_ids):
                text = json.dumps([{"feature": expl.features[j], "value": _num(expl.values[i, j]),
                                    "contribution": _num(expl.contributions[i, j])} for j in order[i]
                                   if expl.contributions[i, j] != 0], ensure_ascii=False)
                cache[(target, horizon, str(u))] = (
                    np.concatenate([by_group[i], [expl.base[i] + expl.horizon_term[i], expl.other[i]]]), text)
        at = grp.index.to_numpy()
        for pos, u in zip(at, grp["unit_id"].astype(str), strict=True):
            values[pos], drivers[pos] = cache[(target, horizon, u)]
    cols = {f"shap_{g}": values[:, k] for k, g in enumerate(group_names)}
    return out.assign(**cols, shap_base=values[:, -2], shap_other=values[:, -1], top_drivers=drivers)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class TiecastService(PythonModel):  # type: ignore[misc]
    """The served model: a fitted ScenarioForecaster, a lock and an answer cache (see the module docstring).

    The scoring server calls ``predict`` from worker threads; answers are computed one at a time (LightGBM sets
    OpenMP's thread count process-wide, and the forecaster's caches are not thread-safe).
    """

    def __init__(self, sf: ScenarioForecaster, metadata: Mapping[str, Any] | None = None) -> None:
        self.sf = sf
        self.metadata = dict(metadata or {})
        self._lock = threading.Lock()
        self._cache: OrderedDict[Any, pd.DataFrame] = OrderedDict()
        self._explanations: dict[Any, tuple[np.ndarray, str]] = {}  # at most units x targets x horizons

    def __getstate__(self) -> dict[str, Any]:
        return {"sf": self.sf, "metadata": self.metadata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["sf"], state["metadata"])  # type: ignore[misc]

    def answer(self, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Answer a request; raises :class:`~tiecast.common.ConfigError` with what to fix."""
        with self._lock:
            return answer_questions(self.sf, model_input, params, self._cache, self._explanations).frame

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        return wrap_errors(lambda: self.answer(model_input, params))


def wrap_errors(fn: Any) -> Any:
    """Run ``fn``; tiecast's errors (every check of a request raises one, saying what to fix) become
    MlflowException(INVALID_PARAMETER_VALUE) -> HTTP 400. Anything else is a bug, not a bad request: it is left
    to MLflow's generic handler rather than dressed up as the client's fault."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    try:
        return fn()
    except TiecastError as e:
        raise MlflowException(f"bad request: {e}", error_code=INVALID_PARAMETER_VALUE) from None


def request_signature(sf: ScenarioForecaster, example: pd.DataFrame, output: pd.DataFrame) -> Any:
    """The model signature: the request columns, the response columns and the declared params."""
    from mlflow.models import infer_signature

    return infer_signature(example, output, params={"explain": False, "levels": list(LEVELS_COOPERATION),
                                                    "methods": [REPORTED_METHOD], "trajectory": True})
