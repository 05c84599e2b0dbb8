"""`audio`: a 2D CNN over the log-mel "image" (ResNet-18 by default, the multimedia
competition's baseline), pooled over frequency into per-time-step features."""

from __future__ import annotations

import math

import torch
from torch import nn

from fakelens.models.backbones import build_image_backbone, check_image_backbone, limit_time_stride
from fakelens.models.config import ModelConfig
from fakelens.models.factory import MODELS, ModelSpec
from fakelens.models.temporal import POOLINGS


def check_audio(audio: torch.Tensor, n_mels: int) -> None:
    if audio.ndim != 4 or audio.shape[1] != 1 or audio.shape[2] != n_mels:
        raise ValueError(f"audio must be a log-mel image (B, 1, {n_mels}, F), got shape {tuple(audio.shape)}")


class AudioEncoder(nn.Module):
    """(B,1,n_mels,F) log-mel -> (B,F',D) features, F' = ceil(F / time_stride).

    The mel bins are standardised by a BatchNorm over frequency (as PANNs do), so the input
    can be raw log-mel values. `time_stride` is in mel frames: step i covers frames
    [i*time_stride, (i+1)*time_stride), i.e. seconds i*time_stride*hop .. (i+1)*time_stride*hop."""

    def __init__(self, backbone: str, pretrained: bool | str, n_mels: int, time_stride: int):
        super().__init__()
        self.n_mels = n_mels
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.backbone = build_image_backbone(backbone, pretrained, in_chans=1)
        native = int(self.backbone.feature_info[-1]["reduction"])
        limit_time_stride(self.backbone, native, time_stride, backbone)
        self.time_stride = time_stride
        self.out_dim = int(self.backbone.num_features)

    def time_steps(self, n_mel_frames: int) -> int:
        """Number of output time steps for an input of `n_mel_frames` mel frames."""
        return math.ceil(n_mel_frames / self.time_stride)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        check_audio(audio, self.n_mels)
        x = self.bn0(audio.transpose(1, 2)).transpose(1, 2)  # (B,1,M,F), each mel bin standardised
        fmap = self.backbone.forward_features(x)  # (B,C,M',F')
        if fmap.ndim != 4:
            raise ValueError(f"audio backbone must return a (B, C, freq, time) map, got shape {tuple(fmap.shape)}")
        return fmap.mean(dim=2).transpose(1, 2)  # (B,F',C)


class AudioModel(nn.Module):
    """forward(audio (B,1,n_mels,F)) -> {"logit": (B,), "time_logits": (B,F')}; `time_stride`
    (mel frames per step) and `time_steps(F)` map the steps back to time."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = AudioEncoder(cfg.audio_backbone, cfg.pretrained, cfg.n_mels, cfg.audio_time_stride)  # type: ignore[arg-type]
        self.time_stride = self.encoder.time_stride
        self.dropout = nn.Dropout(cfg.dropout)
        self.pool = POOLINGS.get(cfg.pooling)(self.encoder.out_dim, cfg)
        self.head = nn.Linear(self.pool.out_dim, 1)

    def time_steps(self, n_mel_frames: int) -> int:
        return self.encoder.time_steps(n_mel_frames)

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.dropout(self.encoder(audio))  # (B,F',D)
        seq, pooled = self.pool(feats)  # (B,F',D'), (B,D')
        return {
            "logit": self.head(pooled).squeeze(-1),  # (B,)
            "time_logits": self.head(seq).squeeze(-1),  # (B,F')
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.audio_backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


MODELS.register("audio")(ModelSpec(
    build=AudioModel, inputs=("audio",), validate=_validate,
    summary="2D CNN (ResNet-18) over the log-mel image -> clip and per-time-step logits",
    defaults={"audio_backbone": "resnet18"},
))
MODELS.register("audio_tiny")(ModelSpec(
    build=AudioModel, inputs=("audio",), validate=_validate,
    summary="the CPU demo preset of `audio`: small from-scratch CNN (tinycnn)",
    defaults={"audio_backbone": "tinycnn"},
))
