"""Parameter/FLOP counting (true vs thop) and the parameter budget."""

from __future__ import annotations

import pytest
import torch

from fakelens.errors import BudgetError
from fakelens.models import create_model, example_inputs
from fakelens.train import budget
from fakelens.train.budget import build_meta, check_budget, count, count_config, human

TINY = {"num_frames": 2, "image_size": 32}


def test_count_on_cpu_agrees_with_thop_on_plain_layers_and_leaves_the_model_intact():
    model = create_model("frame_tiny", **TINY)
    keys = list(model.state_dict())
    cost = count(model, example_inputs(model))
    assert cost.params == sum(p.numel() for p in model.parameters()) == cost.trainable_params
    assert cost.flops == 2 * cost.macs > 0
    # tinycnn is plain Conv2d/BatchNorm2d/Linear: thop sees every parameter; its MACs add the
    # norms and poolings that flop_counter leaves out, a few percent at most.
    assert cost.thop_params == cost.params
    assert cost.thop_macs == pytest.approx(cost.macs, rel=0.05)
    assert cost.disagreement == [] and cost.thop_missed == {}
    assert cost.input_shapes == {"video": [1, 2, 3, 32, 32]} and cost.counted_on == "cpu"
    assert list(model.state_dict()) == keys  # thop's leftover buffers were removed
    assert model.training  # restored


def test_counting_never_loads_weights(tmp_path):
    # tinycnn has no published weights (True raises when building) and the file does not exist:
    # counting switches weights off, so both are counted fine.
    for pretrained in (True, str(tmp_path / "missing.pth")):
        cost = count_config({"name": "frame_tiny", "pretrained": pretrained, **TINY})
        assert cost.params > 0
        assert check_budget({"name": "frame_tiny", "pretrained": pretrained}) == cost.params


def test_meta_count_equals_cpu_count():
    cpu = create_model("frame_tiny", **TINY)
    a = count(cpu, example_inputs(cpu))
    b = count_config({"name": "frame_tiny", **TINY})
    assert b.counted_on == "meta"
    assert (a.params, a.flops, a.thop_params, a.thop_macs) == (b.params, b.flops, b.thop_params, b.thop_macs)


def test_thop_undercount_of_r3d_18_is_flagged():
    cost = count_config({"name": "clip3d", "backbone": "r3d_18", "num_frames": 4, "image_size": 32})
    assert cost.params == 33_166_785  # r3d_18 with a 1-logit head
    assert cost.thop_params < cost.params / 100  # thop skips torchvision's Conv3d subclass
    assert cost.thop_missed.get("Conv3DSimple") == 16
    assert len(cost.disagreement) == 2
    assert "no rule for Conv3DSimple x16 (their 32,956,416 parameters are left out)" in cost.disagreement[0]
    # The difference changes the verdict of a 1M budget (thop passes it), not of the default 200M.
    assert "misjudges" in budget.verdict_differs(cost, 1_000_000)
    assert budget.verdict_differs(cost, 200_000_000) is None
    assert "MACs" in cost.disagreement[1]


def test_thop_misses_attention_and_timm_norm_parameters():
    cost = count_config({"name": "av", "backbone": "efficientnet_b0", "fusion": "mid", "num_frames": 2,
                         "image_size": 32, "n_mels": 16, "audio_frames": 32})
    assert cost.params > cost.thop_params
    assert {"BatchNormAct2d", "MultiheadAttention"} <= set(cost.thop_missed)


def test_budget_refuses_with_the_numbers():
    with pytest.raises(BudgetError) as e:
        check_budget({"name": "frame", "backbone": "efficientnet_b7"}, max_params=50_000_000)
    msg = str(e.value)
    assert msg.startswith("model 'frame' (backbone efficientnet_b7) has 64.4M parameters, over the budget of 50M")
    assert "train.max_params" in msg
    small = create_model("frame_tiny", **TINY)
    assert check_budget(small) == sum(p.numel() for p in small.parameters())
    with pytest.raises(BudgetError, match="over the budget of 1K"):
        check_budget(small, max_params=1000)


def test_budget_counts_a_huge_model_without_allocating_it():
    model = build_meta({"name": "frame", "backbone": "vit_huge_patch14_224"})
    assert all(p.is_meta for p in model.parameters())
    with pytest.raises(BudgetError, match=r"631\.\dM parameters"):
        check_budget({"name": "frame", "backbone": "vit_huge_patch14_224"})


def test_meta_failure_falls_back_to_cpu_and_says_so(monkeypatch):
    real = budget.count
    calls = []

    def flaky(model, inputs):
        calls.append(next(model.parameters()).device.type)
        if len(calls) == 1:
            raise NotImplementedError("no meta kernel for some_op")
        return real(model, inputs)

    monkeypatch.setattr(budget, "count", flaky)
    cost = count_config({"name": "frame_tiny", **TINY})
    assert calls == ["meta", "cpu"]
    assert cost.counted_on == "cpu" and "meta-device forward failed" in cost.notes[0]


def test_human():
    assert human(266_912_345) == "266.9M" and human(200_000_000) == "200M" and human(999) == "999"
