"""The served model for real: `tiecast train` + `promote` register it, `tiecast serve` starts MLflow's scoring server
as a subprocess, requests go over real HTTP, and the answers equal `tiecast forecast` exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tiecast.cli import main

pytestmark = pytest.mark.slow  # trains, registers and serves a model

N_UNITS = 24
UNIT = "00003"
CLI = "import sys; from tiecast.cli import main; raise SystemExit(main(sys.argv[1:]))"


def write_flow_dataset(folder: Path) -> Path:
    """The synthetic contract dataset of the backtest tests with yearly migration flows (scenarios need them)."""
    from test_training_backtest import write_synthetic

    return write_synthetic(folder, n_units=N_UNITS, first=2004, last=2019, yearly_flows=0.4, flow_seed=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: bytes | str, content_type: str = "application/json") -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except json.JSONDecodeError:
            return e.code, {"message": text}


def _request(rows: list[list[Any]], params: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"dataframe_split": {"columns": ["unit_id", "target", "horizon", "scenario"], "data": rows}}
    if params is not None:
        body["params"] = params
    return json.dumps(body)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serving")
    folder = write_flow_dataset(root / "synth")
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        assert main(["train", "--data", str(folder), "--origins", "2012,2013", "--no-progress"]) == 0
        assert main(["promote", "--data", str(folder)]) == 0
        port = _free_port()
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--model", "models:/tiecast-synth@champion",
                                 "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=root, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"the scoring server did not come up: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.3)
        cold = time.perf_counter() - start
        yield {"url": url, "folder": folder, "root": root, "proc": proc, "uri": uri, "cold_start_s": cold}
        proc.terminate()  # `tiecast serve` stops the server's process group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    finally:
        if env_before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_before


def _forecast_cli(served: dict[str, Any], scenario: str | None, out: Path) -> pd.DataFrame:
    args = ["forecast", "--data", str(served["folder"]), "--units", UNIT, "--horizon", "10", "--out", str(out),
            "--no-progress"] + (["--scenario", scenario] if scenario else [])
    assert main(args) == 0
    return pd.read_csv(out, dtype={"unit_id": str})


def test_answers_over_http_equal_tiecast_forecast(served: dict[str, Any], tmp_path: Path) -> None:
    status, body = _post(f"{served['url']}/invocations",
                         _request([[UNIT, "population", 10, "top2"], [UNIT, "population", 10, ""]],
                                  {"methods": ["dml", "forecaster_whatif"]}))
    assert status == 200, body
    got = pd.DataFrame(body["predictions"])
    expected = _forecast_cli(served, "top2", tmp_path / "f.csv")
    expected = expected[(expected["unit_id"] == UNIT) & (expected["target"] == "population")]
    scen = got[got["question"] == 0].drop(columns="question")
    assert set(scen["method"]) == {"dml", "forecaster_whatif"} and len(scen) == 20
    merged = scen.merge(expected, on=["method", "year"], suffixes=("", "_cli"))
    assert len(merged) == 20
    for col in ("baseline", "baseline_lower80", "baseline_upper90", "cooperation", "cooperation_lower90",
                "difference"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_cli"], rtol=1e-12, err_msg=col)
    dml = merged[merged["method"] == "dml"]
    np.testing.assert_allclose(dml["difference_lower80"], dml["difference_lower80_cli"], rtol=1e-12)
    assert (dml["difference"] != 0).any()
    base = got[got["question"] == 1]
    assert set(base["method"]) == {"baseline"} and (base["difference"] == 0).all() and len(base) == 10
    cli_base = _forecast_cli(served, None, tmp_path / "b.csv")
    cli_base = cli_base[(cli_base["unit_id"] == UNIT) & (cli_base["target"] == "population")]
    np.testing.assert_allclose(base["baseline"].to_numpy(), cli_base.sort_values("year")["baseline"], rtol=1e-12)


def test_levels_and_explanations(served: dict[str, Any]) -> None:
    status, body = _post(f"{served['url']}/invocations",
                         _request([[UNIT, "population", 3, "baseline"], ["00005", "population", 2, "top2"]],
                                  {"explain": True, "levels": [90]}))
    assert status == 200, body
    got = pd.DataFrame(body["predictions"])
    assert "baseline_lower80" not in got and "difference_lower90" in got and "baseline_upper90" in got
    shap = [c for c in got if c.startswith("shap_") and c not in ("shap_base", "shap_other")]
    assert {"shap_ties", "shap_history"} <= set(shap)
    pop = got[got["question"] == 0]
    # SHAP adds up: base + groups + other = the forecaster's log growth to the row's year
    level0 = pd.read_csv(served["folder"] / "panel.csv", dtype={"unit_id": str}).query(
        "unit_id == @UNIT and year == 2019")["population"].iloc[0]
    total = pop["shap_base"] + pop[shap].sum(axis=1) + pop["shap_other"]
    np.testing.assert_allclose(total, np.log(pop["baseline"] / level0), atol=1e-9)
    drivers = json.loads(pop["top_drivers"].iloc[-1])
    assert 1 <= len(drivers) <= 5 and {"feature", "value", "contribution"} <= set(drivers[0])
    contribs = [abs(d["contribution"]) for d in drivers]
    assert contribs == sorted(contribs, reverse=True)
    # trajectory=false: one row per question and method (what mlflow.pyfunc.spark_udf needs), the horizon's year
    status, body = _post(f"{served['url']}/invocations",
                         _request([[UNIT, "population", 3, "top2"], ["00005", "population", 7, ""]],
                                  {"trajectory": False}))
    assert status == 200, body
    last = pd.DataFrame(body["predictions"])
    assert list(last["question"]) == [0, 1] and list(last["horizon"]) == [3, 7]
    assert list(last["year"]) == [2022, 2026]


BAD = [
    (_request([["99999", "population", 5, ""]]), "unknown unit '99999'"),
    (_request([[UNIT, "gdp", 5, ""]]), "unknown target 'gdp'"),
    (_request([[UNIT, "population", 11, ""]]), "not an integer from 1 to 10"),
    (_request([[UNIT, "population", 0, ""]]), "not an integer from 1 to 10"),
    (_request([[UNIT, "population", 2.5, ""]]), "horizon"),
    (_request([[UNIT, "population", 5, "{\"factor\": 2,"]]), "malformed JSON"),
    (_request([[UNIT, "population", 5, "{\"partners\": [\"00004\"], \"factor\": -1, \"start_year\": 2020}"]]),
     "factor"),
    (_request([[UNIT, "population", 5, "neighbours"]]), "unknown built-in scenario"),
    (json.dumps({"dataframe_split": {"columns": ["unit_id", "target", "horizon"], "data": [[UNIT, "population", 5]]}}),
     "scenario"),
    (_request([]), "no rows"),
    ("this is not json", "json"),
    (_request([[UNIT, "population", 5, ""]], {"levels": [75]}), "levels"),
    (_request([[UNIT, "population", 1, ""]] * 5001), "at most 5,000"),
]


@pytest.mark.parametrize(("body", "phrase"), BAD, ids=[p for _, p in BAD])
def test_bad_requests_get_400_with_what_to_fix(served: dict[str, Any], body: str, phrase: str) -> None:
    status, answer = _post(f"{served['url']}/invocations", body)
    assert 400 <= status < 500, (status, answer)
    assert phrase.lower() in json.dumps(answer, ensure_ascii=False).lower(), answer
    with urllib.request.urlopen(f"{served['url']}/ping", timeout=5) as r:  # still alive
        assert r.status == 200
    assert served["proc"].poll() is None


def test_offline_predict_is_the_same_code_path(served: dict[str, Any], tmp_path: Path) -> None:
    body = _request([[UNIT, "population", 4, "top2"], ["00002", "population", 1, ""]], {"explain": True})
    (tmp_path / "req.json").write_text(body, encoding="utf-8")
    code = main(["predict", "--model", "models:/tiecast-synth@champion", "--input", str(tmp_path / "req.json"),
                 "--out", str(tmp_path / "answer.json")])
    assert code == 0
    offline = pd.DataFrame(json.loads((tmp_path / "answer.json").read_text(encoding="utf-8"))["predictions"])
    status, online = _post(f"{served['url']}/invocations", body)
    assert status == 200
    pd.testing.assert_frame_equal(offline, pd.DataFrame(online["predictions"]), check_dtype=False, rtol=1e-12)
    (tmp_path / "bad.json").write_text("{]", encoding="utf-8")
    assert main(["predict", "--model", "models:/tiecast-synth@champion", "--input", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "x.json")]) == 1
    assert not (tmp_path / "x.json").exists()


def test_serve_refuses_a_missing_model(served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "models:/tiecast-nowhere@champion", "--port", "5999"]) == 1
    assert "tiecast train" in capsys.readouterr().err


def test_model_records_fingerprint_requirements_and_code(served: dict[str, Any]) -> None:
    import mlflow

    from tiecast.features import load_dataset

    local = Path(mlflow.artifacts.download_artifacts("models:/tiecast-synth@champion"))
    reqs = (local / "requirements.txt").read_text()
    assert "lightgbm==" in reqs and "mlflow==" in reqs and "-e " not in reqs and "tiecast" not in reqs
    assert (local / "code" / "tiecast" / "serving" / "_service.py").is_file()
    assert not any((local / "code" / "tiecast" / "datasets").glob("korea*"))  # the bundled data is not copied
    meta = mlflow.models.Model.load(str(local)).metadata["tiecast"]
    assert meta["dataset_fingerprint"] == load_dataset(served["folder"]).fingerprint
    sig = mlflow.models.Model.load(str(local)).signature
    assert sig.inputs.input_names() == ["unit_id", "target", "horizon", "scenario"]
    assert {p.name for p in sig.params.params} == {"explain", "levels", "methods", "trajectory"}


def test_model_loads_in_a_clean_environment_from_its_own_requirements(served: dict[str, Any], tmp_path: Path) -> None:
    """No checkout, no editable install: a fresh virtual environment with only the model's requirements.txt."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts("models:/tiecast-synth@champion", dst_path=str(tmp_path / "m")))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check", "-r",
                          str(local / "requirements.txt")],
                         capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr[-2000:]
    request = [[UNIT, "population", 6, "top2"], ["00004", "population", 2, ""]]
    script = f"""
import json, importlib.util, sys
import mlflow, pandas as pd
assert importlib.util.find_spec("tiecast") is None, "tiecast must not be installed here"
model = mlflow.pyfunc.load_model({str(local)!r})
frame = pd.DataFrame({request!r}, columns=["unit_id", "target", "horizon", "scenario"]).astype({{"horizon": float}})
out = model.predict(frame, params={{"explain": True}})
print(out.to_json(orient="split"))
"""
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    clean = pd.read_json(__import__("io").StringIO(run.stdout.strip().splitlines()[-1]), orient="split",
                         dtype={"unit_id": str})
    status, online = _post(f"{served['url']}/invocations", _request(request, {"explain": True}))
    assert status == 200
    pd.testing.assert_frame_equal(clean, pd.DataFrame(online["predictions"]), check_dtype=False, rtol=1e-10)
