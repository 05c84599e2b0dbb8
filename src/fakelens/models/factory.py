"""Models by name: the MODELS registry, `create_model` and `example_inputs`.

Each entry is a ModelSpec: a builder taking a resolved ModelConfig, the defaults it gives to
the config fields left at None, and the keyword tensors its `forward` takes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from fakelens.config import from_dict, to_dict
from fakelens.errors import ConfigError
from fakelens.models.config import ModelConfig
from fakelens.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """A registered model family (or a small preset of one)."""

    build: Callable[[ModelConfig], nn.Module]
    summary: str
    inputs: tuple[str, ...]  # keyword tensors of forward: "video" (B,T,3,H,W), "audio" (B,1,n_mels,F),
                             # "visual_features" (B,T,feature_dim), "audio_features" (B,T,audio_feature_dim)
    # Optional keyword tensors of forward: "mask" (B,T) bool video-frame validity, "audio_mask"
    # (B,W) bool mel-frame validity (False = padding / missing), "times" (B,T) and "audio_times"
    # (B,W) seconds of the frames and mel frames.
    optional: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)  # values for config fields left at None
    validate: Callable[[ModelConfig], ModelConfig] | None = None  # checks names, fills derived defaults
    # Every logit output of forward -> the head (parameters) giving it: outputs of one head train
    # together (a frame model's `logit` and `frame_logits` are one linear head over pooled and
    # per-frame features), so a head no loss term reaches leaves all its outputs untrained
    # (fakelens.tasks.classification.trained_outputs). Empty: not declared (every output kept).
    heads: Mapping[str, str] = field(default_factory=dict)


MODELS: Registry[ModelSpec] = Registry("model")

# ModelSpec.heads of the model families: which head gives each logit output.
CLIP_HEADS = {"logit": "head"}  # one clip logit
FRAME_HEADS = {"logit": "head", "frame_logits": "head"}  # one linear head over pooled / per-frame features
AUDIO_HEADS = {"logit": "head", "time_logits": "head"}  # one linear head over pooled / per-step features

_VISUAL_FIELDS = ("backbone", "num_frames", "image_size")
_AUDIO_FIELDS = ("audio_backbone",)


def as_config(cfg: ModelConfig | str | Mapping[str, Any], **overrides: Any) -> ModelConfig:
    """A ModelConfig from a config, a model name or a mapping, with `overrides` applied; unknown
    keys and badly typed values raise ConfigError (through fakelens.config.from_dict)."""
    if isinstance(cfg, str):
        data: dict[str, Any] = {"name": cfg}
    elif isinstance(cfg, ModelConfig):
        data = to_dict(cfg)
    elif isinstance(cfg, Mapping):
        data = dict(cfg)
    else:
        raise TypeError(f"expected a ModelConfig, a model name or a mapping, got {type(cfg).__name__}")
    data.update(overrides)
    return from_dict(ModelConfig, data, prefix="model.")


def resolve_config(cfg: ModelConfig | str | Mapping[str, Any], **overrides: Any) -> ModelConfig:
    """Fill the fields left at None with the model's defaults and check names and ranges, so
    the result is exactly what gets built (and what a run saves)."""
    cfg = as_config(cfg, **overrides)
    spec = MODELS.get(cfg.name)
    visual = "video" in spec.inputs
    audio = "audio" in spec.inputs
    dense = "visual_features" in spec.inputs  # a model over per-step features: num_frames = steps
    for name in _VISUAL_FIELDS if not visual else ():
        if name == "num_frames" and dense:
            continue
        if getattr(cfg, name) is not None:
            raise ConfigError(f"model.{name}: model {cfg.name!r} has no visual input; remove it")
    for name in _AUDIO_FIELDS if not audio else ():
        if getattr(cfg, name) is not None:
            raise ConfigError(f"model.{name}: model {cfg.name!r} has no audio input; remove it")
    if cfg.audio_pretrained is not None and not (visual and audio):
        raise ConfigError(f"model.audio_pretrained: only audio-visual models use it; model {cfg.name!r} "
                          "takes its backbone weights from model.pretrained")
    filled = {k: v for k, v in spec.defaults.items() if getattr(cfg, k) is None}
    cfg = dataclasses.replace(cfg, **filled)
    if (visual or dense) and (cfg.num_frames is None or cfg.num_frames < 1):
        raise ConfigError(f"model.num_frames must be >= 1, got {cfg.num_frames}")
    if visual and cfg.image_size is not None and cfg.image_size < 16:
        raise ConfigError(f"model.image_size must be >= 16 pixels, got {cfg.image_size}")
    if audio and (cfg.n_mels < 1 or cfg.audio_frames < 1):
        raise ConfigError(f"model.n_mels and model.audio_frames must be >= 1, got {cfg.n_mels}, {cfg.audio_frames}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.temporal_dim < 1 or cfg.temporal_layers < 1 or cfg.temporal_heads < 1:
        raise ConfigError("model.temporal_dim, temporal_layers and temporal_heads must be >= 1")
    if spec.validate is not None:
        cfg = spec.validate(cfg)
    return cfg


def create_model(cfg: ModelConfig | str | Mapping[str, Any], **overrides: Any) -> nn.Module:
    """Build a model by name: `create_model("frame", backbone="xception41")`. The returned module
    carries `.cfg` (the resolved ModelConfig) and `.input_names` (its forward's keywords).
    Build it inside `with torch.device("meta"):` to count a large model without allocating it."""
    cfg = resolve_config(cfg, **overrides)
    spec = MODELS.get(cfg.name)
    model = spec.build(cfg)
    model.cfg = cfg
    model.input_names = spec.inputs
    model.optional_input_names = spec.optional
    model.output_heads = dict(spec.heads)
    return model


def forward_inputs(model: nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The keyword tensors of `model.forward` taken from a batch dict: every required input (a
    clear KeyError naming the missing ones) and the optional ones (masks, times) the batch has.
    Training, validation and predict all feed the model through this."""
    required = list(getattr(model, "input_names", ()))
    missing = [k for k in required if k not in batch]
    if missing:
        cfg = getattr(model, "cfg", None)
        name = cfg.name if isinstance(cfg, ModelConfig) else type(model).__name__
        raise KeyError(f"model {name!r} needs inputs {required}; the batch lacks {missing} (has {sorted(batch)}): "
                       "pick a data.dataset that provides them")
    out = {k: batch[k] for k in required}
    for k in getattr(model, "optional_input_names", ()):
        if k in batch and isinstance(batch[k], torch.Tensor):
            out[k] = batch[k]
    return out


def model_config(model_or_cfg: nn.Module | ModelConfig | str | Mapping[str, Any]) -> ModelConfig:
    """The resolved config of a model built by `create_model`, or of a config/name."""
    if isinstance(model_or_cfg, nn.Module):
        cfg = getattr(model_or_cfg, "cfg", None)
        if not isinstance(cfg, ModelConfig):
            raise ConfigError(f"{type(model_or_cfg).__name__} was not built by fakelens create_model (no .cfg)")
        return cfg
    return resolve_config(model_or_cfg)


def example_inputs(model_or_cfg: nn.Module | ModelConfig | str | Mapping[str, Any], batch: int = 1,
                   device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Random inputs of the configured shapes: video (B,T,3,S,S) in [0,1], audio (B,1,n_mels,F)
    log-mel-like values, per-step features (B,num_frames,D) standard normal. Used by the budget
    counter and the tests. `device` defaults to the
    model's (meta for a meta model), else CPU."""
    cfg = model_config(model_or_cfg)
    if device is None and isinstance(model_or_cfg, nn.Module):
        first = next(iter(model_or_cfg.parameters()), None)
        device = first.device if first is not None else None
    device = torch.device(device or "cpu")
    spec = MODELS.get(cfg.name)
    shapes: dict[str, tuple[int, ...]] = {}
    if "video" in spec.inputs:
        size = int(cfg.image_size)  # type: ignore[arg-type]
        shapes["video"] = (batch, int(cfg.num_frames), 3, size, size)  # type: ignore[arg-type]
    if "audio" in spec.inputs:
        shapes["audio"] = (batch, 1, cfg.n_mels, cfg.audio_frames)
    for key, dim in (("visual_features", cfg.feature_dim), ("audio_features", cfg.audio_feature_dim)):
        if key in spec.inputs:
            shapes[key] = (batch, int(cfg.num_frames), int(dim))  # type: ignore[arg-type]
    if device.type == "meta":
        return {k: torch.empty(s, device=device) for k, s in shapes.items()}
    out = {}
    for k, s in shapes.items():
        if k == "video":
            out[k] = torch.rand(s, device=device)
        elif k == "audio":
            out[k] = torch.randn(s, device=device) - 4.0
        else:
            out[k] = torch.randn(s, device=device)
    return out
