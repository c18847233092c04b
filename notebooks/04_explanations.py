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
# # 4. Explanations: SHAP by feature group, and how to read a unit's report
#
# 왜 이런 전망인가? This notebook explains the 5-year population forecast of 영주시 (47210) with SHAP values
# (기여도) of the fitted forecaster, summed by feature group (요인 묶음), gives the top drivers in plain Korean and
# English, shows the global picture over all 229 units, and then walks through the HTML report an official
# receives (`tiecast report --unit 영주시`), tying every paragraph to its numbers.
#
# **SHAP explains the model, not causes** (SHAP은 인과가 아닙니다): a contribution says what the model responded to
# when it made this forecast, not what would happen to the population if that feature changed. The effect of a
# policy is the cooperation estimate (double ML: the report's section 3, below, and notebook 3).

# %% [markdown]
# ## Fit once
#
# A `ScenarioForecaster` for population with horizons 1–5 (as in notebook 3: the forecaster `tiecast train`
# registers, and the cooperation effect model), then `report_context` reuses it and precomputes what every report
# needs, including the SHAP explanation of every unit at the 5-year horizon. About 1–2 minutes on 2 cores.

# %%
import html
import re
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from tiecast.features import build_features, load_dataset
from tiecast.serving import (
    TIER_RULE,
    booster_contributions,
    explain_forecast,
    load_evidence,
    report_context,
    top_drivers,
    unit_numbers,
    write_unit_report,
)
from tiecast.training import MODEL_ERROR, REPORTED_METHOD, ScenarioForecaster

UNIT, TARGET, H = "47210", "population", 5  # 영주시, 5-year population growth
start = time.perf_counter()
ds = load_dataset("korea")
sf = ScenarioForecaster(ds, horizons=H, targets=[TARGET], features=build_features(ds)).fit()
ctx = report_context(sf)
print(f"fitted in {time.perf_counter() - start:.0f} s; origin {ctx.origin}, {len(ds.units)} units")
names = ctx.names
fc = sf.forecaster_  # the fitted DirectForecaster
rows = ctx.rows[TARGET]  # the feature rows at the origin (one per unit)

# %% [markdown]
# ## One unit: 영주시's 5-year growth, decomposed
#
# Every number is in **log points of growth over the 5 years** (× 100 ≈ percentage points, %p). The decomposition
# is a waterfall: `base` (a typical unit: the LightGBM model's average prediction) + `horizon_term` (what the model
# adds for "5 years ahead") + the features' contributions + `other` (the forecast is a weighted mean of LightGBM
# and simple trend / no-change members; `other` is their share) = the combined forecast.

# %%
expl = explain_forecast(fc, rows, TARGET, H)  # the same explanation ctx.explanations[TARGET] holds
i = expl.index(UNIT)
by_group = expl.by_group(ctx.groups)  # units x feature groups
mine = by_group.loc[UNIT]
print(f"{names[UNIT]}: base {100 * expl.base[i]:+.2f}, horizon {100 * expl.horizon_term[i]:+.2f}, "
      f"features {100 * expl.contributions[i].sum():+.2f}, other {100 * expl.other[i]:+.2f} "
      f"= growth {100 * expl.growth[i]:+.2f} (x100, log points over {H} years)")
print("members' weights at h=5:", {m: round(v, 2) for m, v in expl.weights.items()})
(100 * mine).round(3).rename("contribution (x100)").to_frame()

# %% [markdown]
# The check, to 1e-9: the parts add up to the forecaster's own combined log growth (computed independently by
# `predict_growth`), and that growth is the point forecast's change from the origin's population.

# %%
growth = fc.predict_growth(rows, TARGET)[:, H - 1]
total = expl.base + expl.horizon_term + expl.contributions.sum(axis=1) + expl.other
np.testing.assert_allclose(total, growth, rtol=0, atol=1e-9)
assert abs(total[i] - growth[i]) < 1e-9
np.testing.assert_allclose(by_group.sum(axis=1).to_numpy(), expl.contributions.sum(axis=1), atol=1e-12)
point = ctx.forecasts[TARGET].query("unit_id == @UNIT and horizon == @H")["point"].iloc[0]
level0 = ctx.levels[TARGET][UNIT]
print(f"{names[UNIT]} {ctx.origin}: {level0:,.0f} -> {ctx.origin + H}: {point:,.0f} persons; "
      f"exp(growth) x level = {level0 * np.exp(growth[i]):,.0f}")
print("decomposition adds up for all", len(total), "units (max |error|", f"{np.abs(total - growth).max():.1e})")

# %%
steps = pd.concat([mine.sort_values(key=np.abs), pd.Series({"horizon": expl.horizon_term[i],
                                                            "other (simple members)": expl.other[i]})])
