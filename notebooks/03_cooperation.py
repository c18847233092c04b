# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Cooperation: scenarios for one small provincial city, effect estimates and their validation, targeting
#
# 협력 시나리오: 영주시가 가장 강한 세 파트너와의 양방향 교류를 두 배로 늘리면? The reported estimate is the
# double-ML effect of balanced two-way migration volume on growth (see the README: what it measures, how it was
# validated, its limits).

# %%
import dataclasses

import pandas as pd

from tiecast.features import Scenario, build_features, builtin_scenario, load_dataset
from tiecast.training import REPORTED_METHOD, ScenarioForecaster, rank_targets

ds = load_dataset("korea")
sf = ScenarioForecaster(ds, horizons=5, targets=["population"], features=build_features(ds)).fit()
names = ds.display_names()

# %% [markdown]
# ## Built-in and hand-written scenarios

# %%
top3 = sf.answer(builtin_scenario("top3", "47210", sf.origin))
own = sf.answer(Scenario(id="yeongju_andong_x1.5", unit="47210", partners=("47170",), start_year=2026,
                         factor=1.5, description="영주–안동 교류 1.5배"))
both = pd.concat([top3, own])
view = both[(both["role"] != "other") & (both["horizon"] == 5)]
view.pivot_table(index=["scenario_id", "name", "role"], columns="method", values="difference").round(0)

# %% [markdown]
# ## The reported estimate with its interval on the difference

# %%
rep = both[(both["method"] == REPORTED_METHOD) & (both["role"] != "other") & (both["horizon"] == 5)]
rep[["scenario_id", "name", "role", "baseline", "cooperation", "difference", "difference_lower90",
     "difference_upper90", "extrapolation"]].round(0)

# %% [markdown]
# ## The effect model and how far it can be trusted
#
# The full semi-synthetic benchmark and the placebos: `tiecast effects validate` (about 8 minutes; results in
# `benchmarks/results/effects_validation/`). Here, the estimated cumulative multiplier per horizon:

# %%
sf.effects_.summary().round(4)

# %%
pd.read_csv("../benchmarks/results/effects_validation/table.csv").round(3)

# %% [markdown]
# ## Targeting: a few small/mid cities, 5 candidate partners each

# %%
units = ds.units.copy()
few = units["unit_id"].isin(["47210", "47280", "51150", "44150"])
sf.ds = dataclasses.replace(ds, units=units.assign(small_mid_city=few.astype(int)))
rank_targets(sf, focus="small-mid", candidates=5)[["rank", "name", "baseline_change_pct", "gain_pct",
                                                    "gain_lower90_pct", "gain_upper90_pct", "best_partner_names"]]
