"""The model and backbone names, as static lists: a config's model.name, model.backbone and
model.audio_backbone are checked in well under a second, before torch and timm load
(`check_model_names`; the other registries of torch modules: fakelens.names).

Each list mirrors a real registry; tests/test_names.py checks every one against it, so an entry
added there and not here fails the suite. The timm architectures are stored in TIMM_FILE for the
timm version it names: with another timm installed, timm names are left to the full check (the
model build), never refused here. Regenerate the file with `python -m fakelens.models.names`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

# Every registered model (fakelens.models.MODELS) -> its inputs (ModelSpec.inputs).
MODEL_INPUTS: dict[str, tuple[str, ...]] = {
    "audio": ("audio",), "audio_tiny": ("audio",),
    "av": ("video", "audio"), "av_tiny": ("video", "audio"),
    "clip3d": ("video",), "frame": ("video",), "frame_tiny": ("video",), "i3d": ("video",),
    "localizer": ("visual_features", "audio_features"),
    "meso4": ("video",), "mesoinception4": ("video",),
}
# The shortest clip a model's temporal kernels combine frames of (1 when it has none): a 3D CNN's
# span 3 frames (clip3d's torchvision networks, i3d's inflated kt = 3), so on shorter clips they
# see padding or repeated frames; train says so, --smoke adapts to it (tests/test_names.py checks
# it against the largest temporal kernel of each built model).
MODEL_MIN_FRAMES: dict[str, int] = {"clip3d": 3, "i3d": 3}


def min_frames(model: str) -> int:
    """MODEL_MIN_FRAMES of `model`, 1 for a model without temporal convolutions."""
    return MODEL_MIN_FRAMES.get(model, 1)


VIDEO_BACKBONE_MODELS = frozenset({"clip3d"})  # model.backbone is a 3D (torchvision) video network
# fakelens' own 2D backbones (fakelens.models.backbones.BACKBONES) and video backbones: torchvision's
# video classification models (for TORCHVISION_VERSION), then fakelens' own.
CUSTOM_IMAGE_BACKBONES = ("meso4", "mesoinception4", "tinycnn", "tinycnn_wide")
TORCHVISION_VERSION = "0.29.1"
TORCHVISION_VIDEO_BACKBONES = ("mc3_18", "mvit_v1_b", "mvit_v2_s", "r2plus1d_18", "r3d_18", "s3d", "swin3d_b",
                               "swin3d_s", "swin3d_t")
CUSTOM_VIDEO_BACKBONES = ("mc3_34", "r2plus1d_34", "r3d_34")
TIMM_FILE = Path(__file__).with_name("timm_models.txt")  # first line "# timm VERSION", then a name a line


def _installed(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package).split("+")[0]  # "0.29.1+cu121" is torchvision 0.29.1
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def timm_names() -> tuple[str | None, tuple[str, ...]]:
    """(the timm version TIMM_FILE lists, its architectures)."""
    lines = TIMM_FILE.read_text().splitlines()
    version = lines[0].removeprefix("# timm ").strip() if lines and lines[0].startswith("# timm ") else None
    return version, tuple(n for n in lines[1:] if n and not n.startswith("#"))


def check_model_names(model) -> None:
    """ConfigError / UnknownNameError for an unknown model.name, model.backbone or
    model.audio_backbone, as resolve_config would raise them after torch loads; names the static
    lists cannot decide (a timm of another version, a hub name) are left to it."""
    import sys

    from fakelens.registry import static_registry

    if model.name not in MODEL_INPUTS:
        factory = sys.modules.get("fakelens.models.factory")
        if factory is not None and model.name in factory.MODELS:  # registered at run time: the build checks it
            return
        static_registry("model", tuple(MODEL_INPUTS)).get(model.name)
    inputs = MODEL_INPUTS[model.name]
    if model.backbone is not None and "video" in inputs:
        if model.name in VIDEO_BACKBONE_MODELS:
            if _installed("torchvision") == TORCHVISION_VERSION:
                known = [*TORCHVISION_VIDEO_BACKBONES, *CUSTOM_VIDEO_BACKBONES]
                if model.backbone not in known:
                    raise _unknown("torchvision video backbone", model.backbone, known, model.name)
        else:
            _check_image(model.backbone, model.name)
    if model.audio_backbone is not None and "audio" in inputs:
        _check_image(model.audio_backbone, model.name)


def check_image_backbone_name(name: str, model: str) -> None:
    """ConfigError unless `name` is a 2D backbone (fakelens' or timm's), as far as the static lists
    can tell (a hub name, or a timm of another version, passes: the build decides)."""
    _check_image(name, model)


def _check_image(name: str, model: str) -> None:
    if name in CUSTOM_IMAGE_BACKBONES or ":" in name:  # a hub name ("hf-hub:...") is timm's to resolve
        return
    version, archs = timm_names()
    if version is None or _installed("timm") != version:
        return
    if name.split(".", 1)[0] not in archs:  # "arch.pretrained_tag" is the architecture arch
        raise _unknown("image backbone", name, [*CUSTOM_IMAGE_BACKBONES, *archs], model)


def _unknown(kind: str, name: str, known: list[str], model: str):
    """The error fakelens.models.backbones raises for an unknown backbone (same words)."""
    import difflib

    from fakelens.errors import ConfigError

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"model {model!r}: unknown {kind} {name!r}{hint} (`fakelens model list` shows them)")


def write_timm_file(path: Path = TIMM_FILE) -> None:
    """Write the installed timm's architectures into `path` (imports timm)."""
    import timm

    from fakelens.atomic import atomic_write_text

    atomic_write_text(path, f"# timm {timm.__version__}\n" + "\n".join(timm.list_models("*")) + "\n")


if __name__ == "__main__":
    write_timm_file()
    print(f"wrote {TIMM_FILE} ({len(timm_names()[1])} timm architectures)")
