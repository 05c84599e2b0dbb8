"""Where the files go and what the label files say, per layout (`SynthConfig.layout`).

Each layout writes a dataset as the real one ships, so that its reader in `fakelens.data.formats`
loads it back unchanged:

- `avdeepfake1m`: OUT/{train,val,test}/000001.mp4, OUT/{split}_metadata.json (list of entries with
  `modify_type`, `fake_segments`, `visual_fake_segments`, `audio_fake_segments`, ...);
- `csv` (the multimedia deepfake competition): OUT/{train,valid,test}/000001.mp4 and
  OUT/{train,validation,test}_labels.csv (`video_name,target`, 1 = fake);
- `dfdc`: part folders OUT/dfdc_train_part_K/ holding random 10-letter video names and a
  `metadata.json` {"abcdefghij.mp4": {"label": "REAL" | "FAKE", "split": ..., "original":
  "klmnopqrst.mp4" | null}}; a fake sits in the part of its original. The test videos are in
  OUT/test_videos/ with OUT/sample_submission.csv (`filename,label`, 0.5 everywhere, as Kaggle
  ships it) and their ground truth in OUT/labels.csv (`filename,label`, 1 = fake, as DFDC released
  the public test labels). DFDC's own metadata says "train" in every part; here the held-out parts
  say "val" so that validation stays identity-disjoint (a recipe with `val_split: ""` still carves
  validation out of the "train" parts);
- `lavdf`: OUT/{train,dev,test}/000001.mp4 and one OUT/metadata.json list of entries with `file`,
  `split` (train / dev / test), `fake_periods`, `n_fakes`, `modify_video`, `modify_audio`,
  `duration`, `original`, `video_frames`, `audio_channels`, `audio_frames`.

Every layout also writes OUT/{split}_face_boxes.json (ground-truth face boxes per frame, keyed by
the video's path relative to OUT).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from fakelens.atomic import atomic_write_text
from fakelens.data.synthetic.config import SPLITS
from fakelens.data.synthetic.motion import face_boxes, person_boxes
from fakelens.registry import Registry
from fakelens.types import Modality

if TYPE_CHECKING:
    from fakelens.data.synthetic.config import SynthConfig
    from fakelens.data.synthetic.plan import VideoPlan

MANIFEST = "synthetic.json"
_MODIFY_TYPE = {Modality.NONE: "real", Modality.VISUAL: "visual_modified",
                Modality.AUDIO: "audio_modified", Modality.BOTH: "both_modified"}


@dataclass(frozen=True)
class Slot:
    """What a layout needs to place one video: its global number, split, and the number of its
    source (the real video it shows: itself for a real, its original for a fake)."""

    index: int
    split: str
    source_index: int


class Layout:
    """A dataset layout: where each video goes, and the label files written after all videos."""

    name: ClassVar[str]

    @classmethod
    def paths(cls, slots: Sequence[Slot], seed: int) -> dict[int, str]:
        """{index: path relative to OUT} for every slot."""
        raise NotImplementedError

    @classmethod
    def label_files(cls, plans: Sequence[VideoPlan]) -> list[str]:
        """The label files `write` creates (relative to OUT)."""
        raise NotImplementedError

    @classmethod
    def write(cls, root: Path, plans: Sequence[VideoPlan]) -> None:
        raise NotImplementedError


LAYOUT_WRITERS: Registry[type[Layout]] = Registry("synthetic layout")


def _splits(plans: Sequence[VideoPlan]) -> list[str]:
    return sorted({p.split for p in plans}, key=SPLITS.index)


def _numbered(slots: Sequence[Slot], folders: dict[str, str]) -> dict[int, str]:
    return {s.index: f"{folders[s.split]}/{s.index:06d}.mp4" for s in slots}


@LAYOUT_WRITERS.register("avdeepfake1m")
class AvDeepfake1mLayout(Layout):
    name = "avdeepfake1m"

    @classmethod
    def paths(cls, slots: Sequence[Slot], seed: int) -> dict[int, str]:
        return _numbered(slots, {s: s for s in SPLITS})

    @classmethod
    def label_files(cls, plans: Sequence[VideoPlan]) -> list[str]:
        return [f"{s}_metadata.json" for s in _splits(plans)]

    @classmethod
    def write(cls, root: Path, plans: Sequence[VideoPlan]) -> None:
        for split in _splits(plans):
            items = [_record(p) for p in plans if p.split == split]
            atomic_write_text(root / f"{split}_metadata.json", json.dumps(items, indent=1))


def _record(plan: VideoPlan) -> dict:
    """The AV-Deepfake1M metadata entry of a video."""
    return {
        "file": plan.file,
        "original": plan.original,
        "split": plan.split,
        "modify_type": _MODIFY_TYPE[plan.modality],
        "audio_model": plan.audio_model,
        "fake_segments": [s.to_list() for s in plan.segments],
        "visual_fake_segments": [s.to_list() for s in plan.visual_segments],
        "audio_fake_segments": [s.to_list() for s in plan.audio_segments],
        "video_frames": plan.source.n_frames,
        "audio_frames": plan.source.n_samples if plan.source.audio else 0,
    }


_CSV_DIRS = {"train": "train", "val": "valid", "test": "test"}
_CSV_LABELS = {"train": "train_labels.csv", "val": "validation_labels.csv", "test": "test_labels.csv"}


@LAYOUT_WRITERS.register("csv")
class CsvLayout(Layout):
    name = "csv"

    @classmethod
    def paths(cls, slots: Sequence[Slot], seed: int) -> dict[int, str]:
        return _numbered(slots, _CSV_DIRS)

    @classmethod
    def label_files(cls, plans: Sequence[VideoPlan]) -> list[str]:
        return [_CSV_LABELS[s] for s in _splits(plans)]

    @classmethod
    def write(cls, root: Path, plans: Sequence[VideoPlan]) -> None:
        for split in _splits(plans):
            rows = ["video_name,target"] + [f"{Path(p.file).name},{int(p.fake is not None)}"
                                            for p in plans if p.split == split]
            atomic_write_text(root / _CSV_LABELS[split], "\n".join(rows) + "\n")


DFDC_SOURCES_PER_PART = 32  # real videos per part folder (each with its fakes)
DFDC_TEST_DIR = "test_videos"
DFDC_METADATA = "metadata.json"
DFDC_SAMPLE = "sample_submission.csv"
DFDC_TEST_LABELS = "labels.csv"


def _dfdc_name(seed: int, index: int) -> str:
    """A DFDC-like file name: 10 random lower-case letters, from (seed, index)."""
    letters = np.random.default_rng([seed, index, 0xDFDC]).integers(0, 26, 10)
    return "".join(chr(97 + int(k)) for k in letters) + ".mp4"


@LAYOUT_WRITERS.register("dfdc")
class DfdcLayout(Layout):
    name = "dfdc"

    @classmethod
    def paths(cls, slots: Sequence[Slot], seed: int) -> dict[int, str]:
        out: dict[int, str] = {}
        part = 0
        for split in SPLITS:
            here = [s for s in slots if s.split == split]
            if split == "test":
                out.update({s.index: f"{DFDC_TEST_DIR}/{_dfdc_name(seed, s.index)}" for s in here})
                continue
            sources = sorted({s.source_index for s in here})
            rank = {src: k for k, src in enumerate(sources)}
            for s in here:
                k = part + rank[s.source_index] // DFDC_SOURCES_PER_PART
                out[s.index] = f"dfdc_train_part_{k}/{_dfdc_name(seed, s.index)}"
            part += math.ceil(len(sources) / DFDC_SOURCES_PER_PART)
        names = [Path(p).name for p in out.values()]
        if len(set(names)) != len(names):  # 26^10 names: not expected, but a silent overwrite would be worse
            raise RuntimeError("synthetic DFDC layout: two videos drew the same random name")
        return out

    @classmethod
    def label_files(cls, plans: Sequence[VideoPlan]) -> list[str]:
        parts = sorted({str(Path(p.file).parent / DFDC_METADATA) for p in plans if p.split != "test"})
        test = [DFDC_SAMPLE, DFDC_TEST_LABELS] if any(p.split == "test" for p in plans) else []
        return parts + test

    @classmethod
    def write(cls, root: Path, plans: Sequence[VideoPlan]) -> None:
        parts: dict[str, dict] = {}
        for p in sorted(plans, key=lambda p: p.file):
            if p.split == "test":
                continue
            parts.setdefault(str(Path(p.file).parent), {})[Path(p.file).name] = {
                "label": "FAKE" if p.fake is not None else "REAL",
                "split": p.split,
                "original": Path(p.original).name if p.original else None,
            }
        for folder, entries in parts.items():
            atomic_write_text(root / folder / DFDC_METADATA, json.dumps(entries, indent=1))
        test = sorted((p for p in plans if p.split == "test"), key=lambda p: p.file)
        if test:
            names = [Path(p.file).name for p in test]
            atomic_write_text(root / DFDC_SAMPLE, "filename,label\n" + "".join(f"{n},0.5\n" for n in names))
            atomic_write_text(root / DFDC_TEST_LABELS, "filename,label\n" + "".join(
                f"{n},{int(p.fake is not None)}\n" for n, p in zip(names, test)))


LAVDF_SPLITS = {"train": "train", "val": "dev", "test": "test"}
LAVDF_METADATA = "metadata.json"


@LAYOUT_WRITERS.register("lavdf")
class LavdfLayout(Layout):
    name = "lavdf"

    @classmethod
    def paths(cls, slots: Sequence[Slot], seed: int) -> dict[int, str]:
        return _numbered(slots, LAVDF_SPLITS)

    @classmethod
    def label_files(cls, plans: Sequence[VideoPlan]) -> list[str]:
        return [LAVDF_METADATA]

    @classmethod
    def write(cls, root: Path, plans: Sequence[VideoPlan]) -> None:
        entries = []
        for p in sorted(plans, key=lambda p: (SPLITS.index(p.split), p.index)):
            segments = [s.to_list() for s in p.segments]
            entries.append({
                "file": p.file,
                "n_fakes": len(segments),
                "fake_periods": segments,
                "duration": round(p.source.duration, 6),
                "original": p.original,
                "modify_video": p.modality.visual,
                "modify_audio": p.modality.audio,
                "split": LAVDF_SPLITS[p.split],
                "video_frames": p.source.n_frames,
                "audio_channels": 1 if p.source.audio else 0,
                "audio_frames": p.source.n_samples if p.source.audio else 0,
            })
        atomic_write_text(root / LAVDF_METADATA, json.dumps(entries, indent=1))


def _layout(name: str) -> type[Layout]:
    return LAYOUT_WRITERS.get(name)


def _video_paths(layout: str, slots: Sequence[Slot], seed: int) -> dict[int, str]:
    return _layout(layout).paths(slots, seed)


def _output_files(plans: Sequence[VideoPlan], layout: str) -> list[str]:
    files = [p.file for p in plans]
    files += [f"{s}_face_boxes.json" for s in _splits(plans)]
    return files + _layout(layout).label_files(plans) + [MANIFEST]


def _write_metadata(root: Path, plans: Sequence[VideoPlan], config: SynthConfig) -> None:
    """The face-box sidecars and the layout's label files (after every video exists)."""
    for split in _splits(plans):
        boxes = {p.file: face_truth(p) for p in plans if p.split == split}
        atomic_write_text(root / f"{split}_face_boxes.json", json.dumps(boxes))
    _layout(config.layout).write(root, plans)


