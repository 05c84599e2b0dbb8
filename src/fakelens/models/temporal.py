"""Temporal pooling by name: turn a sequence of per-frame (or per-time-step) features into a
contextualised sequence (for per-frame logits) and one pooled vector (for the video logit)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from fakelens.models.config import ModelConfig
from fakelens.registry import Registry

# factory(in_dim, cfg) -> module with `out_dim` and forward(x (B,T,D)) -> (seq (B,T,out_dim), pooled (B,out_dim))
POOLINGS: Registry[Callable[[int, ModelConfig], nn.Module]] = Registry("pooling")


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine codes of float `positions` (T,) -> (T, dim); any length works."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * freqs[None, :]  # (T, half)
    out = torch.cat([angles.sin(), angles.cos()], dim=1)  # (T, 2*half)
    if dim % 2:
        out = torch.cat([out, out.new_zeros(len(positions), 1)], dim=1)
    return out  # (T, dim)


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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.mean(dim=1)  # (B,T,D), (B,D)


class MaxPool(nn.Module):
    """Channel-wise max over time: a fake shown in a few frames is not averaged away."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.amax(dim=1)  # (B,T,D), (B,D)


class AttentionPool(nn.Module):
    """Gated attention MIL pooling (Ilse et al. 2018): a learned softmax weight per frame, so
    the video logit is a weighted mean of frame logits that can focus on the manipulated ones."""

    def __init__(self, in_dim: int, cfg: ModelConfig, hidden: int = 128):
        super().__init__()
        self.out_dim = in_dim
        self.value = nn.Linear(in_dim, hidden)
        self.gate = nn.Linear(in_dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)  # a bias would cancel in the softmax

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, T) summing to 1 over time."""
        s = self.score(torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x))).squeeze(-1)  # (B,T)
        return s.softmax(dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.weights(x)  # (B,T)
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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        h = self.proj(x) + sinusoidal(torch.arange(t, device=x.device), self.out_dim)  # (B,T,d)
        h = torch.cat([self.cls.expand(b, -1, -1), h], dim=1)  # (B,1+T,d)
        h = self.encoder(h)
        return h[:, 1:], h[:, 0]  # (B,T,d), (B,d)


POOLINGS.register("mean")(MeanPool)
POOLINGS.register("max")(MaxPool)
POOLINGS.register("attention")(AttentionPool)
POOLINGS.register("transformer")(TransformerPool)
