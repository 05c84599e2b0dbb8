"""Pretrained weights without network: the error comes at once (not after a minute of download
retries) and names the way on: model.pretrained=false, --smoke, or a local weights file."""

from __future__ import annotations

import socket
import time

import pytest

from fakelens.errors import ConfigError


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # nothing cached
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("kind,name", [("timm", "efficientnet_b0"), ("torchvision", "r2plus1d_18")])
def test_offline_weights_fail_fast_and_say_what_to_do(no_network, kind, name):
    from fakelens.models.backbones import build_image_backbone, build_video_backbone

    build = build_image_backbone if kind == "timm" else build_video_backbone
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        build(name, True)
    assert time.perf_counter() - t0 < 15  # the loaded 2-core machine; ~0.6 s quiet, ~55 s before
    text = str(e.value)
    assert f"{kind} model {name!r}" in text and "cannot be reached (Network is unreachable)" in text
    assert "--set model.pretrained=false" in text and "--smoke" in text and "local file" in text


def test_the_offline_switch_is_honoured_without_trying_the_network(monkeypatch):
    from fakelens.models.hub import offline_reason

    calls = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_reason("huggingface.co") == "HF_HUB_OFFLINE is set" and calls == []


def test_features_pretrained_offline_names_its_own_way_on(no_network, tmp_path, capsys):
    """`fakelens features NAME DATA --pretrained` offline said train's way on ('--set
    model.pretrained=false'), a flag features does not have; it says its own now (drop
    --pretrained: random init by --seed), and train keeps its hint (the test above)."""
    from fakelens.cli.main import main

    data = tmp_path / "data"
    assert main(["data", "synth", str(data), "--preset", "tiny", "--quiet"]) == 0
    out = tmp_path / "feats"
    assert main(["features", "efficientnet_b0", str(data), "--pretrained", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot get the pretrained weights of timm model 'efficientnet_b0'" in err
    assert "drop --pretrained" in err and "--seed" in err and "--set" not in err and "fakelens train" not in err
