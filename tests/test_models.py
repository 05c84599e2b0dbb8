"""Models built by name: every registry entry runs forward/backward on tiny inputs, pooling
variants, audio time strides, config checks and local weights files."""

from __future__ import annotations

import math

import pytest
import torch

from fakelens.errors import ConfigError
from fakelens.models import MODELS, POOLINGS, ModelConfig, create_model, example_inputs, load_weights, resolve_config
from fakelens.models.backbones import TinyCNN

TINY_VIDEO = {"num_frames": 3, "image_size": 32}
TINY_AUDIO = {"n_mels": 16, "audio_frames": 40}
EXPECTED_KEYS = {
    "frame": {"logit", "frame_logits", "frame_mask"},
    "clip3d": {"logit"},
    "i3d": {"logit"},
    "meso4": {"logit", "frame_logits", "frame_mask"},
    "mesoinception4": {"logit", "frame_logits", "frame_mask"},
    "audio": {"logit", "time_logits", "time_mask"},
    "av": {"logit", "visual_logit", "audio_logit", "frame_logits", "time_logits", "frame_mask", "time_mask"},
    "localizer": {"logit", "frame_logits", "point_logits", "point_offsets", "point_modality", "point_mask",
                  "point_centres", "point_strides"},
}
TINY_FEATURES = {"feature_dim": 12, "audio_feature_dim": 6, "num_frames": 20, "levels": 3}
# The heavy families run with their smallest sensible backbone here; other backbones below.
SMALL_BACKBONES = {"frame": {"backbone": "resnet10t"}, "clip3d": {"backbone": "mc3_18"}, "i3d": {"backbone": "resnet10t"},
                   "audio": {"audio_backbone": "resnet10t"}, "av": {"backbone": "resnet10t", "audio_backbone": "tinycnn"}}


def tiny(name: str, **kw) -> dict:
    """Overrides that make model `name` cheap to build and run."""
    spec = MODELS.get(name)
    out = dict(SMALL_BACKBONES.get(name, {}))
    if "video" in spec.inputs:
        out.update(TINY_VIDEO)
    if "audio" in spec.inputs:
        out.update(TINY_AUDIO)
    if "visual_features" in spec.inputs:
        out.update(TINY_FEATURES)
    out.update(temporal_dim=32, **kw)
    return out


def family(name: str) -> str:
    return name.split("_")[0]


def run_and_check(model: torch.nn.Module, batch: int = 2) -> dict[str, torch.Tensor]:
    """Forward on example inputs, check output shapes, backprop, check gradients reach every
    part of the model that should learn."""
    cfg = model.cfg
    inputs = example_inputs(model, batch=batch)
    out = model(**inputs)
    assert set(out) == EXPECTED_KEYS[family(cfg.name)]
    assert out["logit"].shape == (batch,)
    if "frame_logits" in out:
        assert out["frame_logits"].shape == (batch, cfg.num_frames)
    if "time_logits" in out:
        assert out["time_logits"].shape == (batch, model.time_steps(cfg.audio_frames))
        assert model.time_steps(cfg.audio_frames) == math.ceil(cfg.audio_frames / model.time_stride)
    for k in ("visual_logit", "audio_logit"):
        if k in out:
            assert out[k].shape == (batch,)
    for k in ("frame_mask", "time_mask"):
        if k in out:  # no mask given: every frame / step is valid
            assert out[k].dtype == torch.bool and out[k].all()
            assert out[k].shape == out[k.replace("mask", "logits")].shape
    out = {k: v for k, v in out.items() if v.dtype != torch.bool}
    assert all(torch.isfinite(v).all() for v in out.values())
    loss = sum(v.float().mean() for v in out.values())
    loss.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    # Some residual branches start with zero gradient (timm zero-inits their last BN), but the
    # first layer of every encoder and every head must already learn.
    zero = [n for n, p in params if not p.grad.abs().sum() > 0]
    assert not [n for n, _ in params[:1] if n in zero], f"first layer gets no gradient: {zero[:5]}"
    assert not [n for n in zero if "head" in n or "pool" in n or "proj" in n], f"no gradient: {zero[:5]}"
    return out


CASES = [(n, {}) for n in MODELS.names()] + [(n, {"fusion": "mid"}) for n in MODELS.names()
                                             if family(n) in ("av", "localizer")]


