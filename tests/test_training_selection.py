"""The data-adaptive forecaster: observation steps, drift features and baselines, nested selection of the
members' weights (leak-free), the feature-support rule and the migration / ties split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_training_backtest import FAST, with_panel, write_synthetic

from tiecast.cli import main
from tiecast.common import ConfigError
from tiecast.features import build_features, infer_step, load_dataset
from tiecast.training import BACKTEST_FORECAST_COLUMNS, Calendar, DirectForecaster, MemberSpec, backtest
from tiecast.training._baselines import baseline_forecasts
from tiecast.training._data import target_matrix
from tiecast.training._model import _years_in_note, fit_weights, simplex_grid


def write_census(folder: Path, n_units: int = 12, first: int = 1900, last: int = 2010, step: int = 10,
                 seed: int = 3) -> Path:
    """A contract folder observed every ``step`` years (a census panel), contiguity ties on a line."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"S{i:02d}" for i in range(n_units)]
    years = np.arange(first, last + 1, step)
    trend = rng.normal(0.1, 0.08, n_units)
    growth = trend[:, None] + rng.normal(0, 0.03, (n_units, len(years)))
    level = np.exp(np.log(rng.uniform(1e5, 5e6, n_units))[:, None] + np.cumsum(growth, axis=1))
    pd.DataFrame({"unit_id": ids, "name": ids}).to_csv(folder / "units.csv", index=False)
    pd.DataFrame({"unit_id": np.repeat(ids, len(years)), "year": np.tile(years, n_units),
                  "population": level.ravel().round()}).to_csv(folder / "panel.csv", index=False)
    pairs = [(ids[i], ids[i + 1]) for i in range(n_units - 1)]
    flows = pd.DataFrame([(a, b) for a, b in pairs] + [(b, a) for a, b in pairs], columns=["origin", "destination"])
    flows.assign(year=first, kind="contiguity", value=1).to_csv(folder / "flows.csv", index=False)
    (folder / "dataset.toml").write_text('name = "census"\ntargets = ["population"]\n[flows]\n'
                                         'time_invariant = ["contiguity"]\n', encoding="utf-8")
    return folder


def test_infer_step_and_calendar() -> None:
    assert infer_step([1930, 1940, 1950, 2010]) == 10
    assert infer_step([2008, 2009, 2011]) == 1 and infer_step([2020]) == 1
    cal = Calendar.of_years([1982, 1987, 1992])
    assert (cal.step, cal.offset) == (5, 2) and cal.period(1992) == 398 and cal.year(398) == 1992
    assert Calendar.of_years([2008, 2009]).yearly and Calendar.of_years([2008]).period(2008) == 2008
    with pytest.raises(ConfigError, match="not on the grid") as info:
        Calendar.of_years([1930, 1940, 1945], step=10)
    assert info.value.parameter == "step"
    # Notes name origins in periods internally and in calendar years outside, every list of them.
    note = "origins 396, 397 (fewer than 3: widened); left out origins 395 (no learnt member trained)"
    assert _years_in_note(note, cal) == ("origins 1982, 1987 (fewer than 3: widened); left out origins 1977 "
                                         "(no learnt member trained)")
    assert _years_in_note("h=1–2 pooled; fitted on origins 2015, 2016", Calendar.of_years([2015, 2016])) == \
        "h=1–2 pooled; fitted on origins 2015, 2016"


