"""Checkpoints written atomically in the run folder.

Lightning's TorchCheckpointIO writes through an fsspec transaction: the bytes go to a temporary
file in the system temp folder (/tmp), then are moved onto checkpoints/X.ckpt, a copy across file
systems. On a full run disk the copy dies half-way: a truncated X.ckpt is left where the
previous good one was, and the error names the /tmp file. Here the checkpoint is serialised in
memory (as Lightning does), written to a temporary name beside its target, fsynced and renamed
(fakelens.atomic): the previous checkpoint stays whole until the new one is, and a failure is an
OutputError naming the checkpoints folder of the run.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fakelens.atomic import atomic_write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose saves are atomic renames in the target's own folder."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getbuffer())
