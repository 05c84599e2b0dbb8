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
	$(PY) -m pip install -q -e '.[dev,web]'
	# facenet-pytorch (MTCNN, weights inside the wheel) pins old torch/numpy in its metadata
	# but runs with current ones: install it without its dependencies.
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	# The official AV-Deepfake1M scorer, used only as a test oracle (its Rust extension is loaded
	# alone); --no-deps because its metadata pulls torchaudio, which breaks our torch.
	$(PY) -m pip install -q --no-deps avdeepfake1m==0.0.4
	# torchattacks (FGSM / PGD for `fakelens robustness`) pins requests~=2.25 in its metadata but
	# runs with current ones: --no-deps, or pip downgrades requests and idna under httpx.
	$(PY) -m pip install -q --no-deps torchattacks==3.5.1
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	test -f $(DEMO)/data/synthetic.json || $(FAKELENS) data synth $(DEMO)/data --preset demo
	$(FAKELENS) data inspect $(DEMO)/data
	$(FAKELENS) preprocess $(DEMO)/data --out $(DEMO)/cache --frames 24 --size 64 --workers 2
	rm -rf $(DEMO)/run
	$(FAKELENS) train --config configs/demo.yaml --set data.cache=$(DEMO)/cache --out $(DEMO)/run
	$(FAKELENS) predict $(DEMO)/run $(DEMO)/data --split test --format avdf1m-task1 --out $(DEMO)/prediction.txt
	$(FAKELENS) evaluate $(DEMO)/prediction.txt --labels $(DEMO)/data --split test --plot $(DEMO)/roc.png
	$(FAKELENS) evaluate $(DEMO)/prediction.txt --labels $(DEMO)/data --split test --json > $(DEMO)/metrics.json.tmp
	mv $(DEMO)/metrics.json.tmp $(DEMO)/metrics.json
	@echo "demo done: submission $(DEMO)/prediction.txt, metrics $(DEMO)/metrics.json, ROC $(DEMO)/roc.png, run $(DEMO)/run"
	@echo "a forensic report per video: $(FAKELENS) detect $(DEMO)/data/test --model $(DEMO)/run --out $(DEMO)/reports"

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(DEMO) .pytest_cache
