"""`fakelens train --smoke`: any recipe, offline, on a CPU, in about a minute, to check a setup
(installation, data, cache, model, checkpoints, validation) before renting GPUs.

The recipe is kept (model family, backbone, task, loss, augmentations, validation scheme) and made
small and local: pretrained weights off (nothing is downloaded), fp32 on one CPU, data loader
workers at most half the CPUs, batches of at most 2 videos, one epoch of 2 training batches
and a validation of 2 whole videos (a fake and a real one: train.limit_val_videos), clips of at most 4 frames, and the model's input size taken from the cache
(its crop size, no more frames than it holds, and for a cache of clip windows a clip length
dividing the window: 3 frames in windows of 30). A 3D CNN gets clips of at least its temporal
kernel (3 frames: in windows of 7, the whole window), or a ConfigError saying what cache it
needs (windows of 2 frames); a localizer over dense features trains on
windows of at most SMOKE_STEPS steps. Each change is one line of the run's log. `--set` after
`--smoke` still wins. Without data.cache, a tiny synthetic set is generated and preprocessed
into the run folder first (SMOKE_DATA, SMOKE_CACHE), in the recipe's own data layout
(data.format: DFDC part folders for the DFDC recipes, CSV labels, LAV-DF, else AV-Deepfake1M), as
the recipe's cache is made (data.sampling, data.crop, data.max_faces): face crops and log-mels, or for
data.dataset=features its dense features through a random-init `tinycnn` and the log-mel.

`smoke_overrides` looks up the model's inputs in the registry (torch): call it after the
light config check.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

SMOKE_FRAMES = 4  # frames per clip
SMOKE_BATCH = 2  # videos per batch
SMOKE_BATCHES = 2  # training batches of the one epoch
SMOKE_VAL_VIDEOS = 2  # validation videos, scored whole: a fake and a real one
SMOKE_SIZE = 64  # crop side of the synthetic cache made when no cache is given
SMOKE_CACHE_FRAMES = 8  # frames per video of the synthetic cache
SMOKE_WINDOWS = 2  # ... in this many clip windows for a recipe made for them (data.sampling: windows)
SMOKE_STEPS = 64  # dense-feature steps per training window of a localizer
SMOKE_ENCODER = "tinycnn"  # the visual encoder of the synthetic features folder (random init, offline)
SMOKE_DATA, SMOKE_CACHE = "smoke_data", "smoke_cache"  # inside the run folder
MARKER = "smoke.json"  # a run folder holding this is a smoke run: a new --smoke run replaces it
MARKER_KIND = "fakelens smoke run"  # in the marker: written only into a folder smoke made itself
# What a smoke run writes into its folder (fit's run files, the marker, the synthetic set): a new
# smoke run removes these (all but SMOKE_KEPT) and nothing else.
SMOKE_ENTRIES = frozenset({"config.yaml", "cache_config.json", "checkpoints", "logs", "metrics.json",
                           "left_out.json", "train.log", MARKER, SMOKE_DATA, SMOKE_CACHE})
SMOKE_KEPT = frozenset({MARKER, SMOKE_DATA, SMOKE_CACHE})  # the marker is rewritten at the end


def smoke_marker(changes: list[str]) -> dict[str, Any]:
    """The content of MARKER: what this smoke run changed in the recipe."""
    return {"smoke": True, "kind": MARKER_KIND, "changes": list(changes)}


def _is_temporary(name: str) -> bool:
    """A temporary file fakelens.atomic left behind (a killed write): `.NAME.HOST~PID~...tmp`."""
    return name.startswith(".") and "~" in name and name.endswith(".tmp")


def smoke_folder_entries(out: Path) -> list[Path] | None:
    """None if `out` is missing or empty (a new smoke run may make it its own); the entries of a
    previous smoke run if `out` is one (a MARKER smoke wrote, of MARKER_KIND, and nothing but
    SMOKE_ENTRIES and atomic temporaries). Anything else is a ConfigError naming what is there:
    smoke never deletes a real run or a user's files."""
    from fakelens.errors import ConfigError

    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        return None  # a file in the way: ensure_writable says so
    entries = sorted(out.iterdir())
    if not entries:
        return None
    advice = "; give --smoke an empty or new --out folder (default runs/<recipe>_smoke)"
    marker = out / MARKER
    kind = None
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
    if kind != MARKER_KIND:
        shown = ", ".join(e.name for e in entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
        what = ("holds a smoke.json that this fakelens did not write into a folder of its own"
                if marker.exists() else "is not empty and is not a smoke run folder")
        raise ConfigError(f"{out}: {what} ({shown}); --smoke would replace it{advice}")
    foreign = [e.name for e in entries if e.name not in SMOKE_ENTRIES and not _is_temporary(e.name)]
    if foreign:
        raise ConfigError(f"{out}: a smoke run folder that also holds files smoke did not make "
                          f"({', '.join(foreign[:5])}); --smoke would replace the run{advice}")
    return entries


def remove_smoke_run(out: Path, entries: list[Path]) -> None:
    """Remove what a previous smoke run made in `out` (smoke_folder_entries), but its synthetic
    data and cache and its marker (SMOKE_KEPT: an interrupted run stays a smoke folder)."""
    for entry in entries:
        if entry.name in SMOKE_KEPT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask where there is one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cache_most_frames(cache: str | Path) -> int | None:
    """The most sampled frames any video of a cache holds (its index's counts; None: none said)."""
    from fakelens.data.cache import read_index

    counts = [int((row.get("counts") or {}).get("frames", 0)) for row in read_index(Path(cache)) if row.get("npz")]
    return max(counts) if counts else None


def smoke_overrides(cfg: Any, cache_config: Any | None, most_frames: int | None = None) -> tuple[list[str], list[str]]:
    """(`--set` overrides, what each changes in words) making `cfg` a smoke run; `cache_config` is
    the MediaConfig the cache was made with (None: unknown), `most_frames` the most sampled frames
    a video of the cache holds (cache_most_frames; a cache sampled by rate holds few per short video)."""
    from fakelens.models import MODELS

    sets: list[tuple[str, Any, Any]] = []  # key, old, new

    def put(key: str, new: Any) -> None:
        section, name = key.split(".")
        old = getattr(getattr(cfg, section), name)
        if old != new:
            sets.append((key, old, new))

    m, d, t = cfg.model, cfg.data, cfg.train
    put("model.pretrained", False)
    if m.audio_pretrained not in (None, False):
        put("model.audio_pretrained", None)
    put("train.precision", "32")
    put("train.accelerator", "cpu")
    put("train.devices", "1")
    put("train.strategy", "auto")
    put("train.num_nodes", 1)
    put("train.num_workers", min(t.num_workers, max(1, cpu_count() // 2)))  # leave CPUs to the model
    put("train.batch_size", min(t.batch_size, SMOKE_BATCH))
    put("train.accumulate_grad_batches", 1)
    put("train.epochs", 1)
    put("train.limit_train_batches", float(SMOKE_BATCHES))  # > 1: a count of batches
    # Validation: a few whole videos, fakes and reals in turn (a count of batches could end inside
    # the first video: "val_auc undefined" in every smoke run of a recipe with many clips a video).
    put("train.limit_val_batches", 1.0)
    put("train.limit_val_videos", SMOKE_VAL_VIDEOS if t.limit_val_videos <= 0 else min(t.limit_val_videos,
                                                                                     SMOKE_VAL_VIDEOS))
    put("train.val_every_n_epochs", 1)
    put("train.log_every_n_steps", 1)
    put("train.patience", 0)
    from fakelens.models.names import min_frames

    spec = MODELS.get(m.name)
    least = min_frames(m.name)
    extra: list[str] = []
    if "video" in spec.inputs:
        frames = smoke_clip_frames(m.name, least, d.clip_frames, cache_config, most_frames)
        if most_frames is not None and frames == most_frames < min(d.clip_frames, SMOKE_FRAMES):
            extra.append(f"smoke: clips of {frames} frames: no video of the cache holds more sampled frames")
        if frames > SMOKE_FRAMES:
            extra.append(f"smoke: clips of {frames} frames, not {SMOKE_FRAMES}: the shortest clip of at least "
                         f"{least} frames (model {m.name!r} convolves over time with kernels of "
                         f"{least} frames) that divides the cache's clip windows of "
                         f"{cache_config.window_frames} frames")
        put("data.clip_frames", frames)
        put("model.num_frames", frames)
        if cache_config is not None:
            put("model.image_size", int(cache_config.size))
    if d.dataset == "features":
        put("data.max_steps", min(d.max_steps, SMOKE_STEPS) if d.max_steps > 0 else SMOKE_STEPS)
    overrides = [f"{key}={_text(new)}" for key, _, new in sets]
    notes = [f"smoke: {key} {_shown(key, old)} -> {_shown(key, new)}" for key, old, new in sets] + extra
    return overrides, notes


# Values of a limit that mean "no limit": a fraction 1 of the batches, 0 videos, 0 steps (a smoke line says
# "all -> 2", not "1 -> 2", which reads as if smoke doubled the batches)
_ALL = {"train.limit_train_batches": 1.0, "train.limit_val_batches": 1.0, "train.limit_val_videos": 0,
        "data.max_steps": 0}  # features: 0 = whole videos


def _shown(key: str, value: Any) -> str:
    """A config value in a smoke line: "all" for a limit that limits nothing, else as --set writes it."""
    return "all" if key in _ALL and value == _ALL[key] and not isinstance(value, bool) else _text(value)


def smoke_clip_frames(model: str, min_frames: int, clip_frames: int, cache_config: Any | None,
                      most_frames: int | None = None) -> int:
    """Frames per clip of a smoke run: at most SMOKE_FRAMES (and what the recipe asks, and a
    fixed-count cache holds), at least `min_frames` (a 3D CNN's temporal kernel). In a cache of
    clip windows a clip lies inside one window (ClipDataset), so its length divides the window:
    the longest divisor up to SMOKE_FRAMES, else the shortest one reaching `min_frames` (windows
    of 7 frames: 1-frame clips for a 2D model, the whole window for a 3D one). In a cache sampled by
    rate (--fps, --all) no longer than the most frames a video holds (`most_frames`), or every clip
    would be padded. ConfigError when no clip the cache can give is long enough for the model."""
    from fakelens.errors import ConfigError

    frames = max(min(clip_frames, SMOKE_FRAMES), min(min_frames, clip_frames))
    if cache_config is None:
        return frames
    if cache_config.sampling == "frames":
        if cache_config.n_frames < min_frames:
            raise ConfigError(f"the cache holds {cache_config.n_frames} frames per video but model {model!r} "
                              f"convolves over time with kernels of {min_frames} frames: preprocess with --frames "
                              f"{max(min_frames, SMOKE_FRAMES)} or more for a smoke run of this recipe")
        return min(frames, cache_config.n_frames)
    if cache_config.sampling == "windows":
        window = int(cache_config.window_frames)
        divisors = [k for k in range(1, window + 1) if window % k == 0]
        short = [k for k in divisors if min_frames <= k <= frames]
        if short:
            return max(short)
        longer = [k for k in divisors if k >= min_frames]
        if not longer:
            raise ConfigError(f"the cache's clip windows hold {window} consecutive frames but model {model!r} "
                              f"convolves over time with kernels of {min_frames} frames: no clip inside a window "
                              f"is long enough; preprocess with --window-frames {max(min_frames, SMOKE_FRAMES)} "
                              "or more")
        return min(longer)
    if most_frames is not None:
        if most_frames < min_frames:
            raise ConfigError(f"the cache's videos hold at most {most_frames} sampled frames but model {model!r} "
                              f"convolves over time with kernels of {min_frames} frames: preprocess with a higher "
                              "--fps (or --frames N) for a smoke run of this recipe")
        return max(1, min(frames, most_frames))
    return frames


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def smoke_layout(data_format: str) -> str:
    """The synthetic layout of a smoke run's tiny set for a recipe's data.format: the recipe's own
    (DFDC part folders, CSV labels, LAV-DF with its dev split, AV-Deepfake1M metadata), and
    AV-Deepfake1M for a recipe made for any data ("") or for real/ + fake/ folders (not synthesized)."""
    from fakelens.data.synthetic.config import LAYOUTS

    return data_format if data_format in LAYOUTS else "avdeepfake1m"


def smoke_synth(layout: str) -> Any:
    """The SynthConfig of a smoke run's tiny set in `layout`: the 'tiny' preset, and for DFDC its
    fakes manipulated all along, as DFDC's are (a recipe's clip windows could otherwise miss a
    short fake segment, and its faces then rightly compare equal to the original: no fake to learn)."""
    from fakelens.data.synthetic import preset

    return preset("tiny", layout=layout, **({"fake_span": "whole"} if layout == "dfdc" else {}))


def _synthetic_config(data: Path) -> tuple[str, str] | None:
    """(layout, fake_span) of the synthetic set in `data` (its manifest), None if there is none."""
    try:
        config = json.loads((data / "synthetic.json").read_text())["config"]
        return config["layout"], config.get("fake_span", "segments")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def smoke_cache_config(sampling: str = "", crop: str = "", max_faces: int | None = None) -> Any:
    """The CacheConfig of a smoke run's tiny cache for a recipe's data.sampling, data.crop and
    data.max_faces (fakelens.train.config.DataConfig: "" / None = the recipe asks for none):
    SMOKE_CACHE_FRAMES evenly spaced frames by default, or as many in SMOKE_WINDOWS windows, or
    the recipe's rate sampling; full-frame crops of SMOKE_SIZE px, the recipe's faces per video."""
    from fakelens.data.cache import CacheConfig

    kinds: dict[str, dict[str, Any]] = {"": {"sampling": "frames", "n_frames": SMOKE_CACHE_FRAMES},
                                        "frames": {"sampling": "frames", "n_frames": SMOKE_CACHE_FRAMES},
                                        "fps": {"sampling": "fps"}, "all": {"sampling": "all"},
                                        "windows": {"sampling": "windows", "n_windows": SMOKE_WINDOWS,
                                                    "window_frames": SMOKE_CACHE_FRAMES // SMOKE_WINDOWS}}
    return CacheConfig(**kinds[sampling], crop=crop or "tracked", size=SMOKE_SIZE, detector="full_frame",
                       max_faces=max_faces or 1)


def make_smoke_cache(run_dir: Path, progress: bool = False, dataset: str = "clips", data_format: str = "",
                     sampling: str = "", crop: str = "", max_faces: int | None = None) -> tuple[Path, list[str]]:
    """A tiny synthetic set (8 videos) in the recipe's data layout (`data_format`, smoke_layout)
    preprocessed into RUN/smoke_cache with the full-frame detector (no face detector needed), as
    the recipe's data.sampling, data.crop and data.max_faces ask (smoke_cache_config), for a smoke
    run given no data.cache; for `dataset` "features" its dense features (every frame,
    SMOKE_ENCODER + log-mel). A set or cache an earlier smoke run of another recipe left in the
    folder (another layout, dense or not, other parameters) is made again."""
    from fakelens.data.cache import preprocess
    from fakelens.data.formats import load_dataset
    from fakelens.data.synthetic import generate

    data = Path(run_dir) / SMOKE_DATA
    cache = Path(run_dir) / SMOKE_CACHE
    dense = dataset == "features"
    layout = smoke_layout(data_format)
    wanted = None if dense else smoke_cache_config(sampling, crop, max_faces)
    synth = smoke_synth(layout)
    if data.exists() and _synthetic_config(data) != (layout, synth.fake_span):  # another recipe's (or an unfinished) set
        shutil.rmtree(data)
        shutil.rmtree(cache, ignore_errors=True)
    if (cache / "index.jsonl").is_file():
        from fakelens.data.cache import load_config
        from fakelens.data.features import FeatureConfig

        old = load_config(cache)
        if isinstance(old, FeatureConfig) != dense or (wanted is not None and old != wanted):
            shutil.rmtree(cache)  # an earlier smoke run of another recipe
    if not (cache / "index.jsonl").is_file():
        if not (data / "synthetic.json").is_file():
            generate(data, synth, progress=progress, overwrite=data.exists())
        records = load_dataset(data).records
        if dense:
            from fakelens.features.media import MediaConfig
            from fakelens.inference.dense import run_features

            run_features(SMOKE_ENCODER, records, cache, progress=progress,
                         media=MediaConfig(sampling="all", size=SMOKE_SIZE, detector="full_frame", max_faces=1))
        else:
            preprocess(records, cache, wanted, progress=progress)
    if wanted is None:
        what = f"dense features of every frame ({SMOKE_ENCODER}, random init, on {SMOKE_SIZE}-px full frames; log-mel)"
    else:
        frames = {"frames": f"{wanted.n_frames} frames", "fps": f"{wanted.sample_fps:g} frames per second",
                  "all": "every frame", "windows": f"{wanted.n_windows} windows of {wanted.window_frames} "
                                                   "consecutive frames"}[wanted.sampling]
        what = f"{frames} of {SMOKE_SIZE} px per video, full-frame {wanted.crop} crops"
    shape = f"the synthetic 'tiny' set in the {layout} layout"
    if data_format != layout:
        shape += (f" (data.format {data_format!r} is not synthesized)" if data_format else
                  " (the recipe sets no data.format)")
    return cache, [f"smoke: no data.cache given: {shape} ({data}) preprocessed into {cache} ({what})"]
