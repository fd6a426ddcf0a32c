# TaskHub. Needs only Python 3.11+ and make: uv is bootstrapped into .tools/ on first use.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-faults chromium lint lock requirements check-lock worker beat check bench clean

help:
	@echo "make run      install, write .env if missing, migrate, serve on HOST:PORT (127.0.0.1:8000)"
	@echo "make test     install (Chromium too, as root) and run the whole suite (TEST_DATABASE_URL=postgresql://... for PostgreSQL)"
	@echo "make test-faults  the served API while private PostgreSQL and Redis servers fail (slow)"
	@echo "make migrate  apply database migrations"
	@echo "make lint     ruff, ruff format --check, mypy, lock/requirements drift, hadolint, actionlint, zizmor"
	@echo "make worker   Celery worker (needs REDIS_URL); make beat: the reminder scheduler"
	@echo "make lock     re-resolve uv.lock and re-export requirements.txt"
	@echo "make bench    load-test with wrk on its own PostgreSQL database; writes docs/benchmarks.md"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines),
# every process (test servers, workers) would otherwise compile every module again at start-up.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	$(VENV)/bin/python -m compileall -q src
	@touch $@

install: $(VENV)/.synced

run: install
	$(PY) -m taskhub init-env
	$(PY) -m taskhub migrate
	exec $(PY) -m taskhub serve

migrate: install
	$(PY) -m taskhub migrate

# Chromium first: where it is missing and cannot be installed (root with apt-get), make stops
# with one line saying what to install, before installing or running anything else.
test: chromium install
	$(PY) -m pytest

chromium:
	@bash scripts/ensure_chromium.sh

# pyproject's addopts leave the `faults` tests out of `make test`; this runs only them, one at a
# time. Needs root: initdb and pg_ctl run as the postgres user through runuser.
test-faults: install
	$(PY) -m pytest -m faults -n 0 -s tests/integration/test_faults.py

lint: install check-lock
	$(VENV)/bin/ruff check src tests migrations
	$(VENV)/bin/ruff format --check src tests migrations
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github/workflows
	@# Secret-looking values must be in the reviewed baseline (.secrets.baseline). The hook runs
	@# on a copy: exit 3 only means line numbers moved; exit 1 is a new, unreviewed finding.
	@tmp=$$(mktemp) && cp .secrets.baseline $$tmp; \
	$(VENV)/bin/detect-secrets-hook --baseline $$tmp \
		$$(git ls-files | grep -vE '^(uv\.lock|requirements\.txt|\.secrets\.baseline)$$'); \
	status=$$?; rm -f $$tmp; \
	if [ $$status -ne 0 ] && [ $$status -ne 3 ]; then \
		echo "detect-secrets: review the findings above, then: detect-secrets scan --baseline .secrets.baseline"; \
		exit 1; fi

lock: | $(UV)
	$(UV) lock
	$(MAKE) requirements

requirements: | $(UV)
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt --no-header --output-file requirements.txt --quiet

# Fails when pyproject.toml, uv.lock and requirements.txt disagree.
check-lock: | $(UV)
	$(UV) lock --check
	@$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt --no-header --quiet | diff -q - requirements.txt >/dev/null \
		|| { echo "requirements.txt is out of date with uv.lock: run 'make requirements'"; exit 1; }

# Both need REDIS_URL (in .env or the environment) and share the API's DATABASE_URL.
worker: install
	exec $(PY) -m celery -A taskhub.worker.celery_app worker --loglevel=INFO --concurrency=2

beat: install
	@mkdir -p var
	exec $(PY) -m celery -A taskhub.worker.celery_app beat --loglevel=INFO --schedule var/celerybeat-schedule

check: lint test

# Drops and recreates the taskhub_bench database on 127.0.0.1:5432 (user postgres) and needs
# Redis on 127.0.0.1:6379. BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_WORKERS=1 for a quick run.
bench: install
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
		else echo "make bench needs wrk: sudo apt-get install wrk"; exit 1; fi; }
	$(PY) scripts/bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
