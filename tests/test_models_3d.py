"""The DFDC 3D-CNN architectures and the classic frame baselines: I3D inflation (the identical-
frames property), the 34-layer video ResNets, MesoNet as published, and their true counts."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn

from fakelens.errors import ConfigError
from fakelens.models import create_model, example_inputs
from fakelens.models.backbones import build_image_backbone
from fakelens.models.i3d import InflatedConv, inflate
from fakelens.train.budget import count_config, verdict_differs


def _randomise_norms(net: nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so the property is not helped by identity norms."""
    g = torch.Generator().manual_seed(3)
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("backbone,size", [
    ("resnet10t", 64),  # deep stem: its first conv halves time
    ("efficientnet_b0", 64),  # depthwise convs, squeeze-excitation, BatchNormAct
    ("tf_efficientnet_b0", 64),  # TF "SAME" padding computed per input (Conv2dSame)
    ("inception_v3", 96),  # asymmetric 1x7 / 7x1 kernels, functional pools
    ("mesoinception4", 64),  # dilated convs, no strided conv: time is never downsampled
])
def test_inflated_network_gives_the_2d_output_on_a_clip_of_identical_frames(backbone, size):
    torch.manual_seed(0)
    net2d = build_image_backbone(backbone, False)
    _randomise_norms(net2d)
    net2d.eval()
    net3d, clip, n = inflate(copy.deepcopy(net2d))
    net3d.eval()
    assert n == sum(isinstance(m, InflatedConv) for m in net3d.modules()) > 0
    # only 1 x 1 convolutions stay 2D (their inflation, 1 x 1 x 1, is the same per-frame convolution)
    assert all(m.kernel_size == (1, 1) for m in net3d.modules() if type(m) is nn.Conv2d)
    b, t = 2, 5
    frames = torch.rand(b, 3, size, size)  # one frame per clip
    video = frames[:, None].expand(b, t, 3, size, size)  # (B,T,3,S,S): each clip repeats its frame
    clip.batch = b
    with torch.no_grad():
        want = net2d(frames)  # (B, D)
        got = net3d(video.reshape(b * t, 3, size, size))  # (B*T', D)
    t_out = got.shape[0] // b
    strided = any(m.time_stride > 1 for m in net3d.modules() if isinstance(m, InflatedConv))
    assert t_out == (math.ceil(t / 2) if strided else t)
    assert strided == (backbone != "mesoinception4")
    got = got.view(b, t_out, -1)
    assert torch.allclose(got, want[:, None].expand_as(got), rtol=1e-4, atol=1e-4 * want.abs().max().item())

    # The inflated kernels do mix time: on frames that change, it is not the 2D network per frame.
    moving = torch.rand(b, t, 3, size, size)
    with torch.no_grad():
        per_frame = net2d(moving.flatten(0, 1)).view(b, t, -1)
        inflated = net3d(moving.flatten(0, 1)).view(b, t_out, -1)
    kept = per_frame[:, ::2] if strided else per_frame
    spread = (per_frame - per_frame.mean(dim=1, keepdim=True)).abs().max()  # how much frames differ
    assert (inflated - kept).abs().max() > 0.1 * spread > 0


def test_inflated_kernels_are_the_2d_kernels_repeated_over_time_and_divided_by_their_length():
    conv = nn.Conv2d(4, 6, (1, 7), stride=2, padding=(0, 3), bias=True)
    conv1 = nn.Conv2d(4, 6, 1)
    net = nn.Sequential(conv, nn.ReLU(), conv1)
    w, w1 = conv.weight.detach().clone(), conv1.weight.detach().clone()
    inflate(net)
    first, second = net[0], net[2]
    assert first.conv.kernel_size == (3, 1, 7) and first.conv.stride == (2, 2, 2)  # kt = min(k, 3); stem halves time
    assert torch.allclose(first.conv.weight, w.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)
    assert torch.equal(first.conv.bias, conv.bias)
    assert second is conv1 and torch.equal(second.weight, w1)  # 1 x 1 x 1 = the per-frame 1 x 1 convolution
    # A strided 1 x 1 stem is inflated all the same: it halves time.
    stem = nn.Sequential(nn.Conv2d(3, 4, 1, stride=2), nn.Conv2d(4, 4, 3, padding=1))
    inflate(stem)
    assert isinstance(stem[0], InflatedConv) and stem[0].conv.stride == (2, 2, 2)
    with pytest.raises(ConfigError, match="only 1 x 1"):
        inflate(nn.Sequential(nn.Conv2d(3, 4, 1)))