fig, ax = plt.subplots(figsize=(7, 3.6))
colours = ["#c0392b" if v < 0 else "#2e86c1" for v in steps]
colours[-2:] = ["#999999", "#bbbbbb"]
ax.barh(steps.index, 100 * steps.to_numpy(), color=colours)
ax.axvline(0, color="black", lw=0.8)
ax.set_xlabel(f"contribution to {H}-year log growth (x100, ~ %p)")
ax.set_title(f"unit {UNIT}: SHAP by feature group (base {100 * expl.base[i]:+.2f}, "
             f"forecast {100 * expl.growth[i]:+.2f})")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The top drivers in plain words (주요 요인)
#
# `top_drivers` turns the largest contributions into sentences: the feature's value, the comparison with similar
# units (the median of the same population quintile, `ctx.peers`), and the effect on the 5-year growth. These are
# the sentences of the report's page 2.

# %%
peers = ctx.peers(UNIT)
ko = top_drivers(expl, UNIT, catalog=ctx.catalog, peers=peers, lang="ko", n=6)
en = top_drivers(expl, UNIT, catalog=ctx.catalog, peers=peers, lang="en", n=6)
for d_ko, d_en in zip(ko, en, strict=True):
    print(f"[{d_ko.group}] {d_ko.text}\n    {d_en.text}")
pd.DataFrame([{"feature": d.feature, "group": d.group, "value": d.value, "peer_median": d.peer_median,
               "contribution_x100": 100 * d.contribution} for d in en]).round(3)

# %% [markdown]
# ## The global view: what the model relies on over all units
#
# Mean |SHAP| by feature group over all units (how much each group moves forecasts, in either direction), and a
# beeswarm of the strongest features: each dot is a unit, its position the contribution, its colour the feature's
# value (grey: missing).

# %%
importance = (100 * by_group.abs().mean()).sort_values()
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(importance.index, importance.to_numpy(), color="#2e86c1")
ax.set_xlabel(f"mean |SHAP| over {len(by_group)} units (x100, {H}-year log growth)")
ax.set_title("feature groups, globally")
plt.tight_layout()
plt.show()
frame = expl.frame()  # long: unit_id, feature, value, contribution
top = frame.assign(a=frame["contribution"].abs()).groupby("feature")["a"].mean().nlargest(10)
print((100 * top).round(3).to_string())

# %%
sv = shap.Explanation(values=100 * expl.contributions, base_values=100 * (expl.base + expl.horizon_term),
                      data=expl.values, feature_names=expl.features)
shap.plots.beeswarm(sv, max_display=12, show=False)
plt.gcf().set_size_inches(8, 5)
plt.title(f"SHAP of the {H}-year population growth (x100), all units")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Cross-check: LightGBM `pred_contrib` = `shap.TreeExplainer`
#
# The contributions come from LightGBM's native TreeSHAP (`pred_contrib`); on the pooled booster of the main
# LightGBM member (features + the horizon as the last column) they equal the `shap` package's values.

# %%
member = next(m for m in fc.members_[TARGET] if m.boosters)  # "gbm", the main LightGBM member
booster = member.boosters[0]
X = rows.reindex(columns=fc.feature_names_).to_numpy(float)
X = X if member.columns is None else X[:, np.asarray(member.columns, dtype=int)]
native = booster_contributions(booster, X, H)  # features, horizon, bias
explainer = shap.TreeExplainer(booster)
reference = explainer.shap_values(np.column_stack([X, np.full(len(X), float(H))]))
np.testing.assert_allclose(native[:, :-1], reference, rtol=1e-6, atol=1e-10)
np.testing.assert_allclose(native[:, -1], explainer.expected_value, rtol=1e-9)
print(f"member {member.name}: pred_contrib == TreeExplainer for {native.shape[0]} units x "
      f"{native.shape[1] - 1} columns (max |diff| {np.abs(native[:, :-1] - reference).max():.1e})")

# %% [markdown]
# ## How to read the report (보고서 읽는 법)
#
# `write_unit_report` writes one self-contained HTML file (charts, the Korean font, no network; prints to A4). It has
# five sections; the numbers below are those the report shows, from `unit_numbers` (the scenario's reported
# estimate for the unit and its partners) and the fitted context.

# %%
out = Path(tempfile.mkdtemp()) / f"{UNIT}.html"
path = write_unit_report(ctx, UNIT, out)  # Korean; lang="en" for English
page = path.read_text(encoding="utf-8")
print(path, f"{path.stat().st_size / 1e3:.0f} kB")
for sid in re.findall(r'<section class="page" id="(\w+)">', page):
    section = page.split(f'id="{sid}">', 1)[1]
    title = re.search(r"<h[12]>(.*?)</h[12]>", section).group(1)
    print(f"{sid:12s}", html.unescape(re.sub(r"<[^>]+>", "", title)))
