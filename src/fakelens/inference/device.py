"""Where a model runs: `--device auto|cpu|cuda|cuda:I`, one parser for every command that runs one.

    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    device = resolve_device(args.device)        # torch.device, or a ConfigError naming the problem

"auto" is the first GPU when torch sees one, else the CPU. Asking for a GPU that is not there is
an error, never a silent fall back to the CPU (a 4,000-video test set would take hours instead).
"""

from __future__ import annotations

import re
from typing import Any

from fakelens.errors import ConfigError

DEVICE_HELP = "where the model runs: auto (the first GPU if there is one, else the CPU), cpu, cuda, cuda:I"
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: Any = "auto") -> Any:
    """A device string (or torch.device) -> torch.device, checked against the GPUs torch sees."""
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    m = _SPEC.match(text)
    if not m or (m.group(1) != "cuda" and m.group(2) is not None):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:I (I a GPU index), got {spec!r}")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if kind == "auto":
        return torch.device("cuda", 0) if available else torch.device("cpu")
    if not available:
        raise ConfigError(f"--device {text}: torch sees no CUDA GPU here (torch {torch.__version__}, "
                          f"built for CUDA {torch.version.cuda or 'none'}); use --device cpu or auto")
    i = int(index) if index is not None else 0
    count = torch.cuda.device_count()
    if i >= count:
        raise ConfigError(f"--device {text}: only {count} CUDA GPU{'s' if count != 1 else ''} visible "
                          f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    return torch.device("cuda", i)


def describe_device(device: Any) -> str:
    """'cpu (2 threads)' or 'cuda:0 (NVIDIA H200)', for summaries."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({torch.get_num_threads()} threads)"