def test_census_panel_counts_horizons_in_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_census(tmp_path / "census")
    ds = load_dataset(folder)
    assert ds.step == 10
    pf = build_features(ds)
    # Lags count steps; names say their length in years.
    assert {"population_growth_10y", "population_growth_30y", "population_growth_50y",
            "population_growth_10y_lag10", "population_drift", "population_drift_recent"} <= set(pf.names)
    f = pf.frame.set_index(["unit_id", "year"])
    p = ds.panel.set_index(["unit_id", "year"])["population"]
    assert np.isclose(f.loc[("S01", 1950), "population_growth_10y"], np.log(p[("S01", 1950)] / p[("S01", 1940)]))
    assert np.isclose(f.loc[("S01", 1950), "population_drift"], np.log(p[("S01", 1950)] / p[("S01", 1900)]) / 50)
    result = backtest(ds, pf, horizons=3, params=FAST)
    plan = result.plans["population"]
    assert plan.step == 10 and plan.horizons == 3 and all(o % 10 == 0 for o in plan.origins)
    assert "one observation every 10 years: horizons count steps of 10 years" in plan.note
    fc = result.forecasts
    assert (fc["target_year"] == fc["origin"] + 10 * fc["horizon"]).all()
    actual = p.reindex(pd.MultiIndex.from_arrays([fc["unit_id"], fc["target_year"]])).to_numpy()
    np.testing.assert_allclose(fc["actual"].to_numpy(), actual)
    # Default origins are the last ones the data allow (every target year observed).
    assert max(plan.origins) + 10 * plan.horizons <= 2010 and len(plan.origins) == 6
    out = tmp_path / "out"
    assert main(["backtest", "--data", str(folder), "--horizons", "2", "--no-progress", "--out", str(out)]) == 0
    assert "horizons count steps of 10 years" in capsys.readouterr().out
    written = pd.read_csv(out / "forecasts.csv")
    assert list(written.columns) == BACKTEST_FORECAST_COLUMNS and set(written["target_year"] % 10) == {0}
    # An origin off the observation grid is not usable, and the reason says so.
    with pytest.raises(ConfigError, match="origins must be observation years"):
        backtest(ds, pf, origins=[1975], horizons=2, params=FAST)


def test_census_model_predicts_target_years_in_steps(tmp_path: Path) -> None:
    ds = load_dataset(write_census(tmp_path / "census"))
    pf = build_features(ds)
    est = DirectForecaster(horizons=2, params=FAST).fit(pf.frame, ds.panel)
    assert est.calendar_.step == 10 and est.data_end_ == {"population": 2010}
    fc = est.predict(pf.frame[pf.frame["year"] == 2010])
    assert set(fc["target_year"]) == {2020, 2030}
    assert est.selection_["population"].origins[1] and max(est.selection_["population"].origins[1]) <= 2000


def test_drift_features_are_the_drift_baselines(korea) -> None:  # type: ignore[no-untyped-def]
    """The drift members read features that reproduce the backtest's drift baselines exactly (breaks and
    gaps included), so the registered model serves what the backtest measured."""
    pf = build_features(korea)
    frame = pf.frame.set_index(["unit_id", "year"])
    tm = target_matrix(korea.panel, "population", korea.break_column)
    for origin in (2010, 2014, 2020):
        base = baseline_forecasts(tm, origin, 3, ("drift", "drift_recent"))
        log0 = tm.log[:, tm.col(origin)]
        rows = frame.xs(origin, level="year").reindex(tm.units)
        for method, column in (("drift", "population_drift"), ("drift_recent", "population_drift_recent")):
            rate = np.nan_to_num(rows[column].to_numpy(float))
            expected = log0[:, None] + rate[:, None] * np.arange(1, 4)[None, :]
            np.testing.assert_allclose(base[method], expected, atol=1e-12, err_msg=f"{method} {origin}")
    # Changwon (48120) merged in 2010: its drift starts again there.
    assert np.isnan(frame.loc[("48120", 2010), "population_drift"])
    assert np.isfinite(frame.loc[("48120", 2011), "population_drift"])


def test_recent_drift_uses_the_last_five_steps() -> None:
    panel = pd.DataFrame({"unit_id": ["a"] * 9, "year": range(2010, 2019),
                          "pop": np.exp(np.r_[0.0, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])})
    tm = target_matrix(panel, "pop", None)
    out = baseline_forecasts(tm, 2018, 2, ("drift", "drift_recent"))
    np.testing.assert_allclose(out["drift_recent"][0], 1.1 + np.array([1, 2]) * (1.1 - 0.6) / 5)
    np.testing.assert_allclose(out["drift"][0], 1.1 + np.array([1, 2]) * 1.1 / 8)


