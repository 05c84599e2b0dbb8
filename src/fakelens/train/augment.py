"""Named, configurable augmentations for training (torchvision.transforms.v2 where it has them).

Video augmentations act on one sample's (T, 3, H, W) float tensor in [0, 1]; v2 samples the
random parameters once per call, so the same flip, crop, blur, JPEG quality and erased box
apply to all T frames of a video (a per-frame jitter would itself look like a deepfake artefact).
Audio augmentations act on a (1, n_mels, F) log-mel in the same normalised scale as the features.
Batch-level CutMix/MixUp (`BatchMix`) mixes videos and, exactly as much, the targets that follow
the pixels (soft binary labels); audio and its targets are left alone.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from fakelens.registry import Registry
from fakelens.train.config import AugmentConfig  # noqa: F401  (defined there: importing it needs no torch)

Transform = Callable[[torch.Tensor], torch.Tensor]

VIDEO_AUGMENTS: Registry[Callable[[AugmentConfig], Transform]] = Registry("video augmentation")
AUDIO_AUGMENTS: Registry[Callable[[AugmentConfig], Transform]] = Registry("audio augmentation")


def _random_apply(t: Any, p: float) -> Transform:
    from torchvision.transforms import v2

    return v2.RandomApply([t], p=p)


class _ToUint8Then:
    """Run a uint8-only v2 transform (JPEG) on a float [0, 1] video."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        u8 = (video.clamp(0, 1) * 255).round().to(torch.uint8)  # (T, 3, H, W)
        return self.inner(u8).to(video.dtype) / 255.0


