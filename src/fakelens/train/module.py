"""The LightningModule gluing a pure model, a task (loss) and the optimizer; Lightning does the rest.

Validation scores each video exactly as `fakelens predict` does: the validation dataset yields
every clip of every video (fakelens.data.dataset.AllClips, the tiling predict uses), each item
tagged with its `video_index` and `clip_index`; the clip scores (and per-frame scores) of all
ranks are gathered, duplicates from the distributed sampler's padding dropped, and each video's
score is fakelens.inference.aggregate.video_score with the run's `predict.level` and
`predict.aggregate`. `val_logloss` and `val_auc` are computed over those video scores (stateless
functions of fakelens.metrics), so the checkpoint kept is the best at what predict outputs;
`val_loss` is the mean task loss over the clips. A localization run (task `localization`, items
are whole videos of dense features) localizes each validation video with
fakelens.inference.localize, as predict does (windows, proposals), and logs `val_ap` (mean
AP@{0.5, 0.75, 0.95} with the official semantics), AP per threshold, AR@10/50 and the video
`val_auc` / `val_logloss`. A non-finite loss is skipped (all ranks together) or stops the run
with a clear message, as the config says.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch

from fakelens.config import from_dict
from fakelens.errors import ConfigError, FakelensError
from fakelens.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULERS: Registry = Registry("lr scheduler")


@OPTIMIZERS.register("adamw")
def _adamw(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))


@OPTIMIZERS.register("adam")
def _adam(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))


@OPTIMIZERS.register("sgd")
def _sgd(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, nesterov=True)


# Each scheduler factory returns a Lightning lr_scheduler config dict, or None for a constant lr.
@SCHEDULERS.register("onecycle")
def _onecycle(opt, cfg, total_steps: int, epochs: int) -> dict | None:
    total_steps = max(4, total_steps)  # OneCycleLR divides by the warm-up length in steps
    pct = min(0.5, max(cfg.warmup_fraction, 2.0 / total_steps))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=pct)
    return {"scheduler": sched, "interval": "step"}


@SCHEDULERS.register("cosine")
def _cosine(opt, cfg, total_steps: int, epochs: int) -> dict | None:
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps), eta_min=cfg.lr * cfg.min_lr_ratio)
    return {"scheduler": sched, "interval": "step"}


@SCHEDULERS.register("step")
def _step(opt, cfg, total_steps: int, epochs: int) -> dict | None:
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.step_epochs), gamma=cfg.gamma)
    return {"scheduler": sched, "interval": "epoch"}


@SCHEDULERS.register("constant")
def _constant(opt, cfg, total_steps: int, epochs: int) -> dict | None:
    return None


class NonFiniteLossError(FakelensError):
    """Training produced non-finite losses and the config says to stop."""


class DetectorModule(L.LightningModule):
    """Model + task + optimizer. Built from the resolved config dict; the config, the training-set
    prior P(fake) and the cache's preprocessing parameters are saved in every checkpoint as
    hyper-parameters, so a checkpoint alone rebuilds the model and its input pipeline."""

    def __init__(self, config: dict[str, Any], prior: float | None = None, pos_weight: float | None = None,
                 cache_config: dict[str, Any] | None = None, audio_width: int | None = None,
                 pos_weights: dict[str, float] | None = None, disabled: list[str] | None = None,
                 feature_encoder: dict[str, Any] | None = None):
        super().__init__()
        from fakelens.models import create_model
        from fakelens.tasks import build_task
        from fakelens.train.augment import build_batch_mix
        from fakelens.train.config import TrainConfig

        self.save_hyperparameters(ignore=["feature_encoder"])
        # The encoder weights of a features folder (fakelens.inference.dense): not trained, kept in
        # every checkpoint so predict can compute the same features from raw videos.
        self.feature_encoder = feature_encoder
        self.cfg: TrainConfig = from_dict(TrainConfig, config)
        self.model = create_model(self.cfg.model)
        # pos_weights / disabled: per loss term, from the training labels (fakelens.train.targets)
        self.task = build_task(self.cfg.task, pos_weight, time_stride=getattr(self.model, "time_stride", None),
                               pos_weights=pos_weights, disabled=disabled or ())
        from fakelens.tasks.classification import trained_outputs

        # The model outputs this run trains (the heads some loss term reaches): saved in every
        # checkpoint, so predict and detect leave the others (untrained heads' guesses) out.
        self.trained_outputs = trained_outputs(self.task, getattr(self.model, "output_heads", {}))
        self.batch_mix = build_batch_mix(self.cfg.augment)
        self.input_keys = list(self.model.input_names)  # forward's keyword tensors, e.g. ["video"]
        self._nonfinite_run = 0
        self._val: list[dict[str, torch.Tensor]] = []  # per validation batch: see validation_step
        self.undefined_metrics: dict[str, str] = {}  # metric -> why it is undefined at this validation
        self._val_loc: list[tuple[int, str, Any, list[list[float]], float, float]] = []  # localization, per video

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["trained_outputs"] = None if self.trained_outputs is None else sorted(self.trained_outputs)
        if self.feature_encoder is not None:
            checkpoint["feature_encoder"] = self.feature_encoder

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "feature_encoder" in checkpoint:
            self.feature_encoder = checkpoint["feature_encoder"]

    @property
    def localizing(self) -> bool:
        """A localization run: validation scores the proposals predict writes (fakelens.inference.localize)."""
        return self.cfg.task.name == "localization"

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(**inputs)

    def _inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The model's inputs and the masks / times the batch has (fakelens.models.forward_inputs)."""
        from fakelens.models import forward_inputs

        return forward_inputs(self.model, batch)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # The random state of the training steps (dropout, batch mixing) starts each epoch from
        # (train.seed, epoch), as the data order does (fakelens.train.sampling): a resumed run
        # continues exactly as the uninterrupted one.
        if batch_idx == 0:
            from fakelens.train.sampling import epoch_seed

            torch.manual_seed(epoch_seed(self.cfg.train.seed, self.current_epoch) + 7919 * self.global_rank)

    def training_step(self, batch: dict[str, Any], batch_idx: int):
        from fakelens.tasks.faces import fold_faces, has_faces

        n_videos = int(batch["label"].shape[0])
        bag = None
        if has_faces(batch):  # every face track of each video: one instance per face (fakelens.tasks.faces)
            batch, bag = fold_faces(batch)
        if self.batch_mix is not None:
            batch = self.batch_mix(batch)
        batch = self.task.drop_modalities(batch)  # task.modality_dropout: hide one stream of some clips
        # Non-finite inputs would also poison the normalisation statistics during the forward pass
        # of a step we then skip: keep a copy of the floating-point buffers to restore.
        saved = ({n: b.detach().clone() for n, b in self.model.named_buffers() if b.is_floating_point()}
                 if self.cfg.train.nonfinite == "skip" else {})
        outputs = self.model(**self._inputs(batch))
        loss, parts = (self.task.loss(outputs, batch) if bag is None
                       else self.task.faces_loss(outputs, batch, bag, n_videos))
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.trainer.world_size > 1:  # every rank skips together, or DDP would hang
            finite = self.trainer.strategy.reduce(finite, reduce_op="min")
        if finite.item() < 1:
            self._nonfinite_run += 1
            message = (f"non-finite training loss ({loss.item()}) at epoch {self.current_epoch}, step "
                       f"{self.global_step}, batch {batch_idx}")
            if self.cfg.train.nonfinite == "stop" or self._nonfinite_run > self.cfg.train.max_nonfinite:
                raise NonFiniteLossError(
                    f"{message}; {self._nonfinite_run} non-finite step(s) in a row. Lower optim.lr, use "
                    "train.precision=32 or train.grad_clip, or check the inputs for NaNs.")
            buffers = dict(self.model.named_buffers())
            with torch.no_grad():
                for name, value in saved.items():
                    buffers[name].copy_(value)
            self.print(f"warning: {message}: step skipped")
            self.log("train_skipped", float(self._nonfinite_run), on_step=True, on_epoch=False)
            return None  # Lightning skips the optimizer step
        self._nonfinite_run = 0
        bs = n_videos
        self.log("train_loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        for name, value in parts.items():
            self.log(f"train_{name}_loss", value, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def on_fit_start(self) -> None:
        # Validation aggregates per-frame scores with predict.level=frames: a model without them
        # would fail at the end of the first epoch; one forward on example inputs finds out now.
        if self.cfg.predict.level != "frames":
            return
        if self.trained_outputs is not None and "frame_logits" in self.model.output_heads and \
                "frame_logits" not in self.trained_outputs:
            from fakelens.tasks.classification import untrained_reason

            raise ConfigError(f"predict.level is 'frames' but this run does not train the per-frame head of model "
                              f"{self.cfg.model.name!r} ({untrained_reason(self.task, self.model.output_heads, 'frame_logits')}): "
                              "its per-frame scores would be an untrained head's; set predict.level=clips")
        from fakelens.models import example_inputs

        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            has_frames = "frame_logits" in self.model(**example_inputs(self.model, batch=1))
        self.model.train(was_training)
        if not has_frames:
            raise ConfigError(f"predict.level is 'frames' but model {self.cfg.model.name!r} gives no per-frame "
                              "scores; validation scores videos as predict does: set predict.level=clips")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        outputs = self.model(**self._inputs(batch))
        loss, _ = self.task.loss(outputs, batch)
        bs = int(batch["label"].shape[0])
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=bs)
        if "video_index" not in batch or "clip_index" not in batch:
            raise KeyError("validation items need `video_index` and `clip_index` (fakelens.data.dataset.AllClips, "
                           "or fakelens.train.data.validation_dataset for one-clip videos)")
        label = batch["video_label"] if "video_label" in batch else batch["label"]  # (B,) the whole video's
        if self.localizing:
            self._validate_localization(batch, label)
            return
        rec = {
            "video": batch["video_index"].long(),  # (B,)
            "face": (batch["face_index"].long() if "face_index" in batch
                     else torch.zeros_like(batch["video_index"].long())),  # (B,) face track of the clip
            "clip": batch["clip_index"].long(),  # (B,)
            "score": torch.sigmoid(self.task.video_logit(outputs).detach().float()),  # (B,) clip P(fake)
            "label": label.detach().float(),  # (B,)
        }
        if isinstance(batch.get("counted"), torch.Tensor):  # frames each face is scored on (face weights)
            rec["counted"] = batch["counted"].float()  # (B, T)
        frames = outputs.get("frame_logits")
        if self.trained_outputs is not None and "frame_logits" not in self.trained_outputs:
            frames = None  # an untrained head's: predict leaves them out too
        if frames is not None:  # per-frame P(fake) and the frames counted, for predict.level=frames
            rec["frames"] = torch.sigmoid(frames.detach().float())  # (B, T)
            rec["mask"] = frame_counted(outputs, batch).float()  # (B, T)
        self._val.append(rec)

    def _validate_localization(self, batch: dict[str, Any], label: torch.Tensor) -> None:
        """Each video of the batch localized as predict localizes it (windows, proposals)."""
        from fakelens.data.features import StepInputs
        from fakelens.inference.localize import localize

        for i in range(int(label.shape[0])):
            x = StepInputs.from_batch(batch, i)
            out = localize(self.model, x, self.cfg.predict, device=self.device)
            gt = [s for s in batch["segments_seconds"][i].tolist() if s[1] > s[0] >= 0]
            self._val_loc.append((int(batch["video_index"][i]), str(batch["id"][i]), out.proposals, gt,
                                  out.score, float(label[i])))

    def _end_localization(self) -> None:
        """val_ap (mean AP@{0.5, 0.75, 0.95}), AP per threshold, AR@{10, 50}, val_auc / val_logloss of
        the video scores (max step score), over every rank's videos."""
        from fakelens.metrics import auc, log_loss
        from fakelens.metrics.localization import ap_at_iou, ar_at_n

        rows = self._val_loc
        if self.trainer.world_size > 1:
            import torch.distributed as dist

            every: list[Any] = [None] * self.trainer.world_size
            dist.all_gather_object(every, rows)
            rows = [r for part in every for r in part]
        seen: dict[int, Any] = {}
        for r in rows:
            seen.setdefault(r[0], r)  # the distributed sampler repeats videos to even out ranks
        rows = [seen[k] for k in sorted(seen)]
        self._val_loc = []
        self.undefined_metrics = {}
        props = {r[1]: list(r[2]) for r in rows}
        gt = {r[1]: r[3] for r in rows}
        if any(gt.values()):
            ap = ap_at_iou(props, gt, (0.5, 0.75, 0.95))
            ar = ar_at_n(props, gt, (10, 50))
            for t, v in ap.items():
                self.log(f"val_ap@{t:g}", float(v), sync_dist=False)
            for n, v in ar.items():
                self.log(f"val_ar@{n}", float(v), sync_dist=False)
            self.log("val_ap", float(np.mean(list(ap.values()))), sync_dist=False, prog_bar=True)
        else:  # logged as NaN (the worst score for a checkpoint monitor), never a crash losing the run
            self.undefined_metrics["val_ap"] = f"the {len(rows)} validation videos scored hold no fake segment"
            self.log("val_ap", float("nan"), sync_dist=False)
        y = np.array([r[5] for r in rows]).round().astype("int64")
        s = np.array([r[4] for r in rows])
        self.log("val_videos", float(len(y)), sync_dist=False)
        self.log("val_logloss", float(log_loss(y, s)), sync_dist=False)
        if 0 < y.sum() < len(y):
            self.log("val_auc", float(auc(y, s)), sync_dist=False)
        else:
            self.undefined_metrics["val_auc"] = (f"the {len(y)} validation videos scored hold only "
                                                 f"{'fake' if y.sum() else 'real'} ones")
            self.log("val_auc", float("nan"), sync_dist=False)

    def on_validation_epoch_start(self) -> None:
        self._val = []
        self._val_loc = []

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        """(N_rank, ...) on every rank -> (sum of N_rank, ...) everywhere, whatever each rank holds."""
        n = self.all_gather(torch.tensor([t.shape[0]], device=t.device)).reshape(-1)  # (world,)
        longest = int(n.max())
        pad = t.new_zeros((longest - t.shape[0],) + tuple(t.shape[1:]))
        every = self.all_gather(torch.cat([t, pad]))  # (world, longest, ...)
        return torch.cat([every[r, : int(n[r])] for r in range(len(n))])

    def on_validation_epoch_end(self) -> None:
        from fakelens.metrics import auc, log_loss

        if self.localizing:
            self._end_localization()
            return
        if not self._val:
            return
        parts = {k: torch.cat([r[k] for r in self._val]) for k in self._val[0]}  # each (N_rank, ...)
        if self.trainer.world_size > 1:
            parts = {k: self._gather(v) for k, v in parts.items()}
        arrays = {k: v.cpu().numpy() for k, v in parts.items()}
        s, y = video_scores(arrays["video"], arrays["clip"], arrays["score"], arrays["label"],
                            self.cfg.predict.aggregate, self.cfg.predict.level, arrays.get("frames"),
                            arrays.get("mask"), model=f"model {self.cfg.model.name!r}", faces=arrays["face"],
                            face_aggregate=self.cfg.predict.face_aggregate, counted=arrays.get("counted"))
        y = y.round().astype("int64")
        self.log("val_videos", float(len(y)), sync_dist=False)
        self.log("val_logloss", float(log_loss(y, s)), sync_dist=False, prog_bar=True)
        self.undefined_metrics = {}
        if 0 < y.sum() < len(y):
            self.log("val_auc", float(auc(y, s)), sync_dist=False, prog_bar=True)
        else:
            # The whole validation set is checked for both classes before training; this epoch's
            # scored part (train.limit_val_batches) may still hold one: AUC is undefined, logged as
            # NaN (a checkpoint monitor treats it as the worst score), never a crash losing the run.
            self.undefined_metrics["val_auc"] = (f"the {len(y)} validation videos scored hold only "
                                                 f"{'fake' if y.sum() else 'real'} ones")
            self.log("val_auc", float("nan"), sync_dist=False)
        self._val = []

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        # A resumed run may train longer than the restored one-cycle schedule: stay at its final lr.
        total = getattr(scheduler, "total_steps", None)
        if total is not None and scheduler.last_epoch >= total - 1:
            return
        scheduler.step() if metric is None else scheduler.step(metric)

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches)
        return build_optimization([p for p in self.model.parameters() if p.requires_grad], self.cfg.optim,
                                  total, self.cfg.train.epochs)


