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
# # 1. Tie indices: a city's partners, reciprocity, dominant flows and functional regions
#
# 한 도시의 상호 연계(reciprocal ties): 누구와, 얼마나 양방향으로 교류하는가. This notebook uses the public API of
# `tiecast.features` on the bundled 2025 si-gun-gu migration OD (persons per year).

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tiecast.features import load_dataset, pair_indices, unit_tie_measures

ds = load_dataset("korea")
UNIT = "51150"  # 강릉시
names = ds.display_names()
flows = ds.flows[(ds.flows["kind"] == "migration") & (ds.flows["year"] == 2025)]
population = ds.panel[ds.panel["year"] == 2025].set_index("unit_id")["population"]
print(len(ds.units), "units,", len(flows), "migration pairs in 2025")

# %% [markdown]
# ## Strongest partners by the reciprocal tie index (RTI = (R·S·U)^(1/3))

# %%
pairs = pair_indices(flows, ds.units, population)
mine = pairs[pairs["origin"] == UNIT].sort_values("tie_index", ascending=False).head(10)
mine = mine.assign(partner=mine["destination"].map(names))
mine[["partner", "flow_ij", "flow_ji", "reciprocity", "expected_doubly", "strength_doubly_log", "tie_index"]].round(3)

# %% [markdown]
# ## Dominant flows (Nystuen–Dacey) and functional regions (Louvain)

# %%
measures = unit_tie_measures(flows, ds.units, population, path_sources=0, dominance_size="population")
row = measures.loc[UNIT]
print(f"{names[UNIT]}: hub {names[row['hub']]}, hierarchy level {row['hierarchy_level']}, "
      f"region of {names[row['functional_region']]}")
regions = measures["functional_region"]
print(regions.value_counts().head(8).rename(index=names))

# %% [markdown]
# ## A map: the unit, its partners and the functional regions

# %%
geo = json.loads((ds.path / "boundaries.geojson").read_text(encoding="utf-8"))
codes = {r: k for k, r in enumerate(sorted(regions.unique()))}
cmap = plt.get_cmap("tab20")
fig, ax = plt.subplots(figsize=(6, 7))
for feature in geo["features"]:
    uid = feature["properties"]["unit_id"]
    polys = feature["geometry"]["coordinates"]
    polys = polys if feature["geometry"]["type"] == "MultiPolygon" else [polys]
    colour = cmap(codes[regions.get(uid, regions.iloc[0])] % 20)
    for poly in polys:
        ring = np.asarray(poly[0])
        ax.fill(ring[:, 0], ring[:, 1], color=colour, alpha=0.5 if uid != UNIT else 1.0, lw=0.2, ec="white")
units = ds.units.set_index("unit_id")
for dest in mine["destination"]:
    ax.plot([units.loc[UNIT, "lon"], units.loc[dest, "lon"]], [units.loc[UNIT, "lat"], units.loc[dest, "lat"]],
            color="black", lw=1)
ax.set_aspect(1.2)
ax.set_axis_off()
ax.set_title("functional regions and the 10 strongest ties of unit " + UNIT)
plt.show()