@VIDEO_AUGMENTS.register("hflip")
def _hflip(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    return v2.RandomHorizontalFlip(p=cfg.p)


@VIDEO_AUGMENTS.register("jpeg")
def _jpeg(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    return _random_apply(_ToUint8Then(v2.JPEG(quality=list(cfg.jpeg_quality))), cfg.p)


class _Downscale:
    """Resize down by a random factor and back up: the blur of low-resolution uploads."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        h, w = video.shape[-2:]
        f = float(torch.empty(()).uniform_(self.lo, self.hi))
        small = TF.resize(video, [max(1, round(h * f)), max(1, round(w * f))], antialias=True)
        return TF.resize(small, [h, w], antialias=False).clamp(0, 1)  # (T, 3, H, W)


@VIDEO_AUGMENTS.register("downscale")
def _downscale(cfg: AugmentConfig) -> Transform:
    return _random_apply(_Downscale(*cfg.downscale), cfg.p)


@VIDEO_AUGMENTS.register("blur")
def _blur(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    return _random_apply(v2.GaussianBlur(kernel_size=5, sigma=tuple(cfg.blur_sigma)), cfg.p)


@VIDEO_AUGMENTS.register("noise")
def _noise(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    return _random_apply(v2.GaussianNoise(sigma=cfg.noise_std, clip=True), cfg.p)


@VIDEO_AUGMENTS.register("color_jitter")
def _color(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    s = cfg.color_jitter
    return _random_apply(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)), cfg.p)


@VIDEO_AUGMENTS.register("cutout")
def _cutout(cfg: AugmentConfig) -> Transform:
    from torchvision.transforms import v2

    return v2.RandomErasing(p=cfg.p, scale=tuple(cfg.erase_scale), value=0.0)


class _Crop:
    """Random resized crop back to the input size (same box on every frame)."""

    def __init__(self, scale: tuple[float, float]):
        self.scale = tuple(scale)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import v2

        h, w = video.shape[-2:]
        return v2.RandomResizedCrop((h, w), scale=self.scale, antialias=True)(video)


@VIDEO_AUGMENTS.register("crop")
def _crop(cfg: AugmentConfig) -> Transform:
    return _random_apply(_Crop(cfg.crop_scale), cfg.p)


class _SpecAugment:
    """Time and frequency masking of a (1, n_mels, F) log-mel (SpecAugment), filled with its mean."""

    def __init__(self, time_frac: float, freq_frac: float, n_masks: int, axis: str):
        self.time_frac, self.freq_frac, self.n_masks, self.axis = time_frac, freq_frac, n_masks, axis

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        out = mel.clone()
        fill = mel.mean()
        dim, frac = (-1, self.time_frac) if self.axis == "time" else (-2, self.freq_frac)
        size = mel.shape[dim]
        width_max = int(size * frac)
        for _ in range(self.n_masks):
            if width_max < 1:
                break
            width = int(torch.randint(0, width_max + 1, ()))
            start = int(torch.randint(0, max(1, size - width + 1), ()))
            out.narrow(dim, start, width).fill_(fill)
        return out


@AUDIO_AUGMENTS.register("time_mask")
def _time_mask(cfg: AugmentConfig) -> Transform:
    return _random_apply(_SpecAugment(cfg.spec_time_mask, cfg.spec_freq_mask, cfg.spec_masks, "time"), cfg.p)


@AUDIO_AUGMENTS.register("freq_mask")
def _freq_mask(cfg: AugmentConfig) -> Transform:
    return _random_apply(_SpecAugment(cfg.spec_time_mask, cfg.spec_freq_mask, cfg.spec_masks, "freq"), cfg.p)


class _Gain:
    """A log-mel is log(power): a gain is an additive shift, the same for every bin."""

    def __init__(self, amount: float):
        self.amount = amount

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        return mel + float(torch.empty(()).uniform_(-self.amount, self.amount))


class _AudioNoise:
    def __init__(self, std: float):
        self.std = std

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        return mel + self.std * torch.randn_like(mel)


@AUDIO_AUGMENTS.register("gain")
def _gain(cfg: AugmentConfig) -> Transform:
    return _random_apply(_Gain(cfg.gain), cfg.p)


@AUDIO_AUGMENTS.register("noise")
def _audio_noise(cfg: AugmentConfig) -> Transform:
    return _random_apply(_AudioNoise(cfg.audio_noise_std), cfg.p)


class SampleAugment:
    """Per-sample augmentation of a dataset item dict: `video` (T, 3, H, W) and/or `audio`
    (1, n_mels, F) are replaced, every other key passes through. Picklable for loader workers."""

    def __init__(self, cfg: AugmentConfig):
        from torchvision.transforms import v2

        self.cfg = cfg
        self.video = v2.Compose([VIDEO_AUGMENTS.get(n)(cfg) for n in cfg.video]) if cfg.video else None
        self.audio = v2.Compose([AUDIO_AUGMENTS.get(n)(cfg) for n in cfg.audio]) if cfg.audio else None

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(sample)
        if self.video is not None and "video" in out:
            video = out["video"]
            if video.ndim != 4:
                raise ValueError(f"video augmentation expects (T, 3, H, W), got {tuple(video.shape)}")
            out["video"] = self.video(video).clamp(0, 1)
        if self.audio is not None and "audio" in out:
            out["audio"] = self.audio(out["audio"])
        return out

    @property
    def active(self) -> bool:
        return self.video is not None or self.audio is not None


# How each target of a batch follows a mix of its videos (BatchMix): the pixels are mixed, the
# audio is not, so each target is mixed exactly as its input is.
VISUAL_KEYS = ("visual_label", "frame_labels", "visual_frame_labels")  # the face / frames: mixed as the video
AUDIO_KEYS = ("audio_label", "audio_frame_labels")  # the audio is not mixed: neither are these
ANY_KEYS = ("label", "video_label")  # fake in either stream: see BatchMix
MASK_KEYS = ("mask", "counted", "found")  # per-frame validity: a mixed frame is valid where both sources are


class BatchMix:
    """CutMix or MixUp over a collated batch (v2.CutMix / v2.MixUp on the video as a tv_tensors.Video).

    The mixing weights come from v2 itself (an identity matrix passed as the labels gives each
    mixed sample's weights over the batch: lambda for itself, 1 - lambda for its partner, CutMix's
    lambda being the pasted box's true area), and every target follows its input:
    - visual targets (VISUAL_KEYS: visual_label, frame_labels, visual_frame_labels) become the
      same mix of their sources' labels, frame by frame for the per-frame ones;
    - audio targets (AUDIO_KEYS) are left alone: the audio is not mixed;
    - "fake in any stream" targets (label, video_label): with audio in the batch and known
      per-stream labels, max(mixed visual label, the sample's own audio label) (its voice is
      still fake when it was); otherwise (no audio input, or streams unknown) mixed as the video.
    A value whose source is unknown (-1) stays unknown. Per-frame masks (mask, counted, found)
    keep a frame valid only where every source of its pixels is.
    """

    def __init__(self, mode: str, alpha: float):
        from torchvision.transforms import v2

        self.mode = mode
        self.op = (v2.CutMix if mode == "cutmix" else v2.MixUp)(alpha=alpha, labels_getter=lambda inputs: inputs[1])

    @staticmethod
    def _mix(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """weights (B, B) x values (B, ...) -> (B, ...); -1 where a contributing source is unknown."""
        v = values.float()
        flat = v.reshape(v.shape[0], -1)  # (B, n)
        mixed = weights @ flat.clamp_min(0.0)  # (B, n)
        unknown = (weights > 0).float() @ (flat < 0).float() > 0  # (B, n)
        return torch.where(unknown, torch.full_like(mixed, -1.0), mixed).reshape(v.shape)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from torchvision import tv_tensors

        if "video" not in batch:
            raise ValueError(f"{self.mode} needs a 'video' in the batch")
        b = batch["video"].shape[0]
        video = tv_tensors.Video(batch["video"])  # (B, T, 3, H, W)
        mixed_video, weights = self.op(video, torch.eye(b))  # weights (B, B): sample i = sum_j w_ij source j
        weights = weights.float()
        out = dict(batch)
        out["video"] = mixed_video.as_subclass(torch.Tensor)
        for k in VISUAL_KEYS:
            if k in batch:
                out[k] = self._mix(weights, batch[k]).to(batch[k].dtype if batch[k].is_floating_point() else torch.float32)
        for k in MASK_KEYS:
            if k in batch and batch[k].dtype == torch.bool:
                ok = batch[k].reshape(b, -1).float()
                out[k] = (((weights > 0).float() @ (1 - ok)) == 0).reshape(batch[k].shape)
        audio = "audio" in batch and "visual_label" in batch and "audio_label" in batch
        for k in ANY_KEYS:
            if k not in batch:
                continue
            as_video = self._mix(weights, batch[k])  # (B,)
            if audio:
                vis, aud = out["visual_label"].float(), batch["audio_label"].float()
                known = (vis >= 0) & (aud >= 0)
                as_video = torch.where(known, torch.maximum(vis, aud), as_video)
            out[k] = as_video.to(torch.float32)
        return out


def build_batch_mix(cfg: AugmentConfig) -> BatchMix | None:
    """The configured batch-level mixing, or None."""
    return None if cfg.mix == "none" else BatchMix(cfg.mix, cfg.mix_alpha)
