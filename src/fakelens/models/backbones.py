"""Backbones by name: timm 2D CNNs (plus fakelens' own small ones), torchvision video models,
and loading of local weights files so offline users can start from ImageNet/Kinetics weights."""

from __future__ import annotations

import contextlib

import difflib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from fakelens.errors import ConfigError
from fakelens.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Custom 2D backbones (not in timm): factory(in_chans) -> module exposing the timm-like
# interface used here: `num_features`, `forward_features(x) -> (N, C, h, w)`,
# `forward(x) -> (N, C)`, `pretrained_cfg` (mean/std) and `feature_info` (reduction).
BACKBONES: Registry[Callable[[int], nn.Module]] = Registry("backbone")


@dataclass(frozen=True)
class VideoBackbone:
    """A fakelens-built video network for `clip3d` (torchvision ships only some depths): its
    builder `build(num_classes) -> module` taking (B, 3, T, H, W), and the input statistics and
    frame side of the weights it is meant to be used with."""

    build: Callable[[int], nn.Module]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int
    summary: str = ""


# Video backbones beyond torchvision's list (fakelens.models.video_resnet: r3d_34, mc3_34, ...).
VIDEO_BACKBONES: Registry[VideoBackbone] = Registry("video backbone")


def _image_backbones() -> Registry[Callable[[int], nn.Module]]:
    import fakelens.models.meso  # noqa: F401  (registers meso4, mesoinception4)

    return BACKBONES


def _video_backbones() -> Registry[VideoBackbone]:
    import fakelens.models.video_resnet  # noqa: F401  (registers the 34-layer video ResNets)

    return VIDEO_BACKBONES


class Normalize(nn.Module):
    """(x - mean) / std over the channel axis at dim -3, so inputs stay plain floats in [0, 1].
    The statistics are non-persistent buffers: they follow the config, not the checkpoint."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _conv_bn_act(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    """A small plain CNN (stem + 4 stages of two 3x3 convs, total stride 32) that trains from
    scratch in minutes on a CPU; the demo's frame backbone. Stage names follow timm's ResNet
    (layer1..layer4) so the audio model can trade frequency for time resolution the same way."""

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128, 192)):
        super().__init__()
        self.stem = _conv_bn_act(in_chans, widths[0], 2)
        for i in range(4):
            layer = nn.Sequential(_conv_bn_act(widths[i], widths[i + 1], 2), _conv_bn_act(widths[i + 1], widths[i + 1], 1))
            self.add_module(f"layer{i + 1}", layer)
        self.num_features = widths[-1]
        self.pretrained_cfg = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
        self.feature_info = [{"num_chs": widths[-1], "reduction": 32, "module": "layer4"}]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x  # (N, C, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(dim=(2, 3))  # (N, C)


@BACKBONES.register("tinycnn")
def tinycnn(in_chans: int = 3) -> nn.Module:
    return TinyCNN(in_chans)


@BACKBONES.register("tinycnn_wide")
def tinycnn_wide(in_chans: int = 3) -> nn.Module:
    return TinyCNN(in_chans, widths=(24, 48, 96, 192, 256))


# --------------------------------------------------------------------------- names


def image_backbone_names(pattern: str = "") -> list[str]:
    """fakelens custom backbones plus timm's architectures matching a wildcard `pattern`."""
    import fnmatch

    import timm

    custom = [n for n in _image_backbones().names() if not pattern or fnmatch.fnmatch(n, pattern)]
    return custom + timm.list_models(pattern or "*")


def video_backbone_names() -> list[str]:
    """Every video classification model torchvision ships (r3d_18, mc3_18, r2plus1d_18, s3d, ...),
    then fakelens' own (r3d_34, mc3_34, r2plus1d_34)."""
    import torchvision
    from torchvision.models import list_models

    return list_models(module=torchvision.models.video) + _video_backbones().names()


def _unknown(kind: str, name: str, known: list[str], model: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"model {model!r}: unknown {kind} {name!r}{hint} (`fakelens model list` shows them)")


def check_image_backbone(name: str, model: str) -> None:
    """Raise ConfigError (with close names) unless `name` is a custom or timm 2D backbone."""
    if name in _image_backbones():
        return
    import timm

    if timm.is_model(name):
        return
    raise _unknown("image backbone", name, image_backbone_names(), model)


def check_video_backbone(name: str, model: str) -> None:
    known = video_backbone_names()
    if name not in known:
        raise _unknown("torchvision video backbone", name, known, model)


