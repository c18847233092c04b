"""The units flag ``depopulation_area``: the 89 인구감소지역 of MOIS 고시 제2021-66호 (군위 per 제2024-15호).

The reference list below is transcribed from the notice itself, by province and Korean name, independently
of the raw file in data/raw/korea/mois-depopulation-areas/ (which lists 인제군 where the notice has 횡성군;
the build corrects it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

try:
    from tiecast.features import load_dataset
except ImportError:
    from features import load_dataset

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "data" / "korea"
RAW = REPO / "data" / "raw" / "korea" / "mois-depopulation-areas" / "depopulation_areas_2021.csv"

# 고시 제2021-66호 by province (2024 province names; 군위군 under 대구 per 고시 제2024-15호).
NOTICE = {
    "부산광역시": "동구 서구 영도구",
    "대구광역시": "남구 서구 군위군",
    "인천광역시": "강화군 옹진군",
    "경기도": "가평군 연천군",
    "강원특별자치도": "고성군 삼척시 양구군 양양군 영월군 정선군 철원군 태백시 평창군 홍천군 화천군 횡성군",
    "충청북도": "괴산군 단양군 보은군 영동군 옥천군 제천시",
    "충청남도": "공주시 금산군 논산시 보령시 부여군 서천군 예산군 청양군 태안군",
    "전북특별자치도": "고창군 김제시 남원시 무주군 부안군 순창군 임실군 장수군 정읍시 진안군",
    "전라남도": "강진군 고흥군 곡성군 구례군 담양군 보성군 신안군 영광군 영암군 완도군 장성군 장흥군 진도군 함평군 "
                "해남군 화순군",
    "경상북도": "고령군 문경시 봉화군 상주시 성주군 안동시 영덕군 영양군 영주시 영천시 울릉군 울진군 의성군 청도군 "
                "청송군",
    "경상남도": "거창군 고성군 남해군 밀양시 산청군 의령군 창녕군 하동군 함안군 함양군 합천군",
}
# The designated small/mid-size provincial cities (44 units by the default rule): every designated si.
SMALL_MID_DESIGNATED = 15


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    units = load_dataset("korea").units.copy()
    # The loader may keep a column it does not know as text: compare as numbers.
    units["depopulation_area"] = pd.to_numeric(units["depopulation_area"]).astype(int)
    return units.set_index("unit_id")



def test_exactly_89_designated(units):
    assert set(units["depopulation_area"].unique()) == {0, 1}
    assert units["depopulation_area"].sum() == 89
    committed = pd.read_csv(BUNDLED / "units.csv", dtype={"unit_id": str})
    assert committed["depopulation_area"].sum() == 89
    assert committed["depopulation_area"].isin([0, 1]).all()


def test_flag_equals_the_notice(units):
    expected = {(prov, name) for prov, names in NOTICE.items() for name in names.split()}
    assert len(expected) == 89
    flagged = units[units["depopulation_area"] == 1]
    assert set(zip(flagged["group"], flagged["name"], strict=True)) == expected
    by_province = flagged.groupby("group").size().to_dict()
    assert by_province == {prov: len(names.split()) for prov, names in NOTICE.items()}


@pytest.mark.parametrize(("unit_id", "flag"), [
    ("47730", 1),  # 의성군
    ("27720", 1),  # 군위군: designated under 경북 in 2021, now 대구 (고시 제2024-15호)
    ("51730", 1),  # 횡성군: in the notice, missing from the raw file (corrected by the build)
    ("26140", 1),  # 부산 서구
    ("28720", 1),  # 옹진군
    ("52800", 1),  # 부안군 (전북 52xxx)
    ("46910", 1),  # 신안군
    ("47900", 0),  # 예천군: not designated
    ("51810", 0),  # 인제군: an interest area (관심지역) only; listed in error in the raw file
    ("51150", 0),  # 강릉시: an interest area only
    ("11680", 0),  # 강남구
    ("41110", 0),  # 수원시
    ("48120", 0),  # 창원시
])
def test_known_units(units, unit_id, flag):
    assert units.loc[unit_id, "depopulation_area"] == flag


def test_every_raw_row_maps_to_one_unit(units):
    raw = pd.read_csv(RAW, dtype=str)
    assert len(raw) == 89 and raw["unit_id"].is_unique
    assert set(raw["unit_id"]) <= set(units.index)
    by_name = {(g, n): u for u, g, n in zip(units.index, units["group"], units["name"], strict=True)}
    assert [by_name.get((p, n)) for p, n in zip(raw["province"], raw["name"], strict=True)] == raw["unit_id"].tolist()
    # After the one correction (인제군 -> 횡성군) the raw list is exactly the flagged set.
    corrected = set(raw["unit_id"].replace({"51810": "51730"}))
    assert corrected == set(units.index[units["depopulation_area"] == 1])


def test_small_mid_cities_designated(units):
    small_mid = units[units["small_mid_city"].astype(int) == 1]
    assert len(small_mid) == 44
    designated = small_mid[small_mid["depopulation_area"] == 1]
    print(f"designated small/mid cities: {len(designated)} of {len(small_mid)}: {', '.join(designated['name'])}")
    assert len(designated) == SMALL_MID_DESIGNATED
    # Every designated si is a small/mid-size provincial city.
    assert set(designated.index) == set(units.index[(units["depopulation_area"] == 1) & (units["kind"] == "si")])


def test_build_flag_matches_and_fails_loudly(build_korea):
    committed = pd.read_csv(BUNDLED / "units.csv", dtype={"unit_id": str})
    flag = build_korea.depopulation_flag(committed)
    assert flag.tolist() == committed["depopulation_area"].tolist()
    renamed = committed.copy()
    renamed.loc[renamed["unit_id"] == "47730", "name"] = "의성시"  # a designated unit no longer matches by name
    with pytest.raises(SystemExit, match="의성군"):
        build_korea.depopulation_flag(renamed)
    with pytest.raises(SystemExit, match="89"):
        build_korea.depopulation_flag(committed[committed["unit_id"] != "51730"])  # one designated unit missing
