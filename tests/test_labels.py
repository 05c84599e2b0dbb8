"""Targets are what the data says, on the grid the model uses (issue 17): per-step audio labels and
step times from the encoder's own stride, proposals on the label grid, ..."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fakelens.train.config import load_train_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("stride", [8, 16])
def test_audio_step_labels_follow_the_encoders_stride_for_every_width(stride):
    """Step i of the encoder covers mel frames [i*s, (i+1)*s): W=33 with frames 24-31 fake is
    [0, 0, 0, 1, 0] at s=8 (it used to be [0, 0, 0, 1, 1], a stride of ceil(33 / 5) = 7)."""
    from fakelens.models import create_model
    from fakelens.tasks.classification import _labels_to_steps

    model = create_model("audio_tiny", n_mels=16, audio_frames=64, audio_time_stride=stride).eval()
    assert model.time_stride == stride
    rng = np.random.default_rng(0)
    for w in range(16, 201):
        steps = model.time_steps(w)
        if stride == 8 or w % 7 == 0:
            with torch.no_grad():  # the encoder's own step count
                assert model(torch.randn(1, 1, 16, w))["time_logits"].shape == (1, steps)
        for _ in range(3):
            a = int(rng.integers(0, w))
            b = int(rng.integers(a + 1, w + 1))
            labels = torch.zeros(1, w)
            labels[0, a:b] = 1.0
            valid = torch.ones(1, w, dtype=torch.bool)
            valid[0, w - int(rng.integers(0, 4)):] = False  # a few padded frames at the end
            got, got_valid = _labels_to_steps(labels, valid, model.time_stride, steps)
            lab, ok = labels[0].numpy(), valid[0].numpy()
            spans = [(i * stride, min(w, (i + 1) * stride)) for i in range(steps)]
            want = [float((lab[p:q] * ok[p:q]).max()) for p, q in spans]
            want_valid = [bool(ok[p:q].any()) for p, q in spans]
            assert got[0].tolist() == want, (w, a, b)
            assert got_valid[0].tolist() == want_valid, (w, a, b)
    labels = torch.zeros(1, 33)
    labels[0, 24:32] = 1.0
    got, _ = _labels_to_steps(labels, torch.ones(1, 33, dtype=torch.bool), 8, 5)
    assert got[0].tolist() == [0, 0, 0, 1, 0]


class _StepModel(torch.nn.Module):
    """An audio model whose step i scores i (as a probability after the sigmoid)."""

    input_names = ("audio",)
    optional_input_names = ("audio_mask",)

    def __init__(self, stride: int):
        super().__init__()
        self.time_stride = stride

    def forward(self, audio, audio_mask=None):
        from fakelens.models.audio import steps_mask

        b, w = audio.shape[0], audio.shape[-1]
        steps = -(-w // self.time_stride)
        logits = torch.arange(steps, dtype=torch.float32).repeat(b, 1)  # (B, F')
        mask = torch.ones(b, w, dtype=torch.bool) if audio_mask is None else audio_mask
        return {"logit": logits.mean(dim=1), "time_logits": logits,
                "time_mask": steps_mask(mask, self.time_stride, steps)}


@pytest.mark.parametrize("stride", [8, 16])
def test_audio_step_times_are_the_steps_own_first_mel_frames(stride):
    """predict places step i of every window at the time of its mel frame i*s (the step's cell
    starts there), for every width 16..200, and each moment of the audio is counted once."""
    from fakelens.features.media import MediaConfig
    from fakelens.inference.pipeline import LoadedRun, Predictor
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.config import load_train_config

    cfg = load_train_config(None, ["model.name=audio_tiny", "data.dataset=audio", "predict.level=clips"])
    for w in range(16, 201):
        run = LoadedRun(cfg=cfg, cache=MediaConfig(detector="full_frame"), model=_StepModel(stride),
                        task=build_task(TaskConfig()), prior=0.5, checkpoint=None, audio_width=w)
        pred = Predictor(run)
        n = 3 * w + 5  # three windows and a bit: the last one overlaps
        feats = SimpleNamespace(mel=np.zeros((80, n), np.float32), mel_times=np.arange(n) * 0.01)
        clips = pred._clips(feats)
        probs = pred._run_model(clips)
        times, scores = pred._audio_steps(clips, probs["time_logits"], probs["time_mask"])
        first = clips[0]["audio_times"]
        steps = -(-w // stride)
        np.testing.assert_allclose(times[:steps], first[np.arange(steps) * stride])  # window 0, step by step
        np.testing.assert_allclose(scores[:steps], 1 / (1 + np.exp(-np.arange(steps))), rtol=1e-6)
        assert np.all(np.diff(times) > 0)  # in time order, no moment twice
        cells = np.diff(np.append(times, n * 0.01))
        assert cells.max() <= stride * 0.01 + 1e-9  # no hole longer than one step


def test_frame_labels_read_grid_boundaries_exactly():
    from fakelens.types import Segment, frame_index, frame_labels

    assert int(1.16 * 25) == 28 and frame_index(1.16, 25.0) == 29  # 1.16 * 25 = 28.999999999999996
    for fps in (25.0, 30.0, 30000 / 1001):
        for k in range(0, 3000, 7):
            assert frame_index(k / fps, fps) == k
            assert frame_index((k + 0.5) / fps, fps) == k
    lab = frame_labels([Segment(29 / 25, 35 / 25)], 25.0, 50)
    assert np.flatnonzero(lab).tolist() == list(range(29, 35))


def _random_layout(rng, fps: float):
    """A video of n frames with 0-3 fake segments on the frame grid, 5-30 frames each, apart."""
    from fakelens.types import Segment

    n = int(rng.integers(60, 400))
    segs, k = [], int(rng.integers(0, 20))
    for _ in range(int(rng.integers(0, 4))):
        length = int(rng.integers(5, 31))
        if k + length > n:
            break
        segs.append(Segment(k / fps, (k + length) / fps))
        k += length + int(rng.integers(1, 40))
    return n, tuple(segs)


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001])
def test_a_perfect_detector_scores_ap_one_at_every_threshold(fps):
    """Perfect per-frame scores (1 on the frames the labels mark fake) over 200 random segment
    layouts give proposals equal to the true segments: the best AP at every IoU threshold 0.5 ...
    0.99 and AR = 1 (the centred cells used to start and end half a frame early: AP@0.95 was
    0.17). The official AV-Deepfake1M curve rule leaves the first true positive out of the sum,
    so its best AP is (n_true - 1) / n_true, what an exact match gives."""
    from fakelens.inference.postprocess import proposals_from_scores
    from fakelens.metrics import AP_THRESHOLDS_AVDF1M, ap_at_iou, ar_at_n
    from fakelens.types import Proposal, frame_labels

    rng = np.random.default_rng(0)
    truth, props = {}, {}
    for v in range(200):
        n, segs = _random_layout(rng, fps)
        scores = frame_labels(segs, fps, n).astype(np.float64)  # (n,) perfect
        times = np.arange(n) / fps
        vid = f"{v:03d}.mp4"
        truth[vid] = list(segs)
        props[vid] = proposals_from_scores(times, scores, duration=n / fps)
    n_true = sum(len(s) for s in truth.values())
    assert n_true > 200
    thresholds = list(AP_THRESHOLDS_AVDF1M) + [0.99]
    exact = {v: [Proposal(1.0, s.start, s.end) for s in segs] or [Proposal(0.0, 0.0, 0.04)]
             for v, segs in truth.items()}
    best = ap_at_iou(exact, truth, thresholds)
    assert all(value == pytest.approx((n_true - 1) / n_true) for value in best.values())
    ap = ap_at_iou(props, truth, thresholds)
    assert ap == pytest.approx(best), ap
    ar = ar_at_n(props, truth, [10], thresholds)
    assert ar[10] == pytest.approx(1.0)


