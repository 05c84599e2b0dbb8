"""Training tasks: they turn a pure model's output dict into a video logit and a loss.

Models stay pure (inputs -> logits); a task knows the targets and the loss:
- `classification`: video label on the model's `logit` (BCE with logits, class balance by
  `pos_weight`), optionally per-frame labels on `frame_logits` when the data has them;
- `mil`: weak supervision, the video logit is a named pooling (max, top-k mean, log-sum-exp) of the
  per-frame (or per-audio-window) logits, trained with the video label only, so the per-frame
  scores are usable for localization;
- `av`: audio-visual: fake / visual-fake / audio-fake heads, optional MIL terms that pool the
  per-frame and per-audio-window logits against the visual and audio labels, and optional dense
  terms: `frame_logits` (the visual branch) against the per-frame VISUAL labels and `time_logits`
  against the per-window AUDIO labels, so an audio-only fake never teaches the face branch that
  an untouched face is fake.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fakelens.registry import Registry
from fakelens.tasks.config import TaskConfig  # noqa: F401  (defined there: importing it needs no torch)
from fakelens.tasks.pooling import POOLINGS, PoolingParams, pool


Outputs = Mapping[str, torch.Tensor]
Batch = Mapping[str, torch.Tensor]


def _bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None,
         mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE-with-logits in float32 (stable under autocast); `mask` selects valid elements."""
    logits = logits.float()
    target = target.to(logits.dtype)
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
    per = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum().clamp_min(1.0)


