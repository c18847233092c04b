"""``tiecast data check`` and ``tiecast data info``, called in-process, plus the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tiecast.cli import main


def run(capsys, *argv: str) -> tuple[int, str]:
    """Exit status and everything printed (stdout + stderr) of ``tiecast ARGV``."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def assert_clean_failure(status: int, output: str) -> None:
    assert status == 1, output
    assert "Traceback" not in output, output


def test_check_korea_is_clean(capsys):
    status, out = run(capsys, "data", "check", "korea")
    assert status == 0, out
    assert "OK korea: 0 error(s)" in out
    assert "ERROR" not in out


def test_check_broken_folder_lists_every_error(capsys, make_dataset, minimal_tables):
    units = minimal_tables["units"] + "01020,Beta again\n"
    panel = minimal_tables["panel"].replace("01010,2019,1010", "01010,2019,lots")
    flows = minimal_tables["flows"].replace("origin,", "source,")
    folder = make_dataset(units=units, panel=panel, flows=flows)
    status, out = run(capsys, "data", "check", str(folder))
    assert_clean_failure(status, out)
    lines = out.splitlines()
    errors = [line for line in lines if line.startswith("ERROR ")]
    expected = [
        ("units.csv, line 3 (unit_id=01020), column 'unit_id'", "more than once"),
        ("units.csv, line 5 (unit_id=01020), column 'unit_id'", "more than once"),
        ("panel.csv, line 3 (unit_id=01010, year=2019), column 'population'", "'lots' is not a number"),
        ("flows.csv, column 'origin'", "required column is missing"),
    ]
    for where, what in expected:
        assert any(where in line and what in line for line in errors), f"{where}: {what} not in\n{out}"
    assert len(errors) == len(expected), out
    assert lines[-1].startswith("FAILED") and f"{len(expected)} error(s)" in lines[-1]


def test_check_warnings_only_exits_0(capsys, make_dataset, minimal_tables):
    panel = minimal_tables["panel"].replace("01020,2020,480", "01020,2020,900")  # unflagged jump
    status, out = run(capsys, "data", "check", str(make_dataset(panel=panel)))
    assert status == 0, out
    assert "WARNING panel.csv, line 7 (unit_id=01020, year=2020), column 'population'" in out
    assert "0 error(s), 2 warning(s)" in out  # the jump and the missing coordinates


def test_minimal_folder_works_in_check_and_info(capsys, make_dataset):
    folder = make_dataset()
    status, out = run(capsys, "data", "check", str(folder))
    assert status == 0, out
    status, out = run(capsys, "data", "info", str(folder))
    assert status == 0, out
    assert "toy" in out and "units: 3" in out and "years: 2018–2020" in out
    assert "population" in out and "migration" in out


def test_info_korea_prints_coverage_and_flows(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # rich otherwise assumes 80 columns when not on a terminal
    status, out = run(capsys, "data", "info", "korea")
    assert status == 0, out
    assert "units: 229" in out and "years: 2008–2025" in out and "targets: population, income" in out
    assert "panel coverage" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    for column in ("population", "income", "earners", "fiscal_indep", "boundary_break"):
        assert column in rows, f"coverage row for {column} missing:\n{out}"
    assert "2016–2023" in rows["income"] and "yes" in rows["income"]  # income years; a target
    assert "100.0" in rows["population"]
    for kind in ("migration", "trips", "contiguity"):
        assert kind in rows, f"flows row for {kind} missing:\n{out}"
    assert "2025" in rows["migration"] and "yes" in rows["contiguity"]  # year; time-invariant


def test_info_prints_user_text_literally(capsys, make_dataset):
    toml = 'name = "[/toy]"\ndescription = "[bold]not bold[/bold]"\ntargets = ["population"]\n'
    status, out = run(capsys, "data", "info", str(make_dataset(toml=toml)))
    assert status == 0, out
    assert "[/toy]" in out and "[bold]not bold[/bold]" in out


def test_info_default_is_korea(capsys):
    status, out = run(capsys, "data", "info")
    assert status == 0 and "units: 229" in out


# --------------------------------------------------------------------------------------------- bad input


def _garbage_units(make_dataset) -> Path:
    return make_dataset(units=bytes(range(256)) * 8)


def _empty_panel(make_dataset) -> Path:
    return make_dataset(panel="")


def _header_only_panel(make_dataset) -> Path:
    return make_dataset(panel="unit_id,year,population\n")


def _missing_folder(make_dataset) -> Path:
    return make_dataset().parent / "does-not-exist"


def _markup_ids(make_dataset) -> Path:
    # Text that rich would take for markup must be printed literally, not crash the printer.
    return make_dataset(units="unit_id,name\n[/x],[bold]A\n01020,B\n02010,C\n")


@pytest.mark.parametrize(("make_bad", "names"), [
    (_missing_folder, "does-not-exist"),
    (_garbage_units, "units.csv"),
    (_empty_panel, "panel.csv"),
    (_header_only_panel, "panel.csv"),
    (_markup_ids, "[/x]"),
], ids=["missing-folder", "garbage-units", "empty-panel", "header-only-panel", "markup-in-ids"])
@pytest.mark.parametrize("action", ["check", "info"])
def test_bad_input_fails_without_traceback(capsys, make_dataset, make_bad, names, action):
    folder = make_bad(make_dataset)
    status, out = run(capsys, "data", action, str(folder))
    assert_clean_failure(status, out)
    assert "ERROR" in out and names in out


def test_unknown_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "frobnicate", "korea"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- console script


def _console_script() -> str:
    beside_python = Path(sys.executable).parent / "tiecast"
    found = str(beside_python) if beside_python.exists() else shutil.which("tiecast")
    assert found, "the tiecast console script is not installed (pip install -e .)"
    return found


@pytest.mark.slow
def test_console_script_help():
    result = subprocess.run([_console_script(), "--help"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tiecast")
    assert "data" in result.stdout


@pytest.mark.slow
def test_console_script_reports_bad_folder_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([_console_script(), "data", "check", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=120, check=False, env=env)
    assert result.returncode == 1
    assert "no such dataset folder" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
