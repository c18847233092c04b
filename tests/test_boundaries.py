"""data/korea/boundaries.geojson: simplified si-gun-gu polygons for maps, one Feature per bundled unit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "data" / "korea"
PATH = BUNDLED / "boundaries.geojson"
MAX_BYTES = 1_500_000
# The bundled lat/lon of 옹진군 (MDIS point) lies on 백령도, its westernmost island, about 78 km from the area
# centroid of its islands (spread over about 150 km of the Yellow Sea); checked to lie inside its polygons.
CENTROID_EXCEPTIONS = {"28720"}


@pytest.fixture(scope="module")
def collection() -> dict:
    return json.loads(PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return pd.read_csv(BUNDLED / "units.csv", dtype={"unit_id": str}).set_index("unit_id")



def _polygons(feature: dict) -> list[list[list[list[float]]]]:
    geom = feature["geometry"]
    return [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _centroid(feature: dict) -> tuple[float, float]:
    """Area-weighted centroid (lon, lat) of all rings (holes count negative), on a local equal-area scale."""
    k = math.cos(math.radians(36.0))
    area = cx = cy = 0.0
    for polygon in _polygons(feature):
        for ring in polygon:
            r = np.asarray(ring)
            x, y = r[:, 0] * k, r[:, 1]
            cross = x[:-1] * y[1:] - x[1:] * y[:-1]
            area += cross.sum() / 2
            cx += ((x[:-1] + x[1:]) * cross).sum() / 6
            cy += ((y[:-1] + y[1:]) * cross).sum() / 6
    return cx / area / k, cy / area


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _inside(lon: float, lat: float, feature: dict) -> bool:
    """Even-odd ray casting over every ring of the feature."""
    inside = False
    for polygon in _polygons(feature):
        for ring in polygon:
            r = np.asarray(ring)
            x1, y1, x2, y2 = r[:-1, 0], r[:-1, 1], r[1:, 0], r[1:, 1]
            crosses = ((y1 > lat) != (y2 > lat)) & (lon < x1 + (lat - y1) * (x2 - x1) / np.where(y2 == y1, 1, y2 - y1))
            inside ^= bool(crosses.sum() % 2)
    return inside


def test_one_feature_per_unit(collection, units):
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == 229
    ids = [f["properties"]["unit_id"] for f in features]
    assert ids == sorted(units.index)
    assert {f["properties"]["unit_id"]: f["properties"]["name"] for f in features} == units["name"].to_dict()
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}


def test_file_size_and_precision():
    text = PATH.read_text(encoding="utf-8")
    assert PATH.stat().st_size < MAX_BYTES
    assert not re.search(r"\d\.\d{5,}", text), "coordinates must be rounded to 4 decimals"


def test_rings_are_valid_wgs84_and_rfc7946_oriented(collection):
    for feature in collection["features"]:
        for polygon in _polygons(feature):
            for k, ring in enumerate(polygon):
                r = np.asarray(ring)
                assert len(r) >= 4 and (r[0] == r[-1]).all(), feature["properties"]
                assert ((r[:, 0] > 124) & (r[:, 0] < 132) & (r[:, 1] > 33) & (r[:, 1] < 39)).all()
                assert (np.diff(r, axis=0) != 0).any(axis=1).all()  # no repeated positions
                area = _signed_area(r)
                assert (area > 0) if k == 0 else (area < 0), feature["properties"]  # exterior CCW, holes CW


def test_centroids_near_unit_coordinates(collection, units):
    far = {}
    for feature in collection["features"]:
        uid = feature["properties"]["unit_id"]
        lon, lat = _centroid(feature)
        dist = _km(lon, lat, units.loc[uid, "lon"], units.loc[uid, "lat"])
        if dist > 30:
            far[uid] = round(dist, 1)
    assert set(far) == CENTROID_EXCEPTIONS, far
    by_id = {f["properties"]["unit_id"]: f for f in collection["features"]}
    for uid in CENTROID_EXCEPTIONS:
        assert _inside(units.loc[uid, "lon"], units.loc[uid, "lat"], by_id[uid])


@pytest.mark.parametrize(("unit_id", "lon", "lat"), [
    ("47940", 130.87, 37.50),  # 울릉군 (울릉도)
    ("50110", 126.53, 33.45),  # 제주시
    ("50130", 126.56, 33.28),  # 서귀포시
    ("11110", 126.98, 37.58),  # 종로구
    ("28720", 124.68, 37.96),  # 옹진군 (백령도)
])
def test_known_places_inside_their_unit(collection, unit_id, lon, lat):
    by_id = {f["properties"]["unit_id"]: f for f in collection["features"]}
    assert _inside(lon, lat, by_id[unit_id])
    others = [u for u, f in by_id.items() if u != unit_id and _inside(lon, lat, f)]
    assert others == []


def test_build_reproduces_committed_boundaries(build_korea, units, tmp_path):
    build_korea.build_boundaries(units.reset_index(), tmp_path)
    assert (tmp_path / "boundaries.geojson").read_bytes() == PATH.read_bytes()