def _labels_to_steps(labels: torch.Tensor, valid: torch.Tensor, stride: int,
                     steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, W) per-mel-frame 0/1 labels and validity -> (B, steps) labels and validity, step i
    covering mel frames [i*stride, (i+1)*stride) as the audio encoder's step i does
    (fakelens.models.audio.step_groups): a step is fake if any valid frame in it is fake, valid
    if any frame is."""
    from fakelens.models.audio import step_groups

    lab = torch.where(valid.bool(), labels.float(), torch.full_like(labels, -1.0, dtype=torch.float32))  # (B, W)
    step = step_groups(lab, stride, steps, -1.0).amax(dim=2)  # (B, steps), -1 = no valid frame
    return step.clamp_min(0.0), step >= 0


MASK_OF = {"frame_logits": "frame_mask", "time_logits": "time_mask"}  # model output -> its (B, n) validity


def instance_mask(outputs: Outputs, key: str) -> torch.Tensor | None:
    """The validity (B, n) bool the model gives with its per-frame / per-step logits `key`
    (False = padding or missing input), or None when it gives none. Training, validation and
    predict all pool and score instances with this one mask."""
    mask = outputs.get(MASK_OF.get(key, ""))
    inst = outputs.get(key)
    if mask is None or inst is None:
        return None
    if mask.shape != inst.shape:
        raise ValueError(f"{MASK_OF[key]} shape {tuple(mask.shape)} != {key} {tuple(inst.shape)}")
    return mask.bool()


class Task(nn.Module):
    """Base task: no parameters; `pos_weight` (n_real / n_fake) rebalances the video-level BCE.
    `time_stride` is the audio encoder's mel frames per step (per-mel-frame labels -> per-step)."""

    def __init__(self, cfg: TaskConfig, pos_weight: float | None = None, time_stride: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.time_stride = time_stride
        self.pooling_params = PoolingParams(topk=cfg.topk, r=cfg.lse_r)
        pw = torch.tensor(float(pos_weight)) if pos_weight is not None else torch.tensor(float("nan"))
        self.register_buffer("pos_weight", pw, persistent=False)  # () scalar, nan = unweighted

    def _pw(self) -> torch.Tensor | None:
        return None if torch.isnan(self.pos_weight) else self.pos_weight.float()

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        """(B,) logit that the whole video is fake."""
        raise NotImplementedError

    def frame_logits(self, outputs: Outputs) -> torch.Tensor | None:
        """(B, T) per-frame fake logits if the model produces them."""
        return outputs.get("frame_logits")

    def time_logits(self, outputs: Outputs) -> torch.Tensor | None:
        """(B, A) per-audio-window fake logits if the model produces them."""
        return outputs.get("time_logits")

    def loss(self, outputs: Outputs, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scalar loss and its named parts (detached) for logging."""
        raise NotImplementedError

    def _frame_term(self, outputs: Outputs, batch: Batch) -> torch.Tensor | None:
        """Per-frame supervision where the batch has frame labels and the config asks for it."""
        frames = self.frame_logits(outputs)
        if self.cfg.frame_weight <= 0 or frames is None or "frame_labels" not in batch:
            return None
        target = batch["frame_labels"]  # (B, T)
        if target.shape != frames.shape:
            raise ValueError(f"frame_labels shape {tuple(target.shape)} != frame_logits {tuple(frames.shape)}")
        return _bce(frames, target, mask=instance_mask(outputs, "frame_logits"))

    def _video_and_frame_loss(self, video_logit: torch.Tensor, outputs: Outputs,
                              batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Video BCE (class-balanced) plus the optional per-frame term, with the parts for logging."""
        video = _bce(video_logit, batch["label"], self._pw())
        parts = {"video": video.detach()}
        frame = self._frame_term(outputs, batch)
        if frame is None:
            return video, parts
        parts["frame"] = frame.detach()
        return video + self.cfg.frame_weight * frame, parts


TASKS: Registry[type[Task]] = Registry("task")


@TASKS.register("classification")
class ClassificationTask(Task):
    """Video label on the model's `logit`; optional per-frame labels on `frame_logits`."""

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        return outputs["logit"]

    def loss(self, outputs: Outputs, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._video_and_frame_loss(self.video_logit(outputs), outputs, batch)


@TASKS.register("mil")
class MILTask(Task):
    """Weak supervision: video logit = pooling of the per-frame (or per-audio-window) logits."""

    def _instances(self, outputs: Outputs) -> tuple[torch.Tensor, str]:
        for key in ("frame_logits", "time_logits"):
            if key in outputs:
                return outputs[key], key
        raise KeyError("the mil task needs a model that returns 'frame_logits' or 'time_logits'; "
                       f"this one returns {sorted(outputs)}")

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        """Pooling of the valid instances only (the model's frame_mask / time_mask), the same in
        training, validation and predict."""
        inst, key = self._instances(outputs)
        return pool(self.cfg.pooling, inst, instance_mask(outputs, key), self.pooling_params)  # (B,)

    def loss(self, outputs: Outputs, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._video_and_frame_loss(self.video_logit(outputs), outputs, batch)


@TASKS.register("av")
class AVTask(Task):
    """Audio-visual: overall fake, visual-fake and audio-fake heads; MIL terms give per-frame and
    per-audio-window scores trained from the per-modality video labels; dense terms train
    `frame_logits` on `visual_frame_labels` (weight `frame_weight`) and `time_logits` on
    `audio_frame_labels` pooled to audio steps (weight `audio_frame_weight`)."""

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        return outputs["logit"]

    def loss(self, outputs: Outputs, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        fake = _bce(outputs["logit"], batch["label"], self._pw())
        parts = {"video": fake.detach()}
        total = fake
        for head, label_key, weight in (("visual_logit", "visual_label", cfg.visual_weight),
                                        ("audio_logit", "audio_label", cfg.audio_weight)):
            if weight > 0:
                if head not in outputs or label_key not in batch:
                    raise KeyError(f"the av task with a {label_key} weight needs output {head!r} and batch "
                                   f"key {label_key!r}; got outputs {sorted(outputs)}, batch {sorted(batch)}")
                target = batch[label_key].float()  # (B,) -1 = unknown: left out
                term = _bce(outputs[head], target.clamp_min(0.0), mask=target >= 0)
                total = total + weight * term
                parts[head.replace("_logit", "")] = term.detach()
        if cfg.mil_weight > 0:
            for inst_key, label_key in (("frame_logits", "visual_label"), ("time_logits", "audio_label")):
                if inst_key in outputs and label_key in batch:
                    inst = outputs[inst_key]  # (B, n)
                    m = instance_mask(outputs, inst_key)
                    m = torch.ones_like(inst, dtype=torch.bool) if m is None else m  # (B, n)
                    target = batch[label_key].float()  # (B,)
                    rows = m.any(dim=1) & (target >= 0)  # something to pool and a known label
                    if bool(rows.any()):
                        pooled = pool(cfg.pooling, inst[rows], m[rows], self.pooling_params)
                        term = _bce(pooled, target[rows])
                    else:
                        term = inst.sum() * 0.0
                    total = total + cfg.mil_weight * term
                    parts[f"mil_{inst_key.split('_')[0]}"] = term.detach()
        for inst_key, label_key, weight, name in (
                ("frame_logits", "visual_frame_labels", cfg.frame_weight, "frame"),
                ("time_logits", "audio_frame_labels", cfg.audio_frame_weight, "time")):
            if weight > 0:
                term = self._dense_term(outputs, batch, inst_key, label_key)
                total = total + weight * term
                parts[name] = term.detach()
        return total, parts

    def _dense_term(self, outputs: Outputs, batch: Batch, inst_key: str, label_key: str) -> torch.Tensor:
        """BCE of per-frame (or per-audio-step) logits vs the same stream's dense labels, leaving out
        padding and unknown (-1) labels; mel-frame labels are pooled to the model's audio steps
        with the audio encoder's own stride."""
        if inst_key not in outputs or label_key not in batch:
            raise KeyError(f"the av task's dense {label_key} term needs output {inst_key!r} and batch key "
                           f"{label_key!r}; got outputs {sorted(outputs)}, batch {sorted(batch)}")
        inst = outputs[inst_key]  # (B, T) or (B, F')
        target = batch[label_key].float()  # (B, T) or (B, W)
        valid = target >= 0
        if inst_key == "time_logits":
            if self.time_stride is None:
                raise ValueError("the av task's dense audio term needs the audio encoder's time_stride "
                                 "(build_task(..., time_stride=model.time_stride))")
            if "audio_mask" in batch and batch["audio_mask"].shape == target.shape:
                valid = valid & batch["audio_mask"].bool()
            if target.shape[0] != inst.shape[0]:
                raise ValueError(f"{label_key} shape {tuple(target.shape)} does not fit {inst_key} {tuple(inst.shape)}")
            target, valid = _labels_to_steps(target, valid, self.time_stride, inst.shape[1])
        elif target.shape != inst.shape:
            raise ValueError(f"{label_key} shape {tuple(target.shape)} does not fit {inst_key} {tuple(inst.shape)}")
        model_mask = instance_mask(outputs, inst_key)
        if model_mask is not None:
            valid = valid & model_mask
        return _bce(inst, target.clamp_min(0.0), mask=valid)


def build_task(cfg: TaskConfig, pos_weight: float | None = None, time_stride: int | None = None) -> Task:
    """Build the named task; `pos_weight` = n_real / n_fake when class balance uses loss weights;
    `time_stride` = the model's audio encoder stride (mel frames per step), for per-step labels."""
    return TASKS.get(cfg.name)(cfg, pos_weight, time_stride)
