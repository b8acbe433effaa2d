# Two commands on a fresh machine:  `make demo` (main job, offline)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-slow test-all lint install clean

VENDOR := src/transferlab/web/static/vendor/lab-vendor.js

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[web,lab,export,track,dev]"
	touch $(STAMP)

## The Lab's editor and terminal (CodeMirror, xterm.js) from npm, bundled by esbuild (needs node).
$(VENDOR): frontend/package.json frontend/package-lock.json frontend/entry.js frontend/build.mjs
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

install: $(STAMP) $(VENDOR)

## Fine-tune the offline EfficientNet-Lite0 on the food photos shipped in the package (two-phase).
demo: $(STAMP) $(VENDOR)
	$(BIN)/transferlab train src/transferlab/sample_data/food4 --out runs

## The test suite (fast tests, browser tests when Chromium is installed); `make test-all` adds slow ones.
test: $(STAMP) $(VENDOR)
	$(BIN)/python -m pytest -m "not slow" -q

## The slow tests alone: the fault tests (SIGKILL then resume, kills while saving, a NaN run, a
## killed sweep, stopping a web job) and the longer end-to-end runs. CI runs them after `make test`.
test-slow: $(STAMP) $(VENDOR)
	$(BIN)/python -m pytest -m slow -q --durations=15

test-all: $(STAMP) $(VENDOR)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs .pytest_cache frontend/node_modules src/transferlab/web/static/vendor
