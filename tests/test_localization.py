"""Temporal localization: targets from segments (the frame rule), losses, the localizer's masks and
padding, the features dataset's step grid, and windowed inference on a long video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakelens.data.features import StepInputs, align_to_steps, collate_steps, make_item, step_labels
from fakelens.inference.postprocess import decode_points
from fakelens.models import create_model
from fakelens.tasks import TaskConfig, build_task
from fakelens.tasks.localization import iou_loss_1d, point_targets, sigmoid_focal_loss
from fakelens.types import Label, Modality, Segment, VideoRecord, frame_labels, segment_steps


def _grid(levels: int, n: int):
    centres, strides = [], []
    for level in range(levels):
        s = 2 ** level
        k = -(-n // s)
        centres.append((torch.arange(k) + 0.5) * s)
        strides.append(torch.full((k,), float(s)))
    return torch.cat(centres), torch.cat(strides)


def test_segment_edges_follow_the_frame_rule():
    # int(start * fps), int(end * fps): 1.23 s at 25 fps is frame 30 (30.75 rounded down), 2.0 s frame 50
    np.testing.assert_array_equal(segment_steps([Segment(1.23, 2.0)], 25.0), [[30, 50]])
    # inside one frame: no frame is fake (frame_labels marks none), the row stays with end == start
    np.testing.assert_array_equal(segment_steps([(0.01, 0.02)], 25.0), [[0, 0]])
    np.testing.assert_array_equal(segment_steps([(1.23, 2.0)], 25.0, step_frames=2, first_frame=10), [[10, 20]])
    # per-step labels agree with the frame labels every other stage uses
    rec = VideoRecord("v", None, Label.FAKE, segments=(Segment(0.55, 1.32), Segment(2.0, 2.05)))
    x = StepInputs(np.zeros((30, 1), np.float32), np.zeros((30, 1), np.float32), np.ones(30, bool), np.ones(30, bool),
                   np.arange(30), fps=10.0, step_frames=1, duration=3.0)
    expected = frame_labels(rec.segments, 10.0, 30)  # (2.0, 2.05) lies inside frame 20: no frame, as here
    np.testing.assert_array_equal(step_labels(rec, x), expected)
    item = make_item(rec, x)  # and no target segment for it
    np.testing.assert_array_equal(item["segments"].numpy(), [[5, 13]])
    real = VideoRecord("r", None, Label.REAL)
    assert step_labels(real, x).sum() == 0
    whole = VideoRecord("w", None, Label.FAKE)  # video-level label only: every step is fake
    assert step_labels(whole, x).min() == 1


def test_targets_on_the_frame_grid_agree_with_frame_labels():
    # LAV-DF / AV-Deepfake1M write times on the 0.04 s grid with 2 decimals: k / 25 * 25 is often
    # k - 1e-15 (1.16 * 25 = 28.999...), which int() read as frame k - 1 (34 of these 500 times)
    n, fps = 60, 25.0
    x = StepInputs(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), np.ones(n, bool), np.ones(n, bool),
                   np.arange(n), fps=fps, step_frames=1, duration=n / fps)
    item = make_item(VideoRecord("v", None, Label.FAKE, segments=(Segment(1.16, 1.36),)), x)
    np.testing.assert_array_equal(item["segments"].numpy(), [[29, 34]])
    np.testing.assert_array_equal(item["frame_labels"].numpy(), frame_labels([Segment(1.16, 1.36)], fps, n))
    for k in range(500):
        t = round(k / fps, 2)
        a = int(segment_steps([(t, t + 0.2)], fps)[0, 0])
        assert a == int(np.flatnonzero(frame_labels([Segment(t, round(t + 0.2, 2))], fps, k + 10))[0]) == k, t


def test_point_targets_by_hand():
    centres, strides = _grid(3, 32)  # strides 1, 2, 4; ranges [0, 4], [4, 8], [8, inf)
    segs = torch.tensor([[[10.0, 20.0]]])
    pos, reg, which = point_targets(centres, strides, segs, torch.tensor([1]), center_radius=1.5, regression_base=4.0)
    hits = {(float(s), float(c)) for c, s in zip(centres[pos[0]], strides[pos[0]])}
    # level 1: centres within 1.5 * 2 of 15 -> 13, 15, 17 (farther edge 7, 5, 7 in [4, 8]);
    # level 2: centres 14 and 18 are within 6 of 15, farthest edges 6 (out of [8, inf)) and 8 (in)
    assert hits == {(2.0, 13.0), (2.0, 15.0), (2.0, 17.0), (4.0, 18.0)}
    assert (which[0][pos[0]] == 0).all() and (which[0][~pos[0]] == -1).all()
    # distances in stride units decode back to the segment's edges
    st, en = decode_points(centres[pos[0]].numpy(), strides[pos[0]].numpy(), reg[0][pos[0]].numpy(), 0.04)
    np.testing.assert_allclose(st, 10 * 0.04)
    np.testing.assert_allclose(en, 20 * 0.04)
    assert (reg[0][~pos[0]] == 0).all()


def test_overlapping_segments_take_the_shortest_and_padding_rows_are_ignored():
    centres, strides = _grid(1, 40)
    segs = torch.tensor([[[0.0, 40.0], [18.0, 22.0], [-1.0, -1.0]]])
    pos, reg, which = point_targets(centres, strides, segs, torch.tensor([2]), center_radius=100.0,
                                    regression_base=1000.0, levels=1)
    assert pos[0].all() and (which[0][19:21] == 1).all() and which[0][0] == 0
    none, _, _ = point_targets(centres, strides, segs, torch.tensor([0]), levels=1)
    assert not none.any()


def test_focal_and_iou_losses():
    logits = torch.tensor([4.0, -4.0, 0.0])
    target = torch.tensor([1.0, 0.0, 1.0])
    f = sigmoid_focal_loss(logits, target)
    assert f[0] < 1e-3 and f[1] < 1e-3  # easy examples are down-weighted
    assert f[2].item() == pytest.approx(0.25 * 0.5 ** 2 * np.log(2))  # alpha (1 - p)^gamma CE at p = 0.5
    t = torch.tensor([[3.0, 5.0]])
    for kind in ("diou", "giou"):
        assert iou_loss_1d(t, t, kind).item() == pytest.approx(0.0, abs=1e-6)
        assert iou_loss_1d(torch.tensor([[1.0, 1.0]]), t, kind).item() > 0.7
    shifted = iou_loss_1d(torch.tensor([[2.0, 6.0]]), t, "diou")  # same length, centre 1 step off
    assert shifted.item() == pytest.approx(1 - 7 / 9 + (1 / 9) ** 2, abs=1e-6)


def _record(segs, modality=Modality.BOTH):
    return VideoRecord("v", None, Label.FAKE if segs else Label.REAL, segments=tuple(Segment(*s) for s in segs),
                       modality=modality if segs else Modality.NONE)


def _steps(n, dv=6, da=4, seed=0):
    rng = np.random.default_rng(seed)
    return StepInputs(rng.normal(size=(n, dv)).astype(np.float32), rng.normal(size=(n, da)).astype(np.float32),
                      np.ones(n, bool), np.ones(n, bool), np.arange(n), fps=25.0, step_frames=1, duration=n / 25)


def test_localizer_padding_and_masks_never_change_valid_steps():
    torch.manual_seed(0)
    model = create_model("localizer", feature_dim=6, audio_feature_dim=4, temporal_dim=16, levels=3,
                         fusion="mid").eval()
    short, long_ = make_item(_record([(0.2, 0.6)]), _steps(37)), make_item(_record([]), _steps(64, seed=1))
    batch = collate_steps([short, long_])
    keys = ("visual_features", "audio_features", "mask", "visual_mask", "audio_mask")
    with torch.no_grad():
        both = model(**{k: batch[k] for k in keys})
        alone = model(**{k: short[k][None] for k in keys})
    np.testing.assert_allclose(both["frame_logits"][0, :37], alone["frame_logits"][0], atol=1e-5)
    np.testing.assert_allclose(both["logit"][0], alone["logit"][0], atol=1e-5)
    for level_stride in (1.0, 2.0, 4.0):  # each level's valid points agree
        a = (both["point_strides"] == level_stride) & both["point_mask"][0]
        b = (alone["point_strides"] == level_stride) & alone["point_mask"][0]
        np.testing.assert_allclose(both["point_logits"][0][a], alone["point_logits"][0][b], atol=1e-5)
        np.testing.assert_allclose(both["point_offsets"][0][a], alone["point_offsets"][0][b], atol=1e-5)
    # a missing stream is its mask: changing the masked values changes nothing
    noisy = {k: short[k][None].clone() for k in keys}
    noisy["visual_mask"][0, 10:20] = False
    other = {k: v.clone() for k, v in noisy.items()}
    other["visual_features"][0, 10:20] = 1e3
    with torch.no_grad():
        np.testing.assert_allclose(model(**noisy)["frame_logits"], model(**other)["frame_logits"], atol=1e-5)


def test_task_loss_trains_the_localizer():
    torch.manual_seed(0)
    model = create_model("localizer", feature_dim=6, audio_feature_dim=4, temporal_dim=16, levels=3)
    task = build_task(TaskConfig(name="localization", frame_weight=1.0, modality_weight=0.5))
    items = []
    for i, segs in enumerate([[(0.4, 0.8)], [], [(0.2, 0.3), (1.0, 1.6)]]):
        x = _steps(48, seed=i)
        rec = _record(segs)
        lab = step_labels(rec, x)
        x.visual[:, 0] = 3 * lab  # the fake steps are visible in one feature
        items.append(make_item(rec, x))
    batch = collate_steps(items)
    keys = ("visual_features", "audio_features", "mask", "visual_mask", "audio_mask")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss, parts = task.loss(model(**{k: batch[k] for k in keys}), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(parts) == {"cls", "reg", "frame", "modality"}
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    # what it learned decodes back to the segments: targets and decoding agree end to end
    from fakelens.inference.localize import localize
    from fakelens.train.config import PredictConfig

    model.eval()
    for it, segs in zip(items, [[(0.4, 0.8)], [], [(0.2, 0.3), (1.0, 1.6)]]):
        x = StepInputs(it["visual_features"].numpy(), it["audio_features"].numpy(), np.ones(48, bool),
                       np.ones(48, bool), np.arange(48), fps=25.0, step_frames=1, duration=48 / 25)
        out = localize(model, x, PredictConfig())
        for a, b in segs:
            best = max(Segment(p.start, p.end).iou(Segment(a, b)) for p in out.proposals[:5])
            assert best > 0.5, (a, b, out.proposals[:5])
        if not segs:
            assert out.score < 0.5


def test_localization_targets_are_counted_and_a_disabled_term_leaves_the_loss():
    """The task lists its terms for fakelens.train.targets; a term the plan disables trains no more."""
    from fakelens.train.targets import count_targets

    cfg = TaskConfig(name="localization", frame_weight=1.0, modality_weight=0.5)
    assert [t.term for t in build_task(cfg).targets()] == ["cls", "reg", "frame", "modality"]
    items = []
    for i, segs in enumerate([[(0.4, 0.8)], []]):
        items.append(make_item(_record(segs), _steps(48, seed=i)))
    counts = {c.term: c for c in count_targets(items, build_task(cfg))[0]}
    assert counts["cls"].positives == 10 and counts["cls"].negatives == 86  # frames 10-19 of 2 x 48 steps
    model = create_model("localizer", feature_dim=6, audio_feature_dim=4, temporal_dim=16, levels=3)
    batch = collate_steps(items)
    out = model(**{k: batch[k] for k in ("visual_features", "audio_features", "mask", "visual_mask", "audio_mask")})
    _, parts = build_task(cfg, disabled=["modality", "frame"]).loss(out, batch)
    assert set(parts) == {"cls", "reg"}


def test_a_one_class_modality_target_is_refused_naming_its_weight():
    """Every fake both-stream (a small LAV-DF split): the refusal says which setting drops the
    term, task.modality_weight=0, not only 'check the labels' (WEIGHT_FIELD knew no localization term)."""
    from fakelens.train.targets import check_plan, plan_targets

    cfg = TaskConfig(name="localization", frame_weight=1.0, modality_weight=0.5)
    items = [make_item(_record(segs), _steps(48, seed=i)) for i, segs in enumerate([[(0.4, 0.8)], []])]
    with pytest.raises(Exception, match=r"segment_modality .* set task\.modality_weight=0"):
        check_plan(plan_targets(items, build_task(cfg), "none"))


def test_training_windows_cut_segments_and_relabel():
    rec = _record([(0.2, 0.6), (3.0, 3.4)])  # frames 5-15 and 75-85 at 25 fps
    x = _steps(100)
    item = make_item(rec, x, (60, 100))  # steps 60-99: only the second segment, in window steps
    np.testing.assert_array_equal(item["segments"].numpy(), [[15, 25]])
    assert int(item["n_segments"]) == 1 and float(item["label"]) == 1.0 and float(item["video_label"]) == 1.0
    np.testing.assert_array_equal(np.flatnonzero(item["frame_labels"].numpy()), np.arange(15, 25))
    assert float(item["origin"]) == pytest.approx(60 / 25)
    empty = make_item(rec, x, (20, 60))  # a window of a fake video between its segments is a negative
    assert int(empty["n_segments"]) == 0 and float(empty["label"]) == 0.0
    across = make_item(rec, x, (10, 50))  # a segment reaching into the window is cut at its edge
    np.testing.assert_array_equal(across["segments"].numpy(), [[0, 5]])
    batch = collate_steps([item, empty])
    assert batch["segments"].shape == (2, 1, 2) and batch["n_segments"].tolist() == [1, 0]
    assert batch["mask"].all() and batch["visual_features"].shape == (2, 40, 6)


def test_audio_steps_are_aligned_to_the_visual_grid():
    t = np.arange(0, 2.0, 0.01) + 0.005  # 10 ms audio steps over 2 s
    v = np.stack([t, -t], axis=1)
    out, mask = align_to_steps(v, t, origin=0.0, step=0.04, n=60)  # 25 fps grid for 2.4 s
    np.testing.assert_allclose(out[:50, 0], np.arange(50) * 0.04 + 0.02, atol=1e-6)  # means of the 4 inside
    assert mask[:50].all() and not mask[51:].any()
    coarse, cmask = align_to_steps(v[::8], t[::8], origin=0.0, step=0.04, n=50)  # 80 ms steps: interpolated
    expected = np.arange(50) * 0.04 + 0.02  # steps without an audio step: interpolated at their centre
    expected[0::2] = t[::8][:25]  # steps holding one: its value
    expected[49] = t[::8][-1]  # past the last audio step: held, not extrapolated
    np.testing.assert_allclose(coarse[:, 0], expected, atol=1e-6)
    assert cmask[:49].all() and not cmask[49]  # its centre, 1.98 s, is past the audio (1.965 s)
    empty, emask = align_to_steps(np.zeros((0, 3)), np.zeros(0), 0.0, 0.04, 10)
    assert empty.shape == (10, 3) and not emask.any()


class _Oracle(torch.nn.Module):
    """A 'localizer' with one point per step and no context: visual[:, 0] is the fake logit and the
    frame logit, visual[:, 1:3] the distances. Windowed and whole-video inference must agree."""

    multiple = 1

    def forward(self, visual_features, audio_features, mask=None, visual_mask=None, audio_mask=None):
        b, t, _ = visual_features.shape
        centres = torch.arange(t, dtype=torch.float32) + 0.5
        return {"logit": visual_features[..., 0].amax(1), "frame_logits": visual_features[..., 0],
                "point_logits": visual_features[..., 0], "point_offsets": visual_features[..., 1:3],
                "point_modality": visual_features[..., 3:5], "point_mask": mask,
                "point_centres": centres, "point_strides": torch.ones(t)}


def test_windows_on_a_long_video_merge_to_the_whole_video_answer():
    from fakelens.inference.localize import localize
    from fakelens.train.config import PredictConfig

    n = 1500  # a minute at 25 fps
    rng = np.random.default_rng(0)
    vis = np.full((n, 5), -6.0, np.float32)
    vis[:, 1:3] = rng.uniform(0.5, 3, size=(n, 2))
    segs = [(100, 130), (250, 262), (255, 300), (1490, 1500)]  # one across window edges, one at the end
    for a, b in segs:
        c = (a + b) // 2
        vis[c, 0] = 3.0 + rng.uniform()
        vis[c, 1:3] = (c + 0.5 - a, b - c - 0.5)
    x = StepInputs(vis, np.zeros((n, 1), np.float32), np.ones(n, bool), np.ones(n, bool), np.arange(n), fps=25.0,
                   step_frames=1, duration=n / 25)
    whole = localize(_Oracle(), x, PredictConfig(window_steps=4096, window_overlap=0, iou_threshold=0.0))
    windowed = localize(_Oracle(), x, PredictConfig(window_steps=256, window_overlap=64, iou_threshold=0.0),
                        batch_size=3)
    assert whole.n_windows == 1 and windowed.n_windows > 6
    assert windowed.proposals == whole.proposals  # each point answered once, by the window that owns it
    np.testing.assert_array_equal(windowed.step_scores, whole.step_scores)
    top = sorted((round(p.start * 25), round(p.end * 25)) for p in whole.proposals[:4])
    assert top == sorted(segs)


@pytest.mark.parametrize("step_frames", [1, 5])
def test_both_proposal_methods_give_the_segment_on_the_frame_grid(step_frames):
    """An oracle's perfect steps give back [0.4, 0.8) s exactly, every frame (25 fps) or 5 steps a
    second: proposals are in seconds on the label grid, step j = [origin + j k / fps, + k / fps).
    Before: the threshold method put cells half a step late ([0.42, 0.82) at 25 fps)."""
    from fakelens.inference.localize import localize
    from fakelens.train.config import PredictConfig

    fps, n = 25.0, 50 // step_frames  # 2 s
    step = step_frames / fps
    a, b = round(0.4 / step), round(0.8 / step)  # steps of the segment
    vis = np.full((n, 5), -8.0, np.float32)
    vis[a:b, 0] = 8.0
    c = (a + b) // 2  # the one point that fires, with exact distances to the edges
    vis[:, 1:3] = 1.0
    vis[c, 1:3] = (c + 0.5 - a, b - c - 0.5)
    x = StepInputs(vis, np.zeros((n, 1), np.float32), np.ones(n, bool), np.ones(n, bool),
                   np.arange(n) * step_frames, fps=fps, step_frames=step_frames, duration=2.0)

    class Peak(_Oracle):  # point logits fire at the centre only; frame logits over the whole segment
        def forward(self, visual_features, audio_features, mask=None, visual_mask=None, audio_mask=None):
            out = super().forward(visual_features, audio_features, mask)
            peak = torch.full_like(visual_features[..., 0], -8.0)
            peak[:, c] = 8.0
            return {**out, "point_logits": peak}

    for method in ("boundaries", "thresholds"):
        out = localize(Peak(), x, PredictConfig(proposals=method, thresholds=(0.5,), suppression="nms"))
        best = out.proposals[0]
        assert (best.start, best.end) == pytest.approx((0.4, 0.8), abs=1e-9), method


def test_the_epoch_line_shows_val_ap():
    """A localization run monitors val_ap: its value is on every epoch line (before: only its name,
    in 'new best val_ap, saved')."""
    from fakelens.train.progress import epoch_line

    line = epoch_line(2, 10, {"train_loss": 1.5, "val_loss": 1.2, "val_auc": 0.9, "val_ap": 0.8125}, 3.0,
                      "new best val_ap, saved")
    assert "val_auc 0.9000  val_ap 0.8125  3.0 s" in line


def test_pyramid_points_are_declared_where_their_receptive_field_is():
    # a point's fake logit and distances are read from its declared centre: that must be where the
    # features it is made of come from. Gradient-weighted centre of each point's input steps, for
    # points in the middle of a 512-step video (away from the edges). Every kernel is made
    # symmetric (w + flipped w) and every step gets the same input, so the model is mirror-symmetric
    # about any interior step and the measured centre is exactly the receptive field's (a random
    # init and input tilt each point by a random amount of their own).
    torch.set_num_threads(1)
    t = 512
    torch.manual_seed(0)
    model = create_model("localizer", feature_dim=8, audio_feature_dim=0, temporal_dim=16, levels=5,
                         temporal_layers=2).eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv1d):
                mod.weight.copy_(mod.weight + mod.weight.flip(-1))
    x = torch.randn(1, 1, 8).expand(1, t, 8).clone().requires_grad_(True)  # (1, T, 8)
    out = model(x, torch.zeros(1, t, 0))
    c, s = out["point_centres"], out["point_strides"]
    for level in range(5):
        stride = 2 ** level
        idx = torch.nonzero((s == stride) & (abs(c - t / 2) < 40)).flatten()  # the edges out of reach
        for p in idx[:: max(1, len(idx) // 3)]:
            g, = torch.autograd.grad(out["point_logits"][0, p], x, retain_graph=True)
            w = g[0].abs().sum(1).numpy()  # (T,) how much each step feeds the point
            centre = float((np.arange(t) + 0.5) @ w / w.sum())  # in steps, step j spans [j, j + 1)
            # (i + 0.5) * stride was late by stride / 2 - 0.5 steps: 7.5 at stride 16
            assert centre == pytest.approx(float(c[p]), abs=0.05), (stride, centre, float(c[p]))


def test_the_modality_head_answers_which_stream_is_fake():
    """The localizer's visual-fake / audio-fake output reaches predict: per stream the highest
    P(point fake) * P(stream fake) over the points each window owns (windowed = whole video).
    Before, `finish` dropped point_modality: a trained head nobody could read."""
    from fakelens.inference.localize import localize
    from fakelens.train.config import PredictConfig

    n = 600
    vis = np.full((n, 5), -6.0, np.float32)
    vis[:, 1:3] = 1.0
    vis[100, [0, 3, 4]] = (4.0, 3.0, -3.0)  # a visual fake
    vis[450, [0, 3, 4]] = (2.0, -2.0, 5.0)  # a less sure audio fake
    x = StepInputs(vis, np.zeros((n, 1), np.float32), np.ones(n, bool), np.ones(n, bool), np.arange(n), fps=25.0,
                   step_frames=1, duration=n / 25)
    sig = lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))  # noqa: E731
    joint = sig(vis[:, 0])[:, None] * sig(vis[:, 3:5])  # (n, 2)
    for window, overlap in ((4096, 0), (128, 32)):
        out = localize(_Oracle(), x, PredictConfig(window_steps=window, window_overlap=overlap))
        assert out.visual_score == pytest.approx(joint[:, 0].max(), rel=1e-5)
        assert out.audio_score == pytest.approx(joint[:, 1].max(), rel=1e-5)
    assert joint[:, 0].argmax() == 100 and joint[:, 1].argmax() == 450


@pytest.mark.parametrize("first_frame", [1, 3])
def test_threshold_cells_of_a_sampled_grid_start_where_its_first_step_does(first_frame):
    """A sampled dense cache (--fps 5 on a 25 fps video: every 5th frame) whose grid starts at
    frame 1 or 3, a fake segment from the first step to 0.6 s: perfect per-step scores give back
    the step cells [origin, origin + 2 k / fps) exactly, the grid the labels and the boundary head
    use (step_cells at the grid's step). Before: the threshold path took frame_cells, whose first
    cell starts at 0 s when the grid starts within one step of it ([0.0, 0.52) instead of
    [0.12, 0.52), [0.0, 0.44) instead of [0.04, 0.44))."""
    from fakelens.inference.localize import localize
    from fakelens.train.config import PredictConfig

    fps, k = 25.0, 5
    n = 10  # steps: frames first_frame, first_frame + 5, ...
    origin = first_frame / fps
    vis = np.full((n, 5), -8.0, np.float32)
    vis[:2, 0] = 8.0  # steps 0 and 1 fake
    vis[:, 1:3] = 1.0
    x = StepInputs(vis, np.zeros((n, 1), np.float32), np.ones(n, bool), np.ones(n, bool),
                   first_frame + k * np.arange(n), fps=fps, step_frames=k, duration=(first_frame + k * n) / fps)
    out = localize(_Oracle(), x, PredictConfig(proposals="thresholds", thresholds=(0.5,), suppression="nms"))
    assert len(out.proposals) == 1
    best = out.proposals[0]
    assert (best.start, best.end) == pytest.approx((origin, origin + 2 * k / fps), abs=1e-9)


def _vfr_arrays(k_audio: float = 0.04):
    """The stored arrays of a variable-frame-rate video: 60 frames at 30 fps, then 20 at 10 fps
    (frame 60 shown at 2.0 s), stated 20 fps on average; audio steps whose feature is their time."""
    times = np.concatenate([np.arange(60) / 30, 2.0 + np.arange(20) / 10])  # (80,)
    audio_times = np.arange(0.02, 4.0, k_audio)  # (A,)
    return {"visual": np.zeros((80, 4), np.float16), "times": times, "indices": np.arange(80), "found": np.ones(80, bool),
            "audio": np.repeat(audio_times[:, None], 2, axis=1).astype(np.float32), "audio_times": audio_times,
            "step_frames": np.int64(1), "first_frame": np.int64(0), "fps": np.float64(20.0),
            "duration": np.float64(4.0)}


def test_a_variable_frame_rate_grid_maps_segments_audio_and_proposals_to_the_videos_seconds():
    """Steps count frames and their seconds were frame / fps: on a 30-then-10 fps video frame 60 (shown
    at 2.0 s) stood at 3.0 s, so a fake segment's steps, the audio averaged into a step and every
    proposal's seconds were off by up to a second, silently. The sampled frames' real times map them."""
    from types import SimpleNamespace

    from fakelens.data.features import step_inputs, step_warp
    from fakelens.inference.localize import finish, window_items

    x = step_inputs(_vfr_arrays())
    assert x.warp is not None
    t = _vfr_arrays()["times"]
    centres = (t + np.append(t[1:], 4.0)) / 2  # (80,) the middle of each frame's display
    assert np.abs(x.audio[:, 0] - centres).max() < 0.025  # the audio heard with each frame
    rec = VideoRecord("v", None, Label.FAKE, (Segment(2.0, 2.5),))
    labels = step_labels(rec, x)
    assert np.flatnonzero(labels).tolist() == [60, 61, 62, 63, 64]  # the frames shown in [2.0, 2.5)
    batch = collate_steps([make_item(rec, x)])
    y = StepInputs.from_batch(batch, 0)  # validation rebuilds the same map
    assert y.warp is not None and np.allclose(y.warp.real, x.warp.real)
    items = window_items(x, 2048, 256)
    out = {"frame_probs": labels, "point_probs": np.array([0.9]), "point_offsets": np.array([[2.5, 2.5]]),
           "point_modality": np.array([[0.9, 0.1]]), "point_mask": np.array([True]),
           "point_centres": np.array([62.5]), "point_strides": np.array([1.0])}  # a point spanning frames 60-64
    for method in ("boundaries", "thresholds"):
        predict = SimpleNamespace(proposals=method, suppression="nms", iou_threshold=0.5, max_proposals=100,
                                  thresholds=[0.5], soft_nms_sigma=0.5, pre_topk=2000)
        loc = finish(x, items, [out], predict)
        assert loc.proposals[0].start == pytest.approx(2.0) and loc.proposals[0].end == pytest.approx(2.5), method
        assert np.allclose(loc.step_times, _vfr_arrays()["times"])
    # a constant frame rate (times on frame / fps, 6-decimal rounding) has no map: nothing changes
    assert step_warp(np.round(np.arange(250) / 25, 6), np.arange(250), 25.0) is None
    assert step_warp(np.arange(0, 250, 5) / 25 + 0.08, np.arange(0, 250, 5) + 2, 25.0) is None  # a --fps grid
