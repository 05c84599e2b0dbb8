"""Faces as instances: a training batch of videos with several face tracks each -> one batch of
face clips for the (pure, single-face) model, and the multiple-instance term over a video's faces.

A training item (fakelens.data.dataset.ClipDataset) holds every face track of a video, each
with a clip of its own frames: per-face keys have a face axis (B, F, ...), `face_mask` (B, F)
says which slots hold a face, and `video_label` / `bag_label` (B,) are per video. `fold_faces`
flattens the present faces into N instances (N, ...) with `bag` (N,) naming each one's video,
so a model is built and run exactly as for one face per video. Each instance carries the labels
of its own face (fakelens.data.dataset.face_instance_labels): known where the video is real
(every face real), where a fake was compared with its original (the swapped face fake, the other
real) or has one face track; -1 (unknown) otherwise, and the task leaves unknown labels out of
its per-instance terms. For videos holding unknown faces, `bag_term` adds the multiple-instance
term: the video logit is a named pooling over its faces' logits (max by default: a fake video
has at least one fake face, a real one only real faces), trained with the video's label.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from fakelens.tasks.pooling import PoolingParams, pool

PER_VIDEO_KEYS = ("id", "video_label", "bag_label", "face_mask")


def has_faces(batch: Mapping[str, Any]) -> bool:
    """True for a batch of multi-face training items (it has a `face_mask`)."""
    return isinstance(batch.get("face_mask"), torch.Tensor)


def fold_faces(batch: Mapping[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
    """(instances, bag): every per-face tensor (B, F, ...) -> (N, ...) over the N present faces
    (face_mask), per-video tensors (B,) repeated per instance, ids repeated; bag (N,) long is each
    instance's video in the batch."""
    mask = batch["face_mask"].bool()  # (B, F)
    b, f = mask.shape
    bag = torch.arange(b, device=mask.device)[:, None].expand(b, f)[mask]  # (N,)
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key == "face_mask":
            continue
        if key == "id":
            ids = list(value) if not isinstance(value, str) else [value] * b
            out[key] = [ids[i] for i in bag.tolist()]
        elif isinstance(value, torch.Tensor) and key in PER_VIDEO_KEYS:
            out[key] = value[bag]  # (N, ...)
        elif isinstance(value, torch.Tensor):
            if tuple(value.shape[:2]) != (b, f):
                raise ValueError(f"batch key {key!r} has shape {tuple(value.shape)}, not (B, F, ...) = ({b}, {f}, ...)")
            out[key] = value[mask]  # (N, ...)
        else:
            out[key] = value
    if "face_label" in out and "video_label" in out:
        # A face not known to be the fake one carries no video label: no unknown-stream rule
        # (fakelens.tasks.classification.resolve_unknown) may turn its labels into the video's;
        # it trains through the multiple-instance term over its video's faces (`bag_term`).
        out["video_label"] = torch.where(out["face_label"].float() < 0, torch.full_like(out["video_label"], -1.0),
                                         out["video_label"].float())
    return out, bag


def bag_term(video_logits: torch.Tensor, instances: Mapping[str, Any], bag: torch.Tensor, n_videos: int,
             pooling: str, params: PoolingParams, pos_weight: torch.Tensor | None = None) -> torch.Tensor | None:
    """Multiple-instance BCE over the videos holding a face of unknown label: each such video's
    logit is `pooling` over its faces' logits (N,) and is trained with its bag_label (a fake face
    among them); None when every face's label is known."""
    from fakelens.tasks.classification import _bce

    # (N,) faces not known to be the fake one (a known face's label may still be -1 where a stream is unknown)
    unknown = (instances["face_label"] if "face_label" in instances else instances["label"]).float() < 0
    if not bool(unknown.any()):
        return None
    videos = torch.unique(bag[unknown])  # (V',)
    faces = int(torch.bincount(bag, minlength=n_videos).max())
    grid = video_logits.new_zeros((n_videos, faces))  # (B, F') logits, face slots in order
    valid = torch.zeros((n_videos, faces), dtype=torch.bool, device=bag.device)
    slot = torch.zeros_like(bag)
    for v in torch.unique(bag).tolist():
        rows = torch.nonzero(bag == v).reshape(-1)
        slot[rows] = torch.arange(len(rows), device=bag.device)
    grid = grid.index_put((bag, slot), video_logits.float())
    valid[bag, slot] = True
    target = torch.zeros(n_videos, device=bag.device)
    target[bag] = instances["bag_label"].float()
    pooled = pool(pooling, grid[videos], valid[videos], params)  # (V',)
    return _bce(pooled, target[videos].clamp_min(0.0), pos_weight, mask=target[videos] >= 0)


__all__ = ["PER_VIDEO_KEYS", "bag_term", "fold_faces", "has_faces"]
