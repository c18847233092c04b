"""Golden backtest on the bundled Korean data: population, rolling origins 2015–2020, horizons 1–5.

Pins the achieved MAPE (%) so that regressions fail, like mlforecast pins its M4 scores. The baselines do
not depend on the features and are pinned tightly; tiecast and its no-ties ablation depend on the feature
builder and are pinned with a relative tolerance tighter than the effect of dropping the ``ties`` group at any
horizon (tested), so losing a feature group fails the test (update the pins deliberately when features change).

Accuracy goal: tiecast beats every baseline and mlforecast at every horizon (asserted for all units and the
small/mid-size provincial cities), and at h = 5 by >= 15% relative to the best of them. The 15% is reached
for small/mid-size cities (18.0%) but not for all units: 12.1% (3.974 vs mlforecast 4.519). The test pins
the achieved gains (GAIN_FLOOR) so that they cannot silently shrink. Takes about 20 s on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from tiecast.features import load_dataset
from tiecast.training import backtest

pytestmark = pytest.mark.slow

ORIGINS = list(range(2015, 2021))
BASELINE_TOL = 1e-3  # absolute, MAPE percentage points
# Relative; the smallest effect of dropping the ties group is 0.5% (small_mid, h = 1). Same data + seed give
# bit-identical metrics on this machine kind, so the tolerance only absorbs BLAS/OpenMP rounding elsewhere.
TIECAST_RTOL = 0.002
GOAL_H5_GAIN = 0.15
# Achieved h = 5 gains over the best other method, minus a margin: all 12.1%, small_mid 18.0%.
GAIN_FLOOR = {"all": 0.11, "small_mid": GOAL_H5_GAIN}

PINNED = {
    "all": {
        "tiecast": [0.8666, 1.6605, 2.4502, 3.2199, 3.9739],
        "tiecast_noties": [0.8718, 1.7009, 2.5399, 3.3457, 4.1657],
        "naive": [1.5983, 3.0187, 4.3589, 5.6403, 6.8177],
        "drift": [1.2767, 2.4412, 3.63, 4.8505, 6.0752],
        "autoets": [1.6337, 2.9131, 4.1742, 5.3986, 6.5728],
        "mlforecast": [0.9512, 1.8567, 2.7407, 3.653, 4.519],
    },
    "small_mid": {
        "tiecast": [0.6122, 1.2171, 1.7324, 2.288, 2.8139],
        "tiecast_noties": [0.6152, 1.2539, 1.8404, 2.4756, 3.0846],
        "naive": [1.084, 2.0847, 3.0262, 3.9571, 4.9157],
        "drift": [0.9317, 1.826, 2.7337, 3.6696, 4.6909],
        "autoets": [1.1513, 2.0602, 3.0063, 3.9622, 5.0165],
        "mlforecast": [0.6335, 1.3196, 2.0101, 2.7339, 3.4332],
    },
}
OTHERS = ("naive", "drift", "autoets", "mlforecast")


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return backtest(load_dataset("korea"), targets=["population"], origins=ORIGINS, horizons=5, seed=0)


def _mape(result, group: str):  # type: ignore[no-untyped-def]
    s = result.summary(group)
    return s[s["target"] == "population"].pivot_table(index="horizon", columns="method", values="mape")


def test_plan(result) -> None:  # type: ignore[no-untyped-def]
    plan = result.plans["population"]
    assert plan.origins == ORIGINS and plan.horizons == 5


@pytest.mark.parametrize("group", ["all", "small_mid"])
def test_pinned_scores(result, group: str) -> None:  # type: ignore[no-untyped-def]
    mape = _mape(result, group)
    for method in OTHERS:
        np.testing.assert_allclose(mape[method].to_numpy(), PINNED[group][method], atol=BASELINE_TOL,
                                   err_msg=f"{method} {group}")
    for method in ("tiecast", "tiecast_noties"):
        np.testing.assert_allclose(mape[method].to_numpy(), PINNED[group][method], rtol=TIECAST_RTOL,
                                   err_msg=f"{method} {group}")


@pytest.mark.parametrize("group", ["all", "small_mid"])
def test_tolerance_detects_a_dropped_feature_group(group: str) -> None:
    """The pinned no-ties scores lie outside tiecast's tolerance at every horizon: dropping a group fails."""
    tie, noties = np.array(PINNED[group]["tiecast"]), np.array(PINNED[group]["tiecast_noties"])
    assert (np.abs(noties - tie) > TIECAST_RTOL * tie).all()


@pytest.mark.parametrize("group", ["all", "small_mid"])
def test_accuracy_goal(result, group: str) -> None:  # type: ignore[no-untyped-def]
    mape = _mape(result, group)
    best_other = mape[list(OTHERS)].min(axis=1)
    assert (mape["tiecast"] < best_other).all(), mape
    gain_h5 = 1 - mape.loc[5, "tiecast"] / best_other.loc[5]
    assert gain_h5 >= GAIN_FLOOR[group], f"{group}: h=5 gain {gain_h5:.1%} < {GAIN_FLOOR[group]:.0%}"


def test_interval_coverage(result) -> None:  # type: ignore[no-untyped-def]
    s = result.summary("all")
    tie = s[(s["target"] == "population") & (s["method"] == "tiecast")]
    assert tie["coverage80"].between(0.72, 0.92).all(), tie["coverage80"]
    assert tie["coverage90"].between(0.84, 0.98).all(), tie["coverage90"]
