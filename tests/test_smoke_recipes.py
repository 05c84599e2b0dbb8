"""`fakelens train --smoke`: every recipe in configs/ runs offline on a CPU, on a tiny synthetic set
in the recipe's own data format (DFDC part folders for dfdc_*, CSV labels for the CSV recipe,
AV-Deepfake1M metadata for the others, LAV-DF with its dev split); and what train checks on the
way: a cache made for another input refused with both values, an unknown validation split
refused with the splits there are, videos the data leaves out counted with their reasons.

One preprocessed cache per format is shared by every test (4 frames of 32 px, full-frame crops);
a recipe made for another kind of cache says how it is preprocessed (RECIPE_PREPROCESS)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from fakelens.cli.main import main

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))  # every recipe file, a new one included
FORMAT_PREFIXES = (("dfdc", "dfdc"), ("csv", "csv"), ("lavdf", "lavdf"))  # recipe name prefix -> its data format


def format_by_name(recipe: Path) -> str:
    """The dataset format a recipe's name says: dfdc_* on DFDC part folders, csv_* on CSV labels,
    lavdf* on LAV-DF, any other (avdf1m_*, demo*, a new recipe) on AV-Deepfake1M."""
    return next((fmt for prefix, fmt in FORMAT_PREFIXES if recipe.stem.startswith(prefix)), "avdeepfake1m")


def recipe_format(recipe: Path) -> str:
    """The dataset format a recipe is made for: its data.format (what --smoke synthesizes without a
    cache), else the one its name says."""
    if recipe.is_file():
        from fakelens.train.config import load_train_config

        stated = load_train_config(recipe, light=True).data.format
        if stated:
            return stated
    return format_by_name(recipe)


# Preprocessing other than the shared 4 frames per video, as the recipe's header preprocesses:
# the 3D ROI recipe's clip windows (6 frames: the smoke run's clips must divide them), the 3D
# r2plus1d recipe on windows of a prime 7 frames (a 2D model's clips would be 1 frame; a 3D CNN's
# are the whole window), AV-Deepfake1M task 1 sampled at 5 fps (--fps 5: 6-8 frames a video).
RECIPE_PREPROCESS = {"dfdc_3d_roi": ("--windows", "2", "--window-frames", "6", "--crop", "roi"),
                     "dfdc_r2plus1d": ("--windows", "2", "--window-frames", "7"),
                     "avdf1m_task1": ("--fps", "5")}
SMOKE_CLIPS = {"dfdc_3d_roi": 3, "dfdc_r2plus1d": 7}  # clip lengths other than 4 the smoke run must choose
NOISE = ("GPU available", "Tip:", "LeafSpec", "does not have many workers", "Trainable params")


def _preprocess(data: Path, cache: Path, sampling: tuple[str, ...] = ("--frames", "4"), dense: bool = False) -> Path:
    if dense:  # dense features for the localizer recipes: every frame, a random-init tinycnn, log-mel
        assert main(["features", "tinycnn", str(data), "--out", str(cache), "--size", "32",
                     "--detector", "full_frame", "--no-progress"]) == 0
        return cache
    assert main(["preprocess", str(data), "--out", str(cache), *sampling, "--size", "32",
                 "--detector", "full_frame", "--no-progress"]) == 0
    return cache


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_synth):
    """tiny_cache(fmt[, sampling][, dense]) -> the tiny preset written in that layout and preprocessed
    (4 frames per video, or the `sampling` preprocess flags given), or its dense features
    (`fakelens features`) for dense=True; each made once."""
    made: dict[str, Path] = {}
    layouts: dict[str, Path] = {}

    def get(fmt: str, sampling: tuple[str, ...] | None = None, dense: bool = False) -> Path:
        key = fmt if sampling is None else f"{fmt}{' '.join(sampling)}"
        key += " dense" if dense else ""
        if key not in made:
            if fmt not in layouts:
                layouts[fmt] = tiny_synth
                if fmt != "avdeepfake1m":
                    layouts[fmt] = tmp_path_factory.mktemp(f"smoke_{fmt}_data") / "data"
                    # DFDC's fakes are manipulated all along, as there: a windowed cache's frames (the 3D
                    # recipes' 2 windows) miss a short fake segment, and its faces are then rightly
                    # labelled real by their comparison with the original (nothing fake to learn)
                    whole = ("--set", "fake_span=whole") if fmt == "dfdc" else ()
                    assert main(["data", "synth", str(layouts[fmt]), "--preset", "tiny", "--layout", fmt,
                                 *whole, "--quiet"]) == 0
            cache = tmp_path_factory.mktemp(f"smoke_{fmt}") / "cache"
            made[key] = _preprocess(layouts[fmt], cache, sampling or ("--frames", "4"), dense=dense)
        return made[key]

    return get


@pytest.fixture
def offline(monkeypatch):
    """No network: the offline switch set, and any connection attempt fails (and is counted)."""
    tries = []

    def refuse(*args, **kwargs):
        tries.append(args)
        raise OSError("network is unreachable (test)")

    monkeypatch.setenv("FAKELENS_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tries


def test_every_recipe_has_a_data_format():
    """Recipes are found by file (a new one is run by the smoke test below with no edit here), each in
    the format its name says; the recipes shipped now in the format they are made for."""
    shipped = {"demo": "avdeepfake1m", "avdf1m_task1": "avdeepfake1m", "csv_audio_resnet18": "csv",
               "dfdc_effnet": "dfdc", "dfdc_r2plus1d": "dfdc", "dfdc_3d_roi": "dfdc",
               "avdf1m_task2": "avdeepfake1m", "demo_localizer": "avdeepfake1m", "lavdf": "lavdf"}
    formats = {p.stem: recipe_format(p) for p in RECIPES}
    assert set(shipped) <= set(formats) and {k: formats[k] for k in shipped} == shipped
    assert recipe_format(CONFIGS / "dfdc_new.yaml") == "dfdc" and recipe_format(CONFIGS / "new.yaml") == "avdeepfake1m"
    from fakelens.train.config import load_train_config

    stated = {p.stem: load_train_config(p, light=True).data.format for p in RECIPES}
    assert {k: stated[k] for k in shipped} == shipped  # each recipe states the layout it is made for
    assert all(stated[p.stem] == format_by_name(p) for p in RECIPES if stated[p.stem]), stated
    assert set(RECIPE_PREPROCESS) | set(SMOKE_CLIPS) <= set(formats)


def test_every_run_a_recipe_header_reads_is_made_in_that_header():
    """Before: configs/lavdf.yaml's header began `fakelens features runs/lavdf_frames ...`, a run no
    command of it (and no recipe) makes. Every runs/NAME a header's commands read (features,
    predict, detect: not after --out) is trained there with --out runs/NAME."""
    import re

    for recipe in RECIPES:
        header = "\n".join(line for line in recipe.read_text().splitlines() if line.startswith("#"))
        made = set(re.findall(r"--out (runs/[\w.-]+)", header))
        read = {m for cmd, m in re.findall(r"fakelens (features|predict|detect|robustness) (runs/[\w.-]+)", header)}
        assert read <= made, f"{recipe.name}: reads {sorted(read - made)} that its header never trains"


@pytest.mark.parametrize("recipe,fmt", [(p, recipe_format(p)) for p in RECIPES] + [(CONFIGS / "demo.yaml", "lavdf")],
                         ids=[p.stem for p in RECIPES] + ["demo-on-lavdf"])
def test_every_recipe_runs_offline_with_smoke(recipe, fmt, tiny_cache, offline, tmp_path, capfd):
    from fakelens.train.config import load_train_config

    dense = load_train_config(recipe).data.dataset == "features"
    run, cache = tmp_path / "run", tiny_cache(fmt, RECIPE_PREPROCESS.get(recipe.stem), dense)
    # full-frame 32-px crops of a 96-px frame dilute a face's change: the tiny preset's reenacted
    # fakes differ from their originals by 1.3-2.0 grey levels: the default equal threshold (1) keeps
    # them fake (the earlier 2 trained them as real); 0.5 keeps this test clear of that edge
    equal = ("--set", "data.face_equal_threshold=0.5") if fmt == "dfdc" else ()
    capfd.readouterr()
    assert main(["train", "--config", str(recipe), "--smoke", "--out", str(run),
                 "--set", f"data.cache={cache}", *equal, "--json"]) == 0
    out, err = capfd.readouterr()
    metrics = json.loads(out)
    assert metrics["epochs"] == 1 and 1 <= metrics["global_step"] <= 2
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert metrics["n_val_fake"] and metrics["n_val"] - metrics["n_val_fake"]  # both classes validated
    scored = metrics["last_epoch_metrics"]  # a fake and a real video scored whole: every metric defined
    assert scored["val_videos"] == 2 and "val_auc" in scored and "undefined" not in err
    cfg = load_train_config(run / "config.yaml")
    assert cfg.model.pretrained is False and cfg.train.precision == "32" and cfg.train.accelerator == "cpu"
    assert cfg.train.epochs == 1 and cfg.train.batch_size <= 2 and cfg.train.num_workers <= 2
    if dense:  # the localizer: feature widths from the folder, short training windows, AP monitored
        assert (cfg.model.feature_dim, cfg.model.audio_feature_dim) == (192, 80) and 0 < cfg.data.max_steps <= 64
        assert cfg.train.monitor == "val_ap" and "val_ap" in (run / "train.log").read_text()
    elif cfg.model.name != "audio":
        assert cfg.model.image_size == 32  # the cache's
        assert cfg.data.clip_frames == cfg.model.num_frames == SMOKE_CLIPS.get(recipe.stem, 4)
    assert "smoke: train.epochs" in err and (run / "train.log").read_text().count("\nepoch 1/1") == 1
    if recipe.stem == "dfdc_3d_roi":  # on its ROI clip windows of 6 frames, in clips of 3 (dividing them)
        media = json.loads((run / "cache_config.json").read_text())
        assert (media["sampling"], media["crop"], cfg.data.clip_frames) == ("windows", "roi", 3)
        assert "smoke: data.clip_frames 32 -> 3" in err
    if recipe.stem == "dfdc_r2plus1d":  # windows of 7: not 1-frame clips for a 3D CNN, the whole window, said
        assert "smoke: data.clip_frames 16 -> 7" in err and "kernels of 3 frames" in err
    if recipe.stem == "csv_audio_resnet18":  # 4 s windows over 1.2-1.6 s videos: said, and recorded in the run
        pad = metrics["padding"]["audio"]
        assert pad["videos_short"] == pad["videos"] == metrics["n_train"] and 0.5 < pad["padded_share"] < 0.75
        assert any("the audio window is 400 mel frames (4.00 s) but every training video has less" in n
                   for n in metrics["notes"])
    if recipe.stem == "avdf1m_task1":  # the recipe's own 5 fps sampling
        assert json.loads((run / "cache_config.json").read_text())["sampling"] == "fps"
    if fmt == "lavdf":  # LAV-DF's dev split is the validation split
        assert "split 'val' of the cache" in err and metrics["n_val"] == 2
    for noise in NOISE:
        assert noise not in out + err, noise
    assert offline == []  # pretrained off: no download was even tried
    shutil.rmtree(run)  # large checkpoints (r2plus1d: ~750 MB with the optimizer state)


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_runs_with_smoke_alone(recipe, offline, tmp_path, capfd):
    """The README's first command, `train --config RECIPE --smoke` with no cache: the tiny set is
    synthesized in the recipe's own layout (data.format). Before: every smoke run without a cache
    trained on the AV-Deepfake1M layout, whose carve (the DFDC recipes carve validation out of
    train) left a face model only the audio-only fake: the three DFDC recipes failed (rc 2)."""
    from fakelens.data.synthetic.config import LAYOUTS

    run = tmp_path / "runs" / f"{recipe.stem}_smoke"
    fmt = recipe_format(recipe)
    assert main(["train", "--config", str(recipe), "--smoke", "--out", str(run), "--json"]) == 0
    out, err = capfd.readouterr()
    metrics = json.loads(out)
    layout = fmt if fmt in LAYOUTS else "avdeepfake1m"
    assert f"the synthetic 'tiny' set in the {layout} layout" in err
    assert json.loads((run / "smoke_data" / "synthetic.json").read_text())["config"]["layout"] == layout
    assert metrics["epochs"] == 1 and (run / "checkpoints" / "best.ckpt").is_file()
    assert metrics["n_train_fake"] and metrics["n_val_fake"] and metrics["n_val"] - metrics["n_val_fake"]
    assert "undefined" not in err and offline == []
    # the cache smoke made is one the recipe accepts: its data.sampling and data.crop (the 3D ROI
    # recipe's clip windows and ROI crops; before: evenly spaced tracked crops), and as many face
    # tracks as data.max_faces (before: 1, and every DFDC run said "data.max_faces is 2 but the
    # cache keeps 1 face track(s)" about the cache smoke had just made)
    from fakelens.train.config import load_train_config

    data = load_train_config(recipe, light=True).data
    if data.dataset != "features":
        media = json.loads((run / "cache_config.json").read_text())
        assert media["sampling"] == (data.sampling or "frames") and media["crop"] == (data.crop or "tracked")
        assert media["max_faces"] == (data.max_faces or 1) and "face track(s)" not in err
    shutil.rmtree(run)


def test_smoke_without_a_cache_makes_a_synthetic_one_and_replaces_its_own_run(tmp_path, offline, capfd):
    run = tmp_path / "runs" / "demo_smoke"
    recipe = str(CONFIGS / "demo.yaml")
    assert main(["train", "--config", recipe, "--smoke", "--out", str(run)]) == 0
    err = capfd.readouterr().err
    assert "no data.cache given: the synthetic 'tiny' set" in err
    assert (run / "smoke_cache" / "index.jsonl").is_file() and (run / "smoke.json").is_file()
    # Again: the previous smoke run is replaced (its synthetic cache reused), not refused.
    assert main(["train", "--config", recipe, "--smoke", "--out", str(run), "--set", "train.batch_size=1"]) == 0
    assert "already holds" not in capfd.readouterr().err
    # A file smoke did not make: refused, kept.
    (run / "mine.txt").write_text("keep me")
    assert main(["train", "--config", recipe, "--smoke", "--out", str(run)]) == 2
    assert "also holds files smoke did not make (mine.txt)" in capfd.readouterr().err
    assert (run / "mine.txt").read_text() == "keep me" and (run / "checkpoints" / "last.ckpt").is_file()
    (run / "mine.txt").unlink()
    # A real run is not trained into a smoke folder (a later --smoke would replace it).
    assert main(["train", "--config", recipe, "--out", str(run)]) == 2
    assert "a smoke run folder (it holds smoke.json)" in capfd.readouterr().err
    # Without the marker it is no smoke folder: refused, nothing deleted.
    (run / "smoke.json").unlink()
    assert main(["train", "--config", recipe, "--smoke", "--out", str(run)]) == 2
    assert "is not empty and is not a smoke run folder" in capfd.readouterr().err
    assert (run / "checkpoints" / "last.ckpt").is_file()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_smoke_twice_into_a_real_run_or_a_folder_of_user_files_loses_nothing(tmp_path, capfd):
    """Before: smoke wrote smoke.json into any --out folder before fit checked it, so a second
    smoke run took the folder for its own and deleted everything in it."""
    real = tmp_path / "real_run"  # what fit leaves
    (real / "checkpoints").mkdir(parents=True)
    (real / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (real / "checkpoints" / "best.ckpt").write_bytes(b"best weights")
    (real / "config.yaml").write_text("model: {}\n")
    (real / "metrics.json").write_text("{}\n")
    user = tmp_path / "my_videos"
    (user / "clips").mkdir(parents=True)
    (user / "notes.txt").write_text("mine")
    (user / "clips" / "a.mp4").write_bytes(b"\0" * 10)
    old = tmp_path / "old_marker"  # a folder the old code had already marked: its marker is not trusted
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (old / "smoke.json").write_text('{"smoke": true, "changes": []}\n')
    for folder, said in ((real, "is not empty and is not a smoke run folder"),
                         (user, "is not empty and is not a smoke run folder"),
                         (old, "holds a smoke.json that this fakelens did not write")):
        before = _snapshot(folder)
        for _ in range(2):
            assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--smoke", "--out", str(folder)]) == 2
            err = capfd.readouterr().err
            assert said in err and "empty or new --out folder" in err and "Traceback" not in err
        assert _snapshot(folder) == before, folder


def test_smoke_of_a_localizer_recipe_without_a_cache_makes_dense_features(tmp_path, offline, capfd):
    run = tmp_path / "runs" / "avdf1m_task2_smoke"
    assert main(["train", "--config", str(CONFIGS / "avdf1m_task2.yaml"), "--smoke", "--out", str(run)]) == 0
    assert "dense features of every frame (tinycnn" in capfd.readouterr().err
    cfg = json.loads((run / "smoke_cache" / "config.json").read_text())
    assert cfg["kind"] == "features" and cfg["encoder"]["visual"]["backbone"] == "tinycnn"
    assert (run / "checkpoints" / "best.ckpt").is_file() and offline == []


def test_a_cache_made_for_another_input_is_refused_with_both_values(tiny_cache, tmp_path, capfd):
    """Before: a 4-frame, 32 px cache trained the 8-frame, 64 px demo recipe without a word."""
    cache = tiny_cache("avdeepfake1m")
    capfd.readouterr()
    base = ["train", "--config", str(CONFIGS / "demo.yaml"), "--out", str(tmp_path / "run"),
            "--set", f"data.cache={cache}"]
    assert main(base) == 2
    err = capfd.readouterr().err
    assert "holds 32 px face crops (preprocessed with --size 32) but model.image_size is 64" in err
    assert "--set model.image_size=32" in err
    assert "does not fit the recipe in 2 ways" in err and "holds 4 frames per video" in err  # both at once
    assert main(base + ["--set", "model.image_size=32"]) == 2
    err = capfd.readouterr().err
    assert "holds 4 frames per video" in err and "data.clip_frames is 8" in err and "padded" in err
    assert main(base + ["--set", "data.val_split=holdout", "--set", "model.image_size=32"]) == 2
    err = capfd.readouterr().err
    assert "data.val_split is 'holdout' but the cache" in err
    assert "test (2 videos), train (4 videos), val (2 videos)" in err and "data.val_split=''" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_cache_sampled_or_cut_otherwise_than_the_recipe_states_is_refused_with_every_mismatch(
        tiny_cache, tmp_path, offline, capfd):
    """Before: the 3D ROI recipe (clip windows of consecutive frames, one still region per face)
    trained silently on a cache of evenly spaced tracked crops, and the size and frame-count
    mismatches were said one per run. Now data.sampling / data.crop are compared too, and every
    mismatch is said in one message with both values; stating the cache's values trains."""
    cache = tiny_cache("dfdc")  # 4 evenly spaced frames per video, tracked 32 px crops
    capfd.readouterr()
    base = ["train", "--config", str(CONFIGS / "dfdc_3d_roi.yaml"), "--out", str(tmp_path / "run"),
            "--set", f"data.cache={cache}", "--set", "model.pretrained=false", "--dry-run",
            "--set", "data.face_equal_threshold=0.5"]  # as in the recipes' smoke test: 32-px full frames
    assert main(base) == 2
    err = capfd.readouterr().err
    assert "does not fit the recipe in 4 ways" in err and err.count(str(cache)) == 1  # named once, not per line
    assert "holds 32 px face crops (preprocessed with --size 32) but model.image_size is 224" in err
    assert "holds 4 frames per video (preprocessed with --frames 4) but data.clip_frames is 32" in err
    assert ("samples 4 frames evenly spaced over each video (preprocessed with --frames 4) but the recipe's "
            "data.sampling is windows: preprocess with --windows K --window-frames 32 (data.clip_frames, or a multiple of it), "
            "or --set data.sampling=frames") in err  # the recipe's clip length (before: '--window-frames W')
    assert ("holds tracked crops (preprocessed with --crop tracked) but the recipe's data.crop is roi: "
            "preprocess with --crop roi (with --windows K), or --set data.crop=tracked") in err
    fits = ["--set", "model.image_size=32", "--set", "data.clip_frames=4", "--set", "data.sampling=frames",
            "--set", "data.crop=tracked"]
    assert main(base + fits) == 0
    assert "does not fit" not in capfd.readouterr().err
    assert main(base + fits[:-2]) == 2  # roi crops need clip windows: said by the config check
    assert "data.crop roi cuts one region per clip window: it needs data.sampling windows" in capfd.readouterr().err


