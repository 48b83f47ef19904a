# The two set-up commands of the README:
#   make run   - install (into .venv) and start the app (it opens on the bundled I-SPY 1 cohort)
#   make test  - install (into .venv) and run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-smoke bench-app loadtest clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py

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

loadtest: $(STAMP)
	$(BIN)/python -m benchmarks.loadtest

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts benchmarks/cache
