"""Panels a new user brings that the bundled data never shows: a dataset and a target named with characters
MLflow rejects in model names and keys, and units whose latest figure is not published yet."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from test_training_backtest import FAST, write_synthetic

from tiecast.cli import main
from tiecast.common import ConfigError, DatasetError
from tiecast.features import build_features, builtin_scenario, check_dataset, load_dataset
from tiecast.features._panel import DEFAULT_DISTANCE_DECAY
from tiecast.serving import sweep_questions
from tiecast.serving._package import _example_question
from tiecast.serving._service import answer_questions
from tiecast.training import ScenarioForecaster, model_name, promote, train_and_register
from tiecast.training._tracking import mlflow_key

NAME = "Gemeinden Österreich / NUTS-3: 2024"
TARGET = "Einkommen € pro Kopf"


def test_mlflow_names_and_keys_keep_what_mlflow_allows() -> None:
    assert model_name("korea") == "tiecast-korea"
    assert model_name(NAME) == "tiecast-Gemeinden Österreich - NUTS-3- 2024"
    assert mlflow_key("origins", TARGET) == "origins_Einkommen _ pro Kopf"  # letters of any script stay
    assert mlflow_key("tiecast", "a/b:c", "all", "h1") == "tiecast_a_b_c_all_h1"
    assert mlflow_key(".hidden") == "_.hidden" and len(mlflow_key("x" * 400)) == 250


@pytest.mark.slow
def test_train_and_promote_a_dataset_whose_names_mlflow_rejects(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_synthetic(tmp_path / "folder name differs")
    panel = pd.read_csv(folder / "panel.csv", dtype={"unit_id": str}).rename(columns={"income": TARGET})
    panel.to_csv(folder / "panel.csv", index=False)
    (folder / "dataset.toml").write_text(f'name = "{NAME}"\ntargets = ["population", "{TARGET}"]\n',
                                         encoding="utf-8")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ds = load_dataset(folder)
    res = train_and_register(ds, features=build_features(ds), origins=[2016], horizons=2, params=FAST)
    assert res.model_name == "tiecast-Gemeinden Österreich - NUTS-3- 2024"
    run = MlflowClient().get_run(res.run_id)
    assert run.data.params["origins_Einkommen _ pro Kopf"] == "2016"
    assert "weights_Einkommen _ pro Kopf_h1" in run.data.params
    assert "tiecast_Einkommen _ pro Kopf_all_mape_h1" in run.data.metrics
    assert run.data.tags["dataset"] == NAME  # tags keep the name as written
    promoted = promote(ds.name)
    assert promoted.promoted and promoted.reason == "no champion yet"
    # serve / predict / sweep find the champion from the folder, whose name is not the dataset's
    from tiecast.cli._cmd_serve import _check_registered, _model_uri

    uri = _model_uri(argparse.Namespace(model=None, data=str(folder)))
    assert uri == "models:/tiecast-Gemeinden Österreich - NUTS-3- 2024@champion"
    _check_registered(uri)  # raises TrackingError when no such champion exists
    # a revision of the data under the same name: not compared with the champion's backtest unless forced
    panel.loc[panel.index[:5], "population"] *= 1.01
    panel.to_csv(folder / "panel.csv", index=False)
    revised = load_dataset(folder)
    assert revised.fingerprint != ds.fingerprint
    train_and_register(revised, features=build_features(revised), origins=[2016], horizons=2, params=FAST)
    refused = promote(revised.name)
    assert not refused.promoted and "trained on different data" in refused.reason
    assert promote(revised.name, force=True).promoted


@pytest.fixture(scope="module")
def lagging(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Unit 00001 has no row in the last year (2019), unit 00002 no income in it."""
    folder = write_synthetic(tmp_path_factory.mktemp("lag") / "lag", yearly_flows=0.3)
    panel = pd.read_csv(folder / "panel.csv", dtype={"unit_id": str})
    panel = panel[~((panel["unit_id"] == "00001") & (panel["year"] == 2019))]
    panel.loc[(panel["unit_id"] == "00002") & (panel["year"] == 2019), "income"] = float("nan")
    panel.to_csv(folder / "panel.csv", index=False)
    ds = load_dataset(folder)
    return ScenarioForecaster(ds, horizons=2, params=FAST, seed=0).fit()


def test_units_without_the_start_year_are_named_not_silently_dropped(lagging) -> None:  # type: ignore[no-untyped-def]
    sf = lagging
    assert sf.origin == 2019
    assert sf.unforecast() == {"population": ["00001"], "income": ["00001", "00002"]}
    with pytest.raises(ConfigError, match=r"unit 00001 \(U0\) has no population in 2019.*last population is of "
                                          r"2018 in panel.csv.*add its 2019 value"):
        sf.baseline(["00001"])
    with pytest.raises(ConfigError, match="unit 00001"):
        sf.answer(builtin_scenario("top1", "00003", sf.origin), units=["00001"])
    # a unit with one target left is answered for that target and refused, with the row named, for the other
    ok = answer_questions(sf, pd.DataFrame({"unit_id": ["00002"], "target": ["population"], "horizon": [2],
                                            "scenario": [""]}))
    assert len(ok.frame) > 0 and set(ok.frame["target"]) == {"population"}
    with pytest.raises(ConfigError, match=r"row 1: unit 00002 \(U1\) has no income in 2019"):
        answer_questions(sf, pd.DataFrame({"unit_id": ["00002", "00002"], "target": ["population", "income"],
                                           "horizon": [1, 1], "scenario": ["", "top1"]}))
    # the logged input example asks about a unit every target is forecast for
    assert _example_question(sf)[0] not in {"00001", "00002"}
    # a sweep leaves those (unit, target) questions out and says so; the rest are answered
    q = sweep_questions(sf, candidates=1, builtins=["top1"], horizon=1)
    assert "00001" not in set(q["unit_id"]) and set(q.loc[q["unit_id"] == "00002", "target"]) == {"population"}
    assert "1 unit(s) left out for population" in q.attrs["note"]
    assert "2 unit(s) left out for income: no income in 2019" in q.attrs["note"]
    answered = answer_questions(sf, q[q["unit_id"].isin(["00002", "00003"])][["unit_id", "target", "horizon",
                                                                               "scenario"]])
    assert answered.frame["baseline"].notna().all()


