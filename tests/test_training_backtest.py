"""Backtests on a small synthetic dataset folder that uses only the contract's required keys.

The folder has 16 units over 2006–2019, a second target covering only the last 8 years, a missing year in
one unit and migration flows of one year; ``dataset.toml`` holds only ``name`` and ``targets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiecast.cli import main
from tiecast.common import ConfigError
from tiecast.features import build_features, load_dataset
from tiecast.training import BACKTEST_FORECAST_COLUMNS, METRIC_COLUMNS, backtest, parse_origins
from tiecast.training._backtest import plan_target, tune_params
from tiecast.training._data import target_matrix

FAST = {"n_estimators": 60}


def with_panel(src: Path, dest: Path, panel: pd.DataFrame) -> Path:
    """A copy of dataset folder ``src`` at ``dest`` (units, contract, flows) with ``panel`` as its panel."""
    dest.mkdir(parents=True)
    for name in ("units.csv", "dataset.toml", "flows.csv"):
        (dest / name).write_bytes((src / name).read_bytes())
    panel.to_csv(dest / "panel.csv", index=False)
    return dest


def write_synthetic(folder: Path, n_units: int = 16, first: int = 2006, last: int = 2019, seed: int = 7,
                    yearly_flows: float = 0.0, flow_seed: int = 0) -> Path:
    """A dataset folder with a persistent-growth population, a covariate that leads growth and a partial income;
    with ``yearly_flows`` > 0, migration flows of every year instead of one (that share of ordered pairs), as
    scenarios and the effect model need."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{i:05d}" for i in range(1, n_units + 1)]
    units = pd.DataFrame({"unit_id": ids, "name": [f"U{i}" for i in range(n_units)],
                          "kind": np.where(np.arange(n_units) % 2 == 0, "si", "gun"),
                          "capital_region": (np.arange(n_units) < n_units // 4).astype(int), "metro": 0})
    years = np.arange(first, last + 1)
    T = len(years)
    trend = rng.normal(0.0, 0.012, n_units)
    shocks = rng.normal(0, 0.004, (n_units, T))
    growth = np.empty((n_units, T))
    growth[:, 0] = trend
    for k in range(1, T):
        growth[:, k] = 0.7 * growth[:, k - 1] + 0.3 * trend + shocks[:, k]
    level = np.exp(np.log(rng.uniform(2e4, 8e5, n_units))[:, None] + np.cumsum(growth, axis=1))
    net_rate = 1000 * np.roll(growth, -1, axis=1) + rng.normal(0, 1, (n_units, T))
    income = np.exp(np.log(rng.uniform(15, 30, n_units))[:, None] + np.cumsum(0.03 + 0.3 * growth, axis=1))
    panel = pd.DataFrame({"unit_id": np.repeat(ids, T), "year": np.tile(years, n_units),
                          "population": level.ravel().round(), "net_rate": net_rate.ravel().round(3),
                          "income": income.ravel().round(4)})
    panel.loc[panel["year"] < last - 7, "income"] = np.nan
    panel = panel.drop(index=panel.index[(panel["unit_id"] == ids[3]) & (panel["year"] == first + 4)])
    units.to_csv(folder / "units.csv", index=False)
    panel.to_csv(folder / "panel.csv", index=False)
    o, d = rng.integers(0, n_units, 40), rng.integers(0, n_units, 40)
    keep = o != d
    flows = pd.DataFrame({"origin": np.array(ids)[o[keep]], "destination": np.array(ids)[d[keep]],
                          "year": last - 3, "kind": "migration", "value": rng.integers(1, 100, int(keep.sum()))})
    flows.drop_duplicates(["origin", "destination"]).to_csv(folder / "flows.csv", index=False)
    if yearly_flows > 0:
        frng = np.random.default_rng(flow_seed)
        oo, dd = np.meshgrid(np.arange(n_units), np.arange(n_units))
        keep2 = (oo != dd).ravel() & (frng.random(n_units * n_units) < yearly_flows)
        pd.concat([pd.DataFrame({"origin": np.array(ids)[oo.ravel()[keep2]],
                                 "destination": np.array(ids)[dd.ravel()[keep2]], "year": year, "kind": "migration",
                                 "value": frng.integers(5, 200, int(keep2.sum()))})
                   for year in range(first, last + 1)]).to_csv(folder / "flows.csv", index=False)
    (folder / "dataset.toml").write_text('name = "synth"\ntargets = ["population", "income"]\n', encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synth") / "synth")


@pytest.fixture(scope="module")
def synth_result(synth_dir: Path):  # type: ignore[no-untyped-def]
    ds = load_dataset(synth_dir)
    return backtest(ds, origins=[2013, 2014, 2015, 2016], horizons=3, params=FAST)


def test_metrics_columns_groups_and_methods(synth_result) -> None:  # type: ignore[no-untyped-def]
    m = synth_result.metrics
    assert list(m.columns) == METRIC_COLUMNS
    assert set(m["method"]) == {"tiecast", "tiecast_noties", "naive", "drift", "drift_recent", "autoets", "mlforecast"}
    assert set(m["group"]) == {"all", "capital", "small_mid", "other"}
    tie = m[m["method"] == "tiecast"]
    assert tie["coverage80"].notna().any() and tie["mape"].notna().all()
    assert m[m["method"].isin(["naive", "drift", "drift_recent"])][["coverage80", "coverage90"]].isna().all().all()
    # The synthetic growth is persistent and led by net_rate: tiecast should beat the naive forecast.
    s = synth_result.summary()
    pop = s[s["target"] == "population"].pivot_table(index="horizon", columns="method", values="mape")
    assert (pop["tiecast"] < pop["naive"]).all()


def test_partial_target_gets_its_own_origins_and_horizons(synth_result) -> None:  # type: ignore[no-untyped-def]
    plans = synth_result.plans
    assert plans["population"].origins == [2013, 2014, 2015, 2016] and plans["population"].horizons == 3
    income = plans["income"]
    assert income.data_start == 2012 and income.data_end == 2019
    assert min(income.origins) >= 2014  # needs two earlier years of growth pairs
    assert "income: origins" in income.note and "(data 2012–2019)" in income.note


def test_plan_shortens_horizons_to_fit_the_data() -> None:
    panel = pd.DataFrame({"unit_id": np.repeat(["a", "b"], 8), "year": np.tile(np.arange(2016, 2024), 2),
                          "income": np.linspace(10, 20, 16)})
    tm = target_matrix(panel, "income", None)
    plan = plan_target(tm, list(range(2015, 2021)), 5)
    assert plan.origins == [2018, 2019, 2020] and plan.horizons == 3
    assert plan.note.startswith("income: origins 2018–2020, horizons 1–3 (data 2016–2023)")


def test_same_seed_same_metrics(synth_dir: Path, synth_result) -> None:  # type: ignore[no-untyped-def]
    again = backtest(load_dataset(synth_dir), origins=[2013, 2014, 2015, 2016], horizons=3, params=FAST)
    pd.testing.assert_frame_equal(synth_result.metrics, again.metrics)


def test_no_leakage_future_data_does_not_change_forecasts(synth_dir: Path, tmp_path: Path) -> None:
    """Forecasts at origin o are identical when every value after o is replaced (targets, covariates, flows)."""
    origin = 2014
    ds = load_dataset(synth_dir)
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    for name in ("units.csv", "dataset.toml"):
        (changed_dir / name).write_bytes((synth_dir / name).read_bytes())
    flows = ds.flows.copy()
    late = flows["year"] > origin
    assert late.any()
    flows.loc[late, "value"] = flows.loc[late, "value"] * 3.0 + 1.0
    flows.to_csv(changed_dir / "flows.csv", index=False)
    panel = ds.panel.copy()
    later = panel["year"] > origin
    panel.loc[later, ["population", "income"]] *= 1.5
    panel.loc[later, "net_rate"] = -panel.loc[later, "net_rate"]
    panel.to_csv(changed_dir / "panel.csv", index=False)
    a = backtest(ds, targets=["population"], origins=[origin], horizons=3, params=FAST,
                 methods=("tiecast", "naive", "drift", "mlforecast"))
    b = backtest(load_dataset(changed_dir), targets=["population"], origins=[origin], horizons=3, params=FAST,
                 methods=("tiecast", "naive", "drift", "mlforecast"))
    cols = ["method", "unit_id", "horizon", "point", "lower80", "upper80", "lower90", "upper90"]
    fa = a.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True)
    fb = b.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(fa, fb)
    assert not np.allclose(a.forecasts["actual"].to_numpy(), b.forecasts["actual"].to_numpy())


def test_cli_backtest_writes_metrics_and_plots(synth_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bt"
    status = main(["backtest", "--data", str(synth_dir), "--target", "population", "--origins", "2015-2016",
                   "--horizons", "2", "--out", str(out), "--no-progress"])
    assert status == 0
    text = capsys.readouterr().out
    assert "population: origins 2015–2016, horizons 1–2" in text and "mlforecast" in text
    metrics = pd.read_csv(out / "metrics.csv", dtype={"method": str})
    assert list(metrics.columns) == METRIC_COLUMNS
    assert set(metrics["origin"]) == {2015, 2016} and set(metrics["horizon"]) == {1, 2}
    forecasts = pd.read_csv(out / "forecasts.csv", dtype={"unit_id": str})
    assert list(forecasts.columns) == BACKTEST_FORECAST_COLUMNS
    assert set(forecasts["method"]) == set(metrics["method"])
    assert (forecasts["target_year"] == forecasts["origin"] + forecasts["horizon"]).all()
    # The metrics are the forecasts' errors: MAPE of one cell recomputed from forecasts.csv.
    cell = forecasts[(forecasts["method"] == "tiecast") & (forecasts["origin"] == 2015) & (forecasts["horizon"] == 2)]
    mape = (100 * (cell["point"] - cell["actual"]).abs() / cell["actual"]).mean()
    row = metrics[(metrics["method"] == "tiecast") & (metrics["origin"] == 2015) & (metrics["horizon"] == 2)
                  & (metrics["group"] == "all")]
    assert np.isclose(row["mape"].iloc[0], mape)
    assert cell[["lower80", "upper80", "lower90", "upper90"]].notna().all().all()
    selection = pd.read_csv(out / "selection.csv")
    assert set(selection["origin"]) == {2015, 2016} and (selection.groupby(["origin", "horizon"])["weight"].sum()
                                                         .round(6) == 1).all()
    gbm = selection[selection["member"] == "gbm"]["design"]
    assert gbm.str.match(r"^(absolute|relative) \(share ").all()  # each origin's LightGBM design
    assert (selection[selection["member"] == "naive"]["design"].isna()).all()
    assert (out / "mape_by_horizon_population.png").stat().st_size > 1000
    assert (out / "fans_population.png").stat().st_size > 1000
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "gdp"], "target 'gdp' is not a target of dataset 'synth'; allowed: population, income "
                          "(option --target)"),
    (["--origins", "20x5"], "origins must be a year range like 2015-2020"),
    (["--horizons", "11"], "horizons must be an integer from 1 to 10; got 11 (option --horizons)"),
])
def test_cli_user_errors(synth_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """The library names its parameter; the command line adds the option that sets it."""
    status = main(["backtest", "--data", str(synth_dir), "--no-progress", *argv])
    assert status == 1
    err = capsys.readouterr().err
    assert message in err
    assert f"(option {argv[0]})" in err


def test_parse_origins() -> None:
    assert parse_origins("2015-2018") == [2015, 2016, 2017, 2018]
    assert parse_origins("2015–2016") == [2015, 2016]
    assert parse_origins("2018,2016") == [2016, 2018]
    assert parse_origins(None) is None
    with pytest.raises(ConfigError, match="origins must be a year range") as info:
        parse_origins("2020-2015")
    assert info.value.parameter == "origins" and "--" not in str(info.value)


def test_short_series_without_usable_origin_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_synthetic(tmp_path / "short", n_units=6, first=2016, last=2018)
    ds = load_dataset(folder)
    # 2016–2018 leaves no origin with two earlier years of growth pairs and a later year to score.
    with pytest.raises(ConfigError, match="no usable origin") as info:
        backtest(ds, horizons=2, params=FAST, features=build_features(ds))
    assert info.value.parameter is None  # the data's span is the reason: no option would help
    assert "population: no usable origin (data 2016–2018" in str(info.value)
    assert main(["backtest", "--data", str(folder), "--no-progress", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no usable origin" in err and "(option --origins)" not in err
    with pytest.raises(ConfigError, match="no usable origin") as info:  # origins the user chose: named
        backtest(ds, origins=[2017], horizons=2, params=FAST, features=build_features(ds))
    assert info.value.parameter == "origins"
    assert not (tmp_path / "out" / "metrics.csv").exists()
    longer = write_synthetic(tmp_path / "longer", n_units=6, first=2016, last=2019)
    result = backtest(load_dataset(longer), origins=[2018], horizons=2, params=FAST)
    assert result.plans["population"].origins == [2018] and result.plans["population"].horizons == 1


def test_tune_uses_only_years_before_the_test_period(synth_dir: Path, tmp_path: Path) -> None:
    grid = ({"n_estimators": 30}, {"n_estimators": 30, "num_leaves": 4})
    ds = load_dataset(synth_dir)
    best, table = tune_params(ds, build_features(ds), "population", before=2014, horizons=2, grid=grid)
    assert best in [dict(g) for g in grid] and len(table) == 2 and (table["cells"] > 0).all()
    panel = ds.panel.copy()
    panel.loc[panel["year"] > 2014, "population"] *= 3.0
    changed = with_panel(synth_dir, tmp_path / "changed", panel)
    ds2 = load_dataset(changed)
    best2, table2 = tune_params(ds2, build_features(ds2), "population", before=2014, horizons=2, grid=grid)
    assert best2 == best
    pd.testing.assert_frame_equal(table, table2)
    result = backtest(ds, targets=["population"], origins=[2015], horizons=2, tune=True, params=FAST)
    assert result.tuning is not None and len(result.tuning) > 1
