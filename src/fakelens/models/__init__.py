"""Detection models built by name (`create_model("frame", backbone="efficientnet_b0")`):
pure nn.Modules taking keyword tensors in [0, 1] and returning a dict of logits.

| name | forward | returns |
|---|---|---|
| frame, frame_tiny | video (B,T,3,H,W), mask | logit (B,), frame_logits, frame_mask (B,T) |
| clip3d | video (B,T,3,H,W), mask | logit (B,) |
| i3d | video (B,T,3,H,W), mask | logit (B,) |
| meso4, mesoinception4 | video (B,T,3,H,W), mask | logit (B,), frame_logits, frame_mask (B,T) |
| audio, audio_tiny | audio (B,1,n_mels,W), audio_mask | logit (B,), time_logits, time_mask (B,F'); `.time_stride` mel frames per step |
| av, av_tiny | video, audio, mask, audio_mask, times, audio_times | logit, visual_logit, audio_logit (B,), frame_logits, frame_mask (B,T), time_logits, time_mask (B,F') |
| localizer | visual_features (B,T,Dv), audio_features (B,T,Da), mask, visual_mask, audio_mask (B,T) | logit (B,), frame_logits (B,T), point_logits / point_offsets / point_modality over the pyramid's N points |

Masks are optional (B, T) / (B, W) bool tensors, False = padding or missing: masked frames and
mel frames never reach a pooled vector (see fakelens.models.temporal), and `frame_mask` /
`time_mask` say which per-frame / per-step logits stand for real input. `forward_inputs(model,
batch)` picks a model's keyword tensors out of a batch dict.

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
    "example_inputs": "factory", "forward_inputs": "factory", "model_config": "factory", "resolve_config": "factory",
    "POOLINGS": "temporal",
}
_MODEL_MODULES = ("audio", "av", "clip3d", "frame", "i3d", "localizer", "meso")  # importing them registers the models

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in _MODEL_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
