"""The notebooks run top to bottom on the bundled data, through the public API only.

Each ``notebooks/NN_*.py`` (jupytext percent format, the committed form) is converted to a notebook and executed
by a real Jupyter kernel (nbclient + ipykernel) with ``notebooks/`` as the working directory; ``make notebooks``
writes the paired ``.ipynb`` files.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py"))
PRIVATE = re.compile(r"^\s*(from|import)\s+tiecast(\.\w+)*\._", re.M)


def test_there_are_notebooks_and_they_use_the_public_api_only() -> None:
    assert len(NOTEBOOKS) >= 4
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        assert "# %%" in text and "format_name: percent" in text, path.name
        assert not PRIVATE.search(text), f"{path.name} imports a private tiecast module"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    from nbclient import NotebookClient

    # the kernel is started as `python`: make it this environment's interpreter
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(path)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(outputs) >= 3  # the cells show something
    assert elapsed < 180 * 1.5, f"{path.name} took {elapsed:.0f} s (goal 3 minutes on 2 cores)"
