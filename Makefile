# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv at the repository root when it is missing and install the project from its own files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Face photos for the demo: the LFW copy beside the repository (pairs.txt next to images/ adds verification).
DATA   ?= ../shared/data/lfw/images
OUT    ?= demo_out
# OpenMP's default busy-waiting makes 2 torch threads 3-4x slower than 1 when the cores are shared.
export OMP_WAIT_POLICY ?= PASSIVE
# PyTorch's allocator takes transparent huge pages for large tensors: on a VM every first touch of a
# fresh 4 KB page is costly, and the network's activations are fresh every batch (benchmarks/embed.py).
export THP_MEM_ALLOC_ENABLE ?= 1

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml setup.py src/partialface/_stencil.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m partialface demo $(if $(DATA),--data "$(DATA)") --out "$(OUT)" --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/transform.py

clean-venv:
	rm -rf $(VENV)
