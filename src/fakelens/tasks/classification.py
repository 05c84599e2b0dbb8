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

from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fakelens.registry import Registry
from fakelens.tasks.config import TaskConfig  # defined there: importing it needs no torch
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


@dataclass(frozen=True)
class Target:
    """One term of a task's loss and the labels it trains on.

    `term` names the part (the loss logs `train_<term>_loss`), `key` the batch key of its labels,
    `weight` its weight in the loss, `unknown` what a -1 value (stream not stated by the dataset)
    trains as: "video_label" (the item's `video_label`) or "ignore" (left out); `mask_key` the
    batch key of the validity of dense labels (padding), None for one label per item."""

    term: str
    key: str
    weight: float
    unknown: str
    mask_key: str | None = None
    about: str = ""

    @property
    def name(self) -> str:
        return f"{self.key} ({self.about or self.term})"


def _rule(cfg: TaskConfig, main: bool) -> str:
    """The unknown-stream rule of a target: cfg.unknown_stream, "auto" meaning the video label for
    the model's main target and "ignore" for the per-stream ones."""
    if cfg.unknown_stream != "auto":
        return cfg.unknown_stream
    return "video_label" if main else "ignore"


def resolve_unknown(target: Target, batch: Batch) -> torch.Tensor:
    """The labels `target` trains on: its batch values with the unknown (-1) ones replaced by the
    item's video label under the "video_label" rule (left at -1, i.e. out of the loss, otherwise)."""
    values = batch[target.key].float()
    if target.unknown != "video_label" or "video_label" not in batch:
        return values
    video = batch["video_label"].float().reshape((-1,) + (1,) * (values.ndim - 1)).expand_as(values)
    return torch.where(values < 0, video, values)