def test_member_names() -> None:
    assert MemberSpec.parse("gbm") == MemberSpec("gbm")
    spec = MemberSpec.parse("gbm_anchored_per_h_noties_nomigration")
    assert spec.anchored and not spec.pooled and spec.drop == ("migration", "ties")
    assert spec.name == "gbm_anchored_per_h_nomigration_noties"
    assert MemberSpec("gbm").without("ties").name == "gbm_noties"
    assert MemberSpec("naive").without("ties").name == "naive"
    with pytest.raises(ConfigError, match="unknown member") as info:
        MemberSpec.parse("prophet")
    assert info.value.parameter == "members"


def test_fit_weights_find_the_better_member_and_prefer_the_prior_on_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.02, 300)
    good, bad = a + rng.normal(0, 0.002, 300), a + rng.normal(0.01, 0.02, 300)
    w, err, loss = fit_weights([(np.column_stack([bad, good]), a)], prior=np.array([1.0, 0.0]))
    assert w[1] >= 0.9 and err[1] < err[0] and loss <= err.min() + 1e-12
    same = np.column_stack([a, a])
    w, _, _ = fit_weights([(same, a)], prior=np.array([1.0, 0.0]))
    assert tuple(w) == (1.0, 0.0)
    assert np.allclose(simplex_grid(3, 10).sum(axis=1), 1) and len(simplex_grid(3, 10)) == 66


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("selection") / "synth")


def test_selection_is_nested_and_leak_free(synth_dir: Path, tmp_path: Path) -> None:
    """Replacing every value after origin o changes neither the weights nor the inner origins and their errors
    (nor the forecasts and intervals) of o; every inner origin c of horizon h has c + h <= o."""
    origin = 2014
    ds = load_dataset(synth_dir)
    panel = ds.panel.copy()
    later = panel["year"] > origin
    panel.loc[later, ["population", "income"]] *= np.exp(np.linspace(-0.3, 0.3, int(later.sum())))[:, None]
    panel.loc[later, "net_rate"] = 3 * panel.loc[later, "net_rate"]
    changed = with_panel(synth_dir, tmp_path / "changed", panel)
    kwargs = {"targets": ["population"], "origins": [origin], "horizons": 3, "params": FAST,
              "methods": ("tiecast", "tiecast_noties", "naive")}
    a = backtest(ds, **kwargs)
    b = backtest(load_dataset(changed), **kwargs)
    sa, sb = a.selection["population"][origin], b.selection["population"][origin]
    assert sa == sb and sa.members == ["gbm", "gbm_noties", "linear", "naive"]
    for h, inner in sa.origins.items():
        assert all(c + h <= origin for c in inner)
    assert sa.origins[1] == [2010, 2011, 2012, 2013]
    cols = ["method", "unit_id", "horizon", "point", "lower80", "upper80", "lower90", "upper90"]
    fa = a.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True)
    fb = b.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(fa, fb)
    assert not np.allclose(a.forecasts["actual"], b.forecasts["actual"])