def test_a_panel_column_named_like_a_derived_feature_is_named_in_the_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_synthetic(tmp_path / "clash")
    panel = pd.read_csv(folder / "panel.csv", dtype={"unit_id": str})
    panel["population_growth_1y"] = 0.01  # the user's own growth column, named as tiecast names its feature
    panel["net_rate_chg3"] = 0.0  # clashes with the 3-year change tiecast derives from net_rate
    panel.to_csv(folder / "panel.csv", index=False)
    with pytest.raises(DatasetError) as info:
        build_features(load_dataset(folder))
    assert sorted(p.column for p in info.value.problems) == ["net_rate_chg3", "population_growth_1y"]
    assert all(p.file == "panel.csv" and "rename the column" in (p.fix or "") for p in info.value.problems)
    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "column 'population_growth_1y'" in out and "2 error(s)" in out


def test_contract_checks_a_new_user_meets(tmp_path: Path) -> None:
    # primary_target that is not a target: an error, not a run without its primary metric
    bad = write_synthetic(tmp_path / "primary")
    (bad / "dataset.toml").write_text('name = "p"\ntargets = ["population", "income"]\nprimary_target = "pop"\n',
                                      encoding="utf-8")
    [p] = [p for p in check_dataset(bad) if p.severity == "error"]
    assert p.column == "primary_target" and "'pop' is not one of the targets" in p.message
    # a semicolon-separated panel: the separator is named, not "unit_id is missing"
    semi = write_synthetic(tmp_path / "semicolon")
    pd.read_csv(semi / "panel.csv", dtype={"unit_id": str}).to_csv(semi / "panel.csv", sep=";", index=False)
    errors = [p for p in check_dataset(semi) if p.severity == "error"]
    assert len(errors) == 1 and "separated by ';'" in errors[0].message and errors[0].file == "panel.csv"
    # a year no unit has, and a unit without coordinates: warnings saying what is lost
    gap = write_synthetic(tmp_path / "gap")
    panel = pd.read_csv(gap / "panel.csv", dtype={"unit_id": str})
    panel[panel["year"] != 2012].to_csv(gap / "panel.csv", index=False)
    units = pd.read_csv(gap / "units.csv", dtype={"unit_id": str})
    units["lat"], units["lon"] = 36.0 + units.index * 0.1, 128.0
    units.loc[2, "lat"] = float("nan")
    units.to_csv(gap / "units.csv", index=False)
    warnings = [p for p in check_dataset(gap) if p.severity == "warning"]
    assert any(p.column == "year" and "no unit has a row for 2012" in p.message for p in warnings)
    assert any(p.column == "lat" and "00003" in (p.row or "") and "no gravity features" in p.message
               for p in warnings)


def test_a_unit_without_coordinates_leaves_the_others_gravity_features_intact(tmp_path: Path) -> None:
    """The unit gets NaN gravity features; every other unit's are exactly those of the dataset without it."""
    folder = write_synthetic(tmp_path / "coords", yearly_flows=0.3)
    units = pd.read_csv(folder / "units.csv", dtype={"unit_id": str})
    rng = np.random.default_rng(3)
    units["lat"], units["lon"] = 35 + rng.uniform(0, 3, len(units)), 127 + rng.uniform(0, 2, len(units))
    units.loc[units["unit_id"] == "00004", ["lat", "lon"]] = float("nan")
    units.to_csv(folder / "units.csv", index=False)
    pf = build_features(load_dataset(folder))
    gravity = [c for c in pf.names if c.endswith("_gravity") or "gravity_" in c]
    assert {"borrowed_size_gravity_log", "gravity_access_log", "gravity_decay"} <= set(gravity)
    frame = pf.frame.set_index(["unit_id", "year"])
    assert frame.loc["00004", [c for c in gravity if c != "gravity_decay"]].isna().all().all()
    without = tmp_path / "without"
    without.mkdir()
    units[units["unit_id"] != "00004"].to_csv(without / "units.csv", index=False)
    panel = pd.read_csv(folder / "panel.csv", dtype={"unit_id": str})
    panel[panel["unit_id"] != "00004"].to_csv(without / "panel.csv", index=False)
    flows = pd.read_csv(folder / "flows.csv", dtype={"origin": str, "destination": str})
    flows[(flows["origin"] != "00004") & (flows["destination"] != "00004")].to_csv(without / "flows.csv",
                                                                                  index=False)
    (without / "dataset.toml").write_bytes((folder / "dataset.toml").read_bytes())
    reference = build_features(load_dataset(without)).frame.set_index(["unit_id", "year"])
    mine = frame.drop(index="00004", level="unit_id")[gravity]
    pd.testing.assert_frame_equal(mine, reference.loc[mine.index, gravity], rtol=1e-9, atol=1e-12)
    assert mine["borrowed_size_gravity_log"].notna().mean() > 0.9
    assert (mine["gravity_decay"] != DEFAULT_DISTANCE_DECAY).any()  # fitted on the located units' flows
