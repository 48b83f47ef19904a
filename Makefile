# The two set-up commands of the README:
#   make run   - install (into .venv) and start the app (it opens on the bundled I-SPY 1 cohort)
#   make test  - install (into .venv) and run ruff and the whole test suite (what CI runs)
# Also: make serve - the production launch: HAProxy + one Streamlit worker per core
# (deploy/README.md). Installs come from requirements.lock (every package pinned, with hashes),
# so that they are reproducible; `make lock` refreshes it from requirements-dev.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT    ?= 8501
WORKERS ?=
export NUMPY_MADVISE_HUGEPAGE := 0
export MALLOC_MMAP_THRESHOLD_ := 1048576
export MALLOC_TRIM_THRESHOLD_ := 33554432
export ARROW_DEFAULT_MEMORY_POOL := system

.PHONY: run dev serve test test-lowest test-latest lock lint bench bench-smoke bench-app loadtest soak \
	monkey screenshots clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	touch $(STAMP)

# The same launcher as the installed `her2er-explorer` command, run from the clone.
run: $(STAMP)
	$(BIN)/python -m her2er_dash.cli

# For editing the code: as `make run`, and the app re-runs when a source file changes.
dev: $(STAMP)
	$(BIN)/python -m her2er_dash.cli --watch --server.runOnSave true

# Foreground; Ctrl-C stops HAProxy and every worker. WORKERS defaults to one per core.
serve: $(STAMP)
	$(BIN)/python -m deploy.serve --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/test.sh

# The suite at the lowest versions the requirement ranges allow, and at the newest released
# today (each in its own venv; browser tests run once, in `make test`).
test-lowest: $(STAMP)
	bash scripts/test_versions.sh lowest

test-latest: $(STAMP)
	bash scripts/test_versions.sh latest

lock:
	test -x $(BIN)/uv || ($(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet uv)
	$(BIN)/uv pip compile requirements-dev.txt --python-version 3.11 --generate-hashes \
		--quiet --output-file requirements.lock

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks.run --sizes 2000 --repeats 1 --skip-app --out benchmarks/results/smoke.json

bench-app: $(STAMP)
	$(BIN)/python -m benchmarks.app_pages --n 1000000

# make serve (2 workers) and one plain streamlit run, N = 1, 10, 30, 60 protocol-level sessions.
loadtest: $(STAMP)
	$(BIN)/python -m benchmarks.loadtest

# One hour, memory with and without Streamlit's post-run garbage collection.
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --minutes 60

# The randomised browser test with the long walk (the default suite runs 40 actions).
MONKEY_ACTIONS ?= 200
MONKEY_SEED ?= 16
monkey: $(STAMP)
	HER2ER_MONKEY_ACTIONS=$(MONKEY_ACTIONS) HER2ER_MONKEY_SEED=$(MONKEY_SEED) \
		$(BIN)/python -m pytest tests/test_browser_monkey.py -q -s -p no:cacheprovider

# Every page at three screen sizes into test-artifacts/screenshots/, then the README's pictures.
screenshots: $(STAMP)
	$(BIN)/python -m pytest tests/test_browser_screens.py -q -p no:cacheprovider
	$(BIN)/python scripts/screenshots.py --from-artifacts

clean:
	rm -rf $(VENV) .venv-lowest .venv-latest .pytest_cache test-artifacts benchmarks/cache
