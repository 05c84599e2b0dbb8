"""`clip3d`: a torchvision video network (r3d_18, mc3_18, r2plus1d_18, s3d, mvit, swin3d) over
a face clip, for spatio-temporal artefacts (flicker, warping) a per-frame model cannot see."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from fakelens.models.backbones import Normalize, build_video_backbone, check_video_backbone, video_backbone_crop
from fakelens.models.config import ModelConfig
from fakelens.models.factory import CLIP_HEADS, MODELS, ModelSpec
from fakelens.models.frame import check_video


class Clip3DModel(nn.Module):
    """forward(video (B,T,3,H,W) in [0,1], mask (B,T) | None) -> {"logit": (B,)}; normalised with
    the statistics of the backbone's Kinetics weights. mvit_* need T=16 and 224 px; the others any size.
    `model.dropout` is the dropout on the head's input (every backbone).

    A 3D convolution mixes neighbouring frames, so it cannot leave a frame out: `mask` is accepted
    for a uniform interface, and padded positions hold the clip's last frame repeated (training
    pads a video shorter than a clip the same way, so the network has seen such clips)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net, mean, std, _ = build_video_backbone(cfg.backbone, cfg.pretrained)  # type: ignore[arg-type]
        self.normalize = Normalize(mean, std)
        # model.dropout before the 1-logit head: the head dropout torchvision builds (s3d, mvit,
        # swin3d) takes its value; the video ResNets (r3d, mc3, r2plus1d) have none, so one is
        # applied to the head's input (a pre-hook: the state-dict keys stay torchvision's)
        own = [m for m in self.net.modules() if isinstance(m, nn.Dropout)]
        for m in own:
            m.p = float(cfg.dropout)
        self.dropout = nn.Dropout(float(cfg.dropout)) if not own else None
        if self.dropout is not None:
            head = [m for m in self.net.modules() if isinstance(m, (nn.Linear, nn.Conv3d))][-1]
            head.register_forward_pre_hook(lambda mod, args: (self.dropout(args[0]), *args[1:]))

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_video(video)
        x = self.normalize(video).transpose(1, 2)  # (B,3,T,H,W)
        return {"logit": self.net(x).reshape(-1)}  # (B,)


def _validate(cfg: ModelConfig) -> ModelConfig:
    check_video_backbone(cfg.backbone, cfg.name)  # type: ignore[arg-type]
    if cfg.image_size is None:
        cfg = dataclasses.replace(cfg, image_size=video_backbone_crop(cfg.backbone))  # type: ignore[arg-type]
    return cfg


MODELS.register("clip3d")(ModelSpec(
    build=Clip3DModel, inputs=("video",), optional=("mask",), validate=_validate, heads=CLIP_HEADS,
    summary="torchvision video model (r3d_18, mc3_18, r2plus1d_18, s3d, ...) on a face clip -> clip logit",
    defaults={"backbone": "r3d_18", "num_frames": 16},
))
