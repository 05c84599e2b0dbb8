"""`i3d`: a 2D ImageNet backbone inflated into a 3D CNN (Carreira & Zisserman 2017, "Quo Vadis").

The I3D method: every k x k convolution of a 2D network becomes a kt x k x k convolution whose
kernel is the 2D kernel repeated kt times over time and divided by kt. On a "boring" clip of
identical frames the inflated network then computes exactly what the 2D network computes on one
frame, so the 2D ImageNet weights are a sound starting point for video. Any timm backbone (or a
fakelens one) can be inflated, which gives 3D versions of the timm models with ImageNet weights
(`pretrained: true`, needs network once; offline: random init or a local 2D weights file).

How the network runs: frames stay folded into the batch, (B*T, C, H, W), so everything that is
not a convolution (normalisation, activations, pooling, squeeze-excitation, attention) runs as
the 2D network wrote it, on every frame; only the convolutions unfold the clip, convolve over
(time, height, width) with `nn.Conv3d` and fold it again. Choices, fixed for every backbone:
- kt = min(k, 3) for a k x k kernel (I3D's own Inception uses kt = k up to 7 in its stem, 3
  elsewhere); 1 x 1 convolutions become 1 x 1 x 1, i.e. stay the 2D convolution of each frame;
- time is padded by repeating the first and last frames (not with zeros), so the identical-
  frames property holds at the clip's edges too;
- the first strided convolution (the stem) also halves time, as I3D's first layer does; a
  network without one (e.g. meso4, which downsamples by pooling) keeps every frame;
- pooling layers stay per frame (I3D's first pools are 1 x 3 x 3 too); BatchNorm over the
  folded batch normalises over (B, T, H, W), exactly what BatchNorm3d does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fakelens.errors import ConfigError
from fakelens.models.backbones import Normalize, backbone_mean_std, build_image_backbone, check_image_backbone
from fakelens.models.config import ModelConfig
from fakelens.models.factory import CLIP_HEADS, MODELS, ModelSpec
from fakelens.models.frame import check_video

MAX_TIME_KERNEL = 3


class _Clip:
    """State shared by the inflated convolutions of one network: the number of clips in the batch
    being computed (the folded batch is B*T, so each convolution finds T from it)."""

    batch = 1


def _same_padding_kind(conv: nn.Conv2d) -> str:
    """'static' for fixed padding, 'tf_same' for timm's dynamic TF-style SAME convolutions
    (padding computed from each input's size, as the 2D network does)."""
    from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport

    if type(conv) in (Conv2dSame, Conv2dSameExport):
        return "tf_same"
    if type(conv) is not nn.Conv2d:
        raise ConfigError(f"cannot inflate {type(conv).__name__}: its forward changes the convolution "
                          "(e.g. weight standardisation), which a plain 3D convolution would not reproduce; "
                          "choose a backbone built from plain nn.Conv2d layers (resnet*, efficientnet*, inception*, ...)")
    return "static"


def _static_padding(conv: nn.Conv2d) -> tuple[int, int]:
    pad = conv.padding
    if isinstance(pad, str):  # PyTorch's own "same"/"valid"
        if pad == "valid":
            return 0, 0
        out = []
        for k, d in zip(conv.kernel_size, conv.dilation):
            total = d * (k - 1)
            if total % 2:
                raise ConfigError(f"cannot inflate a padding='same' convolution with an even kernel {conv.kernel_size}")
            out.append(total // 2)
        return out[0], out[1]
    return int(pad[0]), int(pad[1])


class InflatedConv(nn.Module):
    """A Conv2d inflated to kt x kh x kw (kernel repeated over time / kt), applied to clips folded
    into the batch: (B*T, C, H, W) -> (B*T', C', H', W') with T' = ceil(T / time_stride)."""

    def __init__(self, conv: nn.Conv2d, clip: _Clip, time_stride: int = 1):
        super().__init__()
        self.kind = _same_padding_kind(conv)
        kh, kw = conv.kernel_size
        self.time_kernel = kt = min(max(kh, kw), MAX_TIME_KERNEL)
        self.time_stride = int(time_stride)
        # Replicate-pad time so that T' = ceil(T / stride): total pad kt - 1 (stride 1) or more.
        self.time_pad = (kt - 1) // 2, kt - 1 - (kt - 1) // 2
        spatial = (0, 0) if self.kind == "tf_same" else _static_padding(conv)
        self.conv = nn.Conv3d(conv.in_channels, conv.out_channels, (kt, kh, kw),
                              stride=(self.time_stride, *conv.stride), padding=(0, *spatial),
                              dilation=(1, *conv.dilation), groups=conv.groups, bias=conv.bias is not None,
                              padding_mode=conv.padding_mode)
        if not conv.weight.is_meta:  # on the meta device (counting) there are only shapes
            with torch.no_grad():
                self.conv.weight.copy_(conv.weight.unsqueeze(2).expand(-1, -1, kt, -1, -1) / kt)  # (O, I/g, kt, kh, kw)
                if conv.bias is not None:
                    self.conv.bias.copy_(conv.bias)
        self.kernel_2d = (kh, kw)
        self.stride_2d = tuple(conv.stride)
        self.dilation_2d = tuple(conv.dilation)
        self._clip = clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self._clip.batch
        bt, c, h, w = x.shape
        if bt % b:
            raise ValueError(f"inflated convolution got {bt} frames for {b} clips")
        t = bt // b
        if self.kind == "tf_same":
            from timm.layers.padding import pad_same

            x = pad_same(x, list(self.kernel_2d), list(self.stride_2d), list(self.dilation_2d))
            h, w = x.shape[-2:]
        x = x.view(b, t, c, h, w).transpose(1, 2)  # (B, C, T, H, W), a view
        if self.time_stride > 1:  # extra end padding so that every frame starts a window
            extra = (math.ceil(t / self.time_stride) - 1) * self.time_stride + self.time_kernel - t - sum(self.time_pad)
            pad = (self.time_pad[0], self.time_pad[1] + max(0, extra))
        else:
            pad = self.time_pad
        if any(pad):  # repeat the edge frames (one copy, which conv3d's contiguous input needs anyway)
            x = torch.cat([x[:, :, :1].expand(-1, -1, pad[0], -1, -1), x,
                           x[:, :, -1:].expand(-1, -1, pad[1], -1, -1)], dim=2)  # (B, C, T + pad, H, W)
        y = self.conv(x)  # (B, C', T', H', W')
        return y.transpose(1, 2).flatten(0, 1)  # (B*T', C', H', W')


def inflate(net: nn.Module, clip: _Clip | None = None) -> tuple[nn.Module, _Clip, int]:
    """Replace every Conv2d of `net` with a kernel larger than 1 x 1 (in place) by its InflatedConv;
    the first strided one also halves time. A 1 x 1 convolution inflates to 1 x 1 x 1, which on
    frames folded into the batch is the 2D convolution itself: it stays (conv2d is ~1.5x faster
    on CPU than the equivalent conv3d). Returns (net, its shared clip state, convolutions inflated)."""
    clip = clip or _Clip()
    convs = [(name, mod) for name, mod in net.named_modules() if isinstance(mod, nn.Conv2d)]
    if not convs:
        raise ConfigError(f"{type(net).__name__} has no Conv2d layer to inflate")
    strided = next((name for name, mod in convs if max(mod.stride) > 1), None)
    n = 0
    for name, mod in convs:
        _same_padding_kind(mod)  # refuses what a 3D convolution would not reproduce, 1 x 1 ones too
        if max(mod.kernel_size) == 1 and name != strided:
            continue  # kt = 1: its inflation is the same 2D convolution on each folded frame (and faster)
        parent_name, _, attr = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, InflatedConv(mod, clip, time_stride=2 if name == strided else 1))
        n += 1
    if n == 0:
        raise ConfigError(f"{type(net).__name__} has only 1 x 1 convolutions: inflating it adds no time extent")
    return net, clip, n


class I3DModel(nn.Module):
    """forward(video (B,T,3,H,W) in [0,1], mask (B,T) | None) -> {"logit": (B,)}: the inflated
    backbone's features, averaged over the remaining time steps (and space, by the backbone's own
    global pool). Padding is never scored: with `mask` the mean is over the time steps whose first
    frame is a real one (the mask taken at the time stride: step k starts at frame k * stride), a
    clip without any real frame falls back to all steps. The temporal convolutions still mix a
    real step with its padded neighbours (padded positions hold the clip's last frame repeated, as
    training pads a video shorter than a clip); they cannot leave a frame out."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        net = build_image_backbone(cfg.backbone, cfg.pretrained, in_chans=3)  # type: ignore[arg-type]
        self.normalize = Normalize(*backbone_mean_std(net))
        self.out_dim = int(net.num_features)
        self.backbone, self._clip, self.n_inflated = inflate(net)
        self.time_stride = 2 if any(m.time_stride > 1 for m in self.modules() if isinstance(m, InflatedConv)) else 1
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.out_dim, 1)

    def step_mask(self, mask: torch.Tensor, steps: int) -> torch.Tensor:
        """(B, T) bool frame mask -> (B, T') bool: a time step is real when its first frame is."""
        m = mask.bool()[:, :: self.time_stride][:, :steps]  # (B, T')
        return m | ~m.any(dim=1, keepdim=True)  # no real frame at all: every step

    def features(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B,T,3,H,W), mask (B,T) | None -> (B, D) clip embedding (the masked mean over time steps)."""
        check_video(video)
        b = video.shape[0]
        self._clip.batch = b
        x = self.normalize(video).flatten(0, 1)  # (B*T,3,H,W)
        feats = self.backbone(x)  # (B*T', D)
        feats = feats.view(b, -1, feats.shape[-1])  # (B, T', D)
        if mask is None:
            return feats.mean(dim=1)  # (B, D)
        w = self.step_mask(mask, feats.shape[1]).to(feats.dtype)  # (B, T')
        return (feats * w[..., None]).sum(dim=1) / w.sum(dim=1, keepdim=True)  # (B, D)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logit": self.head(self.dropout(self.features(video, mask))).squeeze(-1)}  # (B,)


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_image_backbone(cfg.backbone, cfg.name)  # type: ignore[arg-type]
    return cfg


MODELS.register("i3d")(ModelSpec(
    build=I3DModel, inputs=("video",), optional=("mask",), validate=_validate, heads=CLIP_HEADS,
    summary="a 2D backbone (timm / fakelens) inflated to 3D, I3D-style (kernels repeated over time / kt) -> clip logit",
    defaults={"backbone": "inception_v3", "num_frames": 16, "image_size": 224},
))
