"""Every recipe in configs/ trains on targets that hold both classes on data in its own format
(CSV for the CSV competition baseline, DFDC metadata.json for the DFDC recipes, AV-Deepfake1M for
the others), checked through `fakelens train --dry-run`'s code path; and `train` refuses a target
with one class (issue 17, guards)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakelens.train.config import load_train_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def recipe_layout(name: str) -> str:
    """The data format a recipe is written for."""
    if name.startswith("csv_"):
        return "csv"
    if name.startswith("dfdc_"):
        return "dfdc"
    if name.startswith(("avdf1m_", "demo")):
        return "avdeepfake1m"
    if name.startswith("lavdf"):
        return "lavdf"
    raise AssertionError(f"configs/{name}: say which data format it trains on in recipe_layout()")


def test_every_recipe_has_a_format():
    assert RECIPES and all(recipe_layout(r) for r in RECIPES)


STREAM_UNSTATED = ("csv", "dfdc", "folders")  # formats that do not say which stream of a fake was manipulated


def _skip_dense(recipe: str) -> None:
    """The localizer recipes train on dense features (`fakelens features`), not on a preprocessing
    cache: their targets are checked on their own data by tests/test_localizer_cli.py and
    tests/test_localization.py, and their smoke runs by tests/test_smoke_recipes.py."""
    if load_train_config(CONFIGS / recipe).data.dataset == "features":
        pytest.skip(f"configs/{recipe} trains on dense features: targets checked in test_localizer_cli.py")


def _plan(recipe: str, layout: str, layout_cache, extra: tuple[str, ...] = ()):
    """The dry-run plan of configs/<recipe> on the tiny cache of `layout` (8 evenly spaced frames of
    32 px tracked crops: the recipe's clip and crop sizes, sampling and crop kind are fitted to it,
    as train refuses a recipe asking for others), with the overrides `extra`."""
    from fakelens.models import MODELS
    from fakelens.train.engine import dry_run

    _, cache = layout_cache(layout)
    cfg = load_train_config(CONFIGS / recipe, [f"data.cache={cache}"])
    fit_cache = [f"data.clip_frames={min(cfg.data.clip_frames, 8)}"]
    if "video" in MODELS.get(cfg.model.name).inputs:
        fit_cache.append("model.image_size=32")
        fit_cache += ["data.sampling=frames"] if cfg.data.sampling else []
        fit_cache += ["data.crop=tracked"] if cfg.data.crop else []
    return dry_run(load_train_config(CONFIGS / recipe, [f"data.cache={cache}", *fit_cache, *extra]))


def _check_plan(recipe: str, layout: str, plan) -> None:
    assert not plan.problems, (recipe, layout, plan.problems)
    trained = [c for c in plan.counts if c.weight > 0]
    assert trained and any(c.term == "video" for c in trained)
    for c in trained:
        assert c.positives > 0 and c.negatives > 0, (recipe, layout, c)
    (video,) = [c for c in plan.counts if c.term == "video"]
    if layout in STREAM_UNSTATED:
        # per-stream heads would see real labels only: disabled, and the plan says so
        assert sorted(plan.disabled) == sorted(c.term for c in plan.counts if c.term != "video"), plan.disabled
        assert all(c.status.startswith("disabled") for c in plan.counts if c.term != "video")
        if video.unknown:  # an audio-only model's window label: trained on the video label
            assert video.rule == "video_label" and video.positives == pytest.approx(video.unknown)
    else:  # per-stream labels are stated: nothing unknown, nothing disabled
        assert all(c.unknown == 0 for c in plan.counts) and not plan.disabled


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_both_classes_of_every_target_on_its_own_format(recipe, layout_cache):
    _skip_dense(recipe)
    plan = _plan(recipe, recipe_layout(recipe), layout_cache)
    _check_plan(recipe, recipe_layout(recipe), plan)
    if recipe.startswith("csv_"):  # the competition baseline's audio-only model learns the video label
        (label,) = [c for c in plan.counts if c.term == "video"]
        assert label.unknown > 0 and label.rule == "video_label" and label.weight > 0


@pytest.mark.parametrize("layout", ["lavdf", "folders"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_on_lavdf_and_real_fake_folders(recipe, layout, layout_cache):
    """The formats without a recipe of their own: LAV-DF (per-stream labels stated) and real/fake
    folders (stream unknown): every recipe's targets train on both classes or, for a per-stream
    head the folders cannot label, are disabled and said to be. On LAV-DF the official dev split
    validates: the tiny set's train split has one visual fake, and a recipe carving validation out
    of train would take it (with its original) from a face-only model, which learns visual labels
    only (an audio-only fake's face is real to it)."""
    _skip_dense(recipe)
    extra = ("data.val_split=val",) if layout == "lavdf" else ()
    _check_plan(recipe, layout, _plan(recipe, layout, layout_cache, extra))


def test_dry_run_prints_the_targets_and_trains_nothing(layout_cache, tmp_path, capsys, monkeypatch):
    from fakelens.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")  # rich tables: one line per row

    _, cache = layout_cache("csv")
    out = tmp_path / "run"
    rc = main(["train", "--config", str(CONFIGS / "csv_audio_resnet18.yaml"), "--set", f"data.cache={cache}",
               "--out", str(out), "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0 and not out.exists()
    for column in ("target", "positives", "negatives", "unknown", "weight"):
        assert column in text
    assert "label (video logit)" in text and "video label" in text
    rc = main(["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}", "--out", str(out),
               "--set", "task.unknown_stream=ignore", "--set", "model.image_size=32", "--dry-run", "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert rc == 1 and not out.exists()  # training would refuse: the exit status says so
    assert any("audio_label" in p and "task.unknown_stream" in p for p in plan["problems"])


def test_dry_run_table_fits_80_columns_and_says_why_a_head_is_disabled(layout_cache, tmp_path, capsys, monkeypatch):
    """In an 80-column terminal every target is named whole on one row with its status in a
    word; the lines under the table say what the unknowns trained as and why a head is disabled."""
    from fakelens.cli.main import main

    monkeypatch.setenv("COLUMNS", "80")
    _, cache = layout_cache("dfdc")
    rc = main(["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}", "--set",
               "model.image_size=32", "--set", "data.clip_frames=8", "--out", str(tmp_path / "run"), "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0 and not (tmp_path / "run").exists()
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = {line.split()[0]: line.split()[-1] for line in text.splitlines() if line.strip().endswith(
        ("trains", "disabled", "REFUSED"))}
    assert rows == {"label": "trains", "visual_label": "disabled", "audio_label": "disabled",
                    "visual_frame_labels": "disabled", "audio_frame_labels": "disabled"}, text
    assert "audio_label (audio-fake head): " in text and "unknown-stream values left out; disabled" in text


def test_dry_run_says_which_videos_train_and_validate(layout_cache, tmp_path, capsys):
    """Before: --dry-run left out train's 'data:' line (the videos each side, their fakes, how the
    carve was made), the one thing a user checking a carve wants."""
    from fakelens.cli.main import main

    _, cache = layout_cache("dfdc")
    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}", "--set",
                 "model.image_size=32", "--set", "data.clip_frames=8", "--set", "data.val_split=",
                 "--out", str(tmp_path / "run"), "--dry-run", "--json"]) == 0
    (line,) = [n for n in json.loads(capsys.readouterr().out)["notes"] if n.startswith("data: ")]
    assert "training videos (" in line and "fake); " in line and "carved out of split 'train'" in line, line


def test_dry_run_refuses_what_train_refuses_and_writes_nothing(layout_cache, tmp_path, capsys):
    """A dry run builds and checks the data as train does: a cache of 32 px crops for a 64 px
    recipe is the same error (it used to count the targets and say all was well); with --smoke
    (which writes a run) it is refused before anything is written."""
    from fakelens.cli.main import main

    _, cache = layout_cache("avdeepfake1m")
    out = tmp_path / "run"
    rc = main(["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}", "--out", str(out),
               "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "holds 32 px face crops" in err and "model.image_size is 64" in err and not out.exists()
    rc = main(["train", "--config", str(CONFIGS / "demo.yaml"), "--out", str(out), "--smoke", "--dry-run"])
    assert rc == 2 and "--dry-run" in capsys.readouterr().err and not out.exists()


def test_train_refuses_a_target_with_one_class_naming_it(layout_cache, tmp_path):
    """An AV-1M training split without audio fakes: the audio head would learn "never fake"."""
    import shutil

    from fakelens.data.cache import read_index
    from fakelens.errors import ConfigError
    from fakelens.train.engine import fit

    _, cache = layout_cache("avdeepfake1m")
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    rows = [r for r in read_index(mine) if not (r.get("split") == "train" and r["audio_segments"])]
    assert len(rows) < len(read_index(mine))
    (mine / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_train_config(CONFIGS / "demo.yaml", [f"data.cache={mine}", "train.epochs=1", "model.image_size=32"])
    with pytest.raises(ConfigError, match=r"audio_label \(audio-fake head\).*no audio fake.*task.audio_weight=0"):
        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_dataset_given_with_its_labels_is_counted_without_loading_an_item():
    """fit(train_dataset=...) with a `labels` attribute and a task that trains on `label` only:
    the counts come from the labels, no item is loaded (a user's dataset may draw random numbers
    or read files per item; the DDP test counts each rank's draws)."""
    import numpy as np

    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.targets import plan_targets

    class Listed:
        labels = np.array([0, 1, 1, 0, 1], np.float32)

        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("an item was loaded")

    plan = plan_targets(Listed(), build_task(TaskConfig(name="classification")), "pos_weight")
    (video,) = plan.counts
    assert (video.positives, video.negatives) == (3, 2) and plan.pos_weights == {"video": 2 / 3}


def test_items_that_miss_every_fake_segment_are_told_from_a_split_without_fakes():
    """A cache sampled too sparsely (preprocess --fps 1 on segments of half a second) gives fake
    videos whose training clips all lie outside their segments: the refusal says the split holds
    those fakes and that the sampling misses them, not "the training split holds no fake"; a
    split that has no fake at all is still said so."""
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.targets import plan_targets
    from fakelens.types import Label, Modality, Segment, VideoRecord

    def records(fake: bool) -> list[VideoRecord]:
        out = [VideoRecord(id=f"r{i}", path=Path(f"r{i}.mp4"), label=Label.REAL) for i in range(2)]
        if fake:
            out += [VideoRecord(id=f"f{i}", path=Path(f"f{i}.mp4"), label=Label.FAKE, modality=Modality.VISUAL,
                                segments=(Segment(0.5, 1.0),), visual_segments=(Segment(0.5, 1.0),))
                    for i in range(3)]
        return out

    class Sparse:  # every clip label real: the sampled frames miss the segments
        def __init__(self, fake: bool):
            self.records = records(fake)

        def __len__(self):
            return len(self.records)

        def __getitem__(self, i):
            return {"label": 0.0, "video_label": float(self.records[i].is_fake)}

    task = build_task(TaskConfig(name="classification"))
    (missed,) = plan_targets(Sparse(fake=True), task, "pos_weight").problems
    assert "although the training split holds 3 fake videos" in missed and "samples too few frames" in missed
    assert "--fps" in missed and "holds no fake for it" not in missed
    (none,) = plan_targets(Sparse(fake=False), task, "pos_weight").problems
    assert "the training split holds no fake for it" in none and "although" not in none


def test_a_face_model_carving_validation_keeps_the_visual_fakes_in_training(layout_cache):
    """dfdc_effnet (val_split '': a carve) on AV-Deepfake1M-layout data: stratified by the video
    label, the carve put the one visual fake into validation for split_seed 0, and the face model
    was left to learn from the audio-only fake alone (refused, blaming the frame sampling). The
    carve is stratified by the label the model learns (visual) and says so."""
    from fakelens.train.data import validation_source

    for seed in range(4):
        plan = _plan("dfdc_effnet.yaml", "avdeepfake1m", layout_cache, (f"data.split_seed={seed}",))
        assert plan.problems == [], (seed, plan.problems)
    _, cache = layout_cache("avdeepfake1m")
    cfg = load_train_config(CONFIGS / "dfdc_effnet.yaml", [f"data.cache={cache}"])
    assert "stratified by label (the visual label: what data.dataset=clips learns)" in validation_source(cfg)


def test_a_target_whose_fakes_are_all_of_the_other_stream_says_so(layout_cache, tmp_path):
    """A face model whose training split holds only audio-only fakes: every visual label is real.
    Before: "samples too few frames for its fake segments; preprocess with more frames" (no
    sampling can help); now the audio-only fakes are named, with what to change."""
    import shutil

    from fakelens.data.cache import read_index

    _, cache = layout_cache("avdeepfake1m")
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    rows = [r for r in read_index(mine) if not (r.get("split") == "train" and r["visual_segments"])]
    voices = sorted(r["id"] for r in rows if r.get("split") == "train" and r["audio_segments"])
    assert voices and len(rows) < len(read_index(mine))
    (mine / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from fakelens.train.engine import dry_run

    cfg = load_train_config(CONFIGS / "dfdc_effnet.yaml", [f"data.cache={mine}", "data.val_split=val",
                                                           "data.clip_frames=8", "model.image_size=32"])
    (problem,) = dry_run(cfg).problems
    assert "audio-only fake" in problem and all(v in problem for v in voices), problem
    assert "face crops only" in problem and "data.dataset=av" in problem
    assert "too few frames" not in problem and "preprocess with more frames" not in problem


def test_dry_run_refuses_a_model_over_the_budget_as_train_does(layout_cache, capsys):
    """`train --dry-run` said "dry run: nothing trained" and exited 0 for a model over
    train.max_params, which train then refused (rc 2): the meta-device budget check runs in it too."""
    from fakelens.cli.main import main

    _, cache = layout_cache("avdeepfake1m")
    base = ["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}", "--set",
            "model.image_size=32", "--set", "data.clip_frames=8", "--dry-run"]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base + ["--set", "train.max_params=1M"]) == 2
    err = capsys.readouterr().err
    assert "parameters, over the budget of 1M" in err and "nothing trained" not in err