@pytest.mark.parametrize("t", [1, 2, 7, 16])
def test_i3d_takes_any_clip_length(t):
    model = create_model("i3d", backbone="resnet10t", num_frames=t, image_size=32).eval()
    out = model(**example_inputs(model, batch=2))
    assert out["logit"].shape == (2,) and torch.isfinite(out["logit"]).all()


def test_i3d_starts_from_a_local_2d_weights_file(tmp_path):
    import timm

    torch.manual_seed(2)
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v
          for k, v in timm.create_model("resnet10t", pretrained=False).state_dict().items()}
    torch.save(sd, tmp_path / "r10t.pth")
    model = create_model("i3d", backbone="resnet10t", pretrained=str(tmp_path / "r10t.pth"), num_frames=4,
                         image_size=32)
    stem = model.backbone.conv1[0]
    assert isinstance(stem, InflatedConv)
    assert torch.allclose(stem.conv.weight, sd["conv1.0.weight"].unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)


def test_inflation_refuses_convolutions_it_cannot_reproduce():
    class Standardised(nn.Conv2d):  # like timm's StdConv2d: the forward rewrites the weight
        def forward(self, x):
            return super().forward(x)

    with pytest.raises(ConfigError, match="cannot inflate Standardised"):
        inflate(nn.Sequential(Standardised(3, 4, 3)))
    with pytest.raises(ConfigError, match="no Conv2d"):
        inflate(nn.Sequential(nn.Linear(3, 4)))


def test_i3d_counts_and_budget_on_the_meta_device():
    cost = count_config({"name": "i3d", "backbone": "resnet10t", "num_frames": 8, "image_size": 64})
    model = create_model("i3d", backbone="resnet10t", num_frames=8, image_size=64)
    assert cost.counted_on == "meta" and cost.notes == []
    assert cost.params == sum(p.numel() for p in model.parameters())
    # nn.Conv3d and BatchNorm2d are types thop knows: it agrees with the true count here.
    assert cost.thop_params == cost.params and cost.disagreement == []
    flat = count_config({"name": "frame", "backbone": "resnet10t", "pooling": "mean", "num_frames": 8, "image_size": 64})
    # 3x3 kernels become 3x3x3 on half the frames: more work than the 2D model on every frame.
    assert cost.macs > flat.macs


# --------------------------------------------------------------------------- 34-layer video ResNets


@pytest.mark.parametrize("name,params,thop_sees_all", [
    ("r3d_34", 63_476_417, False),  # Hara et al.'s 3D ResNet-34: 63.5M
    ("mc3_34", 21_746_369, False),
    ("r2plus1d_34", 61_626_974, True),  # plain nn.Conv3d inside Conv2Plus1D: thop sees them
])
def test_34_layer_video_resnets(name, params, thop_sees_all):
    from torchvision.models.video import resnet as tv

    cfg = {"name": "clip3d", "backbone": name, "num_frames": 4, "image_size": 32}
    model = create_model(cfg)
    net = model.net
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert all(isinstance(b, tv.BasicBlock) for i in range(1, 5) for b in getattr(net, f"layer{i}"))
    first_convs = [type(getattr(net, f"layer{i}")[0].conv1[0]) for i in range(1, 5)]
    expect = {"r3d_34": [tv.Conv3DSimple] * 4, "mc3_34": [tv.Conv3DSimple] + [tv.Conv3DNoTemporal] * 3,
              "r2plus1d_34": [tv.Conv2Plus1D] * 4}[name]
    assert first_convs == expect
    assert net.fc.out_features == 1
    cost = count_config(cfg)
    assert cost.params == params == sum(p.numel() for p in model.parameters())
    if thop_sees_all:
        assert cost.thop_params == cost.params
    else:  # thop undercounts torchvision's Conv3d subclasses: the true count is what the budget uses
        assert cost.thop_params < cost.params / 20
        assert any(re.search(r"no rule for [^(]*Conv3DSimple x\d+", d) for d in cost.disagreement)  # the cause
        assert "misjudges" in verdict_differs(cost, cost.params - 1)  # thop passes a budget the model breaks


