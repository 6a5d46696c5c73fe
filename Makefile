# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment on first use. `make demo` installs only the package
# (its runtime dependencies); `make test` and the other targets add the `dev` extra (pytest,
# ruff, mypy, mkdocs, ...). Each has its own stamp, so `make demo` never waits for the tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

# The dev extra includes the package itself, so it also counts as the runtime install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/aioedge demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check aioedge tests examples bench
	$(BIN)/ruff format --check aioedge tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict aioedge

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

check: test lint typecheck

# Quick smoke runs of every benchmark (full runs: see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	for b in overhead quota redis watch growth rollout; do \
		$(BIN)/python bench/bench_$$b.py --quick --no-save || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