def test_clip_windows_the_clips_do_not_divide_are_said_with_every_other_misfit(tiny_cache, tmp_path, capfd):
    """Before: on a cache of clip windows, a data.clip_frames not dividing them was the dataset's
    error alone (size, sampling, crop said one run later: the one-per-run F6 was about); and a cache
    of too few frames for every clip (--fps, --all) said neither how many it holds nor the value to
    set. Now the windows misfit is one of the numbered list, and the short one gives both values."""
    cache = tiny_cache("dfdc", RECIPE_PREPROCESS["dfdc_3d_roi"])  # 2 windows of 6 consecutive frames, roi, 32 px
    capfd.readouterr()
    base = ["train", "--config", str(CONFIGS / "dfdc_3d_roi.yaml"), "--out", str(tmp_path / "run"),
            "--set", f"data.cache={cache}", "--set", "model.pretrained=false", "--dry-run",
            "--set", "data.face_equal_threshold=0.5"]
    assert main(base) == 2
    err = capfd.readouterr().err
    assert "does not fit the recipe in 2 ways" in err and err.count(str(cache)) == 1
    assert "holds 32 px face crops (preprocessed with --size 32) but model.image_size is 224" in err
    assert ("holds clip windows of 6 consecutive frames (preprocessed with --windows 2 --window-frames 6) but "
            "data.clip_frames is 32, which does not divide them") in err and "--set data.clip_frames=6" in err
    assert main(base + ["--set", "model.image_size=32", "--set", "data.clip_frames=6"]) == 0
    capfd.readouterr()
    fps = tiny_cache("avdeepfake1m", RECIPE_PREPROCESS["avdf1m_task1"])  # 5 fps: 6-7 frames a 1.2-1.6 s training video
    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={fps}", "--dry-run",
                 "--set", "model.image_size=32", "--set", "data.clip_frames=16"]) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "has fewer sampled frames than data.clip_frames (16): at most 7 (5 frames per second)" in err, err
    assert "--set data.clip_frames=7 or fewer" in err


