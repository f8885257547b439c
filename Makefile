# payGO back office. The two commands: `make run` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_ENV := DJANGO_DEBUG=1
# `make demo DEMO_PORT=8001` when 8000 is taken.
DEMO_PORT ?= 8000

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

## A simulated morning with an Internet outage against the embedded back office, which then keeps running.
demo: $(STAMP)
	$(DEV_ENV) $(PY) manage.py migrate --noinput
	$(DEV_ENV) $(PY) manage.py seed_demo --output demo.json
	@echo "Iniciando el back office en http://127.0.0.1:$(DEMO_PORT)/ (registro en demo-server.log)"
	@$(DEV_ENV) $(PY) manage.py runserver 127.0.0.1:$(DEMO_PORT) --noreload >demo-server.log 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null' INT TERM EXIT; \
	for i in $$(seq 1 120); do \
		$(PY) -c "import httpx; httpx.get('http://127.0.0.1:$(DEMO_PORT)/api/schema/', timeout=2)" 2>/dev/null && break; \
		sleep 0.5; \
	done; \
	$(PY) -c "import httpx; httpx.get('http://127.0.0.1:$(DEMO_PORT)/api/schema/', timeout=2)" 2>/dev/null \
		|| { echo "El servidor no respondió; ver demo-server.log"; exit 1; }; \
	$(DEV_ENV) $(PY) manage.py simulate_pos --url http://127.0.0.1:$(DEMO_PORT) --demo-file demo.json --sales 60 \
		--outage-seconds 20 --speed 20 --chaos || echo "La simulación terminó con errores (ver arriba)."; \
	$(PY) -c "import json; d = json.load(open('demo.json')); print('\nReportes: http://127.0.0.1:$(DEMO_PORT)/admin/'); print('  superusuario: %s / %s' % (d['admin']['username'], d['admin']['password'])); print('  finanzas:     %s / %s' % (d['finance']['username'], d['finance']['password'])); print('El servidor sigue corriendo; Ctrl+C para detenerlo.')"; \
	wait $$server

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
