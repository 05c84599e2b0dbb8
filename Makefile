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
	# what file size, bitrate and duration alone score: the model's AUC means something beside it
	$(FAKELENS) baseline $(DEMO)/data --split test
	$(FAKELENS) baseline $(DEMO)/data --split test --json > $(DEMO)/baseline.json.tmp
	mv $(DEMO)/baseline.json.tmp $(DEMO)/baseline.json
	# Temporal localization (AV-Deepfake1M task 2): an AV-1M-shaped set (8-20 s videos, 1-3 fake segments
	# of a fraction of a second), dense features of every frame through the run's frozen encoders, a
	# learned localizer; then the threshold baseline (the run's per-frame scores) on the same test split.
	test -f $(DEMO)/loc_data/synthetic.json || $(FAKELENS) data synth $(DEMO)/loc_data --preset localization --videos 100 --duration 8 20 --size 96 --strength 0.8
	# the run was just retrained: features of its previous encoder would be refused (their digest differs)
	rm -rf $(DEMO)/loc_feats
	$(FAKELENS) features $(DEMO)/run $(DEMO)/loc_data --split train --out $(DEMO)/loc_feats --workers 2
	$(FAKELENS) features $(DEMO)/run $(DEMO)/loc_data --split val --out $(DEMO)/loc_feats --workers 2
	rm -rf $(DEMO)/loc_run
	$(FAKELENS) train --config configs/demo_localizer.yaml --set data.cache=$(DEMO)/loc_feats --out $(DEMO)/loc_run
	# the test split's dense features once, for both predicts of the localizer (learned boundaries, thresholds)
	$(FAKELENS) features $(DEMO)/run $(DEMO)/loc_data --split test --out $(DEMO)/loc_feats --workers 2
	$(FAKELENS) predict $(DEMO)/loc_run $(DEMO)/loc_data --split test --features $(DEMO)/loc_feats --format avdf1m-task2 --out $(DEMO)/prediction.json
	# the task-1 run scores frames at about the rate it was trained on (24 frames of 3.2-4 s videos: 6-7.5 fps)
	# over the whole of each 8-20 s video: its own sampling (24 frames a video) would miss most segments.
	# Another model on other inputs (sampled frames' crops, not dense features): it decodes the videos itself.
	$(FAKELENS) predict $(DEMO)/run $(DEMO)/loc_data --split test --format avdf1m-task2 --fps 6.25 --level frames --out $(DEMO)/baseline_prediction.json --workers 2
	@echo "task 2, learned localizer ($(DEMO)/prediction.json):"
	$(FAKELENS) evaluate $(DEMO)/prediction.json --labels $(DEMO)/loc_data --split test
	@echo "task 2, threshold baseline of the task-1 run's per-frame scores ($(DEMO)/baseline_prediction.json):"
	$(FAKELENS) evaluate $(DEMO)/baseline_prediction.json --labels $(DEMO)/loc_data --split test
	$(FAKELENS) evaluate $(DEMO)/prediction.json --labels $(DEMO)/loc_data --split test --json > $(DEMO)/loc_metrics.json.tmp
	mv $(DEMO)/loc_metrics.json.tmp $(DEMO)/loc_metrics.json
	$(FAKELENS) evaluate $(DEMO)/baseline_prediction.json --labels $(DEMO)/loc_data --split test --json > $(DEMO)/baseline_loc_metrics.json.tmp
	mv $(DEMO)/baseline_loc_metrics.json.tmp $(DEMO)/baseline_loc_metrics.json
	# the fair baseline: the localizer's own per-step scores thresholded (--proposals thresholds): the
	# learned boundaries must beat it where boundaries matter, AP@0.75
	$(FAKELENS) predict $(DEMO)/loc_run $(DEMO)/loc_data --split test --features $(DEMO)/loc_feats --format avdf1m-task2 --proposals thresholds --out $(DEMO)/dense_baseline_prediction.json
	$(FAKELENS) evaluate $(DEMO)/dense_baseline_prediction.json --labels $(DEMO)/loc_data --split test --json > $(DEMO)/dense_baseline_loc_metrics.json.tmp
	mv $(DEMO)/dense_baseline_loc_metrics.json.tmp $(DEMO)/dense_baseline_loc_metrics.json
	$(PY) -c "import json, sys; ap = lambda p, t: json.load(open('$(DEMO)/' + p + 'loc_metrics.json'))['localization']['ap'][t]; rows = [('learned boundaries', ''), ('thresholds of its per-step scores', 'dense_baseline_'), ('thresholds of the task-1 run', 'baseline_')]; [print(f'task 2 {n:34s} AP@0.5 {ap(p, \"0.5\"):.3f}  AP@0.75 {ap(p, \"0.75\"):.3f}') for n, p in rows]; sys.exit(0 if ap('', '0.75') > ap('dense_baseline_', '0.75') else 'the learned boundaries do not beat thresholds of the same per-step scores at AP@0.75')"
	@echo "demo done: submission $(DEMO)/prediction.txt, metrics $(DEMO)/metrics.json, side-feature baseline $(DEMO)/baseline.json, ROC $(DEMO)/roc.png, run $(DEMO)/run"
	@echo "           task 2: $(DEMO)/prediction.json (localizer $(DEMO)/loc_run, metrics $(DEMO)/loc_metrics.json), baselines $(DEMO)/dense_baseline_loc_metrics.json, $(DEMO)/baseline_loc_metrics.json"
	@echo "a forensic report per video: $(FAKELENS) detect $(DEMO)/data/test --model $(DEMO)/run --out $(DEMO)/reports"

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(DEMO) .pytest_cache
