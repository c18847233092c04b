"""The relative LightGBM member ``gbm_relative``: boosters learn each unit's growth relative to the
cross-section's median, and the common growth is forecast by a rule chosen on the common series' own inner
origins (nested: nothing after the cutoff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_training_backtest import FAST, with_panel, write_synthetic

from tiecast.common import ConfigError
from tiecast.features import build_features, load_dataset
from tiecast.training import DirectForecaster, MemberSpec, backtest
from tiecast.training._core import Member, member_growth
from tiecast.training._model import COMMON_RULES, choose_common_rule, common_rates, training_sets
from tiecast.training._pyfunc import member_payload

RELATIVE = ["gbm_relative", "gbm_noties", "linear", "naive"]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("relative") / "synth")


def test_relative_member_names() -> None:
    spec = MemberSpec.parse("gbm_relative_per_h_noties")
    assert spec.relative and not spec.pooled and not spec.anchored and spec.drop == ("ties",)
    assert spec.name == "gbm_relative_per_h_noties"
    assert MemberSpec.parse("gbm_relative").without("ties").name == "gbm_relative_noties"
    with pytest.raises(ConfigError, match="either anchored") as info:
        MemberSpec.parse("gbm_anchored_relative")
    assert info.value.parameter == "members"


def test_common_rules_forecast_what_each_says() -> None:
    series = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, -0.10])
    np.testing.assert_allclose(common_rates(series), [-0.10, (0.03 + 0.04 + 0.05 + 0.06 - 0.10) / 5,
                                                      series.mean(), 0.0])
    np.testing.assert_allclose(common_rates(np.zeros(0)), np.zeros(len(COMMON_RULES)))


def test_common_rule_is_chosen_on_the_series_own_inner_origins() -> None:
    # A common growth that keeps accelerating: the last step's growth forecasts it best.
    assert choose_common_rule(np.linspace(0.0, -0.02, 12), 3) == "last"
    # A level that jumps around a constant: the step growths alternate sign, so no growth (naive) is best.
    assert choose_common_rule(np.tile([0.05, -0.05], 6), 3) == "zero"
    # Steady growth with alternating shocks: a mean beats the last step and beats no growth.
    assert choose_common_rule(np.tile([0.03, 0.01], 7), 3) in ("recent", "all")
    # Too short for an inner origin: the preferred rule, the recent mean.
    assert choose_common_rule(np.array([0.01]), 3) == "recent"
    # Nested: the choice from a series' first n values never depends on what comes after them.
    long = np.r_[np.linspace(0.0, -0.02, 8), np.tile([0.05, -0.05], 4)]
    assert choose_common_rule(long[:8], 3) == choose_common_rule(np.linspace(0.0, -0.02, 8), 3) == "last"


def test_relative_labels_are_growth_minus_the_cross_section_median(synth_dir: Path) -> None:
    ds = load_dataset(synth_dir)
    pf = build_features(ds)
    est = DirectForecaster(horizons=2, params=FAST, feature_groups=pf.groups(), features=pf.names,
                           members=RELATIVE)
    roll = est.rolling_fit(pf.frame, ds.panel[["unit_id", "year", "population"]], "population")
    table = roll.table
    cutoff = 2015
    plain = training_sets(table, cutoff, 2, pooled=True)[0]
    relative = training_sets(table, cutoff, 2, pooled=True, relative=True)[0]
    keep = table.select(cutoff) & (table.h <= 2)
    frame = pd.DataFrame({"year": table.year[keep], "h": table.h[keep], "growth": table.growth[keep]})
    median = frame.groupby(["year", "h"])["growth"].transform("median").to_numpy()
    np.testing.assert_allclose(relative[1], plain[1] - median / frame["h"].to_numpy())
    # The common series: the median one-step growth of every period ending by the cutoff, oldest first.
    one = frame[frame["h"] == 1].groupby("year")["growth"].median().sort_index().to_numpy()
    np.testing.assert_allclose(table.common_series(cutoff), one)
    rate, rule = table.common_rate(cutoff, 1, 2)
    assert rule in COMMON_RULES
    assert rate == pytest.approx(common_rates(one)[COMMON_RULES.index(rule)])


@pytest.mark.parametrize("members", [RELATIVE, None], ids=["gbm_relative", "default_on_shocked_data"])
def test_relative_member_is_leak_free_and_round_trips(synth_dir: Path, tmp_path: Path,
                                                      members: list[str] | None) -> None:
    """Changing every value after the origin changes neither the relative member's design and common growth
    nor the forecasts of the origin (forced ``gbm_relative``, and the default ``gbm`` on data where it chooses
    to be relative); the pyfunc payload keeps the common growth."""
    origin = 2014
    source = synth_dir if members else _shocked_copy(synth_dir, tmp_path / "shocked", 0.08)
    name_rel = "gbm_relative" if members else "gbm"
    ds = load_dataset(source)
    panel = ds.panel.copy()
    later = panel["year"] > origin
    panel.loc[later, ["population", "income"]] *= np.exp(np.linspace(-0.3, 0.3, int(later.sum())))[:, None]
    changed = with_panel(source, tmp_path / "changed", panel)
    kwargs: dict[str, Any] = {"targets": ["population"], "origins": [origin], "horizons": 3, "params": FAST,
                              "methods": ("tiecast", "naive"), "members": members}
    a = backtest(ds, **kwargs)
    b = backtest(load_dataset(changed), **kwargs)
    ra, rb = a.rolls["population"], b.rolls["population"]
    cutoff = ra.tm.calendar.period(origin)
    assert ra.commons[name_rel][cutoff] == rb.commons[name_rel][cutoff]  # relative at the origin
    assert ra.common_rules[name_rel][cutoff] == rb.common_rules[name_rel][cutoff]
    assert ra.designs(cutoff, [name_rel]) == rb.designs(cutoff, [name_rel])
    assert a.selection["population"][origin] == b.selection["population"][origin]
    cols = ["method", "unit_id", "horizon", "point", "lower80", "upper80"]
    pd.testing.assert_frame_equal(a.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  b.forecasts[cols].sort_values(cols[:3]).reset_index(drop=True))

    # The fitted member forecasts boosters + common growth, and its payload keeps both.
    y = ds.panel[["unit_id", "year", "population"]]
    pf = build_features(ds)
    est = DirectForecaster(targets=["population"], horizons=3, params=FAST, feature_groups=pf.groups(),
                           features=pf.names, members=members).fit(pf.frame, y)
    member = next(m for m in est.members_["population"] if m.name == name_rel)
    assert member.common is not None and np.isfinite(member.common)
    rows = pf.frame[pf.frame["year"] == 2019].reindex(columns=est.feature_names_).to_numpy(float)
    payload = member_payload(member)
    assert payload["common"] == member.common
    without = member_growth(Member(member.name, member.boosters, member.columns, member.rate), rows, 3, 1)
    np.testing.assert_allclose(member_growth(member, rows, 3, 1) - without,
                               np.tile(member.common * np.arange(1, 4), (len(rows), 1)))


def _shocked_copy(src: Path, dest: Path, scale: float) -> Path:
    """``src`` with a shock every unit shares added to each year's population growth (scale: log points)."""
    panel = load_dataset(src).panel.copy()
    years = np.sort(panel["year"].unique())
    shock = np.cumsum(scale * np.where(np.arange(len(years)) % 2 == 0, 1.0, -0.5))
    panel["population"] *= np.exp(panel["year"].map(dict(zip(years, shock, strict=True))).to_numpy())
    return with_panel(src, dest, panel)


