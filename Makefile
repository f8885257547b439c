# payGO back office. The two commands: `make run` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_ENV := DJANGO_DEBUG=1

.PHONY: run test check lint migrate worker beat demo clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Set everything up and run the back office embedded (SQLite, Celery in-process, demo data).
run: $(STAMP)
	$(DEV_ENV) $(PY) manage.py migrate --noinput
	$(DEV_ENV) $(PY) manage.py seed_demo --output demo.json
	@echo "Back office: http://127.0.0.1:8000/admin/  (terminal keys and data in demo.json)"
	$(DEV_ENV) $(PY) manage.py runserver 127.0.0.1:8000

## The whole test suite: lint, migrations check, pytest on PostgreSQL + Redis and on SQLite.
test: $(STAMP)
	scripts/with_services $(MAKE) --no-print-directory check

check: lint
	$(PY) -m pytest $(PYTEST_ARGS)
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "== again on the embedded default (SQLite, Celery in-process) =="; \
		env -u DATABASE_URL $(PY) -m pytest -m "not postgres and not slow and not browser" -q $(PYTEST_ARGS); \
	fi

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DJANGO_SECRET_KEY=lint $(PY) manage.py makemigrations --check --dry-run

worker: $(STAMP)
	$(PY) -m celery -A paygo worker --loglevel=INFO

beat: $(STAMP)
	$(PY) -m celery -A paygo beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm demo.json staticfiles
