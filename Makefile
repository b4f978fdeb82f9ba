# One entry point. `make run` and `make test` are the two commands a newcomer needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run test install lint check-deploy compose-check clean bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

## Start the product: embedded SQLite, in-process tasks, demo hospital, simulated devices and HIS,
## at http://127.0.0.1:8000
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py run_demo $(HOST)

## Run the whole test suite (SQLite by default; PostgreSQL/Redis/Mosquitto when their URLs are set)
test: install
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

check-deploy: install
	DEBUG=0 SECRET_KEY=ci-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') ALLOWED_HOSTS=spd.example.org \
		$(PY) manage.py check --deploy --fail-level WARNING

compose-check:
	SECRET_KEY=ci POSTGRES_PASSWORD=ci MQTT_BRIDGE_PASSWORD=ci SPD_APP_DB_PASSWORD=ci docker-compose -f docker/compose.yml config -q

clean:
	rm -rf $(VENV) spd.sqlite3 staticfiles

## Benchmarks on PostgreSQL (prints a table, writes bench/results/latest.json); see bench/README.md
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)