def test_selected_weights_are_those_the_inner_errors_imply(synth_dir: Path) -> None:
    """Recompute the weights of one origin from the members' stored forecasts at its inner origins."""
    import tiecast.training._model as model

    ds = load_dataset(synth_dir)
    pf = build_features(ds)
    est = DirectForecaster(horizons=2, params=FAST, feature_groups=pf.groups(), features=pf.names)
    roll = est.rolling_fit(pf.frame, ds.panel[["unit_id", "year", "population"]], "population")
    names = roll.available(est.member_specs())
    origin = 2016
    roll.fit_cutoffs(roll.required_cutoffs(origin), 1)
    sel = roll.selection(origin, names)
    def block(c: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        P = np.column_stack([roll.pred[n][c][:, k - 1] for n in names])
        act = roll.actual[c][:, k - 1]
        ok = np.isfinite(act) & np.isfinite(P).all(axis=1)
        return P[ok], act[ok]

    assert model.SELECTION_NEIGHBOURS == 1
    # Horizons 1 and 2 pool each other's inner origins: errors per step, shrunk by the count of h's own.
    assert sel.horizons[1] == [1, 2] and sel.horizons[2] == [1, 2]
    assert sel.origins[1] == [2012, 2013, 2014, 2015] and sel.origins[2] == [2011, 2012, 2013, 2014]
    pooled = [(P / k, a / k) for k in (1, 2) for P, a in (block(c, k) for c in sel.origins[k])]
    prior = np.array([1.0] + [0.0] * (len(names) - 1))
    w, _, _ = fit_weights(pooled, prior)
    for h in (1, 2):
        n = len(sel.origins[h])
        expected = (n * w + model.SELECTION_PRIOR * prior) / (n + model.SELECTION_PRIOR)
        np.testing.assert_allclose(sel.weights[h], expected)
        own = [block(c, h) for c in sel.origins[h]]
        np.testing.assert_allclose(sel.errors[h]["fitted"], np.mean([np.abs(a - P @ expected).mean() for P, a in own]))
    # Without pooling the weights of h = 2 would be fitted on its own origins only, and differ here.
    w_own, _, _ = fit_weights([block(c, 2) for c in sel.origins[2]], prior)
    assert not np.allclose(w_own, w)
    # The combined forecast is the weighted sum of the members' forecasts.
    comb = roll.combined(origin, names)
    assert comb is not None
    manual = sum(w * roll.pred[n][origin][:, 0] for n, w in zip(names, sel.weights[1], strict=True))
    np.testing.assert_allclose(comb[:, 0], manual)


def test_features_seen_in_one_year_only_are_not_learnt(synth_dir: Path) -> None:
    """A feature observed in fewer than FEATURE_MIN_YEARS origin years of the training pairs is left out."""
    ds = load_dataset(synth_dir)
    pf = build_features(ds)
    frame = pf.frame.assign(late=np.where(pf.frame["year"] >= 2013, 1.0, np.nan))
    est = DirectForecaster(horizons=2, params=FAST, features=[*pf.names, "late"])
    roll = est.rolling_fit(frame, ds.panel[["unit_id", "year", "population"]], "population")
    late = roll.inputs.index("late")
    assert not roll.supported(2014)[late]  # pairs t + h <= 2014 see `late` only at t = 2013
    assert roll.supported(2015)[late]
    roll.fit_at(2014, ["gbm"])
    cols = roll.used_columns["gbm"][2014]
    assert cols is not None and late not in cols


def test_migration_counts_are_their_own_group_not_ties(korea) -> None:  # type: ignore[no-untyped-def]
    groups = build_features(korea).groups()
    assert {"gross_in", "gross_out", "net_migration", "in_rate", "out_rate", "net_rate", "net_rate_chg3"} <= set(
        groups["migration"])
    assert not {"gross_in", "net_rate", "net_migration"} & set(groups["ties"])
    assert {"in_strength", "pagerank", "betweenness", "contiguity_degree", "borrowed_size_gravity_log",
            "partners_population_growth_1y_gravity"} <= set(groups["ties"])


def test_fit_reusing_a_backtest_gives_the_same_model(synth_dir: Path) -> None:
    """``train`` lends the backtest's member forecasts to the final fit: identical forecasts, fewer fits."""
    ds = load_dataset(synth_dir)
    pf = build_features(ds)
    result = backtest(ds, pf, targets=["population"], origins=[2014, 2015], horizons=2, params=FAST)
    y = ds.panel[["unit_id", "year", "population"]]
    kwargs = {"horizons": 2, "params": FAST, "features": pf.names, "feature_groups": pf.groups(), "step": 1}
    plain = DirectForecaster(**kwargs).fit(pf.frame, y)
    reused = DirectForecaster(**kwargs).fit(pf.frame, y, reuse=result.rolls)
    rows = pf.frame[pf.frame["year"] == 2019]
    pd.testing.assert_frame_equal(plain.predict(rows), reused.predict(rows))
    assert plain.selection_ == reused.selection_
    assert result.rolls["population"].compatible(result.rolls["population"])
    other = DirectForecaster(**{**kwargs, "params": {"n_estimators": 30}})
    assert not other.rolling_fit(pf.frame, y, "population").compatible(result.rolls["population"])
