"""A localizer run on one video's dense features: windows -> model -> candidates -> proposals.

The same functions serve `fakelens predict` (fakelens.inference.pipeline) and training
validation (fakelens.train.module), so validation AP is the AP of what predict writes. A video
longer than `predict.window_steps` steps is cut into windows overlapping by
`predict.window_overlap` steps (fakelens.inference.postprocess.window_starts); each window
answers for its own part of the timeline (`own_span`), and the candidates of all windows are
pooled before the suppression. Proposals come from the boundary head ("boundaries", the
default of localizer recipes) or, by name, from thresholds on the per-step scores
("thresholds", the baseline that also works for classification runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from fakelens.errors import ConfigError
from fakelens.inference.postprocess import (Candidates, decode_points, own_span, proposals_from_cells,
                                            select_proposals, step_cells, window_starts)
from fakelens.types import Proposal

PROPOSAL_METHODS = ("auto", "boundaries", "thresholds")


@dataclass
class Localized:
    """A localizer's answer for one video."""

    score: float  # P(fake) of the video: the maximum per-step score
    step_times: np.ndarray  # (T,) seconds where each step starts
    step_scores: np.ndarray  # (T,) P(the step is inside a fake segment)
    proposals: tuple[Proposal, ...]
    n_windows: int
    # The modality head's answer, on the scale of the proposals' confidences: per stream the
    # highest P(point fake) * P(its segment's face / voice is fake | fake) over the video's points
    # (the model's joint estimate that some segment is fake in that stream); None without points.
    visual_score: float | None = None
    audio_score: float | None = None


def window_items(x: Any, window: int, overlap: int) -> list[dict[str, Any]]:
    """Model inputs of a video's windows (fakelens.data.features.StepInputs x), no batch dim."""
    starts = window_starts(x.n_steps, window, min(overlap, window - 1))
    items = []
    for k, a in enumerate(starts):
        b = min(x.n_steps, int(a) + window)
        lo, hi = own_span(k, starts, window, x.n_steps)
        items.append({
            "visual_features": torch.from_numpy(x.visual[a:b]),  # (L, Dv)
            "audio_features": torch.from_numpy(x.audio[a:b]),  # (L, Da)
            "mask": torch.ones(b - a, dtype=torch.bool),
            "visual_mask": torch.from_numpy(x.visual_mask[a:b]),
            "audio_mask": torch.from_numpy(x.audio_mask[a:b]),
            "start": int(a), "own": (lo, hi),
        })
    return items


