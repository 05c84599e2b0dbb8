# fakelens: two commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FAKELENS := $(VENV)/bin/fakelens
STAMP := $(VENV)/.installed
DEMO ?= demo_out

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# facenet-pytorch (MTCNN, weights inside the wheel) pins old torch/numpy in its metadata
	# but runs with current ones: install it without its dependencies.
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(FAKELENS) data synth $(DEMO)/data --preset demo
	$(FAKELENS) data inspect $(DEMO)/data

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(DEMO) .pytest_cache
