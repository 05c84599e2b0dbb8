"""34-layer video ResNets for `clip3d`: torchvision's VideoResNet with the ResNet-34 block layout.

torchvision ships only the 18-layer video ResNets; the DFDC 3D-CNN solutions also trained a
3D ResNet-34 and R(2+1)D-34 (the IG-65M models). `r3d_34` here is torchvision's r3d with the
34-layer block layout [3, 4, 6, 3]: a 3x7x7 stem (time stride 1) and projection (type-B)
shortcuts. It is NOT Hara et al.'s 3D ResNet-34 (7x7x7 stem, parameter-free type-A shortcuts):
their published weights do not load into it. These are built from torchvision.models.video.resnet's own parts (VideoResNet,
BasicBlock, the stems and the Conv3DSimple / Conv3DNoTemporal / Conv2Plus1D makers) with the
layout [3, 4, 6, 3], so a state_dict saved from any torchvision-layout 34-layer video ResNet
(e.g. converted IG-65M r2plus1d_34 weights) loads with `pretrained: PATH`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

from fakelens.models.backbones import VIDEO_BACKBONES, VideoBackbone

RESNET34_LAYERS = [3, 4, 6, 3]  # blocks per stage of ResNet-34 (He et al. 2016, table 1)
# Statistics of torchvision's Kinetics-400 video weights (the r3d_18 / mc3_18 / r2plus1d_18 presets).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class _Layout:
    stem: str  # "basic" (3x7x7 conv) or "r2plus1d" (1x7x7 then 3x1x1)
    convs: tuple[str, str, str, str]  # conv maker of each stage: "3d", "2d" (no temporal), "2plus1d"


def _video_resnet34(layout: _Layout, num_classes: int) -> nn.Module:
    from torchvision.models.video import resnet as tv

    makers = {"3d": tv.Conv3DSimple, "2d": tv.Conv3DNoTemporal, "2plus1d": tv.Conv2Plus1D}
    stems = {"basic": tv.BasicStem, "r2plus1d": tv.R2Plus1dStem}
    return tv.VideoResNet(block=tv.BasicBlock, conv_makers=[makers[c] for c in layout.convs],
                          layers=RESNET34_LAYERS, stem=stems[layout.stem], num_classes=num_classes)


def _register(name: str, layout: _Layout, summary: str) -> None:
    VIDEO_BACKBONES.register(name)(VideoBackbone(
        build=functools.partial(_video_resnet34, layout), mean=KINETICS_MEAN, std=KINETICS_STD, crop=112,
        summary=summary))


_register("r3d_34", _Layout("basic", ("3d", "3d", "3d", "3d")),
          "3D ResNet-34: 3x3x3 convolutions in every block")
_register("mc3_34", _Layout("basic", ("3d", "2d", "2d", "2d")),
          "mixed convolutions, ResNet-34 layout: 3D in the first stage, 2D (1x3x3) after")
_register("r2plus1d_34", _Layout("r2plus1d", ("2plus1d", "2plus1d", "2plus1d", "2plus1d")),
          "R(2+1)D-34: every 3x3x3 convolution factored into 1x3x3 then 3x1x1 (the IG-65M models' layout)")
