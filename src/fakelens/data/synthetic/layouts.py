"""Where the files go and what the label files say, per layout (`SynthConfig.layout`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from fakelens.atomic import atomic_write_text
from fakelens.data.synthetic.config import SPLITS
from fakelens.data.synthetic.motion import face_boxes
from fakelens.types import Modality

if TYPE_CHECKING:
    from fakelens.data.synthetic.config import SynthConfig
    from fakelens.data.synthetic.plan import VideoPlan

MANIFEST = "synthetic.json"
_CSV_DIRS = {"train": "train", "val": "valid", "test": "test"}
_CSV_LABELS = {"train": "train_labels.csv", "val": "validation_labels.csv", "test": "test_labels.csv"}
_MODIFY_TYPE = {Modality.NONE: "real", Modality.VISUAL: "visual_modified",
                Modality.AUDIO: "audio_modified", Modality.BOTH: "both_modified"}


def _video_path(split: str, index: int, layout: str) -> str:
    folder = _CSV_DIRS[split] if layout == "csv" else split
    return f"{folder}/{index:06d}.mp4"

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
        "audio_frames": plan.source.n_samples,
    }

def _output_files(plans: Sequence[VideoPlan], layout: str) -> list[str]:
    files = [p.file for p in plans]
    splits = sorted({p.split for p in plans}, key=SPLITS.index)
    files += [f"{s}_face_boxes.json" for s in splits]
    files += [f"{s}_metadata.json" for s in splits] if layout == "avdeepfake1m" else [_CSV_LABELS[s] for s in splits]
    return files + [MANIFEST]

def _write_metadata(root: Path, plans: Sequence[VideoPlan], config: SynthConfig) -> None:
    for split in SPLITS:
        items = [p for p in plans if p.split == split]
        if not items:
            continue
        boxes = {p.file: {"fps": p.source.fps, "boxes": np.round(face_boxes(p.source), 1).tolist()} for p in items}
        atomic_write_text(root / f"{split}_face_boxes.json", json.dumps(boxes))
        if config.layout == "avdeepfake1m":
            atomic_write_text(root / f"{split}_metadata.json", json.dumps([_record(p) for p in items], indent=1))
        else:
            rows = ["video_name,target"] + [f"{Path(p.file).name},{int(p.fake is not None)}" for p in items]
            atomic_write_text(root / _CSV_LABELS[split], "\n".join(rows) + "\n")