@pytest.mark.parametrize("name,extra", CASES, ids=[f"{n}-{e.get('fusion', '')}".rstrip("-") for n, e in CASES])
def test_every_registered_model_runs_and_learns(name, extra):
    torch.manual_seed(0)
    model = create_model(name, **tiny(name, **extra))
    assert model.input_names == MODELS.get(name).inputs
    run_and_check(model)


@pytest.mark.parametrize("name,kw", [
    ("frame", {"backbone": "efficientnet_b0"}),
    ("frame", {"backbone": "tinycnn_wide"}),
    ("clip3d", {"backbone": "r3d_18"}),
    ("clip3d", {"backbone": "r2plus1d_18"}),
    ("clip3d", {"backbone": "r3d_34"}),
    ("clip3d", {"backbone": "mc3_34"}),
    ("clip3d", {"backbone": "r2plus1d_34"}),
    ("i3d", {"backbone": "efficientnet_b0"}),
    ("i3d", {"backbone": "mesoinception4"}),
    ("frame", {"backbone": "meso4"}),
    ("audio", {"audio_backbone": "resnet18", "audio_time_stride": 32}),
])
def test_other_backbones(name, kw):
    run_and_check(create_model(name, **tiny(name, **kw)), batch=1)


@pytest.mark.parametrize("pooling", POOLINGS.names())
def test_pooling_variants(pooling):
    torch.manual_seed(0)
    model = create_model("frame_tiny", **tiny("frame_tiny", pooling=pooling))
    out = run_and_check(model)
    if pooling == "mean":  # a linear head over the mean feature is the mean of the frame logits
        model.eval()
        out = model(**example_inputs(model, batch=2))
        assert torch.allclose(out["logit"], out["frame_logits"].mean(dim=1), atol=1e-5)


def test_attention_weights_sum_to_one_and_transformer_is_length_agnostic():
    cfg = resolve_config("frame_tiny", **tiny("frame_tiny"))
    attn = POOLINGS.get("attention")(8, cfg)
    w = attn.weights(torch.randn(2, 5, 8))
    assert w.shape == (2, 5) and torch.allclose(w.sum(dim=1), torch.ones(2))
    tr = POOLINGS.get("transformer")(8, cfg).eval()
    for t in (1, 7):
        seq, pooled = tr(torch.randn(2, t, 8))
        assert seq.shape == (2, t, cfg.temporal_dim) and pooled.shape == (2, cfg.temporal_dim)


@pytest.mark.parametrize("stride", [32, 16, 8, 4])
def test_audio_time_stride(stride):
    model = create_model("audio_tiny", n_mels=16, audio_frames=50, audio_time_stride=stride)
    assert model.time_stride == stride
    out = model(**example_inputs(model))
    assert out["time_logits"].shape == (1, math.ceil(50 / stride))


def test_audio_time_stride_errors():
    with pytest.raises(ConfigError, match="power of two"):
        create_model("audio_tiny", audio_time_stride=12)
    with pytest.raises(ConfigError, match="smallest stride it allows is 4"):  # ResNet's layer1 keeps the size
        create_model("audio", audio_backbone="resnet10t", audio_time_stride=2, **TINY_AUDIO)
    with pytest.raises(ConfigError, match="too small"):
        create_model("audio_tiny", audio_time_stride=1)
    with pytest.raises(ConfigError, match="ResNet-style"):
        create_model("audio", audio_backbone="efficientnet_b0", **TINY_AUDIO)


