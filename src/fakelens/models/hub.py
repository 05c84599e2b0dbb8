"""Downloaded (pretrained) weights without the long wait offline.

timm (through huggingface_hub) and torchvision (through torch.hub) retry a download for about a
minute when there is no network. Before asking them, `offline_reason` looks once, quickly: the
offline switches (HF_HUB_OFFLINE, FAKELENS_OFFLINE) or a 3-second connection to the host. When
the weights cannot come, the error says at once what to do instead; weights already in the
local caches still load offline.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Iterator

from fakelens.errors import ConfigError

OFFLINE_VARIABLES = ("FAKELENS_OFFLINE", "HF_HUB_OFFLINE")
TIMEOUT_SECONDS = 3.0
HF_HOST = "huggingface.co"


def offline_reason(host: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Why weights cannot be downloaded from `host` now (None: it answers)."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name} is set"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as e:
        return f"{host} cannot be reached ({e.strerror or e})"


TRAIN_WAY_ON = ("--set model.pretrained=false (train from random weights), or `fakelens train --smoke` to check a "
                "setup on a CPU; or download the weights once where there is network and set model.pretrained to "
                "the local file")


class WeightsUnavailable(ConfigError):
    """Pretrained weights that cannot be had now. The message gives train's ways on; a command with
    other flags (`features --pretrained`) re-says it with its own (`with_way_on`)."""

    def __init__(self, what: str, reason: str):
        self.what = what
        self.reason = reason
        super().__init__(self.with_way_on(TRAIN_WAY_ON))

    def with_way_on(self, way_on: str) -> str:
        return f"cannot get the pretrained weights of {self.what}: {self.reason}. Without network: {way_on}"


def way_out(what: str, reason: str) -> WeightsUnavailable:
    """The error for weights that cannot be had: why, and the ways on."""
    return WeightsUnavailable(what, reason)


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """huggingface_hub in offline mode for the duration: cached files load, others fail at once."""
    try:
        import huggingface_hub.constants as constants
    except ImportError:  # timm without the hub: nothing to switch
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def torch_hub_file(url: str) -> Path:
    """Where torch.hub keeps the file downloaded from `url`."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
