"""Multiple-instance pooling: per-frame (or per-segment) logits -> one video logit.

Weak supervision trains a per-frame scorer with the video label only: the video logit is a
pooling of the frame logits, so the frame logits stay meaningful (usable for localization).
Pooling runs in logit space so the video logit feeds BCE-with-logits directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from fakelens.registry import Registry


@dataclass(frozen=True)
class PoolingParams:
    """Knobs of the pooling strategies: `topk` is a fraction of the frames (at least one frame),
    `r` the sharpness of log-sum-exp (r -> 0: mean, r -> inf: max)."""

    topk: float = 0.25
    r: float = 5.0


PoolingFn = Callable[[torch.Tensor, "torch.Tensor | None", PoolingParams], torch.Tensor]
POOLINGS: Registry[PoolingFn] = Registry("MIL pooling")


def _mask_or_ones(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(logits, dtype=torch.bool)  # (B, T)
    mask = mask.to(torch.bool)
    if mask.shape != logits.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != logits shape {tuple(logits.shape)}")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every video needs at least one valid frame to pool")
    return mask


@POOLINGS.register("max")
def max_pool(logits: torch.Tensor, mask: torch.Tensor | None, params: PoolingParams) -> torch.Tensor:
    """Most suspicious frame: a video is fake if any frame is (standard MIL assumption)."""
    m = _mask_or_ones(logits, mask)
    return logits.masked_fill(~m, float("-inf")).amax(dim=1)  # (B,)


@POOLINGS.register("mean")
def mean_pool(logits: torch.Tensor, mask: torch.Tensor | None, params: PoolingParams) -> torch.Tensor:
    """Mean logit over valid frames: right when the whole video is manipulated."""
    m = _mask_or_ones(logits, mask).to(logits.dtype)
    return (logits * m).sum(dim=1) / m.sum(dim=1)  # (B,)


@POOLINGS.register("topk_mean")
def topk_mean_pool(logits: torch.Tensor, mask: torch.Tensor | None, params: PoolingParams) -> torch.Tensor:
    """Mean of the k highest frame logits, k = ceil(topk * valid frames): robust to one noisy frame
    while still firing on short fake segments."""
    m = _mask_or_ones(logits, mask)
    n_valid = m.sum(dim=1)  # (B,)
    k = torch.clamp(torch.ceil(params.topk * n_valid.to(torch.float32)).to(torch.long), min=1)  # (B,)
    kmax = int(k.max())
    top = logits.masked_fill(~m, float("-inf")).topk(kmax, dim=1).values  # (B, kmax), descending
    keep = torch.arange(kmax, device=logits.device)[None, :] < k[:, None]  # (B, kmax)
    return (top.masked_fill(~keep, 0.0)).sum(dim=1) / k.to(logits.dtype)  # (B,)


@POOLINGS.register("lse")
def lse_pool(logits: torch.Tensor, mask: torch.Tensor | None, params: PoolingParams) -> torch.Tensor:
    """Log-sum-exp (smooth max): (1/r) log mean exp(r * x); gradients reach every frame."""
    if params.r <= 0:
        raise ValueError(f"log-sum-exp pooling needs r > 0, got {params.r}")
    m = _mask_or_ones(logits, mask)
    n_valid = m.sum(dim=1).to(logits.dtype)  # (B,)
    z = (params.r * logits).masked_fill(~m, float("-inf"))  # (B, T)
    return (torch.logsumexp(z, dim=1) - torch.log(n_valid)) / params.r  # (B,)


def pool(name: str, logits: torch.Tensor, mask: torch.Tensor | None = None,
         params: PoolingParams | None = None) -> torch.Tensor:
    """Pool (B, T) logits into (B,) with the named strategy."""
    if logits.ndim != 2:
        raise ValueError(f"pooling expects (B, T) logits, got shape {tuple(logits.shape)}")
    return POOLINGS.get(name)(logits, mask, params or PoolingParams())


__all__ = ["POOLINGS", "PoolingParams", "pool", "max_pool", "mean_pool", "topk_mean_pool", "lse_pool"]
