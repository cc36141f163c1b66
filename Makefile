# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv at the repository root when it is missing and install the project from its own files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?=
OUT    ?= demo_out

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m partialface demo $(if $(DATA),--data "$(DATA)") --out "$(OUT)"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/transform.py

clean-venv:
	rm -rf $(VENV)
