"""The `localization` task: targets and losses of an anchor-free fake-segment localizer
(fakelens.models.localizer), after ActionFormer-style temporal detectors.

Time is counted in steps of the dense features: step j covers video frames
[first + j * k, first + (j + 1) * k) (k = 1 when every frame is a step). Ground-truth segments
in seconds become step edges by the challenge's frame rule (fakelens.types.segment_steps): frames
int(start * fps) to int(end * fps), at least one frame. Videos without segments are negative
at every step; a fake video without segments (video-level labels only) is excluded from the
point losses and its steps are all fake for the per-step term.

Targets (`point_targets`): a point at centre c (steps) of a level with stride s is positive for
a segment [a, b) when it lies inside it, within `center_radius` * s of its centre (centre
sampling), and the farther of its distances to a and b is in the level's range (level 0: up to
`regression_base` steps, level l: base * 2^(l-1) to base * 2^l, the last level unbounded), so
short segments are found at fine levels and long ones at coarse levels; among several such
segments the shortest wins. Its regression target is (c - a, b - c) / s.

Losses: sigmoid focal loss over every valid point, DIoU (or GIoU) of the predicted distances on
the positive points, both divided by the number of positives; BCE of the per-step
`frame_logits` against the steps inside any segment (`frame_weight`); BCE of the positives'
visual-fake / audio-fake logits against the segment's modality (`modality_weight`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fakelens.tasks.classification import TASKS, Batch, Outputs, Target, Task, _bce, _rule
from fakelens.types import segment_steps  # noqa: F401  (the frame rule of the targets, re-exported)

UNKNOWN = -1.0


def regression_ranges(strides: torch.Tensor, base: float, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) low and high bounds (steps) of the farther boundary distance each point answers for."""
    level = torch.log2(strides).round()
    lo = torch.where(level == 0, torch.zeros_like(strides), base * 2.0 ** (level - 1))
    hi = torch.where(level >= levels - 1, torch.full_like(strides, float("inf")), base * 2.0 ** level)
    return lo, hi


