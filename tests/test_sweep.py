"""`tiecast sweep`: every unit x scenario x candidate partner answered by the registered model, in this process and
with mlflow.pyfunc.spark_udf on a real local Spark (the code path of a cluster), with equal answers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_serving_rest import write_flow_dataset

from tiecast.cli import main
from tiecast.common import ConfigError
from tiecast.features import BUILTIN_SCENARIOS
from tiecast.serving import java_available, load_service, run_sweep, spark_session, sweep_questions

pytestmark = pytest.mark.slow  # trains and registers a model, starts Spark

URI = "models:/tiecast-synth@champion"
UNITS = ["00001", "00002", "00003", "00004", "00005", "00006"]  # 00001/00002 are hubs: "hub" does not apply
CANDIDATES = 3
_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sweep")
    folder = write_flow_dataset(root / "synth")
    before = {k: os.environ.get(k) for k in _ENV}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        assert main(["train", "--data", str(folder), "--origins", "2013", "--no-progress"]) == 0
        assert main(["promote", "--data", str(folder)]) == 0
        yield {"root": root, "folder": folder}
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def spark(registered: dict[str, Any]) -> Iterator[Any]:
    if not java_available():
        pytest.fail("the spark engine needs Java (apt-get install openjdk-17-jre-headless)")
    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def swept(registered: dict[str, Any], spark: Any) -> dict[str, Any]:
    model = load_service(URI)
    questions = sweep_questions(model, units=UNITS, candidates=CANDIDATES)
    start = time.perf_counter()
    local = run_sweep(URI, questions, engine="local")
    local_s = time.perf_counter() - start
    start = time.perf_counter()
    on_spark = run_sweep(URI, questions, engine="spark", spark=spark)
    spark_s = time.perf_counter() - start
    print(f"\nsweep of {len(questions)} questions: local {local_s:.1f} s, spark local[2] {spark_s:.1f} s")
    return {"model": model, "sf": model.unwrap_python_model().sf, "questions": questions, "local": local,
            "spark": on_spark}


def test_questions_cover_every_unit_applicable_builtin_and_candidate(swept: dict[str, Any]) -> None:
    q, sf = swept["questions"], swept["sf"]
    skipped = q.attrs["skipped"]
    applicable = len(UNITS) * len(BUILTIN_SCENARIOS) - len(skipped)
    assert len(q) == (applicable + len(UNITS) * CANDIDATES) * len(sf.targets)
    assert {(u, s) for u, s, _ in skipped} >= {("00001", "hub"), ("00002", "hub")} | {(u, "contiguous")
                                                                                     for u in UNITS}
    assert "left out" in q.attrs["note"] and (q["horizon"] == sf.horizons).all()
    assert list(dict.fromkeys(q["unit_id"])) == UNITS
    # the one-pass screen of the partner rules leaves out exactly what sf.apply refuses, unit by unit (all units)
    screened = sweep_questions(sf, candidates=0)
    exact = sweep_questions(sf, candidates=0, precheck="apply")
    assert screened.equals(exact) and sorted(screened.attrs["skipped"]) == sorted(exact.attrs["skipped"])
    assert len(exact.attrs["skipped"]) > len(sf.ds.units)  # contiguous for all + hub for the hubs
    # the candidates are each unit's top partners by two-way volume in the latest flows (checked the slow way)
    flows = sf.ds.flows[(sf.ds.flows["kind"] == "migration") & (sf.ds.flows["year"] == sf.origin)]
    for unit in UNITS:
        two_way: dict[str, float] = {}
        for o, d, v in flows[["origin", "destination", "value"]].itertuples(index=False):
            if unit in (o, d) and o != d:
                other = d if o == unit else o
                two_way[other] = two_way.get(other, 0.0) + float(v)
        best = [p for p, _ in sorted(two_way.items(), key=lambda kv: (-kv[1], kv[0]))[:CANDIDATES]]
        cands = q[(q["unit_id"] == unit) & (q["kind"] == "candidate")]
        assert list(cands["partner"]) == best
        assert all(f'"partners": ["{p}"]' in s and f'"start_year": {sf.origin + 1}' in s
                   for p, s in zip(cands["partner"], cands["scenario"], strict=True))


def test_spark_answers_equal_the_single_process_predictor(swept: dict[str, Any]) -> None:
    local, on_spark, q = swept["local"], swept["spark"], swept["questions"]
    assert list(local.columns) == list(on_spark.columns)
    assert len(local) == len(on_spark) == len(q)  # trajectory false: one row per question (one method)
    assert list(local["question"]) == list(on_spark["question"]) == list(range(len(q)))
    numeric = [c for c in local.columns if pd.api.types.is_float_dtype(local[c])]
    assert len(numeric) == 15
    for c in local.columns:
        if c in numeric:
            np.testing.assert_allclose(on_spark[c].to_numpy(), local[c].to_numpy(), rtol=1e-12, err_msg=c)
        else:
            assert (on_spark[c].to_numpy() == local[c].to_numpy()).all(), c
    assert list(local["unit_id"]) == list(q["unit_id"]) and list(local["target"]) == list(q["target"])
    cand = q["kind"] == "candidate"
    assert (local.loc[cand, "role"] == "focal").all()
    assert list(local.loc[cand, "scenario_id"]) == [f"partner_{p}" for p in q.loc[cand, "partner"]]
    assert (local["method"] == "dml").all() and (local["year"] == swept["sf"].origin + swept["sf"].horizons).all()
    # the sweep equals answering the same questions one request at a time (the scoring server's path)
    one = swept["model"].predict(q.iloc[[5]][["unit_id", "target", "horizon", "scenario"]].reset_index(drop=True),
                                 params={"trajectory": False})
    np.testing.assert_allclose(one["cooperation"].to_numpy(), local.loc[[5], "cooperation"].to_numpy(), rtol=1e-12)


def test_bad_engine_unit_params_and_missing_java(swept: dict[str, Any], spark: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    q = swept["questions"]
    with pytest.raises(ConfigError, match="unknown engine 'dask'; use local or spark"):
        run_sweep(URI, q, engine="dask")
    with pytest.raises(ConfigError, match="unknown unit"):
        sweep_questions(swept["model"], units=["00001", "99999"])
    with pytest.raises(ConfigError, match="horizon must be an integer from 1 to 10"):
        sweep_questions(swept["model"], units=UNITS, horizon=11)
    with pytest.raises(ConfigError, match="trajectory"):
        run_sweep(URI, q.head(2), params={"trajectory": True})
    bad = q.head(3).copy()
    bad.loc[1, "unit_id"] = "99999"
    with pytest.raises(ConfigError, match="unknown unit '99999'"):
        run_sweep(URI, bad, engine="local")
    with pytest.raises(ConfigError, match="unknown unit '99999'"):  # refused on an executor, reported here
        run_sweep(URI, bad, engine="spark", spark=spark)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigError, match="apt-get install openjdk-17-jre-headless"):
        spark_session()


def test_cli_sweep_on_spark_writes_the_answers(swept: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep.parquet"
    assert main(["sweep", "--model", URI, "--engine", "spark", "--units", ",".join(UNITS[:3]), "--candidates",
                 str(CANDIDATES), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "questions" in text and "spark engine" in text and "wall" in text
    got = pd.read_parquet(out)
    local = swept["local"]
    expected = local[local["unit_id"].isin(UNITS[:3])].reset_index(drop=True)
    assert len(got) == len(expected) and list(got.columns) == list(local.columns)
    np.testing.assert_allclose(got["cooperation"], expected["cooperation"], rtol=1e-12)
    assert list(got["scenario_id"]) == list(expected["scenario_id"])
    assert main(["sweep", "--model", URI, "--engine", "local", "--units", "99999", "--out", str(out)]) == 1
    assert "unknown unit(s) 99999" in capsys.readouterr().err
