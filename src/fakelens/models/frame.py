"""`frame`: a 2D backbone applied to every face frame, then temporal pooling (the DFDC
winners' recipe, with the video score learned instead of averaged by hand)."""

from __future__ import annotations

import torch
from torch import nn

from fakelens.models.backbones import Normalize, backbone_mean_std, build_image_backbone, check_image_backbone
from fakelens.models.config import ModelConfig
from fakelens.models.factory import FRAME_HEADS, MODELS, ModelSpec
from fakelens.models.temporal import POOLINGS, valid_mask


def check_video(video: torch.Tensor) -> None:
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"video must be (B, T, 3, H, W) floats in [0, 1], got shape {tuple(video.shape)}")


class FrameEncoder(nn.Module):
    """Per-frame features: (B,T,3,H,W) in [0,1] -> (B,T,D), the backbone run on B*T images."""

    def __init__(self, backbone: str, pretrained: bool | str):
        super().__init__()
        self.backbone = build_image_backbone(backbone, pretrained, in_chans=3)
        self.normalize = Normalize(*backbone_mean_std(self.backbone))
        self.out_dim = int(self.backbone.num_features)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        check_video(video)
        b, t = video.shape[:2]
        x = self.normalize(video).flatten(0, 1)  # (B*T,3,H,W)
        feats = self.backbone(x)  # (B*T,D)
        return feats.view(b, t, -1)  # (B,T,D)


class FrameModel(nn.Module):
    """forward(video (B,T,3,H,W), mask (B,T) bool | None) -> {"logit": (B,), "frame_logits": (B,T),
    "frame_mask": (B,T) bool}.

    One linear head scores both the per-frame features and the pooled video feature, so with
    mean/attention pooling the video logit is a (weighted) mean of the frame logits. Frames where
    `mask` is False (padding, no face) are left out of the pooling; `frame_mask` says which
    frame logits are real (all True without a mask)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = FrameEncoder(cfg.backbone, cfg.pretrained)  # type: ignore[arg-type]
        self.dropout = nn.Dropout(cfg.dropout)
        self.pool = POOLINGS.get(cfg.pooling)(self.encoder.out_dim, cfg)
        self.head = nn.Linear(self.pool.out_dim, 1)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        feats = self.dropout(self.encoder(video))  # (B,T,D)
        m = valid_mask(feats, mask)  # (B,T)
        seq, pooled = self.pool(feats, m)  # (B,T,D'), (B,D')
        return {
            "logit": self.head(pooled).squeeze(-1),  # (B,)
            "frame_logits": self.head(seq).squeeze(-1),  # (B,T)
            "frame_mask": m,  # (B,T)
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


MODELS.register("frame")(ModelSpec(
    build=FrameModel, inputs=("video",), optional=("mask",), validate=_validate, heads=FRAME_HEADS,
    summary="timm 2D backbone per face frame + temporal pooling -> video and frame logits",
    defaults={"backbone": "efficientnet_b0", "num_frames": 8, "image_size": 224},
))
MODELS.register("frame_tiny")(ModelSpec(
    build=FrameModel, inputs=("video",), optional=("mask",), validate=_validate, heads=FRAME_HEADS,
    summary="the CPU demo preset of `frame`: small from-scratch CNN (tinycnn) at 112 px",
    defaults={"backbone": "tinycnn", "num_frames": 8, "image_size": 112},
))
