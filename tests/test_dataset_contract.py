"""The dataset contract: every kind of bad input is reported precisely, and all problems at once.

Each bad-input test breaks a copy of the minimal valid folder (``make_dataset`` in conftest.py) and checks
that ``check_dataset`` reports the exact problem (severity, file, line and key, column) and that
``load_dataset`` raises one ``DatasetError`` that lists the same problems, every one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import pytest

from tiecast.features import DatasetError, Problem, check_dataset, load_dataset
from tiecast.features._dataset import MAX_ROWS_LISTED


@dataclass(frozen=True)
class Expect:
    """What a reported problem must look like; ``None`` fields are not checked."""

    file: str
    column: str | None = None
    line: int | None = None  # file line (header = 1)
    key: dict[str, str] = field(default_factory=dict)  # key=value pairs the row label must show
    message: str = ""  # substring of the message (case-insensitive)
    severity: str = "error"

    def matches(self, p: Problem) -> bool:
        if (p.severity, p.file) != (self.severity, self.file):
            return False
        if self.column is not None and p.column != self.column:
            return False
        if self.line is not None and not (p.row == f"line {self.line}" or
                                          (p.row or "").startswith(f"line {self.line} (")):
            return False
        if any(f"{k}={v}" not in (p.row or "") for k, v in self.key.items()):
            return False
        return self.message.lower() in p.message.lower()


def _listing(problems: list[Problem]) -> str:
    return "\n".join(f"  {p}" for p in problems) or "  (none)"


def assert_reported(folder, *expected: Expect) -> list[Problem]:
    """Each expected problem is in check_dataset() and in the DatasetError that load_dataset() raises."""
    problems = check_dataset(folder)
    for exp in expected:
        assert any(exp.matches(p) for p in problems), f"{exp} not reported; got:\n{_listing(problems)}"
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    err = info.value
    assert err.problems == problems, "load_dataset and check_dataset disagree"
    message = str(err)
    for exp in expected:
        for p in (p for p in err.problems if exp.matches(p)):
            assert str(p) in message, f"{p} missing from the DatasetError message:\n{message}"
    assert f"{len(err.errors)} error(s)" in message
    return problems


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# --------------------------------------------------------------------------------------------- valid input


def test_minimal_folder_with_only_required_keys_loads(make_dataset, minimal_tables):
    folder = make_dataset()
    problems = check_dataset(folder)
    assert errors_of(problems) == []
    # The only remark on the minimal folder: no coordinates (distance features are skipped).
    assert [(p.severity, p.file, p.column) for p in problems] == [("warning", "units.csv", "lat")]

    ds = load_dataset(folder)
    assert ds.name == "toy"
    assert ds.targets == ["population"] and ds.primary_target == "population"
    assert ds.years == (2018, 2020)  # undeclared: the panel's span
    assert ds.break_column is None and ds.time_invariant_kinds == []
    assert ds.path == folder and len(ds.fingerprint) == 16
    assert ds.warnings == [p for p in problems if p.severity == "warning"]
    assert ds.units["unit_id"].tolist() == ["01010", "01020", "02010"]
    assert ds.units["small_mid_city"].tolist() == [0, 0, 0]  # rule columns absent: nothing flagged
    assert len(ds.panel) == 9 and ds.panel["year"].dtype.kind == "i"
    assert ds.panel.set_index(["unit_id", "year"]).loc[("02010", 2019), "population"] == 2050
    assert ds.flows["value"].tolist() == [12.0, 7.0, 3.5, 0.0]
    assert ds.cooperation.empty and {"unit_id", "program", "start_year"} <= set(ds.cooperation.columns)
    assert ds.unit_names()["01020"] == "Beta"


def test_fingerprint_changes_with_content(make_dataset, minimal_tables):
    same_a = load_dataset(make_dataset()).fingerprint
    same_b = load_dataset(make_dataset()).fingerprint
    changed = load_dataset(make_dataset(flows=minimal_tables["flows"].replace(",12\n", ",13\n"))).fingerprint
    assert same_a == same_b != changed


def test_optional_keys_and_cooperation_are_used(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + (
        'years = [2015, 2022]\nprimary_target = "population"\n'
        '[flows]\ntime_invariant = ["contiguity"]\n'
        '[columns.population]\nunit = "persons"\ngroup = "demography"\n'
    )
    coop = "unit_id,program,start_year,partner_id,end_year\n01010,bus,2019,01020,2020\n02010,fair,2018,,\n"
    ds = load_dataset(make_dataset(toml=toml, cooperation=coop))
    assert ds.years == (2015, 2022)
    assert ds.time_invariant_kinds == ["contiguity"]
    assert ds.column_info("population") == {"unit": "persons", "group": "demography"}
    assert ds.cooperation["partner_id"].tolist() == ["01020", ""]
    assert ds.cooperation["end_year"].isna().tolist() == [False, True]


# --------------------------------------------------------------------------------------------- dataset.toml


def test_missing_dataset_toml(make_dataset):
    assert_reported(make_dataset(toml=None), Expect("dataset.toml", message="file is missing"))


def test_toml_syntax_error(make_dataset):
    problems = assert_reported(
        make_dataset(toml='name = "toy"\ntargets = ["population"\n'), Expect("dataset.toml", message="not valid TOML")
    )
    assert len(errors_of(problems)) == 1


@pytest.mark.parametrize(("toml", "key"), [
    ('targets = ["population"]\n', "name"),
    ('name = "toy"\n', "targets"),
    ('name = "toy"\ntargets = []\n', "targets"),
    ('name = "toy"\ntargets = "population"\n', "targets"),
    ('name = 3\ntargets = ["population"]\n', "name"),
])
def test_missing_or_malformed_required_key(make_dataset, toml, key):
    problems = assert_reported(make_dataset(toml=toml), Expect("dataset.toml", column=key, message=f"'{key}'"))
    # One problem, not one per character of a string given where a list belongs.
    assert len(errors_of(problems)) == 1, _listing(problems)


def test_target_not_in_panel(make_dataset):
    toml = 'name = "toy"\ntargets = ["population", "income"]\n'
    assert_reported(make_dataset(toml=toml), Expect("panel.csv", column="income", message="target column"))


@pytest.mark.parametrize(("extra", "column"), [
    ("years = [2020, 2010]\n", "years"),
    ('years = ["a", "b"]\n', "years"),
    ("breaks = 1\n", "breaks"),
    ('small_mid_city = "yes"\n', "small_mid_city"),
    ('[breaks]\ncolumn = "population"\nreviewed = "01010@2019"\n', "breaks.reviewed"),
    ('[breaks]\ncolumn = "flag"\n', "breaks.column"),
])
def test_malformed_optional_key(make_dataset, minimal_tables, extra, column):
    assert_reported(make_dataset(toml=minimal_tables["toml"] + extra), Expect("dataset.toml", column=column))


def test_unusable_small_mid_rule(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + '[small_mid_city]\nrule = "no_such_column > 1"\n'
    assert_reported(make_dataset(toml=toml), Expect("dataset.toml", column="small_mid_city.rule"))


# --------------------------------------------------------------------------------------------- files and columns


@pytest.mark.parametrize("table", ["units", "panel", "flows"])
def test_missing_table_file(make_dataset, table):
    problems = assert_reported(make_dataset(**{table: None}), Expect(f"{table}.csv", message="file is missing"))
    # A missing units file must not make every id elsewhere look unknown.
    assert len(errors_of(problems)) == 1, _listing(problems)


def test_all_table_files_missing(make_dataset):
    assert_reported(
        make_dataset(units=None, panel=None, flows=None),
        *(Expect(f"{t}.csv", message="file is missing") for t in ("units", "panel", "flows")),
    )


@pytest.mark.parametrize(("table", "text", "column"), [
    ("units", "unit_id,label\n01010,A\n01020,B\n02010,C\n", "name"),
    ("panel", "unit_id,population\n01010,1000\n", "year"),
    ("flows", "origin,destination,year,value\n01010,01020,2019,1\n", "kind"),
    ("cooperation", "unit_id,start_year\n01010,2019\n", "program"),
])
def test_missing_required_column(make_dataset, table, text, column):
    assert_reported(make_dataset(**{table: text}), Expect(f"{table}.csv", column=column, message="required column"))


@pytest.mark.parametrize(("table", "text", "column"), [
    ("panel", "unit_id,year,population,population\n01010,2019,1,2\n", "population"),
    ("flows", "origin,destination,year,kind,value,value\n01010,01020,2019,migration,1,2\n", "value"),
    ("units", "unit_id,name,unit_id\n01010,A,01010\n01020,B,01020\n02010,C,02010\n", "unit_id"),
])
def test_duplicated_column(make_dataset, table, text, column):
    assert_reported(make_dataset(**{table: text}), Expect(f"{table}.csv", column=column, message="more than once"))


def test_unknown_column_is_a_warning(make_dataset, minimal_tables):
    units = "unit_id,name,colour\n01010,A,red\n01020,B,blue\n02010,C,green\n"
    problems = check_dataset(make_dataset(units=units))
    assert errors_of(problems) == []
    assert any(Expect("units.csv", column="colour", severity="warning").matches(p) for p in problems)


def test_header_only_panel(make_dataset):
    assert_reported(make_dataset(panel="unit_id,year,population\n"), Expect("panel.csv", message="no data rows"))


def test_empty_file(make_dataset):
    assert_reported(make_dataset(panel=""), Expect("panel.csv", message="cannot be read"))


def test_row_with_more_fields_than_header(make_dataset):
    # pandas would silently take the first column as the index and shift every value by one column.
    assert_reported(make_dataset(units="unit_id,name\n01010,A,x\n01020,B,y\n02010,C,z\n"),
                    Expect("units.csv", message="cannot be read"))


def test_binary_garbage_is_reported_without_cascade(make_dataset):
    problems = assert_reported(make_dataset(units=b"unit_id,name\n01010,\xff\xfe\xff\n"),
                               Expect("units.csv", message="neither UTF-8 nor CP949"))
    assert len(errors_of(problems)) == 1, _listing(problems)


# --------------------------------------------------------------------------------------------- cell values


def test_text_in_numeric_column(make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01010,2019,1010", "01010,2019,many")
    flows = minimal_tables["flows"].replace("01020,01010,2019,migration,7", "01020,01010,2019,migration,lots")
    units = "unit_id,name,lat,lon\n01010,A,37.5,north\n01020,B,37.6,127.1\n02010,C,36.1,127.2\n"
    assert_reported(
        make_dataset(panel=panel, flows=flows, units=units),
        Expect("panel.csv", column="population", line=3, key={"unit_id": "01010", "year": "2019"}, message="'many'"),
        Expect("flows.csv", column="value", line=3, key={"origin": "01020", "destination": "01010"},
               message="'lots' is not a number"),
        Expect("units.csv", column="lon", line=2, key={"unit_id": "01010"}, message="'north'"),
    )


def test_fractional_and_text_year(make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01020,2019,490", "01020,2019.5,490").replace(
        "02010,2020,2100", "02010,twenty,2100")
    coop = "unit_id,program,start_year\n01010,bus,2018.25\n"
    assert_reported(
        make_dataset(panel=panel, cooperation=coop),
        Expect("panel.csv", column="year", line=6, key={"unit_id": "01020"}, message="not a whole year"),
        Expect("panel.csv", column="year", line=10, key={"unit_id": "02010"}, message="'twenty' is not an integer"),
        Expect("cooperation.csv", column="start_year", line=2, key={"unit_id": "01010"}, message="whole year"),
    )


def test_empty_year(make_dataset, minimal_tables):
    flows = minimal_tables["flows"].replace("01010,02010,2020,", "01010,02010,,")
    assert_reported(make_dataset(flows=flows),
                    Expect("flows.csv", column="year", line=4, key={"origin": "01010", "destination": "02010"},
                           message="empty year"))


def test_empty_id(make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01020,2018,500", ",2018,500")
    assert_reported(make_dataset(panel=panel), Expect("panel.csv", column="unit_id", line=5, message="empty id"))


def test_duplicate_unit_year(make_dataset, minimal_tables):
    panel = minimal_tables["panel"] + "01020,2019,495\n"
    problems = assert_reported(
        make_dataset(panel=panel),
        Expect("panel.csv", column="year", line=6, key={"unit_id": "01020", "year": "2019"}, message="duplicate"),
        Expect("panel.csv", column="year", line=11, key={"unit_id": "01020", "year": "2019"}, message="duplicate"),
    )
    assert len(errors_of(problems)) == 2, _listing(problems)


def test_duplicate_unit_id(make_dataset, minimal_tables):
    units = minimal_tables["units"] + "01020,Beta again\n"
    assert_reported(
        make_dataset(units=units),
        Expect("units.csv", column="unit_id", line=3, key={"unit_id": "01020"}, message="more than once"),
        Expect("units.csv", column="unit_id", line=5, key={"unit_id": "01020"}, message="more than once"),
    )


def test_duplicate_flow(make_dataset, minimal_tables):
    flows = minimal_tables["flows"] + "01010,01020,2019,migration,1\n"
    assert_reported(make_dataset(flows=flows),
                    Expect("flows.csv", column="value", line=6, key={"origin": "01010"}, message="duplicate"))


def test_unknown_unit_ids_everywhere(make_dataset, minimal_tables):
    panel = minimal_tables["panel"] + "09999,2019,100\n"
    flows = minimal_tables["flows"] + "08888,01010,2019,migration,1\n01010,1020,2019,migration,1\n"
    coop = "unit_id,program,start_year,partner_id\n07777,bus,2019,01010\n01010,bus,2019,06666\n02010,fair,2019,\n"
    assert_reported(
        make_dataset(panel=panel, flows=flows, cooperation=coop),
        Expect("panel.csv", column="unit_id", line=11, key={"unit_id": "09999"}, message="'09999' is not in units"),
        Expect("flows.csv", column="origin", line=6, key={"origin": "08888"}, message="'08888' is not in units"),
        # Leading zero lost (as a spreadsheet does): reported, not matched to 01020.
        Expect("flows.csv", column="destination", line=7, key={"destination": "1020"}, message="'1020'"),
        Expect("cooperation.csv", column="unit_id", line=2, key={"unit_id": "07777"}, message="'07777'"),
        Expect("cooperation.csv", column="partner_id", line=3, key={"unit_id": "01010"}, message="'06666'"),
    )


def test_cooperation_partner_is_self(make_dataset):
    coop = "unit_id,program,start_year,partner_id\n01010,bus,2019,01010\n"
    assert_reported(make_dataset(cooperation=coop),
                    Expect("cooperation.csv", column="partner_id", line=2, message="itself"))


def test_negative_and_non_finite_flows(make_dataset, minimal_tables):
    flows = (minimal_tables["flows"] + "01020,02010,2019,migration,-3\n02010,01020,2019,migration,inf\n"
             "01020,02010,2020,migration,\n")
    problems = assert_reported(
        make_dataset(flows=flows),
        Expect("flows.csv", column="value", line=6, key={"origin": "01020", "destination": "02010"},
               message="negative flow -3"),
        Expect("flows.csv", column="value", line=7, key={"origin": "02010"}, message="not finite"),
        Expect("flows.csv", column="value", line=8, key={"origin": "01020", "year": "2020"}, message="missing"),
    )
    assert len(errors_of(problems)) == 3, _listing(problems)


def test_flow_without_kind(make_dataset, minimal_tables):
    flows = minimal_tables["flows"] + "01020,02010,2019,,4\n"
    assert_reported(make_dataset(flows=flows), Expect("flows.csv", column="kind", line=6, message="empty flow kind"))


@pytest.mark.parametrize(("value", "message"), [("0", "not positive"), ("-5", "not positive"),
                                                ("inf", "not finite")])
def test_bad_target_value(make_dataset, minimal_tables, value, message):
    panel = minimal_tables["panel"].replace("01020,2020,480", f"01020,2020,{value}")
    assert_reported(make_dataset(panel=panel), Expect("panel.csv", column="population", line=7,
                                                      key={"unit_id": "01020", "year": "2020"}, message=message))


def test_empty_target_cell_is_allowed(make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01020,2020,480", "01020,2020,")
    ds = load_dataset(make_dataset(panel=panel))
    assert math.isnan(ds.panel.set_index(["unit_id", "year"]).loc[("01020", 2020), "population"])


def test_years_outside_declared_range(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + "years = [2018, 2019]\n"
    coop = "unit_id,program,start_year\n01010,bus,2017\n"
    problems = assert_reported(
        make_dataset(toml=toml, cooperation=coop),
        *(Expect("panel.csv", column="year", line=line, key={"unit_id": unit, "year": "2020"}, message="outside")
          for line, unit in ((4, "01010"), (7, "01020"), (10, "02010"))),
        *(Expect("flows.csv", column="year", line=line, key={"year": "2020"}, message="2018–2019")
          for line in (4, 5)),
        Expect("cooperation.csv", column="start_year", line=2, message="outside"),
    )
    assert len(errors_of(problems)) == 6, _listing(problems)


def test_cooperation_end_before_start(make_dataset):
    coop = "unit_id,program,start_year,end_year\n01010,bus,2019,2018\n01020,fair,2018,2018\n"
    problems = assert_reported(
        make_dataset(cooperation=coop),
        Expect("cooperation.csv", column="end_year", line=2, key={"unit_id": "01010", "program": "bus"},
               message="before start_year"),
    )
    assert len(errors_of(problems)) == 1, _listing(problems)  # end == start is fine


@pytest.mark.parametrize(("lat", "lon", "column"), [("91", "127", "lat"), ("-90.5", "127", "lat"),
                                                    ("37", "181", "lon")])
def test_coordinates_out_of_range(make_dataset, lat, lon, column):
    units = f"unit_id,name,lat,lon\n01010,A,37.5,127.0\n01020,B,{lat},{lon}\n02010,C,36.1,127.2\n"
    assert_reported(make_dataset(units=units),
                    Expect("units.csv", column=column, line=3, key={"unit_id": "01020"}, message="outside"))


# --------------------------------------------------------------------------------------------- breaks


def _jumpy_panel(minimal_tables: dict[str, str], flag: bool = False) -> str:
    """01020 jumps from 490 to 900 in 2020 (+84%), like a merger; optionally flagged in a break column."""
    lines = minimal_tables["panel"].replace("01020,2020,480", "01020,2020,900").splitlines()
    lines[0] += ",boundary_break"
    return "\n".join([lines[0], *(f"{row},{int(flag and row.startswith('01020,2020'))}" for row in lines[1:])]) + "\n"


def test_unflagged_jump_is_a_warning(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + '[breaks]\ncolumn = "boundary_break"\n'
    folder = make_dataset(toml=toml, panel=_jumpy_panel(minimal_tables))
    problems = check_dataset(folder)
    assert errors_of(problems) == []
    jump = Expect("panel.csv", column="population", line=7, key={"unit_id": "01020", "year": "2020"},
                  message="jumps", severity="warning")
    assert [p for p in problems if p.file == "panel.csv"] == [p for p in problems if jump.matches(p)]
    assert len([p for p in problems if jump.matches(p)]) == 1
    ds = load_dataset(folder)  # a warning does not stop loading
    assert any(jump.matches(w) for w in ds.warnings)


def test_jump_without_break_column_is_a_warning(make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01020,2020,480", "01020,2020,900")
    problems = check_dataset(make_dataset(panel=panel))
    assert errors_of(problems) == []
    assert any(Expect("panel.csv", column="population", line=7, message="jumps", severity="warning").matches(p)
               for p in problems)


def test_flagged_jump_is_not_a_warning(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + '[breaks]\ncolumn = "boundary_break"\n'
    ds = load_dataset(make_dataset(toml=toml, panel=_jumpy_panel(minimal_tables, flag=True)))
    assert ds.break_column == "boundary_break"
    assert not [w for w in ds.warnings if "jumps" in w.message], _listing(ds.warnings)


def test_reviewed_jump_is_not_a_warning(make_dataset, minimal_tables):
    toml = minimal_tables["toml"] + '[breaks]\ncolumn = "boundary_break"\nreviewed = ["01020@2020"]\n'
    ds = load_dataset(make_dataset(toml=toml, panel=_jumpy_panel(minimal_tables)))
    assert not [w for w in ds.warnings if "jumps" in w.message], _listing(ds.warnings)
    # Reviewing a different unit-year does not silence this one.
    toml_other = toml.replace("01020@2020", "01020@2019")
    ds_other = load_dataset(make_dataset(toml=toml_other, panel=_jumpy_panel(minimal_tables)))
    assert [w for w in ds_other.warnings if "jumps" in w.message]


# --------------------------------------------------------------------------------------------- all at once


def test_several_problems_are_all_listed(make_dataset, minimal_tables):
    panel = (minimal_tables["panel"].replace("01010,2019,1010", "01010,2019,x")
             .replace("02010,2020,2100", "02010,2020,-1") + "03030,2019,5\n")
    flows = minimal_tables["flows"].replace(",12\n", ",-12\n")
    problems = assert_reported(
        make_dataset(toml='targets = ["population"]\n', units=minimal_tables["units"] + "01010,Dup\n",
                     panel=panel, flows=flows),
        Expect("dataset.toml", column="name"),
        Expect("units.csv", column="unit_id", line=2),
        Expect("units.csv", column="unit_id", line=5),
        Expect("panel.csv", column="population", line=3, message="'x'"),
        Expect("panel.csv", column="population", line=10, message="not positive"),
        Expect("panel.csv", column="unit_id", line=11, message="'03030'"),
        Expect("flows.csv", column="value", line=2, message="negative"),
    )
    assert len(errors_of(problems)) == 7, _listing(problems)


def test_many_bad_rows_are_capped_and_counted(make_dataset, minimal_tables):
    extra = MAX_ROWS_LISTED + 5
    flows = minimal_tables["flows"] + "".join(f"01010,01020,{1900 + i},migration,-1\n" for i in range(extra))
    problems = assert_reported(make_dataset(flows=flows), Expect("flows.csv", column="value", message="negative"))
    negative = [p for p in problems if "negative" in p.message]
    assert len(negative) == MAX_ROWS_LISTED
    more = [p for p in problems if p.file == "flows.csv" and p.column == "value" and "more rows" in p.message]
    assert len(more) == 1 and f"and {extra - MAX_ROWS_LISTED} more" in more[0].message


def test_problem_text_names_file_row_and_column():
    p = Problem("error", "panel.csv", "bad", row="line 3 (unit_id=01)", column="year", fix="do this")
    assert str(p) == "ERROR panel.csv, line 3 (unit_id=01), column 'year': bad -> do this"
    assert str(Problem("warning", "units.csv", "odd")) == "WARNING units.csv: odd"


def test_missing_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "nope")
    assert "no such dataset folder" in str(info.value)
    with pytest.raises(DatasetError):
        check_dataset(str(tmp_path / "nope"))


# --------------------------------------------------------------------------------------------- formats, encodings


def _frames(folder) -> dict[str, pd.DataFrame]:
    ds = load_dataset(folder)
    return {"units": ds.units, "panel": ds.panel, "flows": ds.flows, "cooperation": ds.cooperation}


def test_parquet_loads_identically_to_csv(make_dataset, minimal_tables):
    coop = "unit_id,program,start_year,partner_id,end_year\n01010,bus,2019,01020,2020\n"
    units = "unit_id,name,lat,lon\n01010,A,37.5,127.0\n01020,B,37.6,127.1\n02010,C,36.1,127.2\n"
    from_csv = _frames(make_dataset(cooperation=coop, units=units))
    parquet = make_dataset(cooperation=coop, units=units, suffix=".parquet")
    assert sorted(p.name for p in parquet.iterdir()) == [
        "cooperation.parquet", "dataset.toml", "flows.parquet", "panel.parquet", "units.parquet"]
    from_parquet = _frames(parquet)
    for table, frame in from_csv.items():
        pd.testing.assert_frame_equal(from_parquet[table], frame, obj=table)
    assert from_parquet["units"]["unit_id"].tolist() == ["01010", "01020", "02010"]


def test_parquet_problems_are_reported(make_dataset):
    flows = pd.DataFrame({"origin": ["01010"], "destination": ["09999"], "year": [2019], "kind": ["migration"],
                          "value": [-1.0]})
    assert_reported(make_dataset(suffix=".parquet", flows=flows),
                    Expect("flows.parquet", column="destination", line=2, message="'09999'"),
                    Expect("flows.parquet", column="value", line=2, message="negative"))


def test_csv_gz_loads_identically_to_csv(make_dataset):
    folder = make_dataset(suffix=".csv.gz")
    assert (folder / "panel.csv.gz").read_bytes()[:2] == b"\x1f\x8b"  # really gzip
    gz, plain = _frames(folder), _frames(make_dataset())
    for table, frame in plain.items():
        pd.testing.assert_frame_equal(gz[table], frame, obj=table)
    problems = check_dataset(make_dataset(suffix=".csv.gz", units="unit_id,name\n01010,A\n01010,B\n02010,C\n"))
    assert any(Expect("units.csv.gz", column="unit_id", line=3).matches(p) for p in problems)


def test_leading_zeros_stay_in_ids(make_dataset):
    units = "unit_id,name\n01010,A\n00123,B\n02010,C\n"
    panel = "unit_id,year,population\n01010,2019,1\n00123,2019,2\n02010,2019,3\n"
    flows = "origin,destination,year,kind,value\n00123,01010,2019,migration,1\n"
    ds = load_dataset(make_dataset(units=units, panel=panel, flows=flows))
    assert ds.units["unit_id"].tolist() == ["01010", "00123", "02010"]
    assert set(ds.panel["unit_id"]) == {"01010", "00123", "02010"}
    assert ds.flows.loc[0, ["origin", "destination"]].tolist() == ["00123", "01010"]
    assert all(isinstance(v, str) for v in ds.panel["unit_id"])


HANGUL_UNITS = "unit_id,name\n11110,종로구\n51150,강릉시\n50130,서귀포시\n"
HANGUL_PANEL = "unit_id,year,population\n11110,2020,140000\n51150,2020,210000\n50130,2020,180000\n"
HANGUL_FLOWS = "origin,destination,year,kind,value\n11110,51150,2020,migration,30\n"


@pytest.mark.parametrize("encoding", ["cp949", "euc-kr", "utf-8-sig", "utf-8"])
def test_korean_encodings(make_dataset, encoding):
    folder = make_dataset(units=HANGUL_UNITS, panel=HANGUL_PANEL, flows=HANGUL_FLOWS, encoding=encoding)
    raw = (folder / "units.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    if encoding in ("cp949", "euc-kr"):
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # the file really is not UTF-8
    ds = load_dataset(folder)
    assert ds.unit_names().to_dict() == {"11110": "종로구", "51150": "강릉시", "50130": "서귀포시"}
    assert ds.units.columns[0] == "unit_id"  # no BOM glued to the first column name


def test_cp949_extended_hangul(make_dataset):
    # 똠 and 햏 are not among the 2,350 KS X 1001 syllables: CP949 gives them its own two-byte codes.
    units = "unit_id,name\n11110,똠양구\n51150,햏시\n50130,서귀포시\n"
    assert units.encode("cp949") != units.encode("euc-kr")
    ds = load_dataset(make_dataset(units=units, panel=HANGUL_PANEL, flows=HANGUL_FLOWS, encoding="cp949"))
    assert ds.unit_names()["11110"] == "똠양구" and ds.unit_names()["51150"] == "햏시"


def test_cells_are_trimmed(make_dataset):
    units = "unit_id , name\n 01010 ,A\n01020, B \n02010,C\n"
    ds = load_dataset(make_dataset(units=units))
    assert ds.units["unit_id"].tolist() == ["01010", "01020", "02010"]
    assert ds.unit_names()["01020"] == "B"


@pytest.mark.parametrize(
    ("toml_extra", "column"),
    [('[columns]\npopulation = "persons"\n', "columns.population"),
     ('[flows]\ntime_invariant = "contiguity"\n', "flows.time_invariant")],
)
def test_malformed_nested_toml_values_are_reported_not_crashing(make_dataset, minimal_tables, toml_extra, column):
    folder = make_dataset(toml=minimal_tables["toml"] + toml_extra)
    problems = check_dataset(folder)
    assert [p.column for p in problems if p.severity == "error"] == [column]
