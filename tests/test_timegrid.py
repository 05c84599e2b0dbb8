"""The time grid of proposals (issue 17, second review): sampled frames' cells meet in the middle
of the unseen gaps, audio steps keep their own cells when combined with the frames, and times
written with 6 decimals at NTSC rates are read on the frame grid."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.inference.pipeline import Predictor
from fakelens.inference.postprocess import (frame_cells, proposals_from_cells, proposals_from_scores, step_cells,
                                            union_cells)
from fakelens.metrics.localization import ap_at_iou
from fakelens.types import Proposal, Segment, frame_index, frame_labels, segment_steps

THS = (0.5, 0.75, 0.9, 0.95)


def _segments(rng, n_videos, n_frames, fps):
    out = []
    for _ in range(n_videos):
        length = int(rng.integers(5, 31))
        a = int(rng.integers(10, n_frames - length - 10))
        out.append(Segment(a / fps, (a + length) / fps))
    return out


def _perfect(segs, fps, n_frames, every, offset=0):
    """A perfect detector's proposals (through predict's timeline) on every `every`-th frame."""
    idx = np.arange(offset, n_frames, every)
    props = {}
    for v, seg in enumerate(segs):
        s = frame_labels([seg], fps, n_frames)[idx].astype(float)
        st, en, sc = Predictor._timeline([], None, idx / fps, s, None, None, n_frames / fps, frame_seconds=1 / fps)
        props[str(v)] = list(proposals_from_cells(st, en, sc, thresholds=(0.5,), suppression="none"))
    return props


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001])
def test_a_perfect_detector_on_every_frame_gives_back_the_segments(fps):
    rng = np.random.default_rng(0)
    segs = _segments(rng, 120, 250, fps)
    props = _perfect(segs, fps, 250, 1)
    gt = {str(v): [s] for v, s in enumerate(segs)}
    for v, s in enumerate(segs):
        (p,) = props[str(v)]
        assert p.start == pytest.approx(s.start, abs=1e-9) and p.end == pytest.approx(s.end, abs=1e-9)
    oracle = ap_at_iou({k: [Proposal(1.0, s.start, s.end) for s in g] for k, g in gt.items()}, gt, THS)
    assert ap_at_iou(props, gt, THS) == pytest.approx(oracle)  # the official rule's AP of the truth itself


def test_sampled_frames_give_unbiased_boundaries():
    fps, n, every = 25.0, 250, 5  # preprocess --fps 5 on a 25 fps video
    rng = np.random.default_rng(1)
    segs = _segments(rng, 400, n, fps)
    errs = []
    for offset in (0, 2):
        props = _perfect(segs, fps, n, every, offset)
        for v, seg in enumerate(segs):
            (p,) = props[str(v)]
            errs.append(((p.start - seg.start) * fps, (p.end - seg.end) * fps))
    e = np.asarray(errs)  # (2 * videos, 2) in frames
    assert abs(e[:, 0].mean()) < 0.15 and abs(e[:, 1].mean()) < 0.15  # unbiased (was +2 frames at both ends)
    assert np.abs(e).max() <= 2.0 + 1e-6  # within half the unseen gap of 4 frames
    gt = {str(v): [s] for v, s in enumerate(segs)}
    ap = ap_at_iou(_perfect(segs, fps, n, every), gt, THS)
    assert ap[0.5] > 0.95 and ap[0.75] > 0.65  # 0.887 and 0.372 with cells [t_i, t_i+1)


def test_frame_cells_meet_in_the_middle_of_unseen_frames():
    t = np.array([0.0, 0.2, 0.4, 0.6])  # every 5th frame at 25 fps
    starts, ends = frame_cells(t, duration=0.8, frame_seconds=0.04)
    np.testing.assert_allclose(starts, [0.0, 0.12, 0.32, 0.52])  # midway between 0.04 and 0.2, ...
    np.testing.assert_allclose(ends, [0.12, 0.32, 0.52, 0.8])  # the video ends before the next sample
    _, ends = frame_cells(t, duration=5.0, frame_seconds=0.04)
    assert ends[-1] == pytest.approx(0.72)  # the cache stops early: where the next sample would take over
    _, ends = frame_cells(t, frame_seconds=0.04)
    assert ends[-1] == pytest.approx(0.64)  # no duration: the last frame's end
    starts, _ = frame_cells(np.array([2.0, 2.2, 2.4]), frame_seconds=0.04)
    assert starts[0] == pytest.approx(1.92)  # a window of the video: the sample before would start at 1.8
    starts, ends = frame_cells(np.array([0.0, 0.1, 0.2]), duration=0.3)  # every frame: the label grid
    np.testing.assert_allclose(starts, [0.0, 0.1, 0.2]) and np.testing.assert_allclose(ends, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="frame duration"):
        frame_cells(t, frame_seconds=0.0)


def test_audio_steps_keep_their_own_cells_beside_frame_cells():
    # a frame cell [0, 0.2) scored 0.1, an audio step [0.08, 0.16) scored 0.9: the union keeps the step
    st, en, sc = union_cells((np.array([0.0, 0.2]), np.array([0.2, 0.4]), np.array([0.1, 0.1])),
                             (*step_cells(np.array([0.0, 0.08, 0.16, 0.24]), 0.08, 0.4),
                              np.array([0.0, 0.9, 0.0, np.nan])))
    np.testing.assert_allclose(st, [0.0, 0.08, 0.16, 0.2, 0.24, 0.32])
    np.testing.assert_allclose(sc, [0.1, 0.9, 0.1, 0.1, 0.1, 0.1])  # NaN audio: the frame's score there
    (p,) = proposals_from_cells(st, en, sc, thresholds=(0.5,), suppression="none")
    assert (p.start, p.end) == pytest.approx((0.08, 0.16))


def test_audio_fakes_are_not_widened_to_frame_cells():
    """A perfect audio-visual detector on audio-only fakes: as sharp as the audio steps alone,
    whatever the frame sampling (AP@0.75 was 0.408 at every 5th frame vs 0.959)."""
    fps, n, hop, stride = 25.0, 250, 0.01, 8
    mel_t = np.arange(int(n / fps / hop)) * hop
    k = -(-len(mel_t) // stride)
    segs = _segments(np.random.default_rng(0), 150, n, fps)
    gt = {str(v): [s] for v, s in enumerate(segs)}
    aps = {}
    for every in (None, 1, 5):
        props = {}
        for v, seg in enumerate(segs):
            lab = ((mel_t >= seg.start) & (mel_t < seg.end)).astype(float)
            a_t = mel_t[::stride][:k]
            a_s = np.array([lab[i * stride:(i + 1) * stride].max() for i in range(k)])
            idx = np.arange(0, n, every or 1)
            frames = (None, None) if every is None else (idx / fps, np.zeros(len(idx)))
            st, en, sc = Predictor._timeline([], None, *frames, a_t, a_s, n / fps, frame_seconds=1 / fps,
                                             audio_step=stride * hop)
            props[str(v)] = list(proposals_from_cells(st, en, sc, thresholds=(0.5,), suppression="none"))
        aps[every] = ap_at_iou(props, gt, THS)
    assert aps[1] == pytest.approx(aps[None]) and aps[5] == pytest.approx(aps[None])
    assert aps[5][0.75] > 0.9


def test_unscored_frames_break_runs():
    st, en = frame_cells(np.arange(6) * 0.1, 0.6)
    sc = np.array([0.9, 0.9, np.nan, 0.9, 0.1, np.nan])
    props = proposals_from_cells(st, en, sc, thresholds=(0.5,), suppression="none")
    assert sorted((round(p.start, 6), round(p.end, 6)) for p in props) == [(0.0, 0.2), (0.3, 0.4)]
    (p,) = proposals_from_cells(st, en, np.full(6, np.nan))  # nothing scored: the whole timeline, confidence 0
    assert (p.confidence, p.start, p.end) == pytest.approx((0.0, 0.0, 0.6))
    with pytest.raises(ValueError, match="finite"):
        proposals_from_cells(st, en, np.array([0.9, np.inf, 0, 0, 0, 0]))


@pytest.mark.parametrize("fps", [30000 / 1001, 60000 / 1001, 24000 / 1001])
def test_six_decimal_times_at_ntsc_rates_are_read_on_the_frame_grid(fps):
    n = 600
    for k in range(n):
        assert frame_index(round(k / fps, 6), fps) == k  # a third of them read k - 1 with 1e-6 frames
        assert frame_index(round((k + 0.5) / fps, 6), fps) == k
    rng = np.random.default_rng(2)
    for _ in range(100):  # labels written with 6 decimals (AV-Deepfake1M, LAV-DF metadata)
        a = int(rng.integers(0, n - 40))
        b = a + int(rng.integers(1, 40))
        seg = Segment(round(a / fps, 6), round(b / fps, 6))
        assert np.flatnonzero(frame_labels([seg], fps, n)).tolist() == list(range(a, b))
        np.testing.assert_array_equal(segment_steps([seg], fps), [[a, b]])
        # proposals of a perfect detector on every frame, written with 6 decimals, read back as the same frames
        s = frame_labels([seg], fps, n).astype(float)
        props = proposals_from_scores(np.arange(n) / fps, s, duration=n / fps, thresholds=(0.5,),
                                      suppression="none", frame_seconds=1 / fps)
        written = [Segment(round(p.start, 6), round(p.end, 6)) for p in props]
        np.testing.assert_array_equal(frame_labels(written, fps, n), frame_labels([seg], fps, n))


def test_predict_cuts_sampled_frames_and_audio_steps_on_their_own_grids(make_video, untrained_run):
    """Predictor._finish: frame cells from the video's frame rate (every 2nd frame sampled here:
    cells meet halfway), audio steps of the encoder's stride kept whole beside them."""
    from fakelens.features.media import compute_features
    from fakelens.faces.detectors import build_detector

    run = untrained_run()
    path = make_video("v.mp4", n_frames=12, fps=10, size=(48, 48), audio_seconds=1.2)
    feats = compute_features(path, run.cache, build_detector("full_frame"))
    pr = Predictor(run, device="cpu")
    clips = pr._prepare("v", feats)
    probs = pr._run_model(clips)
    probs["frame_logits"] = np.full_like(probs["frame_logits"], 0.05)
    probs["time_logits"] = np.full_like(probs["time_logits"], 0.05)
    pred = pr._finish("v", feats, clips, probs)
    t = np.asarray(feats.clip.times)
    assert len(pred.frame_times) == len(t) and 1 / feats.clip.fps < np.median(np.diff(t))  # sampled frames
    scored = np.flatnonzero(np.isfinite(pred.frame_scores))
    # one frame very suspicious: its cell meets its neighbours halfway through the unseen frame
    i = int(scored[(scored > 0) & (scored < len(t) - 1)][0])
    probs2 = dict(probs)
    fl = probs["frame_logits"].copy()
    for r, c in enumerate(clips):
        fl[r, np.asarray(c["positions"]) == i] = 0.95
    probs2["frame_logits"] = fl
    top = max(pr._finish("v", feats, clips, probs2).proposals, key=lambda p: p.confidence)
    starts, ends = frame_cells(t, float(feats.clip.duration), 1 / feats.clip.fps)
    assert (top.start, top.end) == pytest.approx((starts[i], ends[i]))
    gap = np.median(np.diff(t)) - 1 / feats.clip.fps  # the unseen frame between two samples
    assert top.start == pytest.approx(t[i] - gap / 2) and top.end == pytest.approx(t[i] + 1 / feats.clip.fps + gap / 2)
    # one audio step very suspicious: the proposal is that step (the encoder's stride of mel frames)
    probs3 = dict(probs)
    tl = probs["time_logits"].copy()
    tl[0, 3] = 0.95
    probs3["time_logits"] = tl
    pred3 = pr._finish("v", feats, clips, probs3)
    top = max(pred3.proposals, key=lambda p: p.confidence)
    j = int(np.argmax(pred3.audio_scores))
    step = int(run.model.time_stride) * float(run.cache.hop_seconds)
    assert (top.start, top.end) == pytest.approx((pred3.audio_times[j], pred3.audio_times[j] + step))
