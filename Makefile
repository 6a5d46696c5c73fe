# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aioedge demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check aioedge tests examples bench
	$(BIN)/ruff format --check aioedge tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict aioedge

check: test lint typecheck

# Quick smoke runs of every benchmark (full runs: see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	for b in overhead quota redis watch growth; do \
		$(BIN)/python bench/bench_$$b.py --quick --no-save || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
