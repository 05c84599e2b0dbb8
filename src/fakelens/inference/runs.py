"""Where a trained run's checkpoint is, without importing torch: the CLI commands taking a RUN
(predict, detect, serve, robustness) resolve it first, so a wrong path is reported at once and
not after the seconds torch and the models take to import."""

from __future__ import annotations

from pathlib import Path

from fakelens.errors import FakelensError


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A run folder -> its best checkpoint (last if no best was kept); a .ckpt file -> itself."""
    p = Path(run_or_checkpoint)
    if p.is_file():
        return p
    if p.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (p / "checkpoints" / name).is_file():
                return p / "checkpoints" / name
        raise FakelensError(f"{p}: no checkpoints/best.ckpt or checkpoints/last.ckpt (is it a `fakelens train` run?)")
    raise FakelensError(f"{p}: no such run folder or checkpoint")


def check_encoder_source(source: str) -> None:
    """`fakelens features RUN_OR_ENCODER`: a run folder or checkpoint that exists (resolved as
    above), or a 2D backbone name (checked against fakelens.models.names); anything else is a
    FakelensError now, before torch loads and the dataset is read."""
    from fakelens.errors import ConfigError
    from fakelens.models.names import check_image_backbone_name

    p = Path(source)
    if p.exists():
        resolve_checkpoint(p)
        return
    try:
        check_image_backbone_name(source, "features")
    except ConfigError as e:
        raise FakelensError(f"{source}: no such run folder or checkpoint, and not a 2D backbone name ({e})") from None