def point_targets(centres: torch.Tensor, strides: torch.Tensor, segments: torch.Tensor, n_segments: torch.Tensor,
                  *, center_radius: float = 1.5, regression_base: float = 4.0, levels: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points (N,) centres and strides in steps, segments (B, S, 2) edges in steps (rows past
    n_segments (B,) ignored) -> positive (B, N) bool, regression targets (B, N, 2) in stride
    units (zero where negative) and the index (B, N) of the assigned segment (-1 where negative)."""
    levels = int(torch.log2(strides.max()).round().item()) + 1 if levels is None else levels
    b, s = segments.shape[:2]
    c = centres[None, :, None]  # (1, N, 1)
    st = strides[None, :, None]
    a, e = segments[:, None, :, 0], segments[:, None, :, 1]  # (B, 1, S)
    left, right = c - a, e - c  # (B, N, S)
    mid = (a + e) / 2
    lo_c = torch.maximum(a, mid - center_radius * st)
    hi_c = torch.minimum(e, mid + center_radius * st)
    lo, hi = regression_ranges(strides, regression_base, levels)
    far = torch.maximum(left, right)
    exists = torch.arange(s, device=segments.device)[None, None, :] < n_segments[:, None, None]  # (B, 1, S)
    ok = (left > 0) & (right > 0) & (c > lo_c) & (c < hi_c) & (far >= lo[None, :, None]) & (far <= hi[None, :, None])
    ok = ok & exists
    length = torch.where(ok, e - a, torch.full_like(left, float("inf")))  # (B, N, S)
    best = length.argmin(dim=2)  # (B, N) the shortest matching segment
    positive = ok.any(dim=2)
    pick = best[..., None]
    reg = torch.stack([left.gather(2, pick)[..., 0], right.gather(2, pick)[..., 0]], dim=-1) / strides[None, :, None]
    reg = torch.where(positive[..., None], reg, torch.zeros_like(reg))
    return positive, reg, torch.where(positive, best, torch.full_like(best, -1))


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
                       ) -> torch.Tensor:
    """Element-wise focal loss (Lin et al.): -alpha_t (1 - p_t)^gamma log p_t, float32."""
    logits, target = logits.float(), target.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return a_t * (1 - p_t) ** gamma * ce


def iou_loss_1d(pred: torch.Tensor, target: torch.Tensor, kind: str = "diou") -> torch.Tensor:
    """(..., 2) predicted and target (distance to start, distance to end) from the same point ->
    (...,) 1 - IoU plus the DIoU centre-distance term or the GIoU enclosure term."""
    pred, target = pred.float(), target.float()
    pl, pr = pred[..., 0], pred[..., 1]
    tl, tr = target[..., 0], target[..., 1]
    inter = torch.minimum(pl, tl).clamp_min(0) + torch.minimum(pr, tr).clamp_min(0)
    union = (pl + pr) + (tl + tr) - inter
    iou = inter / union.clamp_min(1e-6)
    enclose = (torch.maximum(pl, tl) + torch.maximum(pr, tr)).clamp_min(1e-6)
    if kind == "giou":
        return 1 - iou + (enclose - union) / enclose
    rho = ((pr - pl) - (tr - tl)) / 2  # distance between the two segments' centres
    return 1 - iou + (rho / enclose) ** 2


@TASKS.register("localization")
class LocalizationTask(Task):
    """Fake-segment localization over the pyramid points of `localizer`. The batch holds
    `segments` (B, S, 2) step edges, `n_segments` (B,), `segment_modality` (B, S, 2) visual/audio
    fake (-1 unknown), `frame_labels` (B, T) and `mask` (B, T); `label` (B,) is the video label.

    Its targets (counted before training by fakelens.train.targets): `cls` the points' fake score
    (sigmoid focal loss, normalised by the positive points), `reg` their start/end distances (IoU
    loss on the positive points), both counted on the per-step labels they are made from; `frame`
    the per-step logits (BCE, pos_weight when data.balance is pos_weight); `modality` the positive
    points' visual-fake / audio-fake logits against the per-stream segments (unknown: left out).
    The focal loss balances the points itself: no pos_weight enters `cls`."""

    def targets(self) -> list[Target]:
        cfg = self.cfg
        stream = _rule(cfg, False)
        rows = [Target("cls", "frame_labels", 1.0, "ignore", "mask", about="fake points, focal"),
                Target("reg", "frame_labels", cfg.reg_weight, "ignore", "mask", about="segment boundaries, IoU"),
                Target("frame", "frame_labels", cfg.frame_weight, "ignore", "mask", about="per-step logits"),
                Target("modality", "segment_modality", cfg.modality_weight, stream, about="visual/audio fake")]
        return [t for t in rows if t.weight > 0]

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        return outputs["logit"]

    def assign(self, outputs: Outputs, batch: Batch, levels: int | None = None):
        """Per pyramid point: positive (B, N), distance targets (B, N, 2), assigned segment (B, N)."""
        return point_targets(outputs["point_centres"], outputs["point_strides"], batch["segments"].float(),
                             batch["n_segments"], center_radius=self.cfg.center_radius,
                             regression_base=self.cfg.regression_base, levels=levels)

    def loss(self, outputs: Outputs, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        for key in ("segments", "n_segments"):
            if key not in batch:
                raise KeyError(f"the localization task needs batch key {key!r} (data.dataset=features); "
                               f"the batch has {sorted(batch)}")
        weight = {t.term: self.weight(t) for t in self.targets()}
        positive, reg_target, assigned = self.assign(outputs, batch)
        label = batch["label"].float()  # (B,)
        # Points are trained on videos whose segments are known: labelled, and real or with segments.
        known = (label >= 0) & ((label < 0.5) | (batch["n_segments"] > 0))  # (B,)
        valid = outputs["point_mask"] & known[:, None]  # (B, N)
        n_pos = (positive & valid).sum().clamp_min(1).float()
        pos = positive & valid
        total = outputs["point_logits"].sum() * 0.0
        parts: dict[str, torch.Tensor] = {}
        if weight.get("cls", 0.0) > 0:
            focal = sigmoid_focal_loss(outputs["point_logits"], positive.float(), cfg.focal_alpha, cfg.focal_gamma)
            cls = (focal * valid).sum() / n_pos
            total = total + weight["cls"] * cls
            parts["cls"] = cls.detach()
        if weight.get("reg", 0.0) > 0:
            reg = (iou_loss_1d(outputs["point_offsets"][pos], reg_target[pos], cfg.iou_loss).sum() / n_pos
                   if pos.any() else outputs["point_offsets"].sum() * 0.0)
            total = total + weight["reg"] * reg
            parts["reg"] = reg.detach()
        if weight.get("frame", 0.0) > 0 and "frame_labels" in batch:
            target = batch["frame_labels"].float()  # (B, T), -1 unknown
            ok = target >= 0
            if "mask" in batch and batch["mask"].shape == target.shape:
                ok = ok & batch["mask"].bool()
            frame = _bce(outputs["frame_logits"], target.clamp_min(0.0), self._pw("frame", target), mask=ok)
            total = total + weight["frame"] * frame
            parts["frame"] = frame.detach()
        if weight.get("modality", 0.0) > 0 and "segment_modality" in batch and pos.any():
            mod = batch["segment_modality"].float()  # (B, S, 2)
            idx = assigned.clamp_min(0)[..., None].expand(-1, -1, 2)  # (B, N, 2)
            target = mod.gather(1, idx)[pos]  # (P, 2)
            term = _bce(outputs["point_modality"][pos], target.clamp_min(0.0), mask=target >= 0)
            total = total + weight["modality"] * term
            parts["modality"] = term.detach()
        if not parts:
            raise ValueError(f"the localization task has no term left to train (disabled: {sorted(self.disabled)})")
        return total, parts


__all__ = ["LocalizationTask", "segment_steps", "point_targets", "regression_ranges", "sigmoid_focal_loss",
           "iou_loss_1d"]