def test_34_layer_video_resnet_defaults_and_weights(tmp_path):
    from fakelens.models import resolve_config
    from fakelens.models.video_resnet import _video_resnet34, _Layout

    assert resolve_config("clip3d", backbone="r3d_34").image_size == 112
    with pytest.raises(ConfigError, match="no weights published by torchvision"):
        create_model("clip3d", backbone="r3d_34", pretrained=True)
    # A torchvision-layout state_dict with another head (e.g. 359 IG-65M classes) loads; the head stays new.
    torch.manual_seed(4)
    other = _video_resnet34(_Layout("r2plus1d", ("2plus1d",) * 4), num_classes=359)
    torch.save(other.state_dict(), tmp_path / "r2p1d34.pth")
    with pytest.warns(UserWarning, match="keep their random init"):
        model = create_model("clip3d", backbone="r2plus1d_34", pretrained=str(tmp_path / "r2p1d34.pth"),
                             num_frames=2, image_size=32)
    assert torch.equal(model.net.stem[0].weight, other.stem[0].weight)
    assert model.net.fc.out_features == 1


# --------------------------------------------------------------------------- MesoNet


@pytest.mark.parametrize("name,params", [("meso4", 27_977), ("mesoinception4", 28_615)])
def test_mesonet_as_published(name, params):
    model = create_model(name, pooling="mean", dropout=0.5)
    cfg = model.cfg
    assert (cfg.backbone, cfg.image_size) == (name, 256)
    # The paper's trainable parameter counts (Afchar et al. 2018, section 3).
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == params
    backbone = model.encoder.backbone
    maps = backbone.forward_features(torch.rand(1, 3, 256, 256))
    assert maps.shape == (1, 16, 8, 8)  # flattened into the 16-unit dense layer at 256 px
    assert torch.equal(backbone.pool(maps), maps)  # the adaptive pool is the identity at 256 px
    assert model.encoder.normalize.mean.abs().sum() == 0 and torch.all(model.encoder.normalize.std == 1)
    # Any other size still reaches the 8 x 8 flatten.
    assert backbone(torch.rand(2, 3, 112, 112)).shape == (2, 16)


def test_model_info_gives_the_true_counts_of_the_3d_models(capsys):
    import argparse
    import json

    from fakelens.cli import model as cli_model

    parser = argparse.ArgumentParser(prog="fakelens model")
    cli_model.add_parser(parser.add_subparsers())
    for argv in (["info", "clip3d", "--set", "backbone=r3d_34"], ["info", "i3d", "--set", "backbone=resnet10t"]):
        args = parser.parse_args([*argv, "--set", "num_frames=4", "--set", "image_size=32", "--json",
                                  "--max-params", "20000000"])
        status = args.func(args)
        out = json.loads(capsys.readouterr().out)
        model = create_model(out["config"])
        assert out["cost"]["params"] == sum(p.numel() for p in model.parameters())
        assert out["within_budget"] == (out["cost"]["params"] <= 20_000_000)
        assert status == (0 if out["within_budget"] else 3)  # over the budget: exit status 3 (2: a wrong argument)
    # r3d_34 (63.5M) passes a 20M budget by thop's count but not by the true count: said first.
    args = parser.parse_args(["info", "clip3d", "--set", "backbone=r3d_34", "--max-params", "20000000", "--json"])
    args.func(args)
    out = json.loads(capsys.readouterr().out)
    assert out["within_budget"] is False and "thop's count" in out["warnings"][0]


# --------------------------------------------------------------------------- FLOP counts of 3D models


@pytest.mark.parametrize("backbone,weights,thop_sees_convs", [
    ("r3d_18", "R3D_18_Weights", False), ("mc3_18", "MC3_18_Weights", False),
    ("r2plus1d_18", "R2Plus1D_18_Weights", True)])
def test_3d_macs_are_the_counts_torchvision_publishes(backbone, weights, thop_sees_convs):
    """The true count (torch.utils.flop_counter) of a video ResNet at 16 x 112^2 is the one
    torchvision publishes with its weights (its "GFLOPS" are multiply-accumulates; the 400-class
    head against our 1 logit is 0.2 M of 40 G); thop sees ~1/25 of r3d_18's and mc3_18's."""
    from torchvision.models import video as tv

    published = getattr(tv, weights).DEFAULT.meta["_ops"]  # G MACs per clip
    cost = count_config({"name": "clip3d", "backbone": backbone, "num_frames": 16, "image_size": 112})
    assert cost.counted_on == "meta" and cost.macs / 1e9 == pytest.approx(published, rel=1e-3)
    if thop_sees_convs:
        assert cost.thop_macs == pytest.approx(cost.macs, rel=0.05)
    else:
        assert cost.thop_macs < cost.macs / 10 and any("MACs" in d for d in cost.disagreement)


