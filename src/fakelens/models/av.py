"""`av`: audio-visual fusion with heads for "fake", "visual fake" and "audio fake" (the labels
AV-Deepfake1M's modify_type gives), and late or mid-level fusion by name."""

from __future__ import annotations

import torch
from torch import nn

from fakelens.models.audio import AudioEncoder, step_times
from fakelens.models.backbones import check_image_backbone
from fakelens.models.config import ModelConfig
from fakelens.models.factory import MODELS, ModelSpec
from fakelens.models.frame import FrameEncoder
from fakelens.models.temporal import POOLINGS, sinusoidal, transformer_encoder, valid_mask

# Positions of the mid-fusion tokens are their time in seconds from the clip's first frame, in
# units of 10 ms (times this scale): a video frame and an audio step at the same moment get the
# same positional code, whatever each stream's length and rate.
POSITION_UNITS_PER_SECOND = 100.0
DEFAULT_HOP_SECONDS = 0.010  # mel hop assumed when forward gets no audio_times (example inputs)


class AVModel(nn.Module):
    """forward(video (B,T,3,H,W), audio (B,1,n_mels,F), mask (B,T), audio_mask (B,F), times (B,T),
    audio_times (B,F)) -> {"logit", "visual_logit", "audio_logit": (B,), "frame_logits" (B,T)
    visual fake per frame, "time_logits" (B,F') audio fake per audio step (`time_stride` mel
    frames each), "frame_mask" (B,T), "time_mask" (B,F') bool}. Masks and times are optional.

    Both encoders' sequences are projected to `temporal_dim`. fusion="late": each modality is
    pooled alone and "fake" is scored from both pooled embeddings. fusion="mid": the two token
    sequences first attend to each other in a joint transformer, so lip-sync mismatches are
    visible to both heads; a token's position is its time in seconds from the clip's first frame
    (frame times; the mean time of an audio step's mel frames), so tokens at the same moment get
    the same code even when the two streams span different lengths. Masked frames and mel frames
    (padding, no face) are key-padded out of the joint transformer and left out of the pooling.
    Without `times` / `audio_times`, the mel frames are taken DEFAULT_HOP_SECONDS apart and the
    frames spread evenly over the same span."""

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

    def positions(self, video: torch.Tensor, audio: torch.Tensor, steps: int, times: torch.Tensor | None,
                  audio_times: torch.Tensor | None, audio_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Seconds from the clip's first frame of each video token (B,T) and audio step (B,F')."""
        b, t, w = video.shape[0], video.shape[1], audio.shape[-1]
        dev = video.device
        if audio_times is None:
            start = times[:, :1].double() if times is not None else torch.zeros(b, 1, dtype=torch.float64, device=dev)
            audio_times = start + DEFAULT_HOP_SECONDS * torch.arange(w, device=dev, dtype=torch.float64)  # (B,W)
        if times is None:
            span = w * DEFAULT_HOP_SECONDS
            times = audio_times[:, :1].double() + span / t * torch.arange(t, device=dev, dtype=torch.float64)  # (B,T)
        t0 = times[:, :1].double()  # (B,1) the clip's first frame
        pos_v = times.double() - t0  # (B,T)
        pos_a = step_times(audio_times.double(), self.time_stride, steps, audio_mask) - t0  # (B,F')
        return pos_v.float(), pos_a.float()

    def forward(self, video: torch.Tensor, audio: torch.Tensor, mask: torch.Tensor | None = None,
                audio_mask: torch.Tensor | None = None, times: torch.Tensor | None = None,
                audio_times: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        fv = self.visual(video)  # (B,T,Dv)
        mv = valid_mask(fv, mask)  # (B,T)
        fa, ma = self.audio(audio, audio_mask)  # (B,F',Da), (B,F')
        v = self.dropout(self.proj_v(fv))  # (B,T,d)
        a = self.dropout(self.proj_a(fa))  # (B,F',d)
        if self.fusion == "mid":
            t, f, d = v.shape[1], a.shape[1], v.shape[2]
            sec_v, sec_a = self.positions(video, audio, f, times, audio_times, audio_mask)  # (B,T), (B,F')
            pos_v = sinusoidal(sec_v * POSITION_UNITS_PER_SECOND, d)  # (B,T,d)
            pos_a = sinusoidal(sec_a * POSITION_UNITS_PER_SECOND, d)  # (B,F',d)
            tokens = torch.cat([v + pos_v + self.modality[0], a + pos_a + self.modality[1]], dim=1)  # (B,T+F',d)
            keep = torch.cat([mv, ma], dim=1)  # (B,T+F')
            keep = keep | ~keep.any(dim=1, keepdim=True)  # a row with nothing valid attends to all (never scored)
            z = self.joint(tokens, src_key_padding_mask=~keep)
            v, a = z[:, :t], z[:, t:]
        seq_v, pooled_v = self.pool_v(v, mv)  # (B,T,dv), (B,dv)
        seq_a, pooled_a = self.pool_a(a, ma)  # (B,F',da), (B,da)
        return {
            "logit": self.head_fake(torch.cat([pooled_v, pooled_a], dim=1)).squeeze(-1),  # (B,)
            "visual_logit": self.head_v(pooled_v).squeeze(-1),  # (B,)
            "audio_logit": self.head_a(pooled_a).squeeze(-1),  # (B,)
            "frame_logits": self.head_v(seq_v).squeeze(-1),  # (B,T)
            "time_logits": self.head_a(seq_a).squeeze(-1),  # (B,F')
            "frame_mask": mv,  # (B,T)
            "time_mask": ma,  # (B,F')
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.backbone, cfg.name)  # type: ignore[arg-type]
    check_image_backbone(cfg.audio_backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


AV_OPTIONAL = ("mask", "audio_mask", "times", "audio_times")
# head_fake gives the fake logit; head_v the visual-fake logit and the per-frame logits; head_a the
# audio-fake logit and the per-step logits (each one linear head over pooled / per-instance features)
AV_HEADS = {"logit": "head_fake", "visual_logit": "head_v", "frame_logits": "head_v",
            "audio_logit": "head_a", "time_logits": "head_a"}
MODELS.register("av")(ModelSpec(
    build=AVModel, inputs=("video", "audio"), optional=AV_OPTIONAL, validate=_validate, heads=AV_HEADS,
    summary="audio-visual fusion (late or mid) -> fake, visual-fake, audio-fake, frame and time logits",
    defaults={"backbone": "efficientnet_b0", "num_frames": 16, "image_size": 224, "audio_backbone": "resnet18"},
))
MODELS.register("av_tiny")(ModelSpec(
    build=AVModel, inputs=("video", "audio"), optional=AV_OPTIONAL, validate=_validate, heads=AV_HEADS,
    summary="the CPU demo preset of `av`: tinycnn for both faces (112 px) and log-mels",
    defaults={"backbone": "tinycnn", "num_frames": 8, "image_size": 112, "audio_backbone": "tinycnn"},
))
