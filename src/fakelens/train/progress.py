"""What a training run prints: one line per epoch in every mode, a progress bar only where a
terminal is attached, and none of the third-party noise (shown with verbose=True, CLI --verbose).

The lines go to stderr (stdout stays for results, e.g. `train --json`) and to RUN/train.log,
which a resumed run appends to:

    epoch  3/30  train_loss 0.4123  val_loss 0.3880  val_logloss 0.3012  val_auc 0.9531  12.3 s  new best val_logloss, saved
    epoch  4/30  train_loss 0.3990  val_loss 0.4021  val_logloss 0.3105  val_auc 0.9375  11.8 s  best 0.3012 at epoch 3
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

LOG_NAME = "train.log"

# Third-party messages a user of fakelens can do nothing about; --verbose shows them.
NOISE_WARNINGS = (
    r".*does not have many workers.*",  # Lightning: num_workers advice (train.num_workers is the recipe's)
    r".*LeafSpec.*",  # torch.utils._pytree deprecation inside Lightning
    r".*smaller than the logging interval.*",  # Lightning: short epochs (smoke runs, tiny sets)
    r".*TorchVision are deprecated.*",  # torchvision.io image codecs (torchvision 0.29)
    r".*torchvision.*deprecated.*",
    r".*Checkpoint directory .* exists and is not empty.*",  # --resume writes into the run's folder
    r".*is a bit of a bottleneck.*",
    r".*Consider setting `persistent_workers=True`.*",
    r".*`training_step` returned `None`.*",  # a skipped non-finite step, reported by fakelens itself
    r".*An epoch was interrupted.*",
    r".*The `srun` command is available.*",
)
NOISE_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning")


@contextmanager
def quiet_third_party(verbose: bool = False) -> Iterator[None]:
    """Silence Lightning's banners and tips ("GPU available: False", "Tip: ... litlogger") and the
    known deprecation / advice warnings of torch, torchvision and Lightning; restore on exit."""
    if verbose:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in NOISE_LOGGERS}
    with warnings.catch_warnings():
        for pattern in NOISE_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|lightning).*")
        for name in NOISE_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def terminal_attached() -> bool:
    """True when stdout (where the progress bar draws) is a terminal."""
    from fakelens.progress import attached

    return attached(sys.stdout)


class RunLog:
    """Lines for the user: printed on stderr (above any progress bar) and appended to RUN/train.log.
    Only the global-zero process of a distributed run should hold one."""

    def __init__(self, run_dir: Path | None, echo: bool = True):
        self.path = None if run_dir is None else Path(run_dir) / LOG_NAME
        self.echo = echo

    def line(self, text: str) -> None:
        if self.echo:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text + "\n")


def _value(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x


def format_metric(name: str, value: float | None) -> str:
    return f"{name} {'nan' if value is None or math.isnan(value) else f'{value:.4f}'}"


def epoch_line(epoch: int, epochs: int, metrics: dict[str, Any], seconds: float, best: str,
               undefined: dict[str, str] | None = None) -> str:
    """'epoch  3/30  train_loss 0.4123  val_logloss 0.3012  val_auc 0.9531  12.3 s  new best val_logloss, saved'."""
    width = len(str(epochs))
    parts = [f"epoch {epoch:>{width}}/{epochs}"]
    train = _value(metrics.get("train_loss_epoch", metrics.get("train_loss")))
    parts.append(format_metric("train_loss", train) if train is not None else "train_loss -")
    for name in ("val_loss", "val_logloss", "val_auc", "val_ap"):
        if name in metrics:
            v = _value(metrics[name])
            if undefined and name in undefined:
                parts.append(f"{name} undefined")
            elif v is not None:
                parts.append(format_metric(name, v))
    if not any(k.startswith("val_") for k in metrics):
        parts.append("(no validation this epoch)")
    parts.append(f"{seconds:.1f} s")
    parts.append(best)
    text = "  ".join(parts)
    for name, why in (undefined or {}).items():
        text += f"\n  note: {name} is undefined at this validation ({why}); logged as NaN, the run goes on"
    return text


def epoch_report(log: RunLog, checkpoint: Any, epochs: int) -> Any:
    """A Lightning callback printing one line per training epoch: epoch, train loss, the validation
    metrics, time, and whether the monitored checkpoint improved. Put it after the checkpoints."""
    from lightning.pytorch.callbacks import Checkpoint

    # A Checkpoint subclass saves nothing, but Lightning runs it with the checkpoint callbacks, after
    # them (they are last in the list): the line knows whether this epoch's checkpoint was kept.
    class EpochReport(Checkpoint):
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.best: float | None = None
            self.best_epoch: int | None = None
            self.validated = False

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            score = checkpoint.best_model_score
            self.best = None if score is None else float(score)

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.started = time.perf_counter()
            self.validated = False

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                self.validated = True

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.is_global_zero:
                return
            epoch = trainer.current_epoch + 1
            metrics = {k: v for k, v in trainer.callback_metrics.items()
                       if k.startswith("train_loss") or (self.validated and k.startswith("val_"))}
            score = checkpoint.best_model_score
            score = None if score is None else float(score)
            monitor = checkpoint.monitor
            if not self.validated:
                best = ""
            elif score is not None and score != self.best:
                self.best, self.best_epoch = score, epoch
                best = f"new best {monitor}, saved" if math.isfinite(score) else f"saved ({monitor} undefined)"
            elif self.best is not None and math.isfinite(self.best):
                since = f" at epoch {self.best_epoch}" if self.best_epoch else ""
                best = f"best {self.best:.4f}{since}"
            else:
                best = ""
            undefined = dict(getattr(pl_module, "undefined_metrics", {}) or {}) if self.validated else {}
            log.line(epoch_line(epoch, epochs, metrics, time.perf_counter() - self.started, best, undefined))

    return EpochReport()


def progress_bar() -> Any:
    """Lightning's tqdm bar showing only the training loss (no version number, no metric columns
    wrapping over lines as the rich bar does in narrow terminals), epochs numbered from 1."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class Bar(TQDMProgressBar):
        def on_train_epoch_start(self, trainer: Any, *_: Any) -> None:
            super().on_train_epoch_start(trainer)
            # numbered as the epoch lines are ("epoch 1/3", not Lightning's 0-based "Epoch 0")
            self.train_progress_bar.set_description(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

        def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
            items = super().get_metrics(trainer, pl_module)
            return {k: v for k, v in items.items() if re.fullmatch(r"train_loss(_step)?", k)}

    return Bar()