@pytest.mark.parametrize("cfg", [{"name": "clip3d", "backbone": "r3d_34"}, {"name": "clip3d", "backbone": "mc3_34"},
                                 {"name": "clip3d", "backbone": "r2plus1d_34"}, {"name": "i3d", "backbone": "resnet10t"},
                                 {"name": "mesoinception4"}], ids=lambda c: f"{c['name']}-{c.get('backbone', '')}")
def test_true_macs_are_the_sum_over_the_convolutions_that_run(cfg):
    """Models with no published count: the true MACs are each convolution's and linear layer's
    output size x its kernel volume x input channels per group, summed over what the forward runs
    (inflated 3D kernels, time strides and 2D 1x1 convolutions on folded frames included)."""
    cfg = {**cfg, "num_frames": 4, "image_size": 64}
    model = create_model(cfg).eval()
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features
        else:
            total += out.numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)

    layers = (nn.Conv2d, nn.Conv3d, nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layers)]
    with torch.no_grad():
        model(**example_inputs(model, batch=1))
    for h in hooks:
        h.remove()
    assert total > 0 and count_config(cfg).macs == total


@pytest.mark.parametrize("backbone", ["r3d_34", "mc3_18", "r2plus1d_18"])
def test_clip3d_honours_model_dropout(backbone):
    """Review of issue 15, item 3: model.dropout was silently ignored by the video ResNets (no
    dropout built). Now it drops the head's input: two training passes over one batch differ with
    dropout 0.5 and agree with 0 (BatchNorm alone is deterministic), eval passes agree."""
    import torch

    from fakelens.models import create_model, resolve_config
    from fakelens.models.config import ModelConfig

    x = torch.rand(2, 4, 3, 32, 32)
    outs = {}
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        m = create_model(resolve_config(ModelConfig(name="clip3d", backbone=backbone, pretrained=False, num_frames=4,
                                                    image_size=32, dropout=p))).train()
        with torch.no_grad():
            outs[p] = (m(video=x)["logit"], m(video=x)["logit"], m.eval()(video=x)["logit"], m.eval()(video=x)["logit"])
        assert "fc.weight" in m.net.state_dict()  # torchvision's keys: checkpoints and weights still load
    assert torch.allclose(outs[0.0][0], outs[0.0][1])
    assert not torch.allclose(outs[0.5][0], outs[0.5][1])
    assert torch.allclose(outs[0.5][2], outs[0.5][3])


def test_i3d_never_scores_padding():
    """Review of issue 15, item 4: a face found on the last 8 of 32 frames (8 real frames, the last
    one repeated 24 times as the tiling pads): the mask was ignored and the padded steps averaged
    into the score (0.0973 vs 0.0592 on the 8 real frames). Now the masked mean over time steps
    scores the real frames only (here exactly their clip: replicate padding is what the temporal
    convolutions see at a clip's end); a clip without any real frame scores every step."""
    from fakelens.models import resolve_config
    from fakelens.models.config import ModelConfig

    torch.manual_seed(0)
    m = create_model(resolve_config(ModelConfig(name="i3d", backbone="resnet18", pretrained=False, num_frames=32,
                                                image_size=64))).eval()
    real = torch.rand(1, 8, 3, 64, 64)
    clip = torch.cat([real, real[:, -1:].expand(1, 24, 3, 64, 64)], dim=1)  # (1, 32, 3, 64, 64)
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[:, :8] = True
    with torch.no_grad():
        masked, unmasked, alone = (m(video=clip, mask=mask)["logit"], m(video=clip)["logit"], m(video=real)["logit"])
        none_real = m(video=clip, mask=torch.zeros_like(mask))["logit"]
    assert torch.allclose(masked, alone, atol=1e-5), (masked, alone)
    assert not torch.allclose(masked, unmasked, atol=1e-4)
    assert torch.allclose(none_real, unmasked)