# --------------------------------------------------------------------------- building


def build_image_backbone(name: str, pretrained: bool | str, in_chans: int = 3) -> nn.Module:
    """A 2D backbone returning pooled features `(N, num_features)` from `forward` and maps from
    `forward_features`; `pretrained`: False, True (timm download) or a local weights file."""
    if name in _image_backbones():
        if pretrained is True:
            raise ConfigError(f"backbone {name!r} is a fakelens model without published weights; "
                              "set pretrained to false or to a local weights file")
        net = BACKBONES.get(name)(in_chans)
    else:
        import timm

        if pretrained is True:
            from fakelens.models.hub import HF_HOST, hf_offline, offline_reason, way_out

            # No network: cached weights still load (hub offline mode), others fail at once
            # instead of a minute of download retries.
            reason = offline_reason(HF_HOST)
            try:
                with hf_offline() if reason else contextlib.nullcontext():
                    net = timm.create_model(name, pretrained=True, num_classes=0, in_chans=in_chans)
            except Exception as e:  # network/hub failures: re-raised with the way out
                raise way_out(f"timm model {name!r}", reason or f"{type(e).__name__}: {e}") from e
        else:
            net = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    if isinstance(pretrained, str):
        load_weights(net, pretrained, what=f"backbone {name!r}")
    return net


