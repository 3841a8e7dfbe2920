# The two set-up commands: `make demo` and `make test` (each creates .venv and installs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench docs jax-range clean

$(BIN)/pcn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[experiments,dev,docs]"
	@touch $@

demo: $(BIN)/pcn
	$(BIN)/pcn demo

lint: $(BIN)/pcn
	$(BIN)/ruff check src tests docs
	$(BIN)/ruff format --check src tests docs
	$(BIN)/pyright

# two workers: most tests wait on single-threaded XLA compiles; loadscope keeps a module's
# fixtures in one worker
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

# the site into site/: tutorials executed, warnings are errors (mkdocs.yml: strict)
docs: $(BIN)/pcn
	MPLBACKEND=Agg $(BIN)/mkdocs build --strict --site-dir site

# the wheel with the oldest and the newest jax pyproject.toml allows, each in a fresh venv
jax-range: $(BIN)/pcn
	$(BIN)/python tests/jax_range.py

bench: $(BIN)/pcn
	$(BIN)/pcn bench train-step --against-pcx

clean:
	rm -rf $(VENV) runs .pytest_cache site
