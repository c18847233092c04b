# Quick start: `make demo` runs the main job on the bundled data, `make test` runs the test suite.
# Both create the virtual environment on first use (Python 3.11+ as `python3`, or PYTHON=...).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tiecast-installed
# LightGBM's OpenMP threads spin-wait by default and stall when another process holds a core.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test lint data bench notebooks clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c requirements.lock -e ".[dev,scale]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tiecast demo

# Both cores, tests shared one by one (--dist load). Tests on a fresh clone, measured: load 675 s, loadgroup
# 802 s, loadfile 883 s (each file on one worker builds its module fixtures once, but the notebooks then run
# one after another at the end). (xdist_group marks with --dist loadgroup do not group under pytest 9 with
# xdist 3.8: the suffix xdist writes to item._nodeid is no longer part of the nodeid.)
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist load --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check tiecast features training serving tests benchmarks data
	$(VENV)/bin/mypy

# Rebuild the bundled dataset data/korea/ from the raw files in data/raw/korea/.
data: $(STAMP)
	$(PY) data/build_korea.py

# The paired .ipynb files of notebooks/*.py (jupytext percent format; the .py files are what is committed).
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --to ipynb notebooks/[0-9][0-9]_*.py

bench: $(STAMP)
	$(PY) benchmarks/features_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
