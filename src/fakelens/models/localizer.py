"""`localizer`: temporal localization of fake segments over dense per-step features (the arrays
`fakelens features` stores), anchor-free like ActionFormer-style detectors.

Per step (one video frame, or one sample at a stated fps) the model gets a visual feature (the
face encoder's) and an audio feature (the audio encoder's, aligned to the same steps), each with
a mask saying where it exists (a step without a face, a video without audio). It projects both
streams to `temporal_dim`, fuses them ("late": concatenation with their product; "mid": each
stream first attends to the other, so a lip/voice mismatch is seen), runs `temporal_layers`
dilated residual convolutions, and builds a pyramid of `levels` levels (stride 1, 2, 4, ...
steps, each a strided convolution and a residual block). Heads shared by every level give, for
each point of the pyramid, a fake logit, the distances to the start and the end of the fake
segment the point lies in (in units of its level's stride, positive), and two modality logits
(the segment's face is fake, its voice is fake). A per-step head on level 0 gives `frame_logits`
(is this step inside a fake segment); the video logit (AV-Deepfake1M task 1) is their maximum.

Everything is masked, so a video of any length can be batched with padding: a padded step never
changes a valid one (the convolutions see zeros there, as at the video's edges, and the
normalisation is per step). Point i of level l is centred at 2**l * i + 0.5 steps (the centre of
step 2**l * i): step j covers [j, j + 1), and a Conv1d(kernel 3, stride 2, padding 1) makes its
output i from inputs 2i - 1, 2i, 2i + 1, centred on input 2i, so level l's point i is centred on
level 0's step 2**l * i (ActionFormer's i * stride, on steps that are cells).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fakelens.errors import ConfigError
from fakelens.models.config import ModelConfig
from fakelens.models.factory import MODELS, ModelSpec

PRIOR_PROBABILITY = 0.01  # initial P(fake) of every point: focal-loss training starts from the negatives
MASK_NAMES = ("mask", "visual_mask", "audio_mask")


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of (B, C, T), per step (padding never mixes into valid steps)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """x + conv(gelu(norm(conv(x)))) with dilation `dilation`, zero outside the mask."""

    def __init__(self, dim: int, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation)
        self.norm = ChannelNorm(dim)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x * m)
        h = self.conv2(self.dropout(F.gelu(self.norm(h))) * m)
        return (x + h) * m


class Head(nn.Module):
    """conv -> norm -> gelu -> conv, shared by the pyramid levels: (B, C, T_l) -> (B, out, T_l)."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.norm = ChannelNorm(dim)
        self.conv2 = nn.Conv1d(dim, out, 3, padding=1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.gelu(self.norm(self.conv1(x * m))) * m)


class StreamProjection(nn.Module):
    """(B, T, D_in) features -> (B, T, d); steps where the stream is missing get a learned vector."""

    def __init__(self, d_in: int, d: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d), nn.GELU()) if d_in > 0 else None
        self.missing = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.missing, std=0.02)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        b, t = present.shape
        if self.proj is None:
            return self.missing.expand(b, t, -1)
        h = self.proj(x.float())  # (B, T, d)
        return torch.where(present[..., None], h, self.missing.to(h.dtype))