def _strip_audio(src: Path, dst: Path) -> None:
    """Remux a video without its audio track (no re-encoding)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)


def test_videos_left_out_are_counted_with_their_reason(tiny_synth, tmp_path, capfd):
    """The AV dataset drops a training video without audio: said in the log, metrics.json and
    RUN/left_out.json (before: dropped silently); the matched inputs are said too."""
    data = tmp_path / "data"
    shutil.copytree(tiny_synth, data)
    # a real video: the split's only audio fake must stay, or train refuses the audio head's targets
    meta = json.loads((data / "train_metadata.json").read_text())
    victim = data / sorted(e["file"] for e in meta if e["modify_type"] == "real")[0]
    _strip_audio(victim, victim.with_name("silent.mp4"))
    victim.with_name("silent.mp4").replace(victim)
    cache = _preprocess(data, tmp_path / "cache")
    run = tmp_path / "run"
    capfd.readouterr()
    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--smoke", "--out", str(run),
                 "--set", f"data.cache={cache}"]) == 0
    err = capfd.readouterr().err
    assert "left out of split 'train': 1 video (1 no audio track (the model needs audio))" in err
    assert "model.audio_frames 128 ->" in err  # counted at the audio window the data has
    left = json.loads((run / "left_out.json").read_text())
    assert left == {"train": {"no audio track (the model needs audio)": [f"train/{victim.name}"]}}
    assert json.loads((run / "metrics.json").read_text())["left_out"] == {
        "train": {"no audio track (the model needs audio)": 1}}
    assert "left out of split 'train'" in (run / "train.log").read_text()


def test_model_info_counts_a_recipe_at_the_inputs_its_cache_gives(tiny_cache, capfd):
    """FLOPs were counted at model.audio_frames (demo: 128) whatever the data's audio window;
    with data.cache they are counted at the window the training dataset cuts, as fit adapts it."""
    from fakelens.data.dataset import AVDataset

    cache = tiny_cache("avdeepfake1m")
    capfd.readouterr()
    assert main(["model", "info", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}",
                 "--set", "model.image_size=32", "--set", "data.clip_frames=4", "--json"]) == 0
    out = json.loads(capfd.readouterr().out)
    width = AVDataset(cache, "train", clip_frames=4).width
    assert out["cost"]["input_shapes"] == {"video": [1, 4, 3, 32, 32], "audio": [1, 1, 80, width]}
    assert width != 128 and any(f"model.audio_frames 128 -> {width}" in n for n in out["notes"])
    # The same recipe at the cache's other crop size: train would refuse it, model info says so.
    assert main(["model", "info", "--config", str(CONFIGS / "demo.yaml"), "--set", f"data.cache={cache}",
                 "--json"]) == 0
    assert any("train would refuse" in w and "--size 32" in w for w in json.loads(capfd.readouterr().out)["warnings"])


def test_smoke_into_a_folder_that_cannot_be_written_is_an_output_error(tmp_path, capfd):
    """Before: a NotADirectoryError / OSError(EROFS) traceback from the synthetic-data writer."""
    (tmp_path / "file").write_text("x")
    capfd.readouterr()
    assert main(["train", "--config", "configs/demo.yaml", "--smoke", "--out", str(tmp_path / "file" / "run")]) == 2
    err = capfd.readouterr().err
    assert "cannot write here: a parent of it is a file, not a folder" in err and "Traceback" not in err


@pytest.mark.slow
def test_smoke_into_a_read_only_folder_is_an_output_error(tmp_path):
    from tests.fulldisk import run_on_small_disk

    out = run_on_small_disk(tmp_path / "ro", "1m", read_only=True, script=r"""