class Task(nn.Module):
    """Base task: no parameters. `targets()` lists the terms it trains (fakelens.train.targets counts
    their labels before training); `pos_weights` ({term: n_negative / n_positive}) rebalances each
    term's BCE (`pos_weight` alone: the video term's), `disabled` terms are left out of the loss
    (a per-stream term whose known labels hold one class). `time_stride` is the audio encoder's
    mel frames per step (per-mel-frame labels -> per-step)."""

    def __init__(self, cfg: TaskConfig, pos_weight: float | None = None, time_stride: int | None = None,
                 pos_weights: Mapping[str, float] | None = None, disabled: Iterable[str] = ()):
        super().__init__()
        self.cfg = cfg
        self.time_stride = time_stride
        self.pooling_params = PoolingParams(topk=cfg.topk, r=cfg.lse_r)
        self.pos_weights = {k: float(v) for k, v in (pos_weights or {}).items() if v is not None}
        if pos_weight is not None:
            self.pos_weights.setdefault("video", float(pos_weight))
        self.disabled = frozenset(disabled)
        unknown = sorted(self.disabled - {t.term for t in self.targets()})
        if unknown:
            raise ValueError(f"cannot disable {unknown}: the {cfg.name} task trains {[t.term for t in self.targets()]}")

    def targets(self) -> list[Target]:
        """The terms of the loss with a weight > 0 (disabled ones included, see `weight`)."""
        raise NotImplementedError

    def weight(self, target: Target) -> float:
        return 0.0 if target.term in self.disabled else target.weight

    def reaches(self, target: Target, outputs: Iterable[str]) -> tuple[str, ...]:
        """The model outputs (of `outputs`, the logits the model gives) whose loss `target`'s term is."""
        if target.term == "video":
            return ("logit",)
        if target.term == "frame":
            return ("frame_logits",)
        raise KeyError(f"the {self.cfg.name} task has no term {target.term!r}")

    def _pw(self, term: str, like: torch.Tensor) -> torch.Tensor | None:
        pw = self.pos_weights.get(term)
        return None if pw is None else torch.tensor(pw, dtype=torch.float32, device=like.device)

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
        """Scalar loss (the weighted sum of the targets' terms) and its named parts (detached)."""
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for target in self.targets():
            w = self.weight(target)
            if w <= 0:
                continue
            if target.key not in batch:
                raise KeyError(f"the {self.cfg.name} task's {target.term!r} term needs batch key {target.key!r}; "
                               f"the batch has {sorted(batch)}")
            term = self.term(target, outputs, batch, self.hide(target, batch, resolve_unknown(target, batch)))
            total = w * term if total is None else total + w * term
            parts[target.term] = term.detach()
        if total is None:
            raise ValueError(f"the {self.cfg.name} task has no term left to train (disabled: {sorted(self.disabled)})")
        return total, parts

    def drop_modalities(self, batch: Batch) -> Batch:
        """The training batch with streams hidden by modality dropout (only the av task has it)."""
        return batch

    def hide(self, target: Target, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        """`labels` with the items whose stream this target needs was hidden (modality dropout) set
        to -1, i.e. left out of the term; as they are without dropout."""
        return labels

    def faces_loss(self, outputs: Outputs, instances: Batch, bag: torch.Tensor,
                   n_videos: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`loss` over the face instances of a multi-face batch (fakelens.tasks.faces.fold_faces),
        plus the multiple-instance term over the faces of videos holding faces of unknown label:
        the video logit pooled over its faces (`face_pooling`) against the video's label. A face
        of unknown label carries video_label -1 (fold_faces), so no unknown-stream rule turns its
        labels into the video's: it trains through the pooled term only."""
        from fakelens.tasks.faces import bag_term

        loss, parts = self.loss(outputs, instances)
        logits = self.video_logit(outputs)
        term = bag_term(logits, instances, bag, n_videos, self.cfg.face_pooling, self.pooling_params,
                        self._pw("video", logits))
        if term is None:
            return loss, parts
        parts["faces_mil"] = term.detach()
        return loss + term, parts

    def term(self, target: Target, outputs: Outputs, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        """The loss of one target on its (resolved) labels; -1 labels are left out."""
        if target.term == "video":
            return _bce(self.video_logit(outputs), labels.clamp_min(0.0), self._pw("video", labels), mask=labels >= 0)
        if target.term == "frame":
            return self._dense(outputs, batch, "frame_logits", target, labels)
        raise KeyError(f"the {self.cfg.name} task has no term {target.term!r}")

    def _dense(self, outputs: Outputs, batch: Batch, inst_key: str, target: Target, labels: torch.Tensor) -> torch.Tensor:
        """BCE of per-frame (or per-audio-step) logits vs dense labels, leaving out padding (the
        model's mask and the batch's) and unknown (-1) labels; mel-frame labels are pooled to the
        model's audio steps with the audio encoder's own stride."""
        if inst_key not in outputs:
            raise KeyError(f"the {self.cfg.name} task's {target.term!r} term needs output {inst_key!r}; "
                           f"the model gives {sorted(outputs)}")
        inst = outputs[inst_key]  # (B, T) or (B, F')
        valid = labels >= 0
        mk = target.mask_key
        if mk is not None and mk in batch and batch[mk].shape == labels.shape:
            valid = valid & batch[mk].bool()
        if inst_key == "time_logits":
            if self.time_stride is None:
                raise ValueError(f"the {self.cfg.name} task's dense audio term needs the audio encoder's time_stride "
                                 "(build_task(..., time_stride=model.time_stride))")
            if labels.shape[0] != inst.shape[0]:
                raise ValueError(f"{target.key} shape {tuple(labels.shape)} does not fit {inst_key} {tuple(inst.shape)}")
            labels, valid = _labels_to_steps(labels, valid, self.time_stride, inst.shape[1])
        elif labels.shape != inst.shape:
            raise ValueError(f"{target.key} shape {tuple(labels.shape)} != {inst_key} {tuple(inst.shape)}")
        model_mask = instance_mask(outputs, inst_key)
        if model_mask is not None:
            valid = valid & model_mask
        return _bce(inst, labels.clamp_min(0.0), self._pw(target.term, labels), mask=valid)

    def _main_targets(self) -> list[Target]:
        """The video label and, with frame_weight, the per-frame labels (classification, mil)."""
        out = [Target("video", "label", 1.0, _rule(self.cfg, True), about="video logit")]
        if self.cfg.frame_weight > 0:
            out.append(Target("frame", "frame_labels", self.cfg.frame_weight, _rule(self.cfg, True), "mask",
                              about="per-frame logits"))
        return out


TASKS: Registry[type[Task]] = Registry("task")


@TASKS.register("classification")
class ClassificationTask(Task):
    """Video label on the model's `logit`; optional per-frame labels on `frame_logits`."""

    def targets(self) -> list[Target]:
        return self._main_targets()

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        return outputs["logit"]


@TASKS.register("mil")
class MILTask(Task):
    """Weak supervision: video logit = pooling of the per-frame (or per-audio-window) logits."""

    def targets(self) -> list[Target]:
        return self._main_targets()

    def reaches(self, target: Target, outputs: Iterable[str]) -> tuple[str, ...]:
        if target.term == "video":  # the pooled instances: the first the model gives, as _instances
            return tuple(k for k in ("frame_logits", "time_logits") if k in set(outputs))[:1]
        return super().reaches(target, outputs)

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


@TASKS.register("av")
class AVTask(Task):
    """Audio-visual: overall fake, visual-fake and audio-fake heads; MIL terms give per-frame and
    per-audio-window scores trained from the per-modality video labels; dense terms train
    `frame_logits` on `visual_frame_labels` (weight `frame_weight`) and `time_logits` on
    `audio_frame_labels` pooled to audio steps (weight `audio_frame_weight`). Per-stream labels a
    dataset does not state follow `task.unknown_stream`."""

    _HEADS = {"visual": "visual_logit", "audio": "audio_logit"}
    _MIL = {"mil_frame": "frame_logits", "mil_time": "time_logits"}

    def targets(self) -> list[Target]:
        cfg = self.cfg
        stream = _rule(cfg, False)
        rows = [Target("video", "label", 1.0, _rule(cfg, True), about="fake head"),
                Target("visual", "visual_label", cfg.visual_weight, stream, about="visual-fake head"),
                Target("audio", "audio_label", cfg.audio_weight, stream, about="audio-fake head"),
                Target("mil_frame", "visual_label", cfg.mil_weight, stream, about="pooled frame logits"),
                Target("mil_time", "audio_label", cfg.mil_weight, stream, about="pooled audio steps"),
                Target("frame", "visual_frame_labels", cfg.frame_weight, stream, "mask", about="per-frame logits"),
                Target("time", "audio_frame_labels", cfg.audio_frame_weight, stream, "audio_mask",
                       about="per-audio-step logits")]
        return [t for t in rows if t.weight > 0]

    _REACHES = {"video": "logit", "visual": "visual_logit", "audio": "audio_logit", "mil_frame": "frame_logits",
                "frame": "frame_logits", "mil_time": "time_logits", "time": "time_logits"}

    def reaches(self, target: Target, outputs: Iterable[str]) -> tuple[str, ...]:
        return (self._REACHES[target.term],)

    def video_logit(self, outputs: Outputs) -> torch.Tensor:
        return outputs["logit"]

    # The streams each term needs: a clip whose stream modality dropout hid is left out of that term
    # (the fake head needs both; the visual head, pooled frames and per-frame term the faces; ...).
    _NEEDS = {"video": ("video_dropped", "audio_dropped"), "visual": ("video_dropped",),
              "mil_frame": ("video_dropped",), "frame": ("video_dropped",), "audio": ("audio_dropped",),
              "mil_time": ("audio_dropped",), "time": ("audio_dropped",)}

    def drop_modalities(self, batch: Batch) -> Batch:
        """Modality dropout (task.modality_dropout = p): each clip, with probability p, loses its
        faces (mask all False) or its audio (audio_mask all False), equally likely, and says so in
        `video_dropped` / `audio_dropped` (B,) bool, for `hide`. The model then never sees the
        hidden stream (masked out of pooling and attention), as at inference on a video without
        it, and each stream's own head learns to score a clip alone."""
        p = self.cfg.modality_dropout
        if p <= 0 or "video" not in batch or "audio" not in batch:
            return batch
        video, audio = batch["video"], batch["audio"]  # (B, T, ...), (B, 1, M, W)
        b, dev = video.shape[0], video.device
        drop = torch.rand(b, device=dev) < p  # (B,)
        audio_side = torch.rand(b, device=dev) < 0.5  # (B,)
        vd, ad = drop & ~audio_side, drop & audio_side  # (B,) each
        mask = batch.get("mask")
        mask = torch.ones(video.shape[:2], dtype=torch.bool, device=dev) if mask is None else mask.bool().clone()  # (B, T)
        amask = batch.get("audio_mask")
        amask = (torch.ones((b, audio.shape[-1]), dtype=torch.bool, device=dev) if amask is None
                 else amask.bool().clone())  # (B, W)
        mask[vd] = False
        amask[ad] = False
        return {**batch, "mask": mask, "audio_mask": amask, "video_dropped": vd, "audio_dropped": ad}

    def hide(self, target: Target, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        hidden = None
        for key in self._NEEDS.get(target.term, ()):
            if key in batch:
                hidden = batch[key].bool() if hidden is None else hidden | batch[key].bool()  # (B,)
        if hidden is None or not bool(hidden.any()):
            return labels
        rows = hidden.reshape((-1,) + (1,) * (labels.ndim - 1)).expand_as(labels)  # (B,) or (B, n)
        return torch.where(rows, torch.full_like(labels, -1.0), labels)

    def term(self, target: Target, outputs: Outputs, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        if target.term in self._HEADS:
            head = self._HEADS[target.term]
            if head not in outputs:
                raise KeyError(f"the av task with a {target.key} weight needs output {head!r}; "
                               f"the model gives {sorted(outputs)}")
            return _bce(outputs[head], labels.clamp_min(0.0), self._pw(target.term, labels), mask=labels >= 0)
        if target.term in self._MIL:
            inst_key = self._MIL[target.term]
            if inst_key not in outputs:
                raise KeyError(f"the av task's MIL term needs output {inst_key!r}; the model gives {sorted(outputs)}")
            inst = outputs[inst_key]  # (B, n)
            m = instance_mask(outputs, inst_key)
            m = torch.ones_like(inst, dtype=torch.bool) if m is None else m  # (B, n)
            rows = m.any(dim=1) & (labels >= 0)  # something to pool and a known label
            if not bool(rows.any()):
                return inst.sum() * 0.0
            pooled = pool(self.cfg.pooling, inst[rows], m[rows], self.pooling_params)
            return _bce(pooled, labels[rows], self._pw(target.term, labels))
        if target.term == "time":
            return self._dense(outputs, batch, "time_logits", target, labels)
        return super().term(target, outputs, batch, labels)


def trained_outputs(task: Task, heads: Mapping[str, str]) -> frozenset[str] | None:
    """The logit outputs of a model (`heads`: ModelSpec.heads, output -> the head giving it) that
    training with `task` trains: those of every head some term with a weight > 0 (and not
    disabled) reaches. An output of an untrained head is the untrained head's guess (~0.5 for
    every input): predict and detect leave it out. None when the model declares no heads or the
    task has its own outputs (localization): every output is kept."""
    if not heads or not hasattr(task, "reaches") or task.cfg.name == "localization":
        return None
    reached: set[str] = set()
    for target in task.targets():
        if task.weight(target) > 0:
            reached.update(task.reaches(target, heads))
    trained_heads = {heads[o] for o in reached if o in heads}
    return frozenset(o for o, h in heads.items() if h in trained_heads)


WEIGHT_FIELDS = {"visual": "visual_weight", "audio": "audio_weight", "mil_frame": "mil_weight",
                 "mil_time": "mil_weight", "frame": "frame_weight", "time": "audio_frame_weight"}  # av term -> task.*


def untrained_reason(task: Task, heads: Mapping[str, str], output: str) -> str:
    """Why `output` was not trained, in words: the terms that would train its head and why each
    did not (its weight 0 in the recipe, or disabled because its training labels held one class)."""
    head = heads.get(output, output)
    reach = getattr(task, "_REACHES", {})
    parts = []
    for term, out in reach.items():
        if heads.get(out, out) != head or term not in WEIGHT_FIELDS:
            continue
        if term in task.disabled:
            parts.append(f"{term} disabled (its known training labels held one class)")
        else:
            parts.append(f"task.{WEIGHT_FIELDS[term]}=0")
    return ", ".join(dict.fromkeys(parts)) if parts else "no loss term of the task reaches it"


def build_task(cfg: TaskConfig, pos_weight: float | None = None, time_stride: int | None = None,
               pos_weights: Mapping[str, float] | None = None, disabled: Iterable[str] = ()) -> Task:
    """Build the named task; `pos_weight` = n_real / n_fake of the video term when class balance
    uses loss weights (`pos_weights`: per term, see fakelens.train.targets); `time_stride` = the
    model's audio encoder stride (mel frames per step), for per-step labels; `disabled` terms are
    left out of the loss."""
    return TASKS.get(cfg.name)(cfg, pos_weight, time_stride, pos_weights, disabled)


from fakelens.tasks import localization as _localization  # noqa: E402,F401  (registers the localization task)
