# Developer shortcuts; the README's two commands need nothing but Python and pip.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test check lint types bench soak

$(PY):
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]'

venv: $(PY)

demo: $(PY)
	$(VENV)/bin/p2pcity demo

test: $(PY)
	$(PY) -m pytest

lint: $(PY)
	$(VENV)/bin/ruff check p2pcity bootstrap tests bench

types: $(PY)
	$(VENV)/bin/mypy

check: lint types test

soak: $(PY)
	$(PY) -m pytest -m soak

bench: $(PY)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done
