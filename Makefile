# Developer shortcuts; the README's two commands need nothing but Python and pip.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test check lint types bench soak chaos

$(PY):
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]'

venv: $(PY)

demo: $(PY)
	$(VENV)/bin/p2pcity demo

test: $(PY)
	$(PY) -m pytest -n 2 --dist loadfile

lint: $(PY)
	$(VENV)/bin/ruff check p2pcity bootstrap tests bench

types: $(PY)
	$(VENV)/bin/mypy

check: lint types test

soak: $(PY)
	$(PY) -m pytest -m soak

# The nemesis's long form on real processes in network namespaces (root): make chaos MINUTES=60 NODES=7
MINUTES ?= 60
NODES ?= 4
SEED ?= 1
EPOCHS ?=
chaos: $(PY)
	NEMESIS_MINUTES=$(MINUTES) NEMESIS_NODES=$(NODES) NEMESIS_SEED=$(SEED) NEMESIS_EPOCHS=$(EPOCHS) \
		$(PY) -m pytest -m soak -s tests/chaos/test_nemesis.py -k long

bench: $(PY)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done
