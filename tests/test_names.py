"""The static name lists (fakelens.names, fakelens.models.names) that let a config's names be
checked before torch loads: each equals its real registry, decides what the model build decides,
and makes the cheap errors of the CLI (a wrong run path, an unknown model / backbone / optimizer,
no or a wrong data.cache) come without importing torch, timm or Lightning."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from fakelens.errors import ConfigError, FakelensError
from fakelens.models.config import ModelConfig
from fakelens.models.names import (CUSTOM_IMAGE_BACKBONES, CUSTOM_VIDEO_BACKBONES, MODEL_INPUTS,
                                   TORCHVISION_VERSION, TORCHVISION_VIDEO_BACKBONES, VIDEO_BACKBONE_MODELS,
                                   check_model_names, timm_names)
from fakelens.names import REGISTRY_NAMES

RECIPES = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("where", sorted(REGISTRY_NAMES), ids=lambda w: w[1])
def test_every_static_registry_list_is_its_registry(where):
    module, attr = where
    real = getattr(importlib.import_module(module), attr)
    assert (real.kind, tuple(real.names())) == REGISTRY_NAMES[where], f"update fakelens.names for {module}.{attr}"


def test_model_and_backbone_lists_are_the_registries_and_the_installed_libraries():
    import timm
    import torchvision

    from fakelens.models import BACKBONES, MODELS
    from fakelens.models.backbones import _video_backbones

    assert {n: MODELS.get(n).inputs for n in MODELS.names()} == MODEL_INPUTS
    assert tuple(BACKBONES.names()) == CUSTOM_IMAGE_BACKBONES
    assert tuple(_video_backbones().names()) == CUSTOM_VIDEO_BACKBONES
    version, archs = timm_names()
    if (timm.__version__, torchvision.__version__.split("+")[0]) != (version, TORCHVISION_VERSION):
        # Another timm / torchvision than the lists name: they are not used (the build decides), so a
        # new release refuses nothing wrongly; the lists are regenerated for it.
        check_model_names(ModelConfig(name="frame", backbone="arch_of_a_newer_timm"))
        pytest.skip(f"timm {timm.__version__} / torchvision {torchvision.__version__} installed, the lists are for "
                    f"{version} / {TORCHVISION_VERSION}: python -m fakelens.models.names, and TORCHVISION_*")
    assert tuple(torchvision.models.list_models(module=torchvision.models.video)) == TORCHVISION_VIDEO_BACKBONES
    assert archs == tuple(timm.list_models("*")), "regenerate the list: python -m fakelens.models.names"


@pytest.mark.parametrize("model", sorted(MODEL_INPUTS))
def test_the_static_check_refuses_what_the_model_build_refuses(model):
    """For each model, backbones of every kind (a timm one, a tagged timm one, fakelens' own, a video
    one, an unknown one): the static check raises exactly when resolve_config does."""
    import timm
    import torchvision

    from fakelens.models import resolve_config

    current = (timm.__version__, torchvision.__version__.split("+")[0]) == (timm_names()[0], TORCHVISION_VERSION)
    for field in ("backbone", "audio_backbone"):
        if field == "backbone" and "video" not in MODEL_INPUTS[model] or (
                field == "audio_backbone" and "audio" not in MODEL_INPUTS[model]):
            continue
        for name in ("resnet18", "efficientnet_b0.ra_in1k", "tinycnn", "r3d_18", "r3d_34", "efficientnet_b9",
                     "resnet_18"):
            cfg = ModelConfig(name=model, **{field: name})
            try:
                resolve_config(cfg)
                real = None
            except ConfigError as e:
                real = str(e)
            if real is not None and "unknown" not in real:
                continue  # refused for another reason (e.g. an i3d backbone that does not inflate)
            try:
                check_model_names(cfg)
                static = None
            except ConfigError as e:
                static = str(e)
            assert static == real or (static is None and not current), (model, field, name)
    with pytest.raises(FakelensError, match="unknown model 'fram'.*Did you mean 'frame'"):
        check_model_names(ModelConfig(name="fram"))
    assert (model in VIDEO_BACKBONE_MODELS) == (model == "clip3d")


def test_min_frames_is_the_longest_temporal_kernel_of_each_video_model():
    """MODEL_MIN_FRAMES (what --smoke gives a 3D CNN at least) is the largest temporal kernel of the
    built model: 3 for clip3d's torchvision networks and i3d's inflation, 1 for the 2D models."""
    from torch import nn

    from fakelens.models import create_model
    from fakelens.models.names import min_frames

    for model, backbone in (("clip3d", "r3d_18"), ("clip3d", "r2plus1d_18"), ("i3d", "resnet10t"),
                            ("frame", "tinycnn")):
        net = create_model(model, backbone=backbone, num_frames=4, image_size=32)
        kernels = [m.kernel_size[0] for m in net.modules() if isinstance(m, nn.Conv3d)] or [1]
        assert max(kernels) == min_frames(model), (model, backbone, sorted(set(kernels)))


def test_cheap_errors_come_before_torch_timm_or_lightning(tmp_path):
    """A wrong run path (predict, detect, robustness), an unknown backbone / model / optimizer and a
    recipe without (or with a wrong) data.cache: each refused with exit 2 in a process that never
    imported torch, timm or Lightning (they took 6-29 s to load before the error)."""
    (tmp_path / "v.mp4").write_bytes(b"")  # detect looks for its videos first
    cases = [
        (["predict", str(tmp_path / "no_run"), str(tmp_path)], "no such run folder"),
        (["detect", str(tmp_path / "v.mp4"), "--model", str(tmp_path / "no_run"), "--out", str(tmp_path / "rep")],
         "no such run folder"),
        (["robustness", str(tmp_path / "no_run"), str(tmp_path), "--out", str(tmp_path / "rb")],
         "no such run folder"),
        (["features", str(tmp_path / "no_run"), str(tmp_path), "--out", str(tmp_path / "f")],
         "no such run folder or checkpoint, and not a 2D backbone name"),
        (["features", "tinycnnn", str(tmp_path), "--out", str(tmp_path / "f")], "did you mean 'tinycnn'"),
        (["train", "--config", str(RECIPES / "dfdc_effnet.yaml"), "--out", str(tmp_path / "r")], "data.cache is not set"),
        (["train", "--config", str(RECIPES / "dfdc_effnet.yaml"), "--out", str(tmp_path / "r"),
          "--set", f"data.cache={tmp_path / 'no_cache'}"], "does not exist"),
        (["train", "--config", str(RECIPES / "dfdc_effnet.yaml"), "--dry-run", "--set", f"data.cache={tmp_path}"],
         "not a finished preprocessing cache"),
        (["train", "--config", str(RECIPES / "dfdc_effnet.yaml"), "--set", "model.backbone=efficientnet_b9"],
         "unknown image backbone 'efficientnet_b9'; did you mean 'efficientnet_b8'"),
        (["train", "--config", str(RECIPES / "dfdc_r2plus1d.yaml"), "--set", "model.backbone=r2plus1d_19"],
         "unknown torchvision video backbone"),
        (["train", "--config", str(RECIPES / "demo.yaml"), "--set", "model.name=avtiny"], "unknown model 'avtiny'"),
        (["model", "info", "--config", str(RECIPES / "dfdc_effnet.yaml"), "--set", "model.backbone=efficientnet_b9"],
         "unknown image backbone 'efficientnet_b9'"),
        (["train", "--config", str(RECIPES / "demo.yaml"), "--set", "optim.name=adamx"], "unknown optimizer 'adamx'"),
        (["train", "--config", str(RECIPES / "demo.yaml"), "--set", "data.dataset=clip"], "unknown cache dataset"),
    ]
    code = ("import sys, json\nfrom fakelens.cli.main import main\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    rc = main(argv)\n"
            "    print(rc, *sorted({'torch', 'timm', 'lightning'} & set(sys.modules)), flush=True)\n"
            "    print('---', file=sys.stderr, flush=True)\n")
    import json

    proc = subprocess.run([sys.executable, "-c", code, json.dumps([argv for argv, _ in cases])], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.stdout.splitlines() == ["2"] * len(cases), proc.stdout + proc.stderr
    for (argv, want), err in zip(cases, proc.stderr.split("---\n")):
        assert want in err, (argv, err)


def test_a_name_registered_at_run_time_is_accepted_once_its_module_is_imported():
    from fakelens.train import module
    from fakelens.train.config import load_train_config

    with pytest.raises(FakelensError, match="unknown optimizer 'lamb_test'"):
        load_train_config(None, ["optim.name=lamb_test"])
    module.OPTIMIZERS.register("lamb_test")(lambda params, cfg: None)
    try:
        assert load_train_config(None, ["optim.name=lamb_test"]).optim.name == "lamb_test"
    finally:
        del module.OPTIMIZERS._items["lamb_test"]
