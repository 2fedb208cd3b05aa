# The two commands of the README. Everything else here serves them.
VENV   := .venv
PY     := $(VENV)/bin/python
export FLASK_APP := wsgi.py
# Parallel test processes (pytest-xdist), each with its own database, broker, mailbox, live server and browser.
# Measured on 2 cores: see docs/benchmarks.md ("The test suite").
TEST_WORKERS ?= 3

.PHONY: setup run test test-clock migrate seed

setup:
	@bash scripts/setup.sh

migrate: setup
	@$(VENV)/bin/flask db upgrade

seed: migrate
	@$(VENV)/bin/flask seed demo

run: seed
	@bash scripts/run.sh

test: setup
	@$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The clock-sensitive tests at set instants (03:00, 09:00, 13:30, 23:45, DST days, year end, 29 February 2028).
test-clock: setup
	@$(PY) scripts/test_clock.py -n $(TEST_WORKERS) $(PYTEST_ARGS)
