# The two commands of the README. Everything else here serves them.
VENV   := .venv
PY     := $(VENV)/bin/python
export FLASK_APP := wsgi.py

.PHONY: setup run test migrate seed

setup:
	@bash scripts/setup.sh

migrate: setup
	@$(VENV)/bin/flask db upgrade

seed: migrate
	@$(VENV)/bin/flask seed demo

run: seed
	@bash scripts/run.sh

test: setup
	@$(PY) -m pytest $(PYTEST_ARGS)
