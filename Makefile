# The team's verbs. `make demo` and `make test` each set up a fresh machine on their own.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test audit advisories format typecheck lint mlflow-ui bench constraints clean

$(BIN)/churnops: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/churnops  ## create .venv with the pinned stack, the test and lint tools (requirements-dev.txt) and churnops (editable)

demo: install  ## the whole loop under Airflow + the MLflow UI on SQLite (127.0.0.1); Ctrl-C stops it
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

test: install audit  ## the dependency audit and the whole test suite (what CI runs); the browser check uses Debian's Chromium if it can be installed
	-@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1); } || true
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15  # two workers, whole modules, longest first

audit: install  ## every pin of constraints.txt against the advisory snapshot .ci/advisories (or CHURNOPS_ADVISORY_DB); fails when neither can be read
	$(BIN)/python scripts/audit_dependencies.py --require

advisories: install  ## refresh .ci/advisories: the PyPA advisories of every pin, from ADVISORY_DB=<clone or bare git dir> (ADVISORY_REPOSITORY=<its URL> if it has no origin), else a shallow clone from GitHub
	$(BIN)/python scripts/refresh_advisories.py $(if $(ADVISORY_DB),--from "$(ADVISORY_DB)") $(if $(ADVISORY_REPOSITORY),--repository "$(ADVISORY_REPOSITORY)")

CODE := include dags plugins tests bench scripts

format: install  ## rewrite the code in the project's style (ruff format, then ruff's safe fixes)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

typecheck: install  ## mypy over the library (include/churnops; settings in pyproject.toml)
	$(BIN)/mypy

lint: install  ## what CI checks before the tests: ruff, the format, the types
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

mlflow-ui: install  ## MLflow UI on the demo's store (while the demo is not running)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.demo/churnops/mlflow.db --host 127.0.0.1 --port 5000

bench: install  ## every benchmark (training, DAG parse, monitoring 10^5-10^7 rows, scoring, serving, sharding, a 60-day backfill); ~55 min
	$(BIN)/python bench/run_all.py

constraints:  ## re-resolve constraints.txt from requirements-dev.txt (which includes requirements.txt) in a scratch venv (removed afterwards)
	scratch="$$(mktemp -d)" && trap 'rm -rf "$$scratch"' EXIT && $(PYTHON) -m venv "$$scratch" && \
	"$$scratch/bin/pip" install --quiet -r requirements-dev.txt && \
	{ echo "# Every package of the resolved churnops environment (pip freeze)."; \
	  echo "# Regenerate: make constraints"; "$$scratch/bin/pip" freeze; } > constraints.txt.new && \
	mv constraints.txt.new constraints.txt

clean:
	rm -rf .demo .pytest_cache .ruff_cache