class CrossAttention(nn.Module):
    """Each step of one stream attends to the valid steps of the other (plus a learned null key, so
    a video without the other stream is well defined): x + attn(norm(x), other)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads if d % heads == 0 else 1, dropout=dropout, batch_first=True)
        self.null = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.null, std=0.02)

    def forward(self, x: torch.Tensor, other: torch.Tensor, other_valid: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        kv = torch.cat([self.null.expand(b, -1, -1).to(other.dtype), self.norm_kv(other)], dim=1)  # (B, 1+T, d)
        pad = torch.cat([other_valid.new_zeros(b, 1), ~other_valid], dim=1)  # (B, 1+T) True = ignore
        out, _ = self.attn(self.norm_q(x), kv, kv, key_padding_mask=pad, need_weights=False)
        return x + out


class Localizer(nn.Module):
    """forward(visual_features (B,T,Dv), audio_features (B,T,Da), mask, visual_mask, audio_mask
    (B,T) bool, optional) -> {
      "logit": (B,) video fake logit = max of frame_logits over valid steps,
      "frame_logits": (B,T) is each step inside a fake segment,
      "point_logits": (B,N) fake logit of each pyramid point, "point_offsets": (B,N,2) distances to
      the segment's start and end in units of the point's stride, "point_modality": (B,N,2)
      visual-fake / audio-fake logits, "point_mask": (B,N) valid points,
      "point_centres": (N,) in steps, "point_strides": (N,) in steps}.
    T is padded inside to a multiple of 2**(levels-1); N = sum over levels of T_padded / 2**l."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.temporal_dim
        self.levels = int(cfg.levels)
        self.dv = int(cfg.feature_dim or 0)
        self.da = int(cfg.audio_feature_dim or 0)
        self.visual_in = StreamProjection(self.dv, d)
        self.audio_in = StreamProjection(self.da, d)
        self.fusion = cfg.fusion
        if cfg.fusion == "mid":
            self.cross_v = CrossAttention(d, cfg.temporal_heads, cfg.dropout)
            self.cross_a = CrossAttention(d, cfg.temporal_heads, cfg.dropout)
        self.fuse = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Dropout(cfg.dropout))
        self.stem = nn.ModuleList(ConvBlock(d, 2 ** (i % 4), cfg.dropout) for i in range(cfg.temporal_layers))
        self.down = nn.ModuleList(nn.Conv1d(d, d, 3, stride=2, padding=1) for _ in range(self.levels - 1))
        self.level_blocks = nn.ModuleList(ConvBlock(d, 1, cfg.dropout) for _ in range(self.levels - 1))
        self.cls_head = Head(d, 1)
        self.reg_head = Head(d, 2)
        self.mod_head = Head(d, 2)
        self.frame_head = Head(d, 1)
        self.scales = nn.Parameter(torch.ones(self.levels))  # per-level scale of the distances (as FCOS)
        bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
        nn.init.constant_(self.cls_head.conv2.bias, bias)
        nn.init.constant_(self.frame_head.conv2.bias, bias)

    @property
    def multiple(self) -> int:
        """Lengths are padded to a multiple of this many steps."""
        return 2 ** (self.levels - 1)

    def point_grid(self, n_steps: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) centres and (N,) strides in level-0 steps of the points of a padded length n_steps:
        point i of level l is centred where its receptive field is, 2**l * i + 0.5 (module docstring)."""
        centres, strides = [], []
        for level in range(self.levels):
            s = 2 ** level
            n = -(-n_steps // s)
            centres.append(torch.arange(n, device=device, dtype=torch.float32) * s + 0.5)
            strides.append(torch.full((n,), float(s), device=device))
        return torch.cat(centres), torch.cat(strides)

    def forward(self, visual_features: torch.Tensor, audio_features: torch.Tensor, mask: torch.Tensor | None = None,
                visual_mask: torch.Tensor | None = None, audio_mask: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        if visual_features.ndim != 3 or audio_features.ndim != 3 or visual_features.shape[:2] != audio_features.shape[:2]:
            raise ValueError(f"localizer inputs must be (B, T, D) features on the same steps, got "
                             f"{tuple(visual_features.shape)} and {tuple(audio_features.shape)}")
        if visual_features.shape[2] != self.dv or audio_features.shape[2] != self.da:
            raise ValueError(f"localizer built for visual/audio features of width {self.dv}/{self.da}, got "
                             f"{visual_features.shape[2]}/{audio_features.shape[2]}")
        b, t = visual_features.shape[:2]
        dev = visual_features.device
        ones = torch.ones(b, t, dtype=torch.bool, device=dev)
        mask = ones if mask is None else mask.bool()
        vmask = (ones if visual_mask is None else visual_mask.bool()) & mask & (self.dv > 0)
        amask = (ones if audio_mask is None else audio_mask.bool()) & mask & (self.da > 0)
        pad = (-t) % self.multiple
        if pad:
            visual_features = F.pad(visual_features, (0, 0, 0, pad))
            audio_features = F.pad(audio_features, (0, 0, 0, pad))
            mask, vmask, amask = (F.pad(m, (0, pad), value=False) for m in (mask, vmask, amask))
        v = self.visual_in(visual_features, vmask)  # (B, Tp, d)
        a = self.audio_in(audio_features, amask)  # (B, Tp, d)
        if self.fusion == "mid":
            v, a = self.cross_v(v, a, amask), self.cross_a(a, v, vmask)
        x = self.fuse(torch.cat([v, a, v * a], dim=-1)).transpose(1, 2)  # (B, d, Tp)
        m = mask[:, None, :].to(x.dtype)  # (B, 1, Tp)
        for block in self.stem:
            x = block(x, m)
        frame = self.frame_head(x, m)[:, 0, :t]  # (B, T)
        feats, masks = [x], [m]
        for down, block in zip(self.down, self.level_blocks):
            m = F.max_pool1d(m, 2, 2)  # (B, 1, T_l): a point is valid when any of its steps is
            x = block(down(x * masks[-1]) * m, m)
            feats.append(x)
            masks.append(m)
        logits, offsets, modality = [], [], []
        for level, (f, fm) in enumerate(zip(feats, masks)):
            logits.append(self.cls_head(f, fm)[:, 0])  # (B, T_l)
            offsets.append(F.softplus(self.scales[level] * self.reg_head(f, fm)).transpose(1, 2))  # (B, T_l, 2)
            modality.append(self.mod_head(f, fm).transpose(1, 2))  # (B, T_l, 2)
        centres, strides = self.point_grid(t + pad, dev)
        valid = mask[:, :t]
        return {
            "logit": frame.masked_fill(~valid, -1e4).amax(dim=1),  # (B,)
            "frame_logits": frame,  # (B, T)
            "point_logits": torch.cat(logits, dim=1),  # (B, N)
            "point_offsets": torch.cat(offsets, dim=1),  # (B, N, 2)
            "point_modality": torch.cat(modality, dim=1),  # (B, N, 2)
            "point_mask": torch.cat([mm[:, 0] for mm in masks], dim=1) > 0,  # (B, N)
            "point_centres": centres,  # (N,)
            "point_strides": strides,  # (N,)
        }


def _validate(cfg: ModelConfig) -> ModelConfig:
    if cfg.feature_dim is None or cfg.audio_feature_dim is None:
        raise ConfigError(f"model {cfg.name!r}: model.feature_dim and model.audio_feature_dim are the widths of the "
                          "dense features (training fills them from data.cache, a `fakelens features` folder)")
    if cfg.feature_dim < 0 or cfg.audio_feature_dim < 0 or cfg.feature_dim + cfg.audio_feature_dim == 0:
        raise ConfigError(f"model {cfg.name!r}: feature widths must be >= 0 and not both 0, got "
                          f"{cfg.feature_dim} and {cfg.audio_feature_dim}")
    if not 1 <= cfg.levels <= 12:
        raise ConfigError(f"model.levels must be in [1, 12], got {cfg.levels}")
    return cfg


MODELS.register("localizer")(ModelSpec(
    build=Localizer, inputs=("visual_features", "audio_features"), optional=MASK_NAMES, validate=_validate,
    summary="fake-segment localizer over dense features: fusion, dilated-conv pyramid, anchor-free heads",
    defaults={"num_frames": 256},
))
