"""The double-ML effect of tie strength and the with/without-cooperation forecasts built on it."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from tiecast.features import build_features, builtin_scenario
from tiecast.training import (
    FORECAST_COLUMNS,
    CooperationEffects,
    ScenarioForecaster,
    rank_targets,
    tie_strength,
)
from tiecast.training._effects import clustered_final_stage, cross_fit_residuals

YECHEON = "47900"


def test_tie_strength_is_balanced_volume_per_1000_at_the_start_of_the_year(korea) -> None:  # type: ignore[no-untyped-def]
    t = tie_strength(korea)
    p = korea.panel.set_index(["unit_id", "year"])
    i, o = p.loc[(YECHEON, 2020), "in_strength"], p.loc[(YECHEON, 2020), "out_strength"]
    assert t.loc[(YECHEON, 2020)] == pytest.approx(np.log(1000 * 2 * min(i, o) / p.loc[(YECHEON, 2019), "population"]))
    assert np.isnan(t.loc[(YECHEON, 2008)])  # no start-of-year population before the first year


def test_final_stage_equals_econml_linear_dml_on_the_same_folds() -> None:
    """The clustered final stage is EconML's LinearDML point estimate; only the covariance differs."""
    import econml.dml as econml_dml
    rng = np.random.default_rng(3)
    n_units, years = 60, 8
    g = np.repeat(np.arange(n_units), years)
    W = rng.normal(size=(len(g), 3))
    x = rng.normal(size=(len(g), 1))
    T = W[:, 0] + rng.normal(size=len(g))
    Y = (0.5 + 0.2 * x[:, 0]) * T + W[:, 1] + rng.normal(size=len(g))
    XW = np.column_stack([x, W])
    (y_res, t_res), folds = cross_fit_residuals([Y, T], XW, g, 5, 0)
    ours, cov = clustered_final_stage(y_res, t_res, np.column_stack([np.ones(len(g)), x]), g)

    from sklearn.base import BaseEstimator

    class Fixed(BaseEstimator):  # the same out-of-fold LightGBM fits, looked up by row (last column of W)
        def __init__(self, fitted: np.ndarray | None = None) -> None:
            self.fitted = fitted

        def fit(self, X: np.ndarray, y: np.ndarray, **_: object) -> Fixed:
            return self

        def predict(self, X: np.ndarray) -> np.ndarray:
            return self.fitted[np.asarray(X[:, -1], int)]

    rows = np.arange(len(g))[:, None].astype(float)
    est = econml_dml.LinearDML(model_y=Fixed(Y - y_res), model_t=Fixed(T - t_res), cv=folds, random_state=0)
    est.fit(Y, T, X=x, W=np.column_stack([W, rows]))
    assert est.intercept_ == pytest.approx(ours[0], rel=1e-8)
    assert est.coef_[0] == pytest.approx(ours[1], rel=1e-8)
    assert abs(ours[0] - 0.5) < 3 * np.sqrt(cov[0, 0]) and abs(ours[1] - 0.2) < 3 * np.sqrt(cov[1, 1])


@pytest.fixture(scope="module")
def forecaster(korea):  # type: ignore[no-untyped-def]
    return ScenarioForecaster(korea, horizons=5, features=build_features(korea)).fit()


@pytest.mark.slow
def test_effect_fit_is_nested(korea, forecaster) -> None:  # type: ignore[no-untyped-def]
    """An effect model fitted with outcomes up to 2020 does not move when the data after 2020 change."""
    pf = forecaster.pf_
    a = CooperationEffects(horizons=1).fit(korea, pf, end=2020)
    panel = korea.panel.copy()
    late = panel["year"] > 2020
    panel.loc[late, "population"] *= 1.1
    panel.loc[late, "in_strength"] *= 3.0
    changed = dataclasses.replace(korea, panel=panel)
    b = CooperationEffects(horizons=1).fit(changed, build_features(changed), end=2020)
    for key, fit in a.fits_.items():
        np.testing.assert_array_equal(fit.coef, b.fits_[key].coef)
        assert fit.end <= 2020


