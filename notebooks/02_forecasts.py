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
# # 2. Forecasts and backtests: tiecast against baselines and mlforecast
#
# 인구 전망과 검증. Rolling-origin backtest on the bundled data (population, origins 2017–2020, h = 1–3 to keep
# the notebook quick; `tiecast backtest --origins 2015-2020 --horizons 5` gives the pinned table of the README),
# interval coverage, and a tracked MLflow run in a temporary store.

# %%
import os
import tempfile

from tiecast.features import build_features, load_dataset
from tiecast.training import DirectForecaster, backtest, comparison_text

ds = load_dataset("korea")
pf = build_features(ds)
result = backtest(ds, pf, targets=["population"], origins=[2017, 2018, 2019, 2020], horizons=3)
print(comparison_text(result))

# %% [markdown]
# ## Interval coverage of tiecast (share of actuals inside the conformal 80% / 90% intervals)

# %%
s = result.summary("all")
s[s["method"] == "tiecast"][["horizon", "mape", "coverage80", "coverage90"]].round(3)

# %% [markdown]
# ## The final model: forecasts of 2026–2030 for a few small provincial cities

# %%
y = ds.panel[["unit_id", "year", "population", ds.break_column]]
model = DirectForecaster(targets=["population"], horizons=5, features=pf.names, feature_groups=pf.groups(),
                         break_column=ds.break_column, step=ds.step).fit(pf.frame, y)
latest = pf.frame[pf.frame["year"] == 2025]
fc = model.predict(latest)
names = ds.display_names()
fc = fc[fc["unit_id"].isin(["47210", "47900", "51150"])].assign(name=lambda f: f["unit_id"].map(names))
fc[["name", "target_year", "point", "lower90", "upper90"]].round(0)

# %% [markdown]
# ## Tracked in MLflow (a temporary sqlite store here; `tiecast train` uses `mlruns/`)

# %%
from tiecast.training import train_and_register, tracking_uri  # noqa: E402

store = tempfile.mkdtemp()
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
trained = train_and_register(ds, features=pf, targets=["population"], origins=[2019, 2020], horizons=2)
print(trained.model_name, "version", trained.version, "run", trained.run_id, "in", tracking_uri())
