"""Batch scoring of every unit x scenario x candidate partner: ``tiecast sweep --engine local|spark``.

:func:`sweep_questions` builds the questions from the served model alone (no dataset folder): for every unit,
each built-in scenario that applies to it and one single-partner scenario (flows x2 from ``origin + 1``) for
each of its top ``candidates`` partners by two-way flow volume in the latest observed flows, for every target,
at the model's last horizon. :func:`run_sweep` answers them with the model's pyfunc ``predict`` and
``trajectory: false`` (one row per question and method, in the question order):

- ``engine="local"``: :func:`~tiecast.serving.load_service` and ``predict`` in pieces of
  :data:`~tiecast.serving.MAX_QUESTIONS` in this process;
- ``engine="spark"``: ``mlflow.pyfunc.spark_udf(..., env_manager="local")`` on a Spark DataFrame of the questions
  (a local ``local[2]`` session on loopback unless one is given; on a cluster pass a session whose master is
  ``spark://...`` / YARN / Kubernetes).

Both engines run the same code on the same rows: ``spark_udf`` loads the very pyfunc model (the logged
:class:`~tiecast.serving.TiecastService`) in every Python worker and calls its ``predict`` on each Arrow batch of
a partition, with the same ``params``. An answer depends only on its own (unit, scenario) (no state is shared
between questions apart from an answer cache keyed by them), so how the questions are split into partitions
does not change a number; the only difference is the ``question`` column, which each batch numbers from 0 and
the sweep replaces with the row's position in the whole question table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import ConfigError
from tiecast.features import BUILTIN_SCENARIOS, builtin_scenario, functional_regions, unit_tie_measures
from tiecast.training import LEVELS_COOPERATION, REPORTED_METHOD, ScenarioForecaster

from ._package import load_service
from ._service import MAX_QUESTIONS, REQUEST_COLUMNS, RESPONSE_COLUMNS, TiecastService

__all__ = ["CANDIDATE_FACTOR", "ENGINES", "JAVA_HINT", "SWEEP_COLUMNS", "candidate_partners", "java_available",
           "response_schema", "run_sweep", "spark_session", "sweep_questions"]

ENGINES = ("local", "spark")
CANDIDATE_FACTOR = 2  # a candidate partner's scenario doubles the pair's flows, like the built-in scenarios
# Question table: the request columns, plus what the question is about (kind: builtin / candidate).
SWEEP_COLUMNS = [*REQUEST_COLUMNS, "kind", "partner"]
JAVA_HINT = ("install Java 17 or later, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu), or set "
             "JAVA_HOME; or use the local engine")
_INTEGER_COLUMNS = ("question", "year", "horizon", "extrapolation")
_TEXT_COLUMNS = ("scenario_id", "unit_id", "name", "target", "role", "method")


# ---- questions ------------------------------------------------------------------------------------------------
def _forecaster(model: Any) -> ScenarioForecaster:
    """The fitted ScenarioForecaster of a model URI, a loaded pyfunc model, a TiecastService or itself."""
    if isinstance(model, str | Path):
        model = load_service(str(model))
    if hasattr(model, "unwrap_python_model"):
        model = model.unwrap_python_model()
    if isinstance(model, TiecastService):
        return model.sf
    if isinstance(model, ScenarioForecaster):
        return model
    raise ConfigError(f"the model is a {type(model).__name__}, not tiecast's served model (TiecastService); give "
                      "the URI of a model registered by `tiecast train`", parameter="model")


def candidate_partners(sf: ScenarioForecaster, candidates: int = 5, units: Sequence[str] | None = None
                       ) -> pd.DataFrame:
    """Per unit its top ``candidates`` partners by two-way flow volume (both directions summed) in the latest
    flows of the main kind up to the origin: columns ``unit_id``, ``partner``, ``volume``, ``rank`` (1 = largest;
    ties go to the lower partner code, as in the ``topN`` scenarios). Pairs without flows are never candidates."""
    ds = sf.ds
    kind = ds.main_flow_kind
    flows = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] <= sf.origin)] if kind else ds.flows.iloc[:0]
    empty = pd.DataFrame({"unit_id": pd.Series(dtype=str), "partner": pd.Series(dtype=str),
                          "volume": pd.Series(dtype=float), "rank": pd.Series(dtype=int)})
    if flows.empty or candidates <= 0:
        return empty
    latest = flows[flows["year"] == flows["year"].max()]
    o, d = latest["origin"].astype(str).to_numpy(), latest["destination"].astype(str).to_numpy()
    v = latest["value"].to_numpy(float)
    pairs = pd.DataFrame({"unit_id": np.concatenate([o, d]), "partner": np.concatenate([d, o]),
                          "volume": np.concatenate([v, v])})
    pairs = pairs[pairs["unit_id"] != pairs["partner"]]
    if units is not None:
        pairs = pairs[pairs["unit_id"].isin(set(units))]
    volume = pairs.groupby(["unit_id", "partner"], as_index=False, sort=False)["volume"].sum()
    volume = volume[volume["volume"] > 0]
    top = (volume.sort_values(["unit_id", "volume", "partner"], ascending=[True, False, True], kind="stable")
           .groupby("unit_id", sort=False).head(int(candidates)))
    top = top.assign(rank=top.groupby("unit_id", sort=False).cumcount() + 1)
    return top.reset_index(drop=True)[["unit_id", "partner", "volume", "rank"]]


def _screen(sf: ScenarioForecaster, units: Sequence[str], name: str) -> set[str] | None:
    """The units for which the built-in ``name`` resolves to no partner, by its rule (the one of
    :func:`tiecast.features.apply_scenario`) evaluated once for every unit; None: no screen, resolve each unit."""
    ds = sf.ds
    kind = ds.main_flow_kind
    kinds = set(ds.flows["kind"].astype(str))
    if kind is None or kind not in kinds or kind in ds.time_invariant_kinds:
        return None
    years = ds.flows.loc[ds.flows["kind"] == kind, "year"]
    if (years <= sf.origin).sum() == 0:
        return None
    flow_year = int(years[years <= sf.origin].max())
    kflows = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] == flow_year)]
    pop_year = min(flow_year, int(ds.panel["year"].max()))
    population = ds.panel[ds.panel["year"] == pop_year].set_index("unit_id")[ds.mass_column]

    def linked(frame: pd.DataFrame) -> set[str]:
        f = frame[frame["origin"].astype(str) != frame["destination"].astype(str)]
        return set(f["origin"].astype(str)) | set(f["destination"].astype(str))

    if name == "hub":
        m = unit_tie_measures(kflows, ds.units, population, gravity=False, regions=False, path_sources=0,
                              dominance_size="population")
        hub = m["hub"].astype(str)
        return {u for u in units if u not in hub.index or hub.loc[u] == u}
    if name == "region":
        regions = functional_regions(kflows, list(ds.units["unit_id"]), population)
        size = regions.map(regions.value_counts()).fillna(1)
        return {u for u in units if u not in size.index or size.loc[u] <= 1}
    if name == "contiguous":
        contiguity = [k for k in ds.time_invariant_kinds if k in kinds]
        if not contiguity:
            return set(units)
        return set(units) - linked(ds.flows[ds.flows["kind"] == contiguity[0]])
    if name.startswith("top") and name[3:].isdigit():
        return set(units) - linked(kflows)
    return None


def _candidate_scenario(partner: str, origin: int) -> str:
    return json.dumps({"partners": [partner], "factor": CANDIDATE_FACTOR, "start_year": origin + 1,
                       "id": f"partner_{partner}"})


def sweep_questions(model: Any, *, units: Sequence[str] | None = None, candidates: int = 5,
                    builtins: Sequence[str] = BUILTIN_SCENARIOS, horizon: int | None = None,
                    targets: Sequence[str] | None = None, precheck: str = "screen") -> pd.DataFrame:
    """Every unit x (each built-in scenario that applies to it + one single-partner scenario per candidate
    partner) x target, as a question table (:data:`SWEEP_COLUMNS`; ``scenario`` holds the built-in name or the
    candidate's scenario as JSON text).

    ``model``: a model URI, a loaded pyfunc model, a :class:`~tiecast.serving.TiecastService` or a fitted
    ScenarioForecaster; the units, origin, targets, horizons and flows come from it. ``horizon`` defaults to the
    model's horizons, ``targets`` to all of its targets, ``units`` to every unit. A built-in scenario that does
    not apply to a unit (``hub`` for a unit that is itself a hub, ``contiguous`` without contiguity flows) is
    left out; ``frame.attrs["skipped"]`` lists them (unit, scenario, reason) and ``frame.attrs["note"]`` counts
    them. ``precheck="apply"`` resolves every (unit, built-in) with ``sf.apply`` (on the Korean data 0.5-1.7 s
    per unit: ``region`` and ``hub`` recompute the whole network each time); the default ``"screen"`` evaluates each
    partner rule once for all units and resolves only the units it leaves without partners (same result).
    """
    sf = _forecaster(model)
    all_units = [str(u) for u in sf.ds.units["unit_id"]]
    if units is None:
        chosen = all_units
    else:
        chosen = list(dict.fromkeys(str(u).strip() for u in units))
        unknown = [u for u in chosen if u not in set(all_units)]
        if unknown or not chosen:
            raise ConfigError(f"unknown unit(s) {', '.join(unknown) or '(none given)'} of dataset {sf.ds.name!r}; "
                              f"give unit codes such as {', '.join(all_units[:3])}", parameter="units")
    chosen_targets = list(sf.targets) if targets is None else list(dict.fromkeys(map(str, targets)))
    bad = [t for t in chosen_targets if t not in sf.targets]
    if bad or not chosen_targets:
        raise ConfigError(f"unknown target(s) {bad or '(none given)'}; the model forecasts "
                          f"{', '.join(sf.targets)}", parameter="targets")
    h = sf.horizons if horizon is None else horizon
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or not 1 <= int(h) <= sf.horizons:
        raise ConfigError(f"horizon must be an integer from 1 to {sf.horizons} (years ahead the model answers); "
                          f"got {horizon!r}", parameter="horizon")
    if isinstance(candidates, bool) or not isinstance(candidates, int | np.integer) or candidates < 0:
        raise ConfigError(f"candidates must be an integer >= 0 (partners per unit); got {candidates!r}",
                          parameter="candidates")
    names = list(dict.fromkeys(map(str, builtins)))
    for name in names:
        builtin_scenario(name, all_units[0], sf.origin)  # an unknown name -> ConfigError naming the choices

    if precheck not in ("screen", "apply"):
        raise ConfigError(f"precheck must be 'screen' or 'apply'; got {precheck!r}", parameter="precheck")

    # Built-ins that apply. "apply": sf.apply (the scenario resolved against the model's tables, no forecast) for
    # every (unit, built-in); "screen": the partner rule evaluated once for all units, then sf.apply only for the
    # units it leaves without partners (which also gives the reason).
    failing: dict[str, set[str] | None] = {n: (_screen(sf, chosen, n) if precheck == "screen" else None)
                                           for n in names}
    rows: list[tuple[str, str, str, str]] = []  # (unit, scenario, kind, partner)
    skipped: list[tuple[str, str, str]] = []
    for unit in chosen:
        for name in names:
            suspect = failing[name]
            if suspect is None or unit in suspect:
                try:
                    sf.apply(builtin_scenario(name, unit, sf.origin))
                except ConfigError as e:
                    skipped.append((unit, name, str(e)))
                    continue
            rows.append((unit, name, "builtin", ""))
    builtin_rows = pd.DataFrame(rows, columns=["unit_id", "scenario", "kind", "partner"])
    top = candidate_partners(sf, int(candidates), chosen)
    cand_rows = pd.DataFrame({"unit_id": top["unit_id"].astype(str),
                              "scenario": top["partner"].map(lambda p: _candidate_scenario(str(p), sf.origin)),
                              "kind": "candidate", "partner": top["partner"].astype(str)})
    # Order: unit (dataset order), built-ins then candidates by rank, target.
    order = {u: i for i, u in enumerate(chosen)}
    both = pd.concat([builtin_rows.assign(_k=0, _r=np.arange(len(builtin_rows))),
                      cand_rows.assign(_k=1, _r=top["rank"].to_numpy())], ignore_index=True)
    both = both.assign(_u=both["unit_id"].map(order)).sort_values(["_u", "_k", "_r"], kind="stable")
    q = both.loc[both.index.repeat(len(chosen_targets)), ["unit_id", "scenario", "kind", "partner"]]
    q = q.assign(target=np.tile(chosen_targets, len(both)), horizon=float(h)).reset_index(drop=True)
    q = q[SWEEP_COLUMNS]
    # Units without a target's value in the start year have no forecast of it (sf.unforecast): left out, said.
    ready = np.fromiter(((u, t) in sf.forecastable_ for u, t in zip(q["unit_id"], q["target"], strict=True)),
                        bool, len(q))
    chosen_set = set(chosen)
    lacking = {t: [u for u in us if u in chosen_set] for t, us in sf.unforecast().items() if t in chosen_targets}
    q = q[ready].reset_index(drop=True)
    short = sorted(set(chosen) - set(top.loc[top["rank"] == candidates, "unit_id"])) if candidates else []
    notes = [f"{len(chosen)} unit(s) x ({len(names)} built-in scenario(s) + {candidates} candidate partner(s)) x "
             f"{len(chosen_targets)} target(s) at horizon {h}: {len(q):,} questions"]
    if skipped:
        notes.append(f"{len(skipped)} built-in scenario(s) left out where they do not apply ("
                     + ", ".join(f"{n} {k}" for k, n in pd.Series([s[1] for s in skipped]).value_counts()
                                 .items()) + ")")
    if short:
        notes.append(f"{len(short)} unit(s) have fewer than {candidates} partners with flows")
    for t, us in lacking.items():
        if us:
            notes.append(f"{len(us)} unit(s) left out for {t}: no {t} in {sf.forecaster_.data_end_[t]}, the year its "
                         f"forecasts start from ({', '.join(us[:5])}{', ...' if len(us) > 5 else ''})")
    q.attrs["skipped"] = skipped
    q.attrs["note"] = "; ".join(notes)
    return q


# ---- answers --------------------------------------------------------------------------------------------------
def _sweep_params(params: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple[int, ...], tuple[str, ...]]:
    """The model's params for a sweep: ``trajectory`` false (one row per question and method), no explanations."""
    p = dict(params or {})
    if p.get("explain") not in (None, False, "false"):
        raise ConfigError("a sweep answers forecasts and effects only; explanations (params.explain) go through "
                          "`tiecast predict` or the scoring server", parameter="params")
    if p.get("trajectory") not in (None, False, "false"):
        raise ConfigError("a sweep answers each question's horizon year only (params.trajectory must be false: one "
                          "row per question, as Spark needs)", parameter="params")
    unknown = sorted(set(p) - {"explain", "trajectory", "levels", "methods"})
    if unknown:
        raise ConfigError(f"unknown params {unknown}; a sweep takes levels and methods", parameter="params")
    p.pop("explain", None)
    levels_in = p.get("levels", list(LEVELS_COOPERATION))
    levels_in = [levels_in] if np.isscalar(levels_in) else list(levels_in)
    levels = tuple(sorted({int(lv) for lv in levels_in if not isinstance(lv, bool) and isinstance(lv, int | float)
                           and lv in LEVELS_COOPERATION}))
    if not levels or len(levels) != len(set(levels_in)):
        raise ConfigError(f"params.levels: {levels_in!r}; use {' and/or '.join(map(str, LEVELS_COOPERATION))}",
                          parameter="params")
    methods_in = p.get("methods", [REPORTED_METHOD])
    methods = tuple(dict.fromkeys([methods_in] if isinstance(methods_in, str) else map(str, methods_in)))
    if not methods:
        raise ConfigError("params.methods is empty; use e.g. [\"dml\"]", parameter="params")
    return {**p, "trajectory": False, "levels": list(levels), "methods": list(methods)}, levels, methods


def _response_columns(levels: Sequence[int]) -> list[str]:
    return [c for c in RESPONSE_COLUMNS
            if not any(c.endswith(f"er{lv}") for lv in LEVELS_COOPERATION if lv not in levels)]


def response_schema(levels: Sequence[int] = LEVELS_COOPERATION) -> Any:
    """The Spark StructType of the response columns (interval columns of ``levels`` only)."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    def kind(col: str) -> Any:
        return LongType() if col in _INTEGER_COLUMNS else StringType() if col in _TEXT_COLUMNS else DoubleType()

    return StructType([StructField(c, kind(c), True) for c in _response_columns(levels)])


def _request(questions: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(questions, pd.DataFrame):
        raise ConfigError("questions must be a DataFrame with columns " + ", ".join(REQUEST_COLUMNS),
                          parameter="questions")
    missing = [c for c in REQUEST_COLUMNS if c not in questions.columns]
    if missing:
        raise ConfigError(f"the questions lack the column(s) {missing}; build them with sweep_questions() or give "
                          f"{', '.join(REQUEST_COLUMNS)}", parameter="questions")
    if questions.empty:
        raise ConfigError("no questions to answer", parameter="questions")
    q = questions[list(REQUEST_COLUMNS)].reset_index(drop=True)
    return q.assign(unit_id=q["unit_id"].astype(str), target=q["target"].astype(str),
                    horizon=pd.to_numeric(q["horizon"], errors="coerce").astype(float),
                    scenario=q["scenario"].fillna("").astype(str))


def _finish(frame: pd.DataFrame, levels: Sequence[int]) -> pd.DataFrame:
    cols = _response_columns(levels)
    out = frame.sort_values(["question", "method"], kind="stable").reset_index(drop=True)
    out = out.drop_duplicates(["question", "method"]).reset_index(drop=True)
    out = out[cols].astype({c: "int64" for c in _INTEGER_COLUMNS})
    return out.astype({c: object for c in _TEXT_COLUMNS})


def _bad_request(message: str) -> ConfigError:
    """The model's message (``bad request: ...``; from Spark, the last line of the worker's traceback)."""
    found = re.findall(r"(?:MlflowException: )?bad request: ([^\n]+)", message)
    text = (found[-1] if found else message.splitlines()[0]).strip()
    return ConfigError(f"the model refused a question: {text}", parameter="questions")


def _run_local(uri: str, q: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    from mlflow.exceptions import MlflowException

    model = load_service(uri)
    parts = []
    for start in range(0, len(q), MAX_QUESTIONS):
        chunk = q.iloc[start:start + MAX_QUESTIONS].reset_index(drop=True)
        try:
            part = model.predict(chunk, params=params)
        except MlflowException as e:
            raise _bad_request(e.message) from None
        parts.append(part.assign(question=part["question"].to_numpy() + start))
    return pd.concat(parts, ignore_index=True)


def java_available() -> bool:
    """A ``java`` on PATH or under JAVA_HOME (Spark's JVM)."""
    home = os.environ.get("JAVA_HOME", "").strip()
    return bool(shutil.which("java")) or bool(home and (Path(home) / "bin" / "java").is_file())


def spark_session(master: str = "local[2]", *, app_name: str = "tiecast-sweep") -> Any:
    """A Spark session for the sweep: ``local[2]`` on loopback (driver bound to 127.0.0.1, no UI, few shuffle
    partitions, Arrow transfers, batches of at most MAX_QUESTIONS rows). Raises ConfigError without Java or
    pyspark."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("the spark engine needs pyspark: pip install 'tiecast[scale]' (or pyspark==4.3.0)",
                          parameter="engine") from None
    if not java_available():
        raise ConfigError(f"the spark engine needs Java: {JAVA_HINT}", parameter="engine")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter (its packages)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(MAX_QUESTIONS))
               .config("spark.executorEnv.OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE")))
    if local:
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # e.g. PySparkRuntimeError JAVA_GATEWAY_EXITED: the JVM did not start
        if "JAVA_GATEWAY" in str(e) or "java" in str(e).lower():
            raise ConfigError(f"Spark's JVM did not start ({str(e).splitlines()[0]}): {JAVA_HINT}",
                              parameter="engine") from None
        raise
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _session(spark: Any, master: str) -> tuple[Any, bool]:
    """(session, whether this call started it): ``spark``, else the active session, else a new one."""
    if spark is not None:
        return spark, False
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return spark_session(master), True  # raises the ConfigError naming the package
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    return spark_session(master), True


def _partitions(questions: int, parallelism: int) -> int:
    """Default partitions: up to 4 per core (answers cost unevenly across units; small tasks balance the cores),
    with at least ~500 questions each (every task loads the model once)."""
    return max(1, min(4 * parallelism, max(parallelism, -(-questions // 500))))


def _run_spark(uri: str, q: pd.DataFrame, params: dict[str, Any], levels: Sequence[int], methods: Sequence[str],
               spark: Any, partitions: int | None, master: str) -> pd.DataFrame:
    import mlflow
    from mlflow.exceptions import MlflowException

    session, own = _session(spark, master)
    from pyspark.sql.functions import col, struct

    conf_key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = session.conf.get(conf_key, None)
    try:
        if before is None or int(before) <= 0 or int(before) > MAX_QUESTIONS:  # one predict <= MAX_QUESTIONS rows
            session.conf.set(conf_key, str(MAX_QUESTIONS))
        n_parts = int(partitions or _partitions(len(q), int(session.sparkContext.defaultParallelism)))
        frame = session.createDataFrame(q.assign(_q=np.arange(len(q), dtype="int64")))
        frame = frame.repartitionByRange(n_parts, "_q") if n_parts > 1 else frame.coalesce(1)
        schema = response_schema(levels)
        parts = []
        for method in methods:  # one UDF per method: each returns exactly one row per question
            try:
                udf = mlflow.pyfunc.spark_udf(session, uri, result_type=schema, env_manager="local",
                                              params={**params, "methods": [method]})
            except MlflowException as e:
                raise ConfigError(f"cannot load the model {uri!r} for Spark: {e.message.splitlines()[0]}",
                                  parameter="model") from None
            answered = frame.select(col("_q"), udf(struct(*REQUEST_COLUMNS)).alias("a")).select("_q", "a.*")
            try:
                part = answered.toPandas()
            except Exception as e:  # the model's MlflowException arrives wrapped by Py4J / PySpark
                if "MlflowException: bad request: " in str(e):
                    raise _bad_request(str(e)) from None
                raise
            parts.append(part.assign(question=part["_q"].to_numpy()).drop(columns="_q"))
        return pd.concat(parts, ignore_index=True)
    finally:
        if own:
            session.stop()
        elif before is None:
            session.conf.unset(conf_key)
        else:
            session.conf.set(conf_key, before)


def run_sweep(uri: str, questions: pd.DataFrame, *, engine: str = "local", spark: Any = None,
              params: Mapping[str, Any] | None = None, partitions: int | None = None,
              master: str = "local[2]") -> pd.DataFrame:
    """Answers of the model at ``uri`` to ``questions`` (request columns; e.g. from :func:`sweep_questions`):
    one row per question and method in the question order, in the response columns (``question`` = the row's
    position in ``questions``). ``engine``: ``local`` (this process) or ``spark`` (``spark_udf`` on ``spark``;
    without one, on the active session, else on a :func:`spark_session` of ``master`` started and stopped here;
    ``partitions`` defaults to up to 4 per core, at least ~500 questions each). ``params``: the model's ``levels``
    and ``methods`` (``trajectory`` is false). Raises ConfigError for a bad engine, bad params or a question the
    model refuses."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}", parameter="engine")
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int)
                                   or partitions < 1):
        raise ConfigError(f"partitions must be an integer >= 1; got {partitions!r}", parameter="partitions")
    full, levels, methods = _sweep_params(params)
    q = _request(questions)
    if engine == "local":
        out = _run_local(uri, q, full)
    else:
        out = _run_spark(uri, q, full, levels, methods, spark, partitions, master)
    return _finish(out, levels)
