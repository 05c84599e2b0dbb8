"""Tasks (losses over pure model outputs) and MIL pooling strategies, on random tensors."""

from __future__ import annotations

import math

import pytest
import torch

from fakelens.tasks import POOLINGS, TASKS, PoolingParams, TaskConfig, build_task, pool


@pytest.mark.parametrize("name", POOLINGS.names())
def test_pooling_bounds_and_mask(name):
    """Every pooling lies between the min and max valid logit and ignores masked frames."""
    torch.manual_seed(0)
    logits = torch.randn(4, 10)  # (B, T)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[:, 7:] = False
    out = pool(name, logits, mask)
    assert out.shape == (4,)
    valid = logits[:, :7]
    assert torch.all(out <= valid.max(dim=1).values + 1e-5)
    assert torch.all(out >= valid.min(dim=1).values - 1e-5)
    # Changing masked-out frames must not change the result.
    poked = logits.clone()
    poked[:, 7:] = 100.0
    assert torch.allclose(pool(name, poked, mask), out)


@pytest.mark.parametrize("name", POOLINGS.names())
def test_pooling_gradient_reaches_the_top_frame(name):
    logits = torch.tensor([[0.0, 3.0, -1.0, 0.5]], requires_grad=True)  # (1, 4)
    pool(name, logits).sum().backward()
    assert logits.grad is not None
    assert logits.grad[0, 1] > 0  # the most suspicious frame always gets gradient


def test_pooling_values():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert pool("max", x).item() == 4.0
    assert pool("mean", x).item() == 2.5
    assert pool("topk_mean", x, params=PoolingParams(topk=0.5)).item() == 3.5
    assert pool("topk_mean", x, params=PoolingParams(topk=0.01)).item() == 4.0  # at least one frame
    lse = pool("lse", x, params=PoolingParams(r=1.0)).item()
    assert lse == pytest.approx(math.log(sum(math.exp(v) for v in (1, 2, 3, 4)) / 4))
    # Large r approaches max; small r approaches mean.
    assert pool("lse", x, params=PoolingParams(r=200.0)).item() == pytest.approx(4.0, abs=0.01)
    assert pool("lse", x, params=PoolingParams(r=1e-4)).item() == pytest.approx(2.5, abs=0.01)