def test_gbm_learns_relative_growth_where_the_common_shock_is_large(synth_dir: Path, tmp_path: Path) -> None:
    """The default ``gbm`` member is absolute where the common share of growth variance is small and relative
    to the cross-section where a shared shock dominates; the fitted design is recorded."""
    from tiecast.training._model import RELATIVE_MIN_SHARE

    designs = {}
    for label, folder in (("plain", synth_dir), ("shocked", _shocked_copy(synth_dir, tmp_path / "s", 0.08))):
        ds = load_dataset(folder)
        pf = build_features(ds)
        y = ds.panel[["unit_id", "year", "population"]]
        est = DirectForecaster(targets=["population"], horizons=2, params=FAST, feature_groups=pf.groups(),
                               features=pf.names).fit(pf.frame, y)
        designs[label] = est.designs_["population"]["gbm"]
        member = next(m for m in est.members_["population"] if m.name == "gbm")
        assert (member.common is not None) == designs[label]["relative"]
    assert designs["plain"]["common_share"] < RELATIVE_MIN_SHARE and not designs["plain"]["relative"]
    assert designs["shocked"]["common_share"] >= RELATIVE_MIN_SHARE and designs["shocked"]["relative"]
    assert designs["shocked"]["common_rule"] in COMMON_RULES
    # gbm_absolute / gbm_relative force the design whatever the data.
    assert MemberSpec.parse("gbm_absolute").relative is False and MemberSpec.parse("gbm").relative is None
    assert MemberSpec.parse("gbm_anchored").relative is False
