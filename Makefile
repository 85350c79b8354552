# The two commands a new user types (README): `make run` and `make test`.
# Both bootstrap a local virtualenv from pyproject.toml; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The editable install is a tree of links to the sources (setuptools' strict mode, which mypy and
# every tool can read); a file added to or removed from a package folder needs a re-install, so
# the folders' own modification times are prerequisites.
PACKAGE_DIRS := $(shell find bench results analysis workloads -type d -not -name __pycache__)

.PHONY: run test lint type check clean system-deps lab

$(STAMP): pyproject.toml $(PACKAGE_DIRS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cetbench needs Python >= 3.11")'
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || { echo "cetbench: a C compiler (cc/gcc) is needed to build the workloads: install gcc"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	@touch $(STAMP)

# The main job: a quick suite on this host, stored in the default store, summary printed.
run: $(STAMP)
	$(BIN)/cetbench run --quick

# Everything the tests need that is not a Python package (perf, PostgreSQL, bochs, the emulated CET lab),
# then the tests.
system-deps:
	tools/install-system-deps

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q; rc=$$?; [ $$rc -eq 5 ] && echo "pytest collected no tests" && rc=0; exit $$rc

# The emulated CET lab (docs/lab.md): set up (cached), then every variant once on Debian's kernel under
# bochs `tigerlake`, with the CET state each read back and tracepoint counts per op, stored as a run.
lab: $(STAMP)
	tools/install-lab
	$(BIN)/cetbench lab

lint: $(STAMP)
	$(BIN)/ruff check bench workloads results analysis tests benchmarks

type: $(STAMP)
	$(BIN)/mypy

check: lint type test

clean:
	rm -rf $(VENV) .tox .pytest_cache .mypy_cache .ruff_cache