@pytest.mark.slow
def test_forecast_schema_roles_and_intervals(korea, forecaster) -> None:  # type: ignore[no-untyped-def]
    out = forecaster.answer(builtin_scenario("top3", YECHEON, forecaster.origin))
    assert list(out.columns) == FORECAST_COLUMNS
    assert set(out["method"]) == {"dml", "forecaster_whatif"}
    assert len(out) == 2 * len(korea.units) * 5 * 2  # methods x units x horizons x targets
    focal = out[(out["role"] == "focal")]
    assert set(focal["unit_id"]) == {YECHEON} and (focal["name"] == "예천군").all()
    assert (out["role"] == "partner").sum() == 3 * 2 * 5 * 2
    dml = out[out["method"] == "dml"]
    moved = dml[dml["difference"] != 0]
    assert set(moved["role"]) <= {"focal", "partner"}  # the DML estimate gives unchanged ties no effect
    pop = moved[moved["target"] == "population"]
    assert ((pop["difference_lower90"] <= pop["difference"]) & (pop["difference"] <= pop["difference_upper90"])).all()
    assert (pop["difference_lower80"] >= pop["difference_lower90"] - 1e-9).all()
    np.testing.assert_allclose(pop["cooperation"] - pop["baseline"], pop["difference"], rtol=1e-9)
    # the interval is on the difference itself, narrower than the difference of the two 90% intervals
    width = pop["difference_upper90"] - pop["difference_lower90"]
    assert (width < (pop["cooperation_upper90"] - pop["baseline_lower90"])).all()
    # income data end in 2023: years up to the origin are not changed by a cooperation that starts in 2026
    inc = dml[(dml["target"] == "income") & (dml["year"] <= forecaster.origin)]
    assert len(inc) and (inc["difference"] == 0).all()
    base = forecaster.baseline([YECHEON])
    assert list(base.columns) == FORECAST_COLUMNS and (base["difference"] == 0).all() and len(base) == 10


@pytest.mark.slow
def test_targeting_ranks_with_korean_names(forecaster) -> None:  # type: ignore[no-untyped-def]
    sub = copy.copy(forecaster)  # rank a handful of cities only: restrict the focus column
    units = forecaster.ds.units.copy()
    keep = units["small_mid_city"].eq(1) & units["unit_id"].isin(["47210", "47280", "47170", "51150"])
    sub.ds = dataclasses.replace(forecaster.ds, units=units.assign(small_mid_city=keep.astype(int)))
    table = rank_targets(sub, focus="small-mid", candidates=3)
    assert list(table["rank"]) == [1, 2, 3, 4] and table["gain_pct"].is_monotonic_decreasing
    assert (table["gain_lower90_pct"] <= table["gain_pct"]).all()
    assert (table["gain_pct"] <= table["gain_upper90_pct"]).all()
    assert table["best_partner_names"].str.contains("시|군|구").all()
    assert (table["candidates_tried"] == 3).all()
    assert pd.Series(["안동시", "영주시", "문경시", "강릉시"]).isin(table["name"]).all()


def test_any_contract_folder_with_yearly_flows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No panel network columns: tie strength comes from the yearly flows; the whole path runs."""
    from test_training_backtest import FAST, write_synthetic

    from tiecast.features import load_dataset

    folder = write_synthetic(tmp_path / "synth", n_units=30, first=2004, last=2019)
    rng = np.random.default_rng(1)
    ids = [f"{i:05d}" for i in range(1, 31)]
    o, d = np.meshgrid(np.arange(30), np.arange(30))
    keep = (o != d).ravel() & (rng.random(900) < 0.3)
    frames = [pd.DataFrame({"origin": np.array(ids)[o.ravel()[keep]], "destination": np.array(ids)[d.ravel()[keep]],
                            "year": year, "kind": "migration",
                            "value": rng.integers(5, 200, int(keep.sum()))}) for year in range(2004, 2020)]
    pd.concat(frames).to_csv(folder / "flows.csv", index=False)
    ds = load_dataset(folder)
    t = tie_strength(ds)
    assert t.notna().sum() > 300
    sf = ScenarioForecaster(ds, horizons=3, params=FAST, targets=["population"]).fit()
    assert sf.effects_.fits_, sf.effects_.notes_
    out = sf.answer(builtin_scenario("top2", ids[0], sf.origin))
    assert list(out.columns) == FORECAST_COLUMNS
    focal = out[(out["role"] == "focal") & (out["method"] == "dml")]
    assert len(focal) == 3 and focal["difference"].notna().all() and (focal["difference"] != 0).any()
