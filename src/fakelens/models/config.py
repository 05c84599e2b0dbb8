"""The one typed config every model is built from (the `model:` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pooling = Literal["mean", "max", "attention", "transformer"]
Fusion = Literal["late", "mid"]


@dataclass
class ModelConfig:
    """What `create_model` needs. Fields left at None take the registered model's default
    (`resolve_config` fills them in, so a saved run config always holds concrete values)."""

    name: str = "frame"
    # Visual backbone: a timm (or fakelens custom, e.g. "tinycnn") 2D model for frame/av,
    # a torchvision video model for clip3d. None = the model's default.
    backbone: str | None = None
    # False = random init; True = ImageNet (Kinetics for clip3d) weights downloaded by
    # timm/torchvision; a string = a local weights file for the (visual) backbone.
    pretrained: bool | str = False
    pooling: Pooling = "attention"  # temporal pooling over frames / audio time steps
    num_frames: int | None = None  # frames per video/clip in the configured input
    image_size: int | None = None  # face crop side in pixels
    audio_backbone: str | None = None  # timm/custom 2D CNN over the log-mel image (audio, av)
    # Weights of the audio backbone of "av" (same meaning as `pretrained`); None = follow
    # `pretrained` when that is a bool, else random init.
    audio_pretrained: bool | str | None = None
    n_mels: int = 80
    audio_frames: int = 1000  # mel frames of the configured input (10 s at a 10 ms hop)
    audio_time_stride: int = 8  # mel frames per audio time step (32 = plain ResNet; 16/8/4 keep time resolution)
    fusion: Fusion = "late"  # av: "late" = fuse pooled embeddings; "mid" = joint attention over time steps
    dropout: float = 0.2
    temporal_dim: int = 256  # width of the temporal transformer / fusion tokens
    temporal_layers: int = 2  # layers of the temporal transformer (pooling="transformer", fusion="mid")
    temporal_heads: int = 4
    # Localizers over dense features (fakelens features): widths of the per-step visual and audio
    # feature inputs (0 = that stream is absent) and the levels of the temporal pyramid (strides
    # 1, 2, 4, ... steps). None = taken from the features at training time.
    feature_dim: int | None = None
    audio_feature_dim: int | None = None
    levels: int = 5