def identity_name(identity: int) -> str:
    return "astronaut" if identity == 0 else f"lfw_{identity - 1}"


def _box_rows(boxes: np.ndarray) -> list[list[float] | None]:
    return [None if not np.isfinite(b).all() else [round(float(v), 1) for v in b] for b in boxes]


def face_truth(plan: VideoPlan) -> dict:
    """The ground truth of a video's faces (its `{split}_face_boxes.json` entry).

    `boxes`: one box per frame, the largest face in the picture (null when there is none), in pixels
    of the displayed frame (after the rotation a player applies). `faces`: every person, with their
    own box per frame (null when not in the picture) and whether their face is the manipulated one
    (`fake`, with `fake_segments` in seconds). `times`: each frame's time, for a variable frame rate
    (otherwise frame k is at k / fps).
    """
    src = plan.source
    per_person = person_boxes(src)  # (P, T, 4)
    fake = plan.fake
    entry: dict = {"fps": src.fps, "boxes": _box_rows(face_boxes(src))}
    if src.frame_times:
        entry["times"] = list(src.frame_times)
    entry["faces"] = [{
        "person": k,
        "identity": identity_name(person.identity),
        "fake": bool(fake is not None and fake.modality.visual and fake.target == k),
        "fake_segments": [s.to_list() for s in plan.visual_segments] if fake is not None and fake.target == k else [],
        "boxes": _box_rows(per_person[k]),
    } for k, person in enumerate(src.persons)]
    return entry