import contextlib, io, json, sys
from fakelens.cli.main import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    rc = main(["train", "--config", "configs/demo.yaml", "--smoke", "--out", sys.argv[1] + "/run"])
print(json.dumps({"rc": rc, "err": err.getvalue()}))
""")
    assert out["rc"] == 2, out
    assert f"{tmp_path / 'ro' / 'run'}: cannot write here: read-only file system (EROFS)" in out["err"], out
    assert "Traceback" not in out["err"]


def test_real_and_fake_folders_without_splits_train_with_a_carved_validation(layout_cache, tmp_path, offline, capfd):
    """Before: "data.train_split is 'train' but the cache has no such split (its splits: (none)
    (N videos)); set data.train_split to one of them", and no value worked."""
    from fakelens.data.formats import load_dataset

    data = tmp_path / "data"
    for rec in load_dataset(layout_cache("folders")[0]).records:  # real/ and fake/, no split folders
        dest = data / ("fake" if rec.is_fake else "real") / f"{rec.split}_{Path(rec.path).name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rec.path, dest)
    cache = _preprocess(data, tmp_path / "cache")
    assert {r.get("split") for r in (json.loads(x) for x in (cache / "index.jsonl").read_text().splitlines())} == {None}
    capfd.readouterr()
    run = tmp_path / "run"
    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--smoke", "--out", str(run),
                 "--set", f"data.cache={cache}", "--set", "data.val_fraction=0.4",
                 "--set", "train.limit_val_videos=0"]) == 0, capfd.readouterr().err  # all the carve validated
    err = capfd.readouterr().err
    assert "carved out of every video of the cache (it has no splits)" in err
    # real/ + fake/ folders name no originals: the carve says so, not "by original" (before)
    assert "by original" not in err and "names no originals, so each video is a group of its own" in err
    metrics = json.loads((run / "metrics.json").read_text())
    n = len(list((cache / "index.jsonl").read_text().splitlines()))
    assert metrics["n_train"] + metrics["n_val"] == n and metrics["n_val"] > 0 and metrics["n_val_fake"] > 0


