"""Shared fixtures.

- ``minimal_tables``: the CSV text of a small valid dataset (``toml``, ``units``, ``panel``, ``flows``) that
  uses only the contract's required keys and columns; tests copy it and break one thing.
- ``make_dataset``: writes a dataset folder into ``tmp_path`` and returns its path.
- ``korea``: the bundled dataset, loaded once per session. Treat it as read-only (copy frames before
  changing them).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

# The test run is an entry point like the CLI: LightGBM's OpenMP threads must not spin-wait (set before import).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tiecast.features import Dataset, load_dataset

# Three units over three years; ids have leading zeros on purpose (codes are text). Year-on-year changes
# stay well below the break-detection threshold, so the folder loads without errors or jump warnings.
MINIMAL_TABLES: dict[str, str] = {
    "toml": 'name = "toy"\ntargets = ["population"]\n',
    "units": "unit_id,name\n01010,Alpha\n01020,Beta\n02010,Gamma\n",
    "panel": (
        "unit_id,year,population\n"
        "01010,2018,1000\n01010,2019,1010\n01010,2020,1020\n"
        "01020,2018,500\n01020,2019,490\n01020,2020,480\n"
        "02010,2018,2000\n02010,2019,2050\n02010,2020,2100\n"
    ),
    "flows": (
        "origin,destination,year,kind,value\n"
        "01010,01020,2019,migration,12\n01020,01010,2019,migration,7\n"
        "01010,02010,2020,migration,3.5\n02010,01010,2020,migration,0\n"
    ),
}

# Columns that hold codes: read as text when a CSV text is converted to parquet.
_ID_COLUMNS = ("unit_id", "origin", "destination", "partner_id")

MakeDataset = Callable[..., Path]


@pytest.fixture
def minimal_tables() -> dict[str, str]:
    return dict(MINIMAL_TABLES)


@pytest.fixture
def make_dataset(tmp_path: Path) -> MakeDataset:
    """``make_dataset(toml=..., units=..., panel=..., flows=..., cooperation=..., suffix=..., encoding=...)``.

    Every table defaults to :data:`MINIMAL_TABLES` (``cooperation`` to absent). A value may be CSV text
    (written verbatim in ``encoding``), a DataFrame, raw ``bytes`` (written as is), or ``None`` to leave the
    file out (``toml=None`` leaves out ``dataset.toml``). ``suffix`` is ``.csv``, ``.csv.gz`` or ``.parquet``;
    for parquet, CSV text is parsed first (id columns as text, the rest with pandas' type inference).
    Each call writes a new folder.
    """
    counter = iter(range(1_000_000))

    def make(*, suffix: str = ".csv", encoding: str = "utf-8", **tables: str | bytes | pd.DataFrame | None) -> Path:
        unknown = set(tables) - {"toml", "units", "panel", "flows", "cooperation"}
        if unknown:
            raise TypeError(f"make_dataset: unknown tables {sorted(unknown)}")
        folder = tmp_path / f"dataset_{next(counter)}"
        folder.mkdir()
        content: dict[str, str | bytes | pd.DataFrame | None] = {**MINIMAL_TABLES, **tables}
        toml = content.pop("toml")
        if isinstance(toml, str):
            (folder / "dataset.toml").write_text(toml, encoding="utf-8")
        elif isinstance(toml, bytes):
            (folder / "dataset.toml").write_bytes(toml)
        for table, value in content.items():
            if value is None:
                continue
            path = folder / f"{table}{suffix}"
            if isinstance(value, bytes):
                path.write_bytes(value)
            elif suffix == ".parquet":
                frame = value if isinstance(value, pd.DataFrame) else pd.read_csv(
                    io.StringIO(value), dtype={c: str for c in _ID_COLUMNS})
                frame.to_parquet(path, index=False)
            elif isinstance(value, pd.DataFrame):
                value.to_csv(path, index=False, encoding=encoding)
            else:
                data = value.encode(encoding)
                path.write_bytes(gzip.compress(data, mtime=0) if suffix == ".csv.gz" else data)
        return folder

    return make


@pytest.fixture(scope="session")
def korea() -> Dataset:
    return load_dataset("korea")


@pytest.fixture(scope="session")
def build_korea() -> ModuleType:
    """``data/build_korea.py`` loaded as a module (it is a script, not part of the package)."""
    path = Path(__file__).resolve().parent.parent / "data" / "build_korea.py"
    spec = importlib.util.spec_from_file_location("build_korea", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