def test_inputs_are_normalised_inside_and_not_saved():
    model = create_model("clip3d", **tiny("clip3d"))
    assert torch.allclose(model.normalize.mean.flatten(), torch.tensor([0.43216, 0.394666, 0.37645]))
    frame = create_model("frame_tiny", **tiny("frame_tiny"))
    assert torch.allclose(frame.encoder.normalize.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    assert not any("normalize" in k for k in frame.state_dict())


def test_wrong_input_shapes_fail_clearly():
    model = create_model("frame_tiny", **tiny("frame_tiny"))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(video=torch.rand(2, 3, 32, 32))
    audio = create_model("audio_tiny", **TINY_AUDIO)
    with pytest.raises(ValueError, match="log-mel"):
        audio(audio=torch.rand(1, 1, 20, 40))


def test_config_resolution_and_errors():
    cfg = resolve_config("clip3d")
    assert (cfg.backbone, cfg.image_size, cfg.num_frames) == ("r3d_18", 112, 16)
    assert resolve_config("clip3d", backbone="s3d").image_size == 224
    assert resolve_config(ModelConfig(name="frame")).backbone == "efficientnet_b0"
    assert resolve_config({"name": "frame", "pretrained": "true"}).pretrained is True
    assert resolve_config({"name": "frame", "pretrained": "w/b0.pth"}).pretrained == "w/b0.pth"
    with pytest.raises(ConfigError, match="did you mean .*pooling"):
        create_model("frame", poolin="mean")
    with pytest.raises(ConfigError, match="did you mean 'efficientnet_b0'"):
        resolve_config("frame", backbone="efficentnet_b0")
    with pytest.raises(ConfigError, match="not one of"):
        resolve_config("frame", pooling="median")
    with pytest.raises(ConfigError, match="no visual input"):
        resolve_config("audio", backbone="resnet18")
    with pytest.raises(ConfigError, match="no audio input"):
        resolve_config("frame", audio_backbone="resnet18")
    with pytest.raises(ConfigError, match="audio_pretrained"):
        resolve_config("audio", audio_pretrained=True)
    with pytest.raises(ConfigError, match="unknown torchvision video backbone"):
        resolve_config("clip3d", backbone="efficientnet_b0")
    with pytest.raises(ConfigError, match="without published weights"):  # never downloads
        create_model("frame_tiny", pretrained=True)
    with pytest.raises(Exception, match="unknown model 'fram'"):
        create_model("fram")


# --------------------------------------------------------------------------- local weights


def _randomised(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in module.state_dict().items()}


def test_local_weights_file_is_loaded_into_the_backbone(tmp_path):
    sd = _randomised(TinyCNN())
    path = tmp_path / "tinycnn.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)  # DDP-style checkpoint
    model = create_model("frame_tiny", **tiny("frame_tiny", pretrained=str(path)))
    got = model.encoder.backbone.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    run_and_check(model)


def test_local_weights_for_a_timm_and_a_torchvision_backbone(tmp_path):
    import timm
    import torchvision

    timm_sd = _randomised(timm.create_model("resnet10t", pretrained=False))  # with its 1000-class fc
    torch.save(timm_sd, tmp_path / "r10t.pth")
    model = create_model("frame", **tiny("frame", pretrained=str(tmp_path / "r10t.pth")))
    assert torch.equal(model.encoder.backbone.conv1[0].weight, timm_sd["conv1.0.weight"])

    tv_sd = _randomised(torchvision.models.video.mc3_18())  # 400 Kinetics classes
    torch.save(tv_sd, tmp_path / "mc3.pth")
    clip = create_model("clip3d", **tiny("clip3d", pretrained=str(tmp_path / "mc3.pth")))
    assert torch.equal(clip.net.stem[0].weight, tv_sd["stem.0.weight"])
    assert clip.net.fc.out_features == 1


def test_rgb_weights_adapt_to_the_single_channel_audio_input(tmp_path):
    sd = _randomised(TinyCNN(in_chans=3))
    torch.save(sd, tmp_path / "rgb.pt")
    model = create_model("audio_tiny", **TINY_AUDIO, pretrained=str(tmp_path / "rgb.pt"))
    conv = model.encoder.backbone.stem[0].weight
    assert conv.shape[1] == 1 and torch.allclose(conv, sd["stem.0.weight"].sum(dim=1, keepdim=True))


def test_bad_weights_files_fail_loudly(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        create_model("frame_tiny", pretrained=str(tmp_path / "missing.pth"))
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="none of its 1 tensors match"):
        create_model("frame_tiny", pretrained=str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weights"):
        create_model("frame_tiny", pretrained=str(tmp_path / "junk.pth"))
    partial = {k: v for k, v in TinyCNN().state_dict().items() if k.startswith("stem")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.warns(UserWarning, match="keep their random init"):
        report = load_weights(TinyCNN(), tmp_path / "partial.pth")
    assert report.loaded == len(partial) and report.missing


def test_models_build_on_the_meta_device_without_storage():
    with torch.device("meta"):
        model = create_model("av", fusion="mid")
    assert all(p.is_meta for p in model.parameters())
    out = model(**example_inputs(model, batch=1))
    assert out["frame_logits"].shape == (1, 16) and out["frame_logits"].is_meta