def test_train_split_empty_trains_on_every_split_but_validation(tmp_path):
    from fakelens.errors import ConfigError
    from fakelens.train.config import DataConfig, TrainConfig
    from fakelens.train.data import training_splits

    rows = [{"id": f"{s}{i}", "split": s, "npz": f"{s}{i}.npz"} for s in ("train", "val", "test") for i in range(2)]
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def cfg(**kw):
        return TrainConfig(data=DataConfig(cache=str(tmp_path), **kw))

    assert training_splits(cfg(train_split="", val_split="val")) == (("test", "train"), "val")
    assert training_splits(cfg(train_split="", val_split="")) == (None, None)
    with pytest.raises(ConfigError, match="or data.train_split='' to train on every video"):
        training_splits(cfg(train_split="trn"))


def test_smoke_clips_reach_a_3d_cnns_temporal_kernel(tiny_cache):
    """A prime window gave a 3D CNN 1-frame clips under --smoke: clips now reach the model's temporal
    kernel (the whole window of 7), a 2D model keeps the longest divisor up to 4, a window too short
    for any long enough clip is refused with the numbers; training a 3D model on clips under 3 frames says so."""
    from types import SimpleNamespace

    from fakelens.errors import ConfigError
    from fakelens.models.names import min_frames
    from fakelens.train.smoke import smoke_clip_frames

    windows = lambda w: SimpleNamespace(sampling="windows", window_frames=w)  # noqa: E731
    assert min_frames("clip3d") == min_frames("i3d") == 3 and min_frames("frame") == 1
    assert smoke_clip_frames("clip3d", 3, 16, windows(7)) == 7
    assert smoke_clip_frames("frame", 1, 32, windows(7)) == 1
    assert smoke_clip_frames("i3d", 3, 32, windows(6)) == 3 and smoke_clip_frames("frame", 1, 32, windows(6)) == 3
    assert smoke_clip_frames("i3d", 3, 32, windows(32)) == 4 and smoke_clip_frames("i3d", 3, 32, windows(9)) == 3
    assert smoke_clip_frames("clip3d", 3, 16, SimpleNamespace(sampling="frames", n_frames=8)) == 4
    assert smoke_clip_frames("clip3d", 3, 16, SimpleNamespace(sampling="fps")) == 4
    # --fps 1 on 1.4 s videos: 2 frames a video; clips of 4 were every one padded and train refused them
    assert smoke_clip_frames("frame", 1, 32, SimpleNamespace(sampling="fps"), most_frames=2) == 2
    with pytest.raises(ConfigError, match="hold at most 2 sampled frames.*kernels of 3 frames.*higher --fps"):
        smoke_clip_frames("clip3d", 3, 16, SimpleNamespace(sampling="fps"), most_frames=2)
    with pytest.raises(ConfigError, match="clip windows hold 2 consecutive frames.*kernels of 3 frames.*--window-frames 4"):
        smoke_clip_frames("clip3d", 3, 16, windows(2))
    with pytest.raises(ConfigError, match="holds 2 frames per video.*--frames 4"):
        smoke_clip_frames("i3d", 3, 16, SimpleNamespace(sampling="frames", n_frames=2))
    from fakelens.train.config import load_train_config
    from fakelens.train.data import build_datasets, match_inputs

    cfg = load_train_config(CONFIGS / "dfdc_r2plus1d.yaml", [f"data.cache={tiny_cache('dfdc')}", "data.clip_frames=2",
                                                             "model.image_size=32"])
    notes = match_inputs(cfg, build_datasets(cfg)[0])[1]
    assert any("data.clip_frames is 2 but model 'clip3d' convolves over time with kernels of 3" in n for n in notes)


def test_smoke_lines_say_all_for_a_limit_that_limits_nothing():
    """Before: 'smoke: train.limit_train_batches 1 -> 2' and 'train.limit_val_videos 0 -> 2' (1 is
    Lightning's fraction 1.0, every batch; 0 every video): read as if smoke doubled the batches."""
    from fakelens.train.config import load_train_config
    from fakelens.train.smoke import smoke_overrides

    _, notes = smoke_overrides(load_train_config(CONFIGS / "demo.yaml", light=True), None)
    assert "smoke: train.limit_train_batches all -> 2" in notes and "smoke: train.limit_val_videos all -> 2" in notes
    cfg = load_train_config(CONFIGS / "demo.yaml", ["train.limit_train_batches=0.5", "train.limit_val_videos=5"],
                            light=True)
    _, notes = smoke_overrides(cfg, None)
    assert "smoke: train.limit_train_batches 0.5 -> 2" in notes and "smoke: train.limit_val_videos 5 -> 2" in notes
    # a localizer's training windows: 0 is every step of a video (avdf1m_task2: before '0 -> 64')
    _, notes = smoke_overrides(load_train_config(CONFIGS / "avdf1m_task2.yaml", light=True), None)
    assert "smoke: data.max_steps all -> 64" in notes, notes