num = unit_numbers(ctx, UNIT)  # default scenario: top3, the three strongest partners
assert all(html.escape(d.text) in page for d in ko)  # page 2 lists exactly these drivers

# %% [markdown]
# ### 1. 전망 (outlook): the trajectories
#
# The baseline forecast (굵은 선) with 80% and 90% prediction intervals (음영: rolling conformal intervals), and
# the trajectory with the cooperation scenario. The cards give the change from the origin year. The **response
# level** (대응 수준) comes from the forecast change to the report's last horizon and its intervals, by this rule:

# %%
print(TIER_RULE)
t = ctx.tiers.loc[UNIT]
print(f"{names[UNIT]} {ctx.origin}->{int(t['year'])}: change {t['change']:+.1f}% (80% {t['lower80']:+.1f}.."
      f"{t['upper80']:+.1f}; 90% {t['lower90']:+.1f}..{t['upper90']:+.1f}) -> level {t['tier']}")
f = ctx.forecasts[TARGET].query("unit_id == @UNIT")
f[["target_year", "point", "lower80", "upper80", "lower90", "upper90"]].round(0)

# %% [markdown]
# ### 2. 왜 이런 전망인가 (why): SHAP by group and the top drivers
#
# The waterfall is the decomposition above (`base` → groups → horizon → combination → this unit's growth) and the
# list is `top_drivers` in Korean. Read it as "what the model responded to"; the last line of the page repeats
# that it is not causal.
#
# ### 3. 협력 효과 (the cooperation effect) and its estimator
#
# The difference between the trajectories with and without cooperation at the 5-year horizon, with its 80% / 90%
# intervals, by the reported estimator (double ML of the effect of balanced two-way migration volume on growth),
# each partner's part of it, and how the estimator did on the semi-synthetic benchmark (`load_evidence`):

# %%
a = num.answer
focal = a[(a["unit_id"] == UNIT) & (a["year"] == ctx.origin + H)].iloc[0]
print(f"scenario {num.scenario.id}: {num.scenario.description or ''} partners "
      f"{', '.join(names[p] for p in num.partners)}; estimator {REPORTED_METHOD} (its intervals add {MODEL_ERROR:.0%} "
      "of the effect as a model-error allowance to the clustered standard error)")
print(f"{ctx.origin + H}: baseline {focal['baseline']:,.0f}, with cooperation {focal['cooperation']:,.0f}, "
      f"difference {focal['difference']:+,.0f} [90% {focal['difference_lower90']:+,.0f}, "
      f"{focal['difference_upper90']:+,.0f}]")
t0, dt = num.treatment_before, num.delta_t.get(UNIT, 0.0)
print(f"{names[UNIT]}'s tie strength (log of balanced two-way volume) {t0:.3f} -> {t0 + dt:.3f} with the scenario")
ev = load_evidence()
d = ev.row("dml", "focal")
print(f"validation ({ev.source}): bias {d['bias']:+.2f} pp, 90% coverage {d['coverage90']:.0%}, "
      f"error vs. zero effect {d['pehe_vs_zero']:.0%}")
num.alone.assign(partner=num.alone["partner"].map(names)).round(3)

# %% [markdown]
# ### 4. 가장 강한 상호 연계 (ties & map)
#
# The unit's strongest partners by the reciprocal tie index (RTI, notebook 1) in the latest flow year, with a map;
# partners of the scenario are marked ●.

# %%
ties = num.ties.assign(partner=num.ties["destination"].map(names))
ties[["partner", "flow_ij", "flow_ji", "reciprocity", "tie_index", "distance_km"]].round(3)

# %% [markdown]
# ### 5. 읽을 때 유의할 점 (caveats)
#
# Data vintage and missing features, structural breaks, extrapolation (features outside the training range, and
# whether the scenario pushes tie strength beyond what units of the same size have shown), **SHAP is not causal**,
# how the cooperation effect was validated, and what the intervals cover. In short:
#
# - the forecast and its intervals are the model's best statement under past patterns;
# - the SHAP page explains the *model* (what it responds to), not what causes population change (요인끼리 얽혀
#   있고, 모델은 상관을 배웁니다);
# - the cooperation effect is an adjusted association estimated by double ML and checked on semi-synthetic data and
#   placebos, not an experiment.

# %%
caveats = page.split('id="caveats">', 1)[1]
items = [re.sub(r"<[^>]+>", "", html.unescape(x)) for x in re.findall(r"<li>(.*?)</li>", caveats)]
for item in items:
    print("-", item[:160] + ("…" if len(item) > 160 else ""))

# %% [markdown]
# ## In one sentence
#
# SHAP explains the model, not causes: the report's page 2 says what the forecaster responded to for this unit
# (for 영주시: mostly its own past trend and migration), and the cooperation page, not the SHAP page, is where a
# policy's effect is estimated (with its own validation and caveats).