def backbone_mean_std(net: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The normalisation the backbone's pretrained weights expect (timm's pretrained_cfg)."""
    cfg = getattr(net, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def _replace_head(net: nn.Module, old_classes: int, new_classes: int) -> None:
    """Swap the last layer producing `old_classes` outputs (Linear or 1x1x1 Conv3d) for one
    producing `new_classes`, wherever the architecture keeps it (fc, head.1, classifier.1)."""
    target = None
    for mod_name, mod in net.named_modules():
        if isinstance(mod, nn.Linear) and mod.out_features == old_classes:
            target = mod_name
        elif isinstance(mod, nn.Conv3d) and mod.out_channels == old_classes:
            target = mod_name
    if target is None:
        raise ConfigError(f"{type(net).__name__}: found no classification layer with {old_classes} outputs")
    parent_name, _, attr = target.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    old = getattr(parent, attr)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, new_classes, bias=old.bias is not None)
    else:
        new = nn.Conv3d(old.in_channels, new_classes, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    setattr(parent, attr, new)


def build_video_backbone(name: str, pretrained: bool | str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...], int]:
    """A torchvision video model with a 1-logit head, plus the mean/std and crop size its
    Kinetics weights were trained with. Input (B, 3, T, H, W) -> (B, 1)."""
    from torchvision.models import get_model, get_model_weights

    if name in _video_backbones():
        spec = VIDEO_BACKBONES.get(name)
        if pretrained is True:
            raise ConfigError(f"video backbone {name!r} has no weights published by torchvision; set pretrained to "
                              "false or to a local weights file in torchvision's VideoResNet layout")
        net = spec.build(1)
        if isinstance(pretrained, str):
            load_weights(net, pretrained, what=f"backbone {name!r}")  # a head of another size is skipped
        return net, spec.mean, spec.std, spec.crop
    weights = get_model_weights(name).DEFAULT
    tf = weights.transforms()  # only the preset's numbers; downloads nothing
    mean, std, crop = tuple(tf.mean), tuple(tf.std), int(tf.crop_size[0])
    if pretrained is True:
        from urllib.parse import urlparse

        from fakelens.models.hub import offline_reason, torch_hub_file, way_out

        reason = None if torch_hub_file(weights.url).is_file() else offline_reason(urlparse(weights.url).hostname or "")
        if reason:  # not downloaded yet and no network: fail now, not after the download's retries
            raise way_out(f"torchvision model {name!r}", reason)
        try:
            net = get_model(name, weights=weights)
        except Exception as e:  # network failures: re-raised with the way out
            raise way_out(f"torchvision model {name!r}", f"{type(e).__name__}: {e}") from e
    else:
        net = get_model(name, weights=None)
        if isinstance(pretrained, str):
            load_weights(net, pretrained, what=f"backbone {name!r}")
    _replace_head(net, len(weights.meta["categories"]), 1)
    return net, mean, std, crop


def video_backbone_crop(name: str) -> int:
    """The frame side the torchvision video weights expect (112 for r3d_18, 224 for s3d/mvit/swin3d)."""
    from torchvision.models import get_model_weights

    if name in _video_backbones():
        return VIDEO_BACKBONES.get(name).crop
    return int(get_model_weights(name).DEFAULT.transforms().crop_size[0])


def limit_time_stride(net: nn.Module, native: int, target: int, name: str) -> None:
    """Make a ResNet-style CNN (layer1..layer4) downsample time (the last axis) by `target`
    instead of `native`, by setting stride (2, 1) in the first block of the last stages.
    Frequency keeps its full downsampling, so the cost grows only with the extra time steps."""
    if target == native:
        return
    ratio = native / target
    if target <= 0 or ratio < 1 or ratio != int(ratio) or not math.log2(ratio).is_integer():
        raise ConfigError(f"audio_time_stride {target} must be {native} divided by a power of two for backbone {name!r}")
    n_stages = int(math.log2(ratio))
    if n_stages > 4:
        raise ConfigError(f"audio_time_stride {target} is too small for backbone {name!r}: only its 4 stages "
                          f"(layer1..layer4) can keep time resolution, so at least {native // 16}")
    for i in range(4, 4 - n_stages, -1):
        stage = getattr(net, f"layer{i}", None)
        if stage is None:
            raise ConfigError(f"audio_time_stride {target} needs a ResNet-style backbone (layer1..layer4); "
                              f"{name!r} supports only {native}")
        first = stage[0] if isinstance(stage, nn.Sequential) else stage
        changed = False
        for mod in first.modules():
            if isinstance(mod, nn.Conv2d) and tuple(mod.stride) == (2, 2):
                mod.stride = (2, 1)
                changed = True
            elif isinstance(mod, (nn.AvgPool2d, nn.MaxPool2d)) and mod.stride in (2, (2, 2)):
                k = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
                p = mod.padding if isinstance(mod.padding, int) else mod.padding[0]
                mod.kernel_size, mod.stride, mod.padding = (k, 1), (2, 1), (p, 0)
                changed = True
        if not changed:
            raise ConfigError(f"audio_time_stride {target}: layer{i} of backbone {name!r} does not downsample; "
                              f"the smallest stride it allows is {native // 2 ** (4 - i)}")


# --------------------------------------------------------------------------- weights files


@dataclass
class LoadReport:
    """What `load_weights` did: tensors loaded, left at their init, and skipped from the file."""

    path: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure becomes one clear error naming the file
        raise ConfigError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from e
    # Unwrap common checkpoint layouts: {"state_dict": ...}, {"model": ...}, {"state_dict_ema": ...}.
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{path}: not a state_dict (a mapping of parameter names to tensors)")
    return obj


def load_weights(module: nn.Module, path: str | Path, what: str = "model") -> LoadReport:
    """Load a local state_dict file (.pth/.pt/.bin or .safetensors) into `module`, matching
    names up to a common prefix ("module.", "model.", "backbone."). Classifier tensors of another
    size are skipped; a 3-channel first conv is summed into a 1-channel one (as timm does).
    No tensor matching is an error; tensors left at their init are reported in a warning."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: weights file for {what} not found")
    source = _read_state_dict(p)
    target = module.state_dict()

    def renamed(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}

    candidates = [renamed(pre) for pre in ("", "module.", "model.", "backbone.", "encoder.", "module.model.")]
    best = max(candidates, key=lambda sd: sum(k in target for k in sd))
    to_load, adapted, unused = {}, [], []
    for k, v in best.items():
        if k not in target:
            unused.append(k)
            continue
        want = target[k].shape
        if v.shape == want:
            to_load[k] = v
        elif v.ndim == 4 and len(want) == 4 and want[1] == 1 and v.shape[0] == want[0] and v.shape[2:] == want[2:]:
            to_load[k] = v.sum(dim=1, keepdim=True)  # RGB first conv -> single-channel (log-mel) input
            adapted.append(k)
        else:
            unused.append(f"{k} {tuple(v.shape)} != {tuple(want)}")
    if not to_load:
        raise ConfigError(f"{p}: none of its {len(source)} tensors match {what} "
                          f"(file keys start {list(source)[:3]}, model keys start {list(target)[:3]})")
    module.load_state_dict(to_load, strict=False)
    missing = [k for k in target if k not in to_load and not k.endswith("num_batches_tracked")]
    if missing:
        warnings.warn(f"{p}: {len(missing)} of {len(target)} tensors of {what} are not in the file and keep "
                      f"their random init (first: {missing[:5]})", stacklevel=2)
    return LoadReport(str(p), len(to_load), missing, unused, adapted)