def frame_counted(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
    """(B, T) bool: the per-frame scores a video's frame-level aggregation counts: valid for the
    model (its frame_mask) and counted by the tiling (each frame once, no padding: `counted`)."""
    from fakelens.tasks.classification import instance_mask

    frames = outputs["frame_logits"]
    mask = instance_mask(outputs, "frame_logits")
    out = torch.ones_like(frames, dtype=torch.bool) if mask is None else mask
    for key in ("counted", "mask"):
        if key in batch and tuple(batch[key].shape) == tuple(frames.shape):
            out = out & batch[key].bool()
    return out


def video_scores(video: np.ndarray, clip: np.ndarray, clip_scores: np.ndarray, labels: np.ndarray,
                 aggregate_name: str, level: str, frame_scores: np.ndarray | None = None,
                 frame_masks: np.ndarray | None = None, model: str = "the model", faces: np.ndarray | None = None,
                 face_aggregate: str = "max", counted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip validation results -> (V,) video scores and (V,) video labels, in video-index order.

    video, clip (N,) say which clip of which video each row is (`faces` (N,): of which face track,
    default 0; clip indices count across a video's faces); a (video, clip) pair seen twice (the
    distributed sampler pads with repeated items) counts once. Each face's clips, in clip order,
    give its score by fakelens.inference.aggregate.video_score, and a video's faces give its score
    by the face aggregation `face_aggregate`, exactly as predict computes them. frame_scores /
    frame_masks (N, T) are the per-frame P(fake) and validity (level "frames"); counted (N, T) the
    frames each clip counts (a face's weight in face aggregations: its frames scored)."""
    from fakelens.inference.aggregate import faces_score, video_score

    faces = np.zeros(len(video), np.int64) if faces is None else np.asarray(faces)
    first: dict[tuple[int, int], int] = {}
    for row, key in enumerate(zip(video.tolist(), clip.tolist())):
        first.setdefault((int(key[0]), int(key[1])), row)
    keys = sorted(first)  # by video, then clip
    out_scores, out_labels = [], []
    start = 0
    while start < len(keys):
        v = keys[start][0]
        end = start
        while end < len(keys) and keys[end][0] == v:
            end += 1
        rows = np.array([first[k] for k in keys[start:end]])  # (K,) the video's clips in order
        scores, counts = [], []
        for f in np.unique(faces[rows]):
            mine = rows[faces[rows] == f]
            masks = None if frame_masks is None else frame_masks[mine] > 0.5
            scores.append(video_score(
                aggregate_name, level, clip_scores[mine], None if frame_scores is None else frame_scores[mine],
                masks, model=model))
            counts.append(int(masks.sum()) if masks is not None else
                          int((counted[mine] > 0.5).sum()) if counted is not None else len(mine))
        out_scores.append(faces_score(face_aggregate, scores, counts))
        out_labels.append(float(labels[rows[0]]))
        start = end
    return np.asarray(out_scores, np.float64), np.asarray(out_labels, np.float64)


def build_optimization(params: Any, ocfg: Any, total_steps: int, epochs: int) -> Any:
    """The named optimizer and lr schedule, in the form Lightning's configure_optimizers returns."""
    if not math.isfinite(total_steps) or total_steps <= 0:
        total_steps = 1
    opt = OPTIMIZERS.get(ocfg.name)(params, ocfg)
    sched = SCHEDULERS.get(ocfg.scheduler)(opt, ocfg, int(total_steps), epochs)
    if sched is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": sched}

