"""`av`: audio-visual fusion with heads for "fake", "visual fake" and "audio fake" (the labels
AV-Deepfake1M's modify_type gives), and late or mid-level fusion by name."""

from __future__ import annotations

import torch
from torch import nn

from fakelens.models.audio import AudioEncoder
from fakelens.models.backbones import check_image_backbone
from fakelens.models.config import ModelConfig
from fakelens.models.factory import MODELS, ModelSpec
from fakelens.models.frame import FrameEncoder
from fakelens.models.temporal import POOLINGS, sinusoidal, transformer_encoder

# Positions of the mid-fusion tokens are their time as a fraction of the clip, times this
# scale: a video frame and an audio step at the same moment get the same positional code.
_POSITION_SCALE = 100.0


class AVModel(nn.Module):
    """forward(video (B,T,3,H,W), audio (B,1,n_mels,F)) -> {"logit", "visual_logit",
    "audio_logit": (B,), "frame_logits": (B,T) visual fake per frame, "time_logits": (B,F')
    audio fake per audio step (`time_stride` mel frames each)}.

    Both encoders' sequences are projected to `temporal_dim`. fusion="late": each modality is
    pooled alone and "fake" is scored from both pooled embeddings. fusion="mid": the two token
    sequences first attend to each other in a joint transformer (with time-aligned positions),
    so lip-sync mismatches are visible to both heads. Video and audio must span the same clip."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        audio_pretrained = cfg.audio_pretrained
        if audio_pretrained is None:
            audio_pretrained = cfg.pretrained if isinstance(cfg.pretrained, bool) else False
        self.visual = FrameEncoder(cfg.backbone, cfg.pretrained)  # type: ignore[arg-type]
        self.audio = AudioEncoder(cfg.audio_backbone, audio_pretrained, cfg.n_mels, cfg.audio_time_stride)  # type: ignore[arg-type]
        self.time_stride = self.audio.time_stride
        d = cfg.temporal_dim
        self.proj_v = nn.Linear(self.visual.out_dim, d)
        self.proj_a = nn.Linear(self.audio.out_dim, d)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fusion = cfg.fusion
        if cfg.fusion == "mid":
            self.modality = nn.Parameter(torch.zeros(2, d))  # (2,d): video, audio token type
            nn.init.normal_(self.modality, std=0.02)
            self.joint = transformer_encoder(d, cfg)
        self.pool_v = POOLINGS.get(cfg.pooling)(d, cfg)
        self.pool_a = POOLINGS.get(cfg.pooling)(d, cfg)
        dv, da = self.pool_v.out_dim, self.pool_a.out_dim
        self.head_v = nn.Linear(dv, 1)
        self.head_a = nn.Linear(da, 1)
        self.head_fake = nn.Sequential(nn.Linear(dv + da, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, 1))

    def time_steps(self, n_mel_frames: int) -> int:
        return self.audio.time_steps(n_mel_frames)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        v = self.dropout(self.proj_v(self.visual(video)))  # (B,T,d)
        a = self.dropout(self.proj_a(self.audio(audio)))  # (B,F',d)
        if self.fusion == "mid":
            t, f, d = v.shape[1], a.shape[1], v.shape[2]
            pos_v = sinusoidal((torch.arange(t, device=v.device) + 0.5) / t * _POSITION_SCALE, d)  # (T,d)
            pos_a = sinusoidal((torch.arange(f, device=a.device) + 0.5) / f * _POSITION_SCALE, d)  # (F',d)
            tokens = torch.cat([v + pos_v + self.modality[0], a + pos_a + self.modality[1]], dim=1)  # (B,T+F',d)
            z = self.joint(tokens)
            v, a = z[:, :t], z[:, t:]
        seq_v, pooled_v = self.pool_v(v)  # (B,T,dv), (B,dv)
        seq_a, pooled_a = self.pool_a(a)  # (B,F',da), (B,da)
        return {
            "logit": self.head_fake(torch.cat([pooled_v, pooled_a], dim=1)).squeeze(-1),  # (B,)
            "visual_logit": self.head_v(pooled_v).squeeze(-1),  # (B,)
            "audio_logit": self.head_a(pooled_a).squeeze(-1),  # (B,)
            "frame_logits": self.head_v(seq_v).squeeze(-1),  # (B,T)
            "time_logits": self.head_a(seq_a).squeeze(-1),  # (B,F')
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.backbone, cfg.name)  # type: ignore[arg-type]
    check_image_backbone(cfg.audio_backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


MODELS.register("av")(ModelSpec(
    build=AVModel, inputs=("video", "audio"), validate=_validate,
    summary="audio-visual fusion (late or mid) -> fake, visual-fake, audio-fake, frame and time logits",
    defaults={"backbone": "efficientnet_b0", "num_frames": 16, "image_size": 224, "audio_backbone": "resnet18"},
))
MODELS.register("av_tiny")(ModelSpec(
    build=AVModel, inputs=("video", "audio"), validate=_validate,
    summary="the CPU demo preset of `av`: tinycnn for both faces (112 px) and log-mels",
    defaults={"backbone": "tinycnn", "num_frames": 8, "image_size": 112, "audio_backbone": "tinycnn"},
))