def _item_points(strides: torch.Tensor, length: int, multiple: int) -> torch.Tensor:
    """Indices of the points belonging to an item of `length` steps in a batch's point layout."""
    padded = -(-length // multiple) * multiple
    idx = []
    level_strides = torch.unique(strides).tolist()
    for s in sorted(level_strides):
        where = torch.nonzero(strides == s).reshape(-1)
        idx.append(where[: -(-padded // int(s))])
    return torch.cat(idx)


@torch.inference_mode()
def forward_items(model: torch.nn.Module, items: Sequence[dict[str, Any]], device: torch.device | str = "cpu"
                  ) -> list[dict[str, np.ndarray]]:
    """One padded forward pass over windows (of any videos) -> per item: frame_probs (L,),
    point_probs (P,), point_offsets (P, 2), point_modality (P, 2) probabilities, point_centres
    and point_strides (P,) in steps of the item, point_mask (P,)."""
    from fakelens.data.features import collate_steps

    keys = ("visual_features", "audio_features", "mask", "visual_mask", "audio_mask")
    batch = collate_steps([{k: it[k] for k in keys} for it in items])
    out = model(**{k: batch[k].to(device) for k in keys})
    strides = out["point_strides"].cpu()
    multiple = int(getattr(model, "multiple", 1))
    results = []
    for i, it in enumerate(items):
        length = int(it["mask"].shape[0])
        p = _item_points(strides, length, multiple)
        results.append({
            "frame_probs": torch.sigmoid(out["frame_logits"][i, :length].float()).cpu().numpy(),
            "point_probs": torch.sigmoid(out["point_logits"][i, p].float()).cpu().numpy(),
            "point_offsets": out["point_offsets"][i, p].float().cpu().numpy(),
            "point_modality": torch.sigmoid(out["point_modality"][i, p].float()).cpu().numpy(),
            "point_mask": out["point_mask"][i, p].cpu().numpy(),
            "point_centres": out["point_centres"][p].cpu().numpy(),
            "point_strides": strides[p].numpy(),
        })
    return results


def finish(x: Any, items: Sequence[dict[str, Any]], outputs: Sequence[dict[str, np.ndarray]], predict: Any
           ) -> Localized:
    """Pool the windows' outputs of one video into its score, per-step scores and proposals, with
    the run's `predict` section (proposals, suppression, iou_threshold, soft_nms_sigma,
    max_proposals, pre_topk, thresholds)."""
    method = getattr(predict, "proposals", "boundaries")
    if method not in PROPOSAL_METHODS:
        raise ConfigError(f"predict.proposals must be one of {PROPOSAL_METHODS}, got {method!r}")
    method = "boundaries" if method == "auto" else method
    n = x.n_steps
    step_scores = np.zeros(n, np.float64)
    parts = []
    streams = []  # (P, 2) per window: P(point fake) * P(visual / audio fake | fake)
    for it, o in zip(items, outputs):
        a = it["start"]
        lo, hi = it["own"]
        steps = a + np.arange(len(o["frame_probs"]))
        own = (steps + 0.5 >= lo) & (steps + 0.5 < hi)
        step_scores[steps[own]] = o["frame_probs"][own]
        centres = o["point_centres"] + a
        keep = o["point_mask"] & (centres >= lo) & (centres < hi)
        if keep.any():
            st, en = decode_points(centres[keep], o["point_strides"][keep], o["point_offsets"][keep],
                                   x.step_seconds, x.origin)
            parts.append(Candidates(o["point_probs"][keep], st, en))
            streams.append(o["point_probs"][keep, None] * o["point_modality"][keep])  # (P, 2)
    times = x.times
    duration = float(x.duration) if x.duration > 0 else float(times[-1] + x.step_seconds)
    # a variable frame rate: proposals are made on the grid (frame / fps seconds, where the steps
    # are) and their seconds mapped back to the video's (fakelens.data.features.StepWarp)
    warp = getattr(x, "warp", None)
    grid_duration = duration if warp is None else float(warp.to_grid(duration))
    if method == "boundaries":
        props = select_proposals(Candidates.concat(parts), grid_duration, predict.suppression, predict.iou_threshold,
                                 predict.max_proposals, getattr(predict, "soft_nms_sigma", 0.5),
                                 getattr(predict, "pre_topk", 2000))
    else:
        # step j's cell is [origin + j k / fps, + k / fps), the grid its label and decode_points use
        # (step_cells at the grid's step): not frame_cells, which takes its step from the median
        # interval and stretches a first cell that starts within one step of 0 s back to 0 s
        starts, ends = step_cells(times, x.step_seconds, grid_duration)
        props = proposals_from_cells(starts, ends, step_scores,
                                     thresholds=predict.thresholds, suppression=predict.suppression,
                                     iou_threshold=predict.iou_threshold, max_proposals=predict.max_proposals)
    if warp is not None:
        times = warp.to_real(times)
        st = np.clip(warp.to_real([p.start for p in props]), 0.0, duration)
        en = np.clip(warp.to_real([p.end for p in props]), 0.0, duration)
        props = tuple(Proposal(p.confidence, float(a), float(max(b, np.nextafter(a, np.inf))))
                      for p, a, b in zip(props, st, en))
    joint = np.concatenate(streams).max(axis=0) if streams else None  # (2,)
    return Localized(score=float(step_scores.max(initial=0.0)), step_times=times, step_scores=step_scores,
                     proposals=props, n_windows=len(items),
                     visual_score=None if joint is None else float(joint[0]),
                     audio_score=None if joint is None else float(joint[1]))


def localize(model: torch.nn.Module, x: Any, predict: Any, device: torch.device | str = "cpu",
             batch_size: int = 8) -> Localized:
    """Everything above for one video: windows, batched forward passes, pooling."""
    items = window_items(x, predict.window_steps, predict.window_overlap)
    outputs: list[dict[str, np.ndarray]] = []
    for i in range(0, len(items), batch_size):
        outputs += forward_items(model, items[i:i + batch_size], device)
    return finish(x, items, outputs, predict)
