"""MesoNet (Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection Network", WIFS 2018):
Meso-4 and MesoInception-4, the classic small face-forgery baselines (the AV-Deepfake1M
benchmark table reports them; DFDC write-ups tried them first).

Both read 256 x 256 face crops scaled to [0, 1] (no mean/std), through four blocks of
convolution (ReLU) -> batch norm -> max pooling, to a 16 x 8 x 8 map that is flattened into a
16-unit dense layer (dropout 0.5 before it, LeakyReLU 0.1 after). Meso-4's blocks are plain
convolutions (8 3x3, 8 5x5, 16 5x5, 16 5x5 filters; pools 2, 2, 2, 4); MesoInception-4
replaces the first two by inception modules whose four branches are a 1x1 convolution and
1x1 -> 3x3 convolutions with dilation 1, 2 and 3 (11 and 12 output channels). With the final
dropout + dense logit (fakelens' `frame` head, `pooling: mean`, `dropout: 0.5`) they have the
paper's 27,977 and 28,615 trainable parameters. The registered frame models keep fakelens' frame
defaults (attention pooling over frames, dropout 0.2: 32,457 and 33,095 trainable parameters);
set `model.pooling: mean` and `model.dropout: 0.5` for the paper's model.

They are registered as 2D backbones (usable by `frame`, `av`, `i3d`) and as frame models
`meso4` / `mesoinception4`. At other input sizes than 256 an adaptive average pool brings the
last map to 8 x 8 before flattening (at 256 it is the identity).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from fakelens.models.backbones import BACKBONES
from fakelens.models.factory import FRAME_HEADS, MODELS, ModelSpec
from fakelens.models.frame import FrameModel, _validate

MESO_MAP = 8  # side of the last feature map at the paper's 256 px input
MESO_FEATURES = 16


def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
    """'same'-padded convolution with ReLU (Keras' Conv2D(..., padding='same', activation='relu'))."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation), nn.ReLU(inplace=True))


class InceptionLayer(nn.Module):
    """MesoInception's module: branches 1x1 (a), 1x1->3x3 (b), 1x1->3x3 dilated 2 (c), 1x1->3x3
    dilated 3 (d), concatenated: (N, cin, H, W) -> (N, a+b+c+d, H, W)."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int):
        super().__init__()
        self.b1 = _conv(cin, a, 1)
        self.b2 = nn.Sequential(_conv(cin, b, 1), _conv(b, b, 3))
        self.b3 = nn.Sequential(_conv(cin, c, 1), _conv(c, c, 3, dilation=2))
        self.b4 = nn.Sequential(_conv(cin, d, 1), _conv(d, d, 3, dilation=3))
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


def _block(layer: nn.Module, channels: int, pool: int) -> nn.Sequential:
    # ceil_mode: Keras' MaxPooling2D(padding='same') keeps a partial last window
    return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.MaxPool2d(pool, ceil_mode=True))


class MesoNet(nn.Module):
    """Four blocks -> (N, 16, H/32, W/32) maps (`forward_features`), then flatten (8 x 8) ->
    dropout 0.5 -> dense 16 -> LeakyReLU(0.1) -> (N, 16) (`forward`). timm-like interface."""

    def __init__(self, first: Sequence[nn.Module], channels: int):
        """`first`: the first two blocks, giving `channels` output channels."""
        super().__init__()
        self.blocks = nn.Sequential(*first,
                                    _block(_conv(channels, 16, 5), 16, 2),
                                    _block(_conv(16, 16, 5), 16, 4))
        self.pool = nn.AdaptiveAvgPool2d(MESO_MAP)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(MESO_FEATURES * MESO_MAP * MESO_MAP, MESO_FEATURES)
        self.act = nn.LeakyReLU(0.1)
        self.num_features = MESO_FEATURES
        self.pretrained_cfg = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # pixels / 255 only
        self.feature_info = [{"num_chs": MESO_FEATURES, "reduction": 32, "module": "blocks"}]
        for mod in self.modules():  # the paper's (Keras) initialisation: Glorot-uniform weights, zero biases
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (N, 16, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.pool(self.forward_features(x))  # (N, 16, 8, 8)
        return self.act(self.fc(self.dropout(maps.flatten(1))))  # (N, 16)


@BACKBONES.register("meso4")
def meso4(in_chans: int = 3) -> nn.Module:
    return MesoNet([_block(_conv(in_chans, 8, 3), 8, 2), _block(_conv(8, 8, 5), 8, 2)], 8)


@BACKBONES.register("mesoinception4")
def mesoinception4(in_chans: int = 3) -> nn.Module:
    first = InceptionLayer(in_chans, 1, 4, 4, 2)
    second = InceptionLayer(first.out_channels, 2, 4, 4, 2)
    return MesoNet([_block(first, first.out_channels, 2), _block(second, second.out_channels, 2)],
                   second.out_channels)


for _name in ("meso4", "mesoinception4"):
    MODELS.register(_name)(ModelSpec(
        build=FrameModel, inputs=("video",), optional=("mask",), validate=_validate, heads=FRAME_HEADS,
        summary=f"{_name} (Afchar et al. 2018) per face frame + temporal pooling (pooling: mean, dropout: 0.5 "
                "for the paper's model)",
        defaults={"backbone": _name, "num_frames": 8, "image_size": 256},
    ))
