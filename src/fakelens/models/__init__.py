"""Detection models built by name (`create_model("frame", backbone="efficientnet_b0")`):
pure nn.Modules taking keyword tensors in [0, 1] and returning a dict of logits.

| name | forward | returns |
|---|---|---|
| frame, frame_tiny | video (B,T,3,H,W) | logit (B,), frame_logits (B,T) |
| clip3d | video (B,T,3,H,W) | logit (B,) |
| i3d | video (B,T,3,H,W) | logit (B,) |
| meso4, mesoinception4 | video (B,T,3,H,W) | logit (B,), frame_logits (B,T) |
| audio, audio_tiny | audio (B,1,n_mels,F) | logit (B,), time_logits (B,F'); `.time_stride` mel frames per step |
| av, av_tiny | video, audio | logit, visual_logit, audio_logit (B,), frame_logits (B,T), time_logits (B,F') |

The names below are loaded on first use (PEP 562), so `fakelens.models.config` (the typed
`model:` section) imports without torch; any of them registers every model first.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKBONES": "backbones", "LoadReport": "backbones", "image_backbone_names": "backbones",
    "load_weights": "backbones", "video_backbone_names": "backbones",
    "ModelConfig": "config",
    "MODELS": "factory", "ModelSpec": "factory", "as_config": "factory", "create_model": "factory",
    "example_inputs": "factory", "model_config": "factory", "resolve_config": "factory",
    "POOLINGS": "temporal",
}
_MODEL_MODULES = ("audio", "av", "clip3d", "frame", "i3d", "meso")  # importing them registers the models

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in _MODEL_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
