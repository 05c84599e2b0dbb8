"""`audio`: a 2D CNN over the log-mel "image" (ResNet-18 by default, the multimedia
competition's baseline), pooled over frequency into per-time-step features."""

from __future__ import annotations

import math

import torch
from torch import nn

from fakelens.models.backbones import build_image_backbone, check_image_backbone, limit_time_stride
from fakelens.models.config import ModelConfig
from fakelens.models.factory import AUDIO_HEADS, MODELS, ModelSpec
from fakelens.models.temporal import POOLINGS


def check_audio(audio: torch.Tensor, n_mels: int) -> None:
    if audio.ndim != 4 or audio.shape[1] != 1 or audio.shape[2] != n_mels:
        raise ValueError(f"audio must be a log-mel image (B, 1, {n_mels}, F), got shape {tuple(audio.shape)}")


# Audio steps: step i of an encoder with time stride s covers mel frames [i*s, (i+1)*s) of its input
# window, the last step the frames left (F' = ceil(W / s)). These helpers are the one mapping from
# mel frames to steps, used for the step masks (here), the per-step labels (fakelens.tasks) and the
# step times (mid-fusion positions, fakelens.inference.pipeline timelines).


def step_groups(x: torch.Tensor, stride: int, steps: int, fill: float) -> torch.Tensor:
    """(B, W) per-mel-frame values -> (B, steps, stride): step i holds frames [i*stride, (i+1)*stride),
    positions past the window's end filled with `fill`."""
    if stride < 1 or steps < 0:
        raise ValueError(f"need stride >= 1 and steps >= 0, got {stride}, {steps}")
    b, w = x.shape
    need = steps * stride
    if need > w:
        x = torch.cat([x, x.new_full((b, need - w), fill)], dim=1)
    return x[:, :need].reshape(b, steps, stride)  # (B, steps, stride)


def steps_mask(frame_mask: torch.Tensor, stride: int, steps: int) -> torch.Tensor:
    """(B, W) bool mel-frame validity -> (B, steps) bool: a step is valid when any of its frames is."""
    return step_groups(frame_mask.bool(), stride, steps, False).any(dim=2)  # (B, steps)


def step_times(frame_times: torch.Tensor, stride: int, steps: int,
               frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, W) mel frame times (s) -> (B, steps) the mean time of each step's frames (its valid ones
    when a mask is given and the step has any)."""
    t = step_groups(frame_times.double(), stride, steps, float("nan"))  # (B, steps, stride)
    exists = ~torch.isnan(t)
    use = exists
    if frame_mask is not None:
        valid = step_groups(frame_mask.bool(), stride, steps, False) & exists
        use = torch.where(valid.any(dim=2, keepdim=True), valid, exists)
    n = use.sum(dim=2).clamp_min(1)
    return (torch.where(use, t, torch.zeros_like(t)).sum(dim=2) / n).to(frame_times.dtype)  # (B, steps)


class AudioEncoder(nn.Module):
    """(B,1,n_mels,F) log-mel, optional (B,F) bool mask -> (B,F',D) features and (B,F') step mask,
    F' = ceil(F / time_stride).

    The mel bins are standardised by a BatchNorm over frequency (as PANNs do), so the input
    can be raw log-mel values. `time_stride` is in mel frames: step i covers frames
    [i*time_stride, (i+1)*time_stride), i.e. seconds i*time_stride*hop .. (i+1)*time_stride*hop.
    Masked mel frames (padding past the end of the audio) are replaced by the mean of the
    window's valid frames, bin by bin, before the CNN, so the filler is neutral rather than the
    log floor; steps without a valid frame are False in the step mask and pooled out."""

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

    def forward(self, audio: torch.Tensor, audio_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_audio(audio, self.n_mels)
        b, f = audio.shape[0], audio.shape[-1]
        if audio_mask is not None:
            if tuple(audio_mask.shape) != (b, f):
                raise ValueError(f"audio_mask must be (B, F) = {(b, f)}, got {tuple(audio_mask.shape)}")
            m = audio_mask.to(device=audio.device, dtype=torch.bool)  # (B,F)
            w = m[:, None, None, :].to(audio.dtype)  # (B,1,1,F)
            fill = (audio * w).sum(dim=-1, keepdim=True) / w.sum(dim=-1, keepdim=True).clamp_min(1.0)  # (B,1,M,1)
            audio = torch.where(m[:, None, None, :], audio, fill)  # (B,1,M,F) padding -> the window's mean
        x = self.bn0(audio.transpose(1, 2)).transpose(1, 2)  # (B,1,M,F), each mel bin standardised
        fmap = self.backbone.forward_features(x)  # (B,C,M',F')
        if fmap.ndim != 4:
            raise ValueError(f"audio backbone must return a (B, C, freq, time) map, got shape {tuple(fmap.shape)}")
        feats = fmap.mean(dim=2).transpose(1, 2)  # (B,F',C)
        steps = feats.shape[1]
        if audio_mask is None:
            return feats, torch.ones(b, steps, dtype=torch.bool, device=feats.device)  # (B,F')
        return feats, steps_mask(m, self.time_stride, steps)  # (B,F',C), (B,F')


class AudioModel(nn.Module):
    """forward(audio (B,1,n_mels,F), audio_mask (B,F) | None) -> {"logit": (B,), "time_logits": (B,F'),
    "time_mask": (B,F') bool}; `time_stride` (mel frames per step) and `time_steps(F)` map the
    steps back to time. Steps without valid audio are left out of the pooling."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = AudioEncoder(cfg.audio_backbone, cfg.pretrained, cfg.n_mels, cfg.audio_time_stride)  # type: ignore[arg-type]
        self.time_stride = self.encoder.time_stride
        self.dropout = nn.Dropout(cfg.dropout)
        self.pool = POOLINGS.get(cfg.pooling)(self.encoder.out_dim, cfg)
        self.head = nn.Linear(self.pool.out_dim, 1)

    def time_steps(self, n_mel_frames: int) -> int:
        return self.encoder.time_steps(n_mel_frames)

    def forward(self, audio: torch.Tensor, audio_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        feats, m = self.encoder(audio, audio_mask)  # (B,F',D), (B,F')
        seq, pooled = self.pool(self.dropout(feats), m)  # (B,F',D'), (B,D')
        return {
            "logit": self.head(pooled).squeeze(-1),  # (B,)
            "time_logits": self.head(seq).squeeze(-1),  # (B,F')
            "time_mask": m,  # (B,F')
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.audio_backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


MODELS.register("audio")(ModelSpec(
    build=AudioModel, inputs=("audio",), optional=("audio_mask",), validate=_validate, heads=AUDIO_HEADS,
    summary="2D CNN (ResNet-18) over the log-mel image -> clip and per-time-step logits",
    defaults={"audio_backbone": "resnet18"},
))
MODELS.register("audio_tiny")(ModelSpec(
    build=AudioModel, inputs=("audio",), optional=("audio_mask",), validate=_validate, heads=AUDIO_HEADS,
    summary="the CPU demo preset of `audio`: small from-scratch CNN (tinycnn)",
    defaults={"audio_backbone": "tinycnn"},
))
