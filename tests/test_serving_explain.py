"""SHAP explanations of the forecaster (tiecast.serving._explain) and the report's plain-language words."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pytest
import shap
from test_training_backtest import FAST, write_synthetic

from tiecast.common import ConfigError
from tiecast.features import build_features, load_dataset
from tiecast.serving import Explanation, booster_contributions, explain_forecast, top_drivers
from tiecast.serving._text import feature_label, format_value, peer_comparison
from tiecast.training import DirectForecaster
from tiecast.training._core import member_growth


def _pooled_booster(seed: int = 0) -> tuple[lgb.Booster, np.ndarray]:
    """A pooled booster as the forecaster trains it: features, then the horizon as the last column; some NaNs."""
    rng = np.random.default_rng(seed)
    n = 600
    X = rng.normal(size=(n, 5))
    X[rng.random((n, 5)) < 0.1] = np.nan
    h = rng.integers(1, 6, n).astype(float)
    y = 0.01 * np.nan_to_num(X[:, 0]) - 0.004 * np.nan_to_num(X[:, 1]) * h / 5 + rng.normal(0, 0.002, n)
    booster = lgb.train({"objective": "l1", "num_leaves": 7, "verbosity": -1, "seed": seed},
                        lgb.Dataset(np.column_stack([X, h]), y), num_boost_round=40)
    return booster, X


def test_pred_contrib_equals_shap_tree_explainer() -> None:
    booster, X = _pooled_booster()
    for h in (1, 5):
        contrib = booster_contributions(booster, X, h)
        assert contrib.shape == (len(X), X.shape[1] + 2)  # features, horizon, bias
        explainer = shap.TreeExplainer(booster)
        expected = explainer.shap_values(np.column_stack([X, np.full(len(X), float(h))]))
        np.testing.assert_allclose(contrib[:, :-1], expected, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(contrib[:, -1], explainer.expected_value, rtol=1e-9)
        # each row sums to the booster's prediction (label space: growth per step)
        raw = booster.predict(np.column_stack([X, np.full(len(X), float(h))]))
        np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-9, atol=1e-12)


def test_booster_contributions_check_the_width() -> None:
    booster, X = _pooled_booster()
    with pytest.raises(ConfigError, match="expects 6 features"):
        booster_contributions(booster, X)  # the horizon column is missing


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ds = load_dataset(write_synthetic(tmp_path_factory.mktemp("explain") / "synth"))
    pf = build_features(ds)
    y = ds.panel[["unit_id", "year", "population", "income"]]
    fc = DirectForecaster(targets=["population"], horizons=7, direct_horizons=3, members=["gbm", "linear", "naive"],
                          params=FAST, seed=1).fit(pf.frame, y)
    rows = pf.frame[pf.frame["year"] == fc.data_end_["population"]].reset_index(drop=True)
    return SimpleNamespace(ds=ds, pf=pf, fc=fc, rows=rows)


@pytest.mark.parametrize("horizon", [1, 3, 7])
def test_explanation_adds_up_to_the_combined_forecast(fitted, horizon: int) -> None:  # type: ignore[no-untyped-def]
    fc, rows = fitted.fc, fitted.rows
    expl = explain_forecast(fc, rows, "population", horizon)
    growth = fc.predict_growth(rows, "population")[:, horizon - 1]
    total = expl.base + expl.horizon_term + expl.contributions.sum(axis=1) + expl.other
    np.testing.assert_allclose(total, growth, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(expl.growth, growth)
    # independently: the LightGBM member's part is SHAP x weight x h (chained horizons add their parts), and
    # "other" is the simple members' weighted growth net of the weight they take from LightGBM
    members = fc.members_["population"]
    X = rows.reindex(columns=fc.feature_names_).to_numpy(float)
    parts = [horizon] if horizon <= 3 else [3, *([horizon - 3] if horizon - 3 <= 3 else [3, horizon - 6])]
    want = np.zeros_like(expl.contributions)
    other = np.zeros(len(rows))
    for hp in parts:
        w = fc.selection_["population"].weights[hp]
        for m, wm in zip(members, w, strict=True):
            if m.boosters:
                cols = np.arange(X.shape[1]) if m.columns is None else np.asarray(m.columns, dtype=int)
                sv = shap.TreeExplainer(m.boosters[0]).shap_values(np.column_stack([X[:, cols], np.full(len(X), hp)]))
                want[:, cols] += wm * hp * sv[:, :-1]
                other -= (1 - wm) * hp * booster_contributions(m.boosters[0], X[:, cols], hp)[:, -1] if wm > 0 else 0
            elif wm > 0:
                other += wm * member_growth(m, X, hp, 1)[:, hp - 1]
    np.testing.assert_allclose(expl.contributions, want, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(expl.other, other, rtol=1e-6, atol=1e-9)
    groups = {s.name: s.group for s in fitted.pf.catalog}
    by_group = expl.by_group(groups)
    np.testing.assert_allclose(by_group.sum(axis=1).to_numpy(), expl.contributions.sum(axis=1), atol=1e-12)
    assert set(by_group.columns) <= set(groups.values()) | {"other"}


def test_explain_rejects_unknown_target_and_horizon(fitted) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no fitted target"):
        explain_forecast(fitted.fc, fitted.rows, "income", 1)
    with pytest.raises(ConfigError, match="horizon must be between 1 and 7"):
        explain_forecast(fitted.fc, fitted.rows, "population", 8)


def _toy_explanation() -> tuple[Explanation, dict]:
    features = ["aging_ratio", "population_growth_3y", "net_migration"]
    values = np.array([[31.2, -0.03, -746.0], [23.1, 0.0, -100.0], [22.0, 0.01, 50.0], [24.0, -0.01, -90.0]])
    contrib = np.zeros((4, 3))
    contrib[0] = [-0.011, 0.004, -0.0029]
    expl = Explanation(target="population", horizon=5, unit_ids=np.array(["a", "b", "c", "d"]), features=features,
                       values=values, contributions=contrib, base=np.zeros(4), horizon_term=np.zeros(4),
                       other=np.zeros(4), growth=contrib.sum(axis=1))
    catalog = {"aging_ratio": SimpleNamespace(unit="%", group="demography", description="share aged 65+"),
               "population_growth_3y": SimpleNamespace(unit="log points", group="history", description=""),
               "net_migration": SimpleNamespace(unit="persons", group="migration", description="")}
    return expl, catalog


def test_top_drivers_in_plain_korean_and_english() -> None:
    expl, catalog = _toy_explanation()
    ko = top_drivers(expl, "a", catalog=catalog, peers=["b", "c", "d"], lang="ko", n=3)
    assert [d.feature for d in ko] == ["aging_ratio", "population_growth_3y", "net_migration"]
    assert ko[0].text == "65세 이상 비율 31.2%, 비슷한 도시보다 8.1%p 높음: 5년 인구 성장률을 1.10%p 낮춤"
    assert ko[0].peer_median == pytest.approx(23.1) and ko[0].group == "인구 구조·생활 여건"
    assert ko[1].text == "인구 3년 증가율 -2.96%, 비슷한 도시보다 3.0%p 낮음: 5년 인구 성장률을 0.40%p 높임"
    assert ko[2].text.startswith("순이동자 수 -746 명, 비슷한 도시보다 656 명 낮음")  # negative: no ratio
    en = top_drivers(expl, "a", catalog=catalog, peers=["b", "c", "d"], lang="en", n=1)
    assert en[0].text == ("share aged 65+ 31.2%, 8.1 pp above similar units: lowers the 5-year population growth "
                          "by 1.10 pp")


@pytest.mark.parametrize(("name", "lang", "label"), [
    ("aging_ratio_chg3", "ko", "65세 이상 비율 3년 변화"),
    ("partners_population_growth_1y_contiguity", "ko", "인접 상대 지역의 인구 1년 증가율 평균"),
    ("migration_reciprocal_strength_pk", "ko", "인구이동 양방향 교류 강도(천 명당)"),
    ("income_drift_recent", "en", "earned income per resident, recent yearly growth (5 years)"),
    ("population_log", "ko", "인구"),
    ("something_new", "en", "a catalog description"),
])
def test_feature_labels(name: str, lang: str, label: str) -> None:
    assert feature_label(name, lang, "a catalog description (at t)") == label


def test_values_on_a_readable_scale() -> None:
    assert format_value(np.log(95754.0), "log persons", "ko") == "95,754 명"
    assert format_value(-0.0173, "log points", "ko") == "-1.72%"
    assert format_value(0.004, "log points per year", "en") == "+0.40% a year"
    assert format_value(float("nan"), "%", "ko") == "자료 없음"
    assert peer_comparison(12.0, 10.0, "persons", "ko") == "비슷한 도시보다 20% 높음"
    assert peer_comparison(5.0, 5.0, "%", "en") == "same as similar units"


def test_the_report_font_is_bundled_and_registered(tmp_path: Path) -> None:
    from matplotlib import font_manager

    from tiecast.serving import font_path
    from tiecast.serving._font import register_font, subset_font

    path = font_path()
    assert path.name == "NanumGothic.ttf" and path.stat().st_size > 1_000_000
    assert register_font() == "NanumGothic"
    found = font_manager.findfont(font_manager.FontProperties(family="NanumGothic"), fallback_to_default=False)
    assert Path(found) == path
    woff = subset_font("영주시 인구")
    assert woff[:4] == b"wOFF" and len(woff) < 40_000


def test_a_relative_members_common_growth_is_in_the_base(fitted) -> None:  # type: ignore[no-untyped-def]
    """A member that learnt growth relative to the cross-section starts its waterfall at the LightGBM average
    plus its common growth; the parts still add up to the forecast."""
    y = fitted.ds.panel[["unit_id", "year", "population"]]
    fc = DirectForecaster(targets=["population"], horizons=3, direct_horizons=3, members=["gbm_relative"],
                          params=FAST, seed=1).fit(fitted.pf.frame, y)
    member = fc.members_["population"][0]
    assert member.common is not None
    X = fitted.rows.reindex(columns=fc.feature_names_).to_numpy(float)
    cols = np.arange(X.shape[1]) if member.columns is None else np.asarray(member.columns, dtype=int)
    for h in (1, 3):
        expl = explain_forecast(fc, fitted.rows, "population", h)
        growth = fc.predict_growth(fitted.rows, "population")[:, h - 1]
        total = expl.base + expl.horizon_term + expl.contributions.sum(axis=1) + expl.other
        np.testing.assert_allclose(total, growth, rtol=1e-10, atol=1e-12)
        bias = booster_contributions(member.boosters[0], X[:, cols], h)[:, -1] * h
        np.testing.assert_allclose(expl.base, bias + member.common * h, rtol=1e-9, atol=1e-12)
