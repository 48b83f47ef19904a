# The two set-up commands of the README:
#   make run   - install (into .venv) and start the app on the bundled synthetic cohort
#   make test  - install (into .venv) and run the whole test suite (what CI runs)
#   make serve - the production launch: HAProxy + one Streamlit worker per core (deploy/README.md)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT    ?= 8501
WORKERS ?=

.PHONY: run serve test lint bench bench-smoke bench-app loadtest soak clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py

# Foreground; Ctrl-C stops HAProxy and every worker. WORKERS defaults to one per core.
serve: $(STAMP)
	$(BIN)/python -m deploy.serve --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/test.sh

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

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts benchmarks/cache
