"""The LightningModule gluing a pure model, a task (loss) and the optimizer; Lightning does the rest.

Validation gathers the video scores of every rank and computes the video AUC and log loss with the
stateless functions of fakelens.metrics. A non-finite loss is skipped (all ranks together) or stops
the run with a clear message, as the config says.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from fakelens.config import from_dict
from fakelens.errors import FakelensError
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
                 cache_config: dict[str, Any] | None = None, audio_width: int | None = None):
        super().__init__()
        from fakelens.models import create_model
        from fakelens.tasks import build_task
        from fakelens.train.augment import build_batch_mix
        from fakelens.train.config import TrainConfig

        self.save_hyperparameters()
        self.cfg: TrainConfig = from_dict(TrainConfig, config)
        self.model = create_model(self.cfg.model)
        self.task = build_task(self.cfg.task, pos_weight)
        self.batch_mix = build_batch_mix(self.cfg.augment)
        self.input_keys = list(self.model.input_names)  # forward's keyword tensors, e.g. ["video"]
        self._nonfinite_run = 0
        self._val_scores: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(**inputs)

    def _inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        missing = [k for k in self.input_keys if k not in batch]
        if missing:
            raise KeyError(f"model {self.cfg.model.name!r} needs inputs {self.input_keys}; the batch lacks {missing} "
                           f"(has {sorted(batch)}): pick a data.dataset that provides them")
        return {k: batch[k] for k in self.input_keys}

    def training_step(self, batch: dict[str, Any], batch_idx: int):
        if self.batch_mix is not None:
            batch = self.batch_mix(batch)
        # Non-finite inputs would also poison the normalisation statistics during the forward pass
        # of a step we then skip: keep a copy of the floating-point buffers to restore.
        saved = ({n: b.detach().clone() for n, b in self.model.named_buffers() if b.is_floating_point()}
                 if self.cfg.train.nonfinite == "skip" else {})
        outputs = self.model(**self._inputs(batch))
        loss, parts = self.task.loss(outputs, batch)
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
        bs = int(batch["label"].shape[0])
        self.log("train_loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        for name, value in parts.items():
            self.log(f"train_{name}_loss", value, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        outputs = self.model(**self._inputs(batch))
        loss, _ = self.task.loss(outputs, batch)
        bs = int(batch["label"].shape[0])
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=bs)
        self._val_scores.append(torch.sigmoid(self.task.video_logit(outputs).float()).detach())  # (B,)
        self._val_labels.append(batch["label"].detach().float())  # (B,)

    def on_validation_epoch_start(self) -> None:
        self._val_scores, self._val_labels = [], []

    def on_validation_epoch_end(self) -> None:
        from fakelens.metrics import auc, log_loss

        if not self._val_scores:
            return
        scores = torch.cat(self._val_scores)  # (N_rank,)
        labels = torch.cat(self._val_labels)  # (N_rank,)
        if self.trainer.world_size > 1:
            # Same length on every rank: the distributed sampler pads the last batch.
            scores = self.all_gather(scores).reshape(-1)  # (world * N_rank,)
            labels = self.all_gather(labels).reshape(-1)
        s = scores.cpu().numpy().astype("float64")
        y = labels.cpu().numpy().round().astype("int64")
        self.log("val_logloss", float(log_loss(y, s)), sync_dist=False, prog_bar=True)
        if 0 < y.sum() < len(y):
            self.log("val_auc", float(auc(y, s)), sync_dist=False, prog_bar=True)
        elif self.trainer.sanity_checking:
            pass  # two sanity batches may hold one class only; the real validation is checked upfront
        else:
            raise FakelensError(f"validation holds only {'fake' if y.sum() else 'real'} videos: video AUC is "
                                "undefined; use a validation split with both classes")
        self._val_scores, self._val_labels = [], []

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


def build_optimization(params: Any, ocfg: Any, total_steps: int, epochs: int) -> Any:
    """The named optimizer and lr schedule, in the form Lightning's configure_optimizers returns."""
    if not math.isfinite(total_steps) or total_steps <= 0:
        total_steps = 1
    opt = OPTIMIZERS.get(ocfg.name)(params, ocfg)
    sched = SCHEDULERS.get(ocfg.scheduler)(opt, ocfg, int(total_steps), epochs)
    if sched is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": sched}

