# Two commands: `make run` and `make test`. Both set everything up on a fresh
# Debian machine (system libraries when run as root, a virtual environment,
# pinned torch, the package with its extras), then do their job.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH_PIN := torch==2.13.0

.PHONY: run test lint bench wheel-check clean system-deps

run: system-deps $(STAMP)
	@bash scripts/run.sh

test: system-deps $(STAMP)
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts docs
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_simulate.py
	$(PY) benchmarks/bench_quantify.py

# build the wheel and use it from a fresh virtual environment (slow: installs torch etc.)
wheel-check: $(STAMP)
	bash scripts/check_wheel.sh

system-deps:
	@bash scripts/system-deps.sh

# torch goes in first and pinned: an unpinned torch pulled in by a dependency
# would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[all,testing,reference,formats,cluster]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
