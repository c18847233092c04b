"""DirectForecaster: estimator contract, break handling, intervals, chaining and conformal quantiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_training_backtest import FAST, write_synthetic

from tiecast.common import ConfigError
from tiecast.features import build_features, load_dataset
from tiecast.training import DirectForecaster
from tiecast.training._data import target_matrix
from tiecast.training._model import PairTable, conformal_quantiles


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ds = load_dataset(write_synthetic(tmp_path_factory.mktemp("model") / "synth"))
    return ds, build_features(ds)


def test_estimator_contract(synth) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    est = DirectForecaster(targets=["population"], horizons=3, params=FAST, seed=3)
    assert est.get_params()["seed"] == 3 and not hasattr(est, "members_")
    with pytest.raises(ConfigError, match="not fitted"):
        est.predict(pf.frame)
    assert est.fit(pf.frame, ds.panel[["unit_id", "year", "population"]]) is est
    fitted = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    assert {"members_", "selection_", "calibration_", "feature_names_", "targets_", "data_end_",
            "calendar_"} <= set(fitted)
    assert est.data_end_ == {"population": 2019}
    assert set(est.calibration_["population"].quantiles) == {1, 2, 3}


def test_predict_levels_intervals_and_chaining(synth) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    est = DirectForecaster(horizons=7, direct_horizons=3, params=FAST,
                           targets=["population", "income"]).fit(pf.frame, ds.panel)
    rows = pf.frame[pf.frame["year"] == 2019]
    fc = est.predict(rows)
    assert list(fc.columns) == ["unit_id", "year", "target", "horizon", "target_year", "growth", "point",
                                "lower80", "upper80", "lower90", "upper90"]
    assert len(fc) == len(rows) * 2 * 7
    assert (fc["target_year"] == fc["year"] + fc["horizon"]).all()
    ok = fc.dropna(subset=["lower90"])
    assert len(ok) == len(fc)
    assert ((ok["lower90"] <= ok["lower80"]) & (ok["lower80"] <= ok["point"]) & (ok["point"] <= ok["upper80"])
            & (ok["upper80"] <= ok["upper90"])).all()
    # Chained horizons add the growth of their direct parts.
    g = fc[fc["target"] == "population"].pivot_table(index="unit_id", columns="horizon", values="growth")
    np.testing.assert_allclose(g[5], g[3] + g[2])
    np.testing.assert_allclose(g[7], g[3] + g[3] + g[1])
    # Levels are the origin level times exp(growth).
    pop0 = rows.set_index("unit_id")["population_log"]
    one = fc[(fc["target"] == "population") & (fc["horizon"] == 1)].set_index("unit_id")
    np.testing.assert_allclose(one["point"], np.exp(pop0.reindex(one.index) + one["growth"]))


def test_pairs_skip_boundary_breaks() -> None:
    panel = pd.DataFrame({"unit_id": ["a"] * 5 + ["b"] * 5, "year": list(range(2010, 2015)) * 2,
                          "pop": [100, 101, 202, 204, 206, 50, 51, 52, 53, 54],
                          "brk": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]})
    tm = target_matrix(panel, "pop", "brk")
    pairs = tm.pairs(2, 2014)
    a = pairs[pairs["unit_id"] == "a"]
    # (2010, 2012) and (2011, 2013) straddle the 2012 merger; only (2012, 2014) is growth.
    assert a["year"].tolist() == [2012]
    assert np.isclose(a["growth"].iloc[0], np.log(206 / 202))
    assert len(pairs[pairs["unit_id"] == "b"]) == 3
    # A cutoff keeps only pairs whose target year is <= it.
    assert tm.pairs(2, 2013)["year"].max() == 2011


def test_pair_table_cutoff() -> None:
    panel = pd.DataFrame({"unit_id": np.repeat(["a", "b", "c"], 6), "year": np.tile(np.arange(2010, 2016), 3),
                          "pop": np.linspace(100, 130, 18)})
    features = panel[["unit_id", "year"]].assign(x=np.arange(18.0))
    table = PairTable.build(target_matrix(panel, "pop", None), features, ["x"], 3)
    sel = table.select(2013)
    assert (table.year[sel] + table.h[sel] <= 2013).all() and sel.sum() == 3 * (3 + 2 + 1)


def test_conformal_quantiles_rolling_and_fallback() -> None:
    rng = np.random.default_rng(0)
    residuals = {c: rng.normal(0, 0.01 * np.arange(1, 4), (50, 3)) for c in range(2010, 2016)}
    cal = conformal_quantiles(residuals, end=2016, horizons=3, direct_horizons=3, n_origins=3)
    assert cal.origins[1] == [2013, 2014, 2015] and cal.origins[3] == [2011, 2012, 2013]
    assert cal.quantiles[1][80] < cal.quantiles[1][90] and cal.quantiles[1][90] < cal.quantiles[3][90]
    # Full origins: the k-th smallest pooled absolute error, k = ceil((n + 1) 0.8).
    pooled = np.sort(np.abs(np.concatenate([residuals[c][:, 0] for c in (2013, 2014, 2015)])))
    assert cal.quantiles[1][80] == pooled[int(np.ceil(151 * 0.8)) - 1]
    # By 2012 two origins know h = 1, one knows h = 2 (widened), none knows h = 3: scaled from h = 2.
    few = conformal_quantiles({c: residuals[c] for c in (2010, 2011)}, end=2012, horizons=3, direct_horizons=3,
                              n_origins=3)
    assert few.origins[1] == [2010, 2011] and few.origins[2] == [2010] and "scaled from h=2" in few.notes[3]
    assert "widened by the largest origin bias" in few.notes[1]
    assert np.isclose(few.quantiles[3][80], 1.5 * few.quantiles[2][80])
    none = conformal_quantiles({2010: residuals[2010]}, end=2010, horizons=2, direct_horizons=2, n_origins=3)
    assert none.quantiles == {} and "no interval" in none.notes[1]


def test_few_calibration_origins_widen_the_quantile_by_the_common_shock() -> None:
    """Errors of one origin share a shock: with fewer than n_origins origins the quantile is the conformal
    quantile of the origin-centred errors plus the largest absolute origin median (tested formula), which
    covers a new origin with a shock like the calibration ones where the pooled quantile does not."""
    rng = np.random.default_rng(1)
    shocks = {2010: 0.03, 2011: -0.02}
    residuals = {c: (b + rng.normal(0, 0.01, 400))[:, None] for c, b in shocks.items()}
    cal = conformal_quantiles(residuals, end=2012, horizons=1, direct_horizons=1, n_origins=3)
    centred = np.sort(np.concatenate([np.abs(r[:, 0] - np.median(r[:, 0])) for r in residuals.values()]))
    bias = max(abs(np.median(r[:, 0])) for r in residuals.values())
    assert np.isclose(cal.quantiles[1][80], centred[int(np.ceil(801 * 0.8)) - 1] + bias)
    pooled = np.sort(np.abs(np.concatenate([r[:, 0] for r in residuals.values()])))
    assert cal.quantiles[1][80] > pooled[int(np.ceil(801 * 0.8)) - 1]
    new_origin = -0.03 + rng.normal(0, 0.01, 4000)
    assert np.mean(np.abs(new_origin) <= cal.quantiles[1][80]) >= 0.8
    assert np.mean(np.abs(new_origin) <= pooled[int(np.ceil(801 * 0.8)) - 1]) < 0.8


def test_baseline_only_cutoffs_do_not_calibrate_a_learnt_forecast(synth) -> None:  # type: ignore[no-untyped-def]
    """The synthetic income starts in 2012 (like the bundled one in 2016): no member can be trained at 2012, so
    its combined forecast is the naive one; scoring it at h = 5 would make the final model's 5-year band the
    size of five years' growth. It is left out (and said so); the other cutoffs calibrate as before."""
    ds, pf = synth
    est = DirectForecaster(targets=["income"], horizons=5, params=FAST).fit(
        pf.frame, ds.panel[["unit_id", "year", "income"]])
    cal = est.calibration_["income"]
    assert all(2012 not in cal.origins[h] for h in range(1, 6))
    assert cal.origins[4] == [2013, 2014, 2015] and cal.origins[5] == [2013, 2014]
    assert "left out origins 2012 (no learnt member trained)" in cal.notes[5]
    assert "left out" not in cal.notes[4]
    levels = ds.panel.pivot(index="unit_id", columns="year", values="income")
    naive_error = float(np.median(np.abs(np.log(levels[2017] / levels[2012]))))  # what 2012 would have scored
    assert cal.quantiles[5][90] < 0.25 * naive_error
    assert cal.quantiles[4][80] < cal.quantiles[5][80] < 3 * cal.quantiles[4][80]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"horizons": 0}, "horizons must be an integer from 1 to 10"),
    ({"calibration_origins": 1}, "calibration_origins must be an integer from 2 to 20"),
    ({"params": {"depth": 3}}, "unknown model parameter"),
    ({"targets": ["gdp"]}, "not columns of y"),
])
def test_fit_rejects_bad_parameters(synth, kwargs: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    with pytest.raises(ConfigError, match=message):
        DirectForecaster(**kwargs).fit(pf.frame, ds.panel[["unit_id", "year", "population"]])


def test_synthetic_folder_has_only_required_toml_keys(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "s")
    assert (folder / "dataset.toml").read_text().splitlines() == ['name = "synth"',
                                                                  'targets = ["population", "income"]']


def test_results_do_not_depend_on_n_jobs(synth) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    y = ds.panel[["unit_id", "year", "population"]]
    a = DirectForecaster(horizons=2, params=FAST, n_jobs=1).fit(pf.frame, y).predict(pf.frame)
    b = DirectForecaster(horizons=2, params=FAST, n_jobs=2).fit(pf.frame, y).predict(pf.frame)
    pd.testing.assert_frame_equal(a, b)
