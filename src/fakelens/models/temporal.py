"""Temporal pooling by name: turn a sequence of per-frame (or per-time-step) features into a
contextualised sequence (for per-frame logits) and one pooled vector (for the video logit).

Every pooling takes an optional `mask` (B, T) bool, True = a real step, False = padding (or a
frame without a face): masked steps never reach the pooled vector nor, for the transformer, any
other step (key padding mask), so a clip padded with copies pools exactly as the unpadded one.
A row with no valid step pools to zeros (attention / mean / max) or to the [CLS] token alone
(transformer); callers must not score such rows."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from fakelens.models.config import ModelConfig
from fakelens.registry import Registry

# factory(in_dim, cfg) -> module with `out_dim` and
# forward(x (B,T,D), mask (B,T) bool | None) -> (seq (B,T,out_dim), pooled (B,out_dim))
POOLINGS: Registry[Callable[[int, ModelConfig], nn.Module]] = Registry("pooling")


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine codes of float `positions` (..., T) -> (..., T, dim); any length works."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs  # (..., T, half)
    out = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., T, 2*half)
    if dim % 2:
        out = torch.cat([out, out.new_zeros(out.shape[:-1] + (1,))], dim=-1)
    return out  # (..., T, dim)


def valid_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The (B, T) bool validity of the steps of x (B, T, D): `mask`, or all True when None."""
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)  # (B,T)
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask shape {tuple(mask.shape)} != the (B, T) of the sequence {tuple(x.shape[:2])}")
    return mask.to(device=x.device, dtype=torch.bool)


def transformer_encoder(dim: int, cfg: ModelConfig) -> nn.TransformerEncoder:
    """Pre-norm transformer encoder of `cfg.temporal_layers` layers (batch first)."""
    heads = cfg.temporal_heads if dim % cfg.temporal_heads == 0 else 1
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, cfg.temporal_layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


class MeanPool(nn.Module):
    """Average over time; with a linear head the video logit is the mean of the frame logits."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        m = valid_mask(x, mask).to(x.dtype).unsqueeze(-1)  # (B,T,1)
        return x, (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)  # (B,T,D), (B,D)


class MaxPool(nn.Module):
    """Channel-wise max over time: a fake shown in a few frames is not averaged away."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        m = valid_mask(x, mask)  # (B,T)
        pooled = x.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B,D)
        return x, torch.where(m.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))  # (B,T,D), (B,D)


class AttentionPool(nn.Module):
    """Gated attention MIL pooling (Ilse et al. 2018): a learned softmax weight per frame, so
    the video logit is a weighted mean of frame logits that can focus on the manipulated ones."""

    def __init__(self, in_dim: int, cfg: ModelConfig, hidden: int = 128):
        super().__init__()
        self.out_dim = in_dim
        self.value = nn.Linear(in_dim, hidden)
        self.gate = nn.Linear(in_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)  # a bias would cancel in the softmax

    def weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights (B, T) summing to 1 over the valid steps (0 on masked ones)."""
        m = valid_mask(x, mask)  # (B,T)
        s = self.score(torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x))).squeeze(-1)  # (B,T)
        s = s.float().masked_fill(~m, float("-inf"))
        a = torch.where(m.any(dim=1, keepdim=True), s.softmax(dim=1), torch.zeros_like(s))  # (B,T)
        return a.to(x.dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.weights(x, mask)  # (B,T)
        return x, (a.unsqueeze(-1) * x).sum(dim=1)  # (B,T,D), (B,D)


class TransformerPool(nn.Module):
    """A small temporal transformer with a [CLS] token: frames see each other (temporal
    inconsistencies), the CLS output is the video embedding. Sinusoidal positions, any length."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        dim = cfg.temporal_dim
        self.out_dim = dim
        self.proj = nn.Linear(in_dim, dim) if in_dim != dim else nn.Identity()
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.cls, std=0.02)
        self.encoder = transformer_encoder(dim, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        m = valid_mask(x, mask)  # (B,T)
        h = self.proj(x) + sinusoidal(torch.arange(t, device=x.device), self.out_dim)  # (B,T,d)
        h = torch.cat([self.cls.expand(b, -1, -1), h], dim=1)  # (B,1+T,d)
        keep = torch.cat([m.new_ones(b, 1), m], dim=1)  # (B,1+T): the CLS token is always there
        h = self.encoder(h, src_key_padding_mask=~keep)
        return h[:, 1:], h[:, 0]  # (B,T,d), (B,d)


POOLINGS.register("mean")(MeanPool)
POOLINGS.register("max")(MaxPool)
POOLINGS.register("attention")(AttentionPool)
POOLINGS.register("transformer")(TransformerPool)