def test_pooling_rejects_empty_videos_and_unknown_names():
    with pytest.raises(ValueError, match="at least one valid frame"):
        pool("max", torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(KeyError, match="Did you mean 'max'"):
        pool("maxx", torch.zeros(2, 3))


def _outputs(b=4, t=6, a=5):
    g = torch.Generator().manual_seed(1)
    return {
        "logit": torch.randn(b, generator=g, requires_grad=True),
        "visual_logit": torch.randn(b, generator=g, requires_grad=True),
        "audio_logit": torch.randn(b, generator=g, requires_grad=True),
        "frame_logits": torch.randn(b, t, generator=g, requires_grad=True),
        "time_logits": torch.randn(b, a, generator=g, requires_grad=True),
    }


def _batch(b=4, t=6):
    return {
        "label": torch.tensor([1, 0, 1, 1]),
        "visual_label": torch.tensor([1, 0, 0, 1]),
        "audio_label": torch.tensor([0, 0, 1, 1]),
        "frame_labels": torch.randint(0, 2, (b, t)),
        "visual_frame_labels": torch.randint(0, 2, (b, t)),
        "audio_frame_labels": torch.randint(0, 2, (b, 40)),  # (B, W) mel frames, 40 = 5 steps x 8
    }


def _localizer_case(b=4, t=6):
    """Outputs of a real (tiny) localizer and a batch of segments for the localization task."""
    from fakelens.models import create_model

    torch.manual_seed(0)
    model = create_model("localizer", feature_dim=3, audio_feature_dim=2, temporal_dim=8, levels=2)
    out = model(visual_features=torch.randn(b, t, 3), audio_features=torch.randn(b, t, 2))
    out["frame_logits"].retain_grad()
    batch = {**_batch(b, t), "segments": torch.tensor([[[1.0, 3.0]], [[-1.0, -1.0]], [[0.0, 6.0]], [[2.0, 3.0]]]),
             "n_segments": torch.tensor([1, 0, 1, 1]), "segment_modality": torch.tensor([[[1.0, 0.0]]] * 4)}
    return out, batch


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_gives_a_finite_differentiable_loss(name):
    cfg = TaskConfig(name=name, frame_weight=0.5, mil_weight=0.5, modality_weight=0.5)
    task = build_task(cfg, pos_weight=0.2, time_stride=8)
    out, batch = _localizer_case() if name == "localization" else (_outputs(), _batch())
    loss, parts = task.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    expected = {"cls", "reg", "frame", "modality"} if name == "localization" else {"video"}
    assert expected <= set(parts) and all(torch.isfinite(v) for v in parts.values())
    loss.backward()
    assert out["frame_logits"].grad is not None  # per-frame scores are trained in every task here
    assert task.video_logit(out).shape == (4,)


def test_mil_uses_only_the_video_label_and_trains_frames():
    """MIL with max pooling: the gradient reaches only the top frame of each video."""
    task = build_task(TaskConfig(name="mil", pooling="max"))
    frames = torch.tensor([[0.0, 2.0, -1.0], [1.0, 0.0, 0.5]], requires_grad=True)  # (2, 3)
    loss, _ = task.loss({"frame_logits": frames}, {"label": torch.tensor([1, 0])})
    loss.backward()
    grad = frames.grad
    assert grad[0, 1] < 0 and grad[1, 0] > 0  # push fake video's top frame up, real's down
    assert torch.count_nonzero(grad) == 2
    with pytest.raises(KeyError, match="frame_logits"):
        task.loss({"logit": torch.zeros(2)}, {"label": torch.tensor([1, 0])})


def test_pos_weight_rebalances():
    out = {"logit": torch.zeros(2)}
    batch = {"label": torch.tensor([1, 0])}
    plain, _ = build_task(TaskConfig()).loss(out, batch)
    weighted, _ = build_task(TaskConfig(), pos_weight=0.2).loss(out, batch)
    assert plain.item() == pytest.approx(math.log(2))
    assert weighted.item() == pytest.approx(math.log(2) * (0.2 + 1) / 2)


def test_av_task_requires_its_heads():
    task = build_task(TaskConfig(name="av"))
    with pytest.raises(KeyError, match="visual_logit"):
        task.loss({"logit": torch.zeros(4)}, _batch())


def test_av_dense_terms_use_each_streams_own_labels():
    """An audio-only fake (frame_labels all 1, visual_frame_labels all 0): the visual per-frame
    term pushes its frame logits DOWN; the time term follows the audio labels pooled to steps."""
    task = build_task(TaskConfig(name="av", visual_weight=0.0, audio_weight=0.0, frame_weight=1.0,
                                 audio_frame_weight=1.0), time_stride=4)
    frames = torch.zeros(1, 4, requires_grad=True)  # (B, T)
    times = torch.zeros(1, 3, requires_grad=True)  # (B, F') = 3 steps of 4 mel frames
    audio = torch.tensor([[0, 0, 0, 0, 0, 1, 0, 0, -1, -1, -1, -1]], dtype=torch.float32)  # (B, W=12)
    batch = {"label": torch.tensor([1.0]), "frame_labels": torch.ones(1, 4),
             "visual_frame_labels": torch.zeros(1, 4), "mask": torch.tensor([[True, True, True, False]]),
             "audio_frame_labels": audio, "audio_mask": torch.ones(1, 12, dtype=torch.bool)}
    out = {"logit": torch.zeros(1), "frame_logits": frames, "time_logits": times,
           "frame_mask": batch["mask"]}  # the model passes its input mask on with the frame logits
    loss, parts = task.loss(out, batch)
    loss.backward()
    assert (frames.grad[0, :3] > 0).all() and frames.grad[0, 3] == 0  # real faces; padding left out
    assert times.grad[0, 0] > 0 and times.grad[0, 1] < 0 and times.grad[0, 2] == 0  # unknown step left out
    assert set(parts) == {"video", "frame", "time"}
    with pytest.raises(KeyError, match="visual_frame_labels"):
        task.loss(out, {k: v for k, v in batch.items() if k != "visual_frame_labels"})


def test_task_config_validation():
    with pytest.raises(KeyError, match="Did you mean 'mil'"):
        TaskConfig(name="mill")
    with pytest.raises(ValueError, match="topk"):
        TaskConfig(topk=0.0)


@pytest.mark.parametrize("pooling", ["max", "topk_mean", "lse"])
def test_mil_training_from_video_labels_gives_usable_frame_scores(pooling):
    """A per-frame linear scorer trained with video labels only learns which frames are fake."""
    g = torch.Generator().manual_seed(0)
    n, t, d = 64, 8, 6
    feats = torch.randn(n, t, d, generator=g)  # (N, T, D)
    labels = torch.arange(n) % 2  # (N,)
    frame_truth = torch.zeros(n, t, dtype=torch.bool)
    for i in range(n):
        if labels[i]:
            start = int(torch.randint(0, t - 2, (1,), generator=g))
            frame_truth[i, start:start + 3] = True  # a short fake segment
    feats[frame_truth, 0] += 3.0  # fake frames are shifted along one feature
    torch.manual_seed(0)
    scorer = torch.nn.Linear(d, 1)
    task = build_task(TaskConfig(name="mil", pooling=pooling, lse_r=4.0))
    opt = torch.optim.Adam(scorer.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss, _ = task.loss({"frame_logits": scorer(feats).squeeze(-1)}, {"label": labels})
        loss.backward()
        opt.step()
    with torch.no_grad():
        frame_scores = scorer(feats).squeeze(-1)  # (N, T)
    from sklearn.metrics import roc_auc_score

    frame_auc = roc_auc_score(frame_truth.reshape(-1).numpy(), frame_scores.reshape(-1).numpy())
    assert frame_auc > 0.95, f"{pooling}: per-frame AUC {frame_auc:.3f} from video labels only"
