"""Cooperation scenarios: the file format and its errors, the partner rules, and the state a scenario implies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiecast.cli import main
from tiecast.common import ConfigError
from tiecast.features import (
    SCENARIO_KEYS,
    Scenario,
    apply_scenario,
    build_features,
    builtin_scenario,
    parse_scenario,
    read_scenarios,
    scenario_state,
    unit_tie_measures,
)

YECHEON = "47900"
ORIGIN = 2025
GOOD = {"unit": YECHEON, "partners": "top3", "factor": 2, "start_year": 2026}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("spec", "message"), [
    ({**GOOD, "colour": "red"}, "unknown key(s) 'colour'; allowed: " + ", ".join(SCENARIO_KEYS)),
    ({**GOOD, "factor": 0}, "'factor' must be a number > 0"),
    ({**GOOD, "factor": -1.5}, "'factor' must be a number > 0"),
    ({**GOOD, "factor": True}, "'factor' must be a number > 0"),
    ({**GOOD, "to_quantile": 0.9}, "give exactly one of 'factor' (> 0) or 'to_quantile' (0–1)"),
    ({k: v for k, v in GOOD.items() if k != "unit"}, "required key 'unit' is missing"),
    ({**GOOD, "partners": "friends"}, "'partners' rule 'friends' is unknown"),
    ({**GOOD, "partners": []}, "'partners' must be a non-empty list of unit ids or a rule"),
    ({**GOOD, "start_year": "2026"}, "'start_year' must be an integer year"),
    ({**GOOD, "end_year": 2020}, "'end_year' 2020 is before 'start_year' 2026"),
])
def test_bad_scenarios_get_one_clear_error(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(spec, where="scenario file s.json", default_id="s")
    assert message in str(info.value) and str(info.value).startswith("scenario file s.json")
    assert info.value.parameter == "scenario"


def test_files_folders_and_defaults(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", json.dumps({**GOOD, "description": "top three"}))
    _write(tmp_path, "b.toml", 'unit = "47900"\npartners = ["47170", "47210"]\nfactor = 1.5\nstart_year = 2027\n'
                               'end_year = 2029\nid = "pair"\n')
    _write(tmp_path, "notes.txt", "ignored")
    a, b = read_scenarios(tmp_path)
    assert (a.id, a.rule, a.factor, a.description) == ("a", "top3", 2.0, "top three")
    assert (b.id, b.partners, b.end_year, b.rule) == ("pair", ("47170", "47210"), 2029, None)
    (tmp_path / "x").mkdir()
    many = _write(tmp_path / "x", "many.json", json.dumps([GOOD, {**GOOD, "partners": "hub"}]))
    assert [s.id for s in read_scenarios(many)] == ["many_1", "many_2"]


def test_malformed_json_names_the_position(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '{"unit": "47900",\n "partners": top3}')
    with pytest.raises(ConfigError, match=r"bad.json: malformed JSON at line 2, column 14"):
        read_scenarios(path)
    with pytest.raises(ConfigError, match="no such file, folder or built-in name"):
        read_scenarios(tmp_path / "missing.json")


@pytest.mark.parametrize(("spec", "message"), [
    ({**GOOD, "unit": "99999"}, "unit '99999' is not a unit of dataset 'korea'"),
    ({**GOOD, "partners": ["47170", "00000"]}, "partner(s) 00000 are not units of dataset 'korea'"),
    ({**GOOD, "start_year": 2025}, "start_year 2025 is not after the forecast origin 2025"),
    ({**GOOD, "flow_kind": "contiguity"}, "flow kind 'contiguity' is time-invariant"),
    ({**GOOD, "flow_kind": "ferries"}, "flow kind 'ferries' is not in the dataset's flows"),
    ({**GOOD, "unit": "47170", "partners": "hub"}, "is itself a Nystuen–Dacey hub"),
])
def test_scenarios_checked_against_the_dataset(korea, spec: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        apply_scenario(korea, parse_scenario(spec, where="s", default_id="s"), ORIGIN)
    assert message in str(info.value)


def test_no_flows_before_a_past_origin_is_explained(korea) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no migration flows in or before the origin year 2019"):
        apply_scenario(korea, builtin_scenario("top3", YECHEON, 2019), 2019)


def test_cli_bad_scenario_exits_1_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "bad.json", json.dumps({**GOOD, "factor": 0}))
    status = main(["forecast", "--scenario", str(path), "--out", str(tmp_path / "out.csv"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1 and "'factor' must be a number > 0" in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()
    status = main(["forecast", "--scenario", "hub", "--out", str(tmp_path / "out.csv"), "--no-progress"])
    assert status == 1 and "needs the focal unit(s) in --units" in capsys.readouterr().err


def test_factor_multiplies_exactly_the_pair_flows(korea) -> None:  # type: ignore[no-untyped-def]
    applied = apply_scenario(korea, builtin_scenario("top3", YECHEON, ORIGIN), ORIGIN)
    key = ["origin", "destination", "year", "kind"]
    before = korea.flows.set_index(key)["value"].astype(float)
    after = applied.flows.set_index(key)["value"].astype(float).reindex(before.index)
    ratio = after / before
    o, d = before.index.get_level_values("origin"), before.index.get_level_values("destination")
    pair = ((o == YECHEON) & d.isin(applied.partners)) | ((d == YECHEON) & o.isin(applied.partners))
    pair &= before.index.get_level_values("kind") == "migration"
    assert pair.sum() == 2 * len(applied.partners)
    assert np.allclose(ratio[pair], 2.0) and np.allclose(ratio[~pair], 1.0)


def test_partner_rules(korea) -> None:  # type: ignore[no-untyped-def]
    mig = korea.flows[(korea.flows["kind"] == "migration") & (korea.flows["year"] == ORIGIN)]
    f = mig[(mig["origin"] == YECHEON) | (mig["destination"] == YECHEON)]
    other = np.where(f["origin"] == YECHEON, f["destination"], f["origin"])
    volume = pd.Series(f["value"].to_numpy(float), index=other).groupby(level=0).sum().sort_values(ascending=False)
    top3 = apply_scenario(korea, builtin_scenario("top3", YECHEON, ORIGIN), ORIGIN).partners
    assert list(top3) == list(volume.index[:3])
    contiguous = apply_scenario(korea, builtin_scenario("contiguous", YECHEON, ORIGIN), ORIGIN).partners
    c = korea.flows[(korea.flows["kind"] == "contiguity") & (korea.flows["origin"] == YECHEON)]
    assert set(contiguous) == set(c["destination"]) and "47170" in contiguous  # 안동시 borders 예천군
    pop = korea.panel[korea.panel["year"] == ORIGIN].set_index("unit_id")["population"]
    hub = unit_tie_measures(mig, korea.units, pop, gravity=False, regions=False, path_sources=0,
                            dominance_size="population").loc[YECHEON, "hub"]
    assert apply_scenario(korea, builtin_scenario("hub", YECHEON, ORIGIN), ORIGIN).partners == (hub,)
    region = apply_scenario(korea, builtin_scenario("region", YECHEON, ORIGIN), ORIGIN).partners
    assert YECHEON not in region and hub in region


def test_to_quantile_only_raises_weak_ties(korea) -> None:  # type: ignore[no-untyped-def]
    spec = {"unit": YECHEON, "partners": ["47170", "11680"], "to_quantile": 0.9, "start_year": 2026}
    applied = apply_scenario(korea, parse_scenario(spec, where="s", default_id="q"), ORIGIN)
    assert all(f >= 1.0 for f in applied.pair_factor.values())
    low = apply_scenario(korea, parse_scenario({**spec, "to_quantile": 0.01}, where="s", default_id="q"), ORIGIN)
    assert all(f == 1.0 for f in low.pair_factor.values())  # already above the 1st percentile


def test_state_recomputes_panel_measures_and_features(korea) -> None:  # type: ignore[no-untyped-def]
    applied = apply_scenario(korea, builtin_scenario("top3", YECHEON, ORIGIN), ORIGIN)
    panel, _ = scenario_state(korea, applied, ORIGIN)
    old = korea.panel[korea.panel["year"] == ORIGIN].set_index("unit_id")
    new = panel[panel["year"] == ORIGIN].set_index("unit_id")
    mig = korea.flows[(korea.flows["kind"] == "migration") & (korea.flows["year"] == ORIGIN)]
    extra_in = mig[(mig["destination"] == YECHEON) & mig["origin"].isin(applied.partners)]["value"].sum()
    assert new.loc[YECHEON, "in_strength"] == pytest.approx(old.loc[YECHEON, "in_strength"] + extra_in, rel=1e-9)
    untouched = [u for u in old.index if u not in (YECHEON, *applied.partners)]
    assert np.allclose(new.loc[untouched, "in_strength"], old.loc[untouched, "in_strength"], equal_nan=True)
    assert not np.allclose(new.loc[untouched, "pagerank"], old.loc[untouched, "pagerank"], equal_nan=True)
    assert panel[panel["year"] < ORIGIN].equals(korea.panel[korea.panel["year"] < ORIGIN])  # the past is kept
    # factor 1 changes nothing: the scenario path is the observed path
    same = apply_scenario(korea, Scenario("one", YECHEON, "top3", 2026, factor=1.0), ORIGIN)
    p1, f1 = scenario_state(korea, same, ORIGIN)
    a = build_features(korea, years=[ORIGIN]).frame
    b = build_features(korea, f1, panel=p1, years=[ORIGIN]).frame
    np.testing.assert_allclose(a.select_dtypes("number").to_numpy(float), b.select_dtypes("number").to_numpy(float),
                               rtol=1e-9, atol=1e-12, equal_nan=True)
    # and the one-year build equals that year of the full panel
    full = build_features(korea).frame
    full = full[full["year"] == ORIGIN].reset_index(drop=True)
    numeric = a.select_dtypes("number").columns
    np.testing.assert_array_equal(full[numeric].to_numpy(float), a[numeric].to_numpy(float))


def test_fast_strength_path_equals_the_full_recomputation(korea) -> None:  # type: ignore[no-untyped-def]
    applied = apply_scenario(korea, builtin_scenario("region", YECHEON, ORIGIN), ORIGIN)
    full, _ = scenario_state(korea, applied, ORIGIN)
    fast, _ = scenario_state(korea, applied, ORIGIN, only=("in_strength", "out_strength"))
    at = full["year"] == ORIGIN
    for col in ("in_strength", "out_strength"):
        np.testing.assert_allclose(fast.loc[at, col], full.loc[at, col], rtol=1e-12, equal_nan=True)
    assert fast.loc[at, "pagerank"].equals(korea.panel.loc[korea.panel["year"] == ORIGIN, "pagerank"])
