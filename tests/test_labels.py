"""Targets are what the data says, on the grid the model uses (issue 17): per-step audio labels and
step times from the encoder's own stride, proposals on the label grid, ..."""

from __future__ import annotations

import io
import json
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


# ------------------------------------------------------------------ which stream is fake (item 1)


@pytest.mark.parametrize("layout", ["csv", "dfdc", "folders"])
def test_formats_that_do_not_say_which_stream_leave_it_unknown(layout_cache, layout):
    """DFDC metadata, CSV labels and real/fake folders say real/fake only: a fake's per-stream labels are unknown
    (-1), not "visual" (which gave the audio head, and the audio-only baseline, 0 for every fake)."""
    from fakelens.data.dataset import AudioDataset, AVDataset, ClipDataset

    data, cache = layout_cache(layout)
    av = AVDataset(cache, clip_frames=4, random=False, labeled_only=True)
    fakes = [v for v, r in enumerate(av.records) if r.is_fake]
    assert fakes
    for v in range(len(av)):
        item = av[v]
        fake = av.records[v].is_fake
        assert item["video_label"] == float(fake) and item["label"] == float(fake)
        for key in ("visual_label", "audio_label", "visual_frame_labels", "audio_frame_labels"):
            assert (item[key] == -1).all() if fake else (item[key] == 0).all(), (key, fake)
    audio = AudioDataset(cache, window_seconds=0.3, random=False, labeled_only=True)
    for v in range(len(audio)):
        item = audio[v]
        assert item["label"] == (-1.0 if audio.records[v].is_fake else 0.0)  # unknown before the task's rule
    # a face model's label of a fake is its face's: 1, except where DFDC's `original` shows that no
    # face differs (the generator's audio-only fakes: compared with their original, every face real)
    clips = ClipDataset(cache, clip_frames=4, random=False, labeled_only=True)
    truth = {v["file"]: v["modify_type"] for v in json.loads((data / "synthetic.json").read_text())["videos"]} \
        if layout == "dfdc" else {}
    for v in fakes:
        rec = clips.records[v]
        only_audio = layout == "dfdc" and truth[Path(rec.path).relative_to(data).as_posix()] == "audio_modified"
        assert clips[v]["label"] == (0.0 if only_audio else 1.0), (rec.id, clips.rows[v].get("faces"))
    assert layout != "dfdc" or sum(clips[v]["label"] == 0.0 for v in fakes) >= 1


@pytest.mark.parametrize("layout", ["avdeepfake1m", "lavdf"])
def test_formats_that_say_which_stream_keep_their_per_stream_labels(layout_cache, layout):
    from fakelens.data.dataset import AVDataset
    from fakelens.types import Modality

    _, cache = layout_cache(layout)
    ds = AVDataset(cache, clip_frames=8, random=False, labeled_only=True)
    seen = set()
    for v, rec in enumerate(ds.records):
        item = ds[v]
        assert rec.modality.known
        assert (item["visual_frame_labels"] >= 0).all() and (item["audio_frame_labels"] >= 0).all()
        if rec.modality is Modality.AUDIO:  # the face is real, the voice fake
            assert item["visual_frame_labels"].max() == 0 and item["visual_label"] == 0
            seen.add("audio")
        if rec.modality is Modality.VISUAL:
            assert item["audio_frame_labels"].max() == 0 and item["audio_label"] == 0
            seen.add("visual")
    assert seen  # the tiny preset holds single-stream fakes


def test_unknown_stream_rules_on_targets(layout_cache):
    """auto: the audio-only model's target is the video label where the stream is unknown (as the
    competition baseline trains), the av task's per-stream heads leave unknowns out and, left with
    real labels only, are disabled; ignore: refused; video_label: every head trains."""
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.engine import dry_run

    _, cache = layout_cache("csv")
    base = [f"data.cache={cache}", "data.val_split=val"]
    audio = dry_run(load_train_config(None, base + ["data.dataset=audio", "model.name=audio_tiny",
                                                    "data.audio_seconds=0.3"]))
    (label,) = audio.counts
    assert label.rule == "video_label" and label.unknown > 0 and label.positives == pytest.approx(label.unknown)
    assert not audio.problems and not audio.disabled
    av = ["data.dataset=av", "model.name=av_tiny", "task.name=av", "task.frame_weight=1", "task.audio_frame_weight=1",
          "data.clip_frames=4", "model.image_size=32"]
    auto = dry_run(load_train_config(None, base + av))
    assert sorted(auto.disabled) == ["audio", "frame", "time", "visual"] and not auto.problems
    assert any("audio_label (audio-fake head)" in line and "disabled" in line for line in auto.lines())
    ignore = dry_run(load_train_config(None, base + av + ["task.unknown_stream=ignore"]))
    assert len(ignore.problems) == 4 and not ignore.disabled
    video = dry_run(load_train_config(None, base + av + ["task.unknown_stream=video_label"]))
    assert not video.problems and not video.disabled
    assert all(c.positives > 0 and c.negatives > 0 for c in video.counts)
    # the rule acts in the loss: unknown head labels are left out, or replaced by the video label
    out = {"logit": torch.zeros(2), "visual_logit": torch.tensor([5.0, -5.0]), "audio_logit": torch.zeros(2)}
    batch = {"label": torch.tensor([1.0, 0.0]), "video_label": torch.tensor([1.0, 0.0]),
             "visual_label": torch.tensor([-1.0, 0.0]), "audio_label": torch.tensor([-1.0, 0.0])}
    _, left_out = build_task(TaskConfig(name="av")).loss(out, batch)
    _, as_video = build_task(TaskConfig(name="av", unknown_stream="video_label")).loss(out, batch)
    assert left_out["visual"].item() == pytest.approx(0.0067153, abs=1e-6)
    assert as_video["visual"].item() == pytest.approx(0.0067153, abs=1e-6)
    batch["visual_label"] = torch.tensor([-1.0, 1.0])  # the known one wrong: only it counts when left out
    _, left_out = build_task(TaskConfig(name="av")).loss(out, batch)
    _, as_video = build_task(TaskConfig(name="av", unknown_stream="video_label")).loss(out, batch)
    assert left_out["visual"].item() == pytest.approx(5.0067, abs=1e-3)
    assert as_video["visual"].item() == pytest.approx((0.0067 + 5.0067) / 2, abs=1e-3)


@pytest.mark.slow
def test_the_run_says_what_unknown_stream_labels_trained_on(layout_cache, tmp_path):
    """The CSV competition baseline (audio-only model) on CSV data: the run log and metrics.json say
    that the unknown-stream window labels trained on the video label."""
    from fakelens.train.engine import fit

    _, cache = layout_cache("csv")
    cfg = load_train_config(CONFIGS / "csv_audio_resnet18.yaml", [
        f"data.cache={cache}", "model.audio_backbone=tinycnn", "train.epochs=1", "train.batch_size=2",
        "train.num_workers=0", "train.progress_bar=false", "train.accelerator=cpu", "train.devices=1",
        "data.audio_seconds=0.3", "train.monitor=val_logloss"])
    res = fit(cfg, tmp_path / "run")
    targets = res.metrics["targets"]["targets"]
    (label,) = targets
    assert label["unknown_as"] == "video_label" and label["unknown"] > 0 and label["positives"] > 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["targets"]
    assert saved["targets"][0]["unknown_as"] == "video_label"
    log = (tmp_path / "run" / "train.log").read_text()
    assert "target label (video logit)" in log and "unknown-stream values trained on the video label" in log


# ------------------------------------------------------------------ pos_weight from what the loss sees (item 7)


def test_pos_weight_comes_from_the_clip_labels_the_loss_sees(layout_cache):
    """Fakes are fake in a segment only, so fewer training clips than videos are fake: the video
    term's pos_weight is n_negative / n_positive over the clip labels (here over every start of
    the random clip), and every other term gets its own."""
    from fakelens.data.cache import load_npz
    from fakelens.train.engine import dry_run
    from fakelens.types import frame_labels

    _, cache = layout_cache("avdeepfake1m")
    # Clips of 2 of the 8 cached frames: the tiny preset's fakes are fake in their middle half, so
    # some clips of a fake video are real (clips of 4 of 8 frames would all reach the segment).
    clip = 2
    cfg = load_train_config(CONFIGS / "demo.yaml", [f"data.cache={cache}", f"data.clip_frames={clip}",
                                                    "model.image_size=32"])
    plan = dry_run(cfg)
    from fakelens.data.dataset import AVDataset

    ds = AVDataset(cache, "train", clip_frames=clip, labeled_only=True)
    pos = neg = 0.0
    for v, rec in enumerate(ds.records):
        z = load_npz(cache, ds.rows[v], ("indices", "fps"))
        n = len(z["indices"])
        starts = range(n - clip + 1)  # every start of the random clip, equally likely
        lab = frame_labels(rec.segments, float(z["fps"]), int(z["indices"].max()) + 1)[z["indices"]]
        fake = np.mean([lab[s:s + clip].max() for s in starts]) if rec.is_fake else 0.0
        pos, neg = pos + fake, neg + 1 - fake
    videos = ds.labels
    assert pos / len(videos) < videos.mean()  # a fake video's clips are not all fake
    assert plan.pos_weights["video"] == pytest.approx(neg / pos, rel=1e-6)
    assert plan.pos_weights["video"] != pytest.approx((videos == 0).sum() / (videos == 1).sum())
    assert set(plan.pos_weights) == {"video", "visual", "audio", "frame", "time"}  # one per trained term
    for c in plan.counts:
        assert c.pos_weight == pytest.approx(c.negatives / c.positives)
    cfg = load_train_config(CONFIGS / "demo.yaml", [f"data.cache={cache}", "data.balance=sampler",
                                                    "model.image_size=32"])
    assert dry_run(cfg).pos_weights == {}  # the sampler balances instead


def test_audio_step_targets_are_counted_per_step_as_the_loss_sees_them():
    """The dense audio term trains on per-step labels (step i = mel frames [8i, 8i+8)): its counts
    and pos_weight are over steps, not mel frames (W=33, frames 24-31 fake: 1 fake step of 5, not
    8 fake frames of 33)."""
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.targets import plan_targets

    afl = np.zeros(33, np.float32)
    afl[24:32] = 1.0
    items = [{"label": 1.0, "video_label": 1.0, "visual_label": 0.0, "audio_label": 1.0,
              "audio_frame_labels": afl, "audio_mask": np.ones(33, bool)},
             {"label": 0.0, "video_label": 0.0, "visual_label": 0.0, "audio_label": 0.0,
              "audio_frame_labels": np.zeros(33, np.float32), "audio_mask": np.arange(33) < 20}]
    task = build_task(TaskConfig(name="av", visual_weight=0.0, audio_frame_weight=1.0), time_stride=8)
    plan = plan_targets(items, task, "pos_weight")
    (time,) = [c for c in plan.counts if c.term == "time"]
    assert (time.positives, time.negatives) == (1, 4 + 3)  # the second: 20 valid frames = 3 steps
    assert plan.pos_weights["time"] == pytest.approx(7.0)


def test_task_applies_each_terms_pos_weight():
    from fakelens.tasks import TaskConfig, build_task

    out = {"logit": torch.zeros(2), "visual_logit": torch.zeros(2), "audio_logit": torch.zeros(2)}
    batch = {"label": torch.tensor([1.0, 0.0]), "visual_label": torch.tensor([1.0, 0.0]),
             "audio_label": torch.tensor([1.0, 0.0])}
    _, parts = build_task(TaskConfig(name="av"), pos_weights={"video": 3.0, "audio": 0.5}).loss(out, batch)
    ln2 = float(np.log(2))
    assert parts["video"].item() == pytest.approx(ln2 * (3 + 1) / 2)
    assert parts["visual"].item() == pytest.approx(ln2)
    assert parts["audio"].item() == pytest.approx(ln2 * (0.5 + 1) / 2)


# ------------------------------------------------------------------ the clip's own audio (item 8)


@pytest.fixture(scope="module")
def varied_cache(tiny_synth, tmp_path_factory):
    """The tiny AV-1M preset (videos of 1.2-1.6 s) cached at 8 frames: sampling intervals differ."""
    from fakelens.data.cache import CacheConfig, preprocess
    from fakelens.data.formats import load_dataset

    out = tmp_path_factory.mktemp("varied") / "c"
    preprocess(load_dataset(tiny_synth).records, out, CacheConfig(n_frames=8, size=32, detector="full_frame"),
               progress=False)
    return out


@pytest.mark.parametrize("audio_seconds", [None, 0.3])
def test_av_clip_audio_is_the_clips_own_span_on_every_video(varied_cache, audio_seconds):
    """Videos sampled at different intervals (8 frames of 1.2-1.6 s videos): each clip's audio is
    the mel frames of [its first frame, its last frame + one interval), padded and masked when
    shorter than the model's window, resampled over the same span when longer, and audio_label
    is the label of exactly that audio."""
    from fakelens.data.cache import load_npz
    from fakelens.data.dataset import AllClips, AVDataset, sampling_interval

    cache = varied_cache
    kw = {} if audio_seconds is None else {"audio_seconds": audio_seconds}
    base = AVDataset(cache, clip_frames=4, random=False, **kw)
    spans = set()
    padded = resampled = 0
    for item in AllClips(base):
        v = base.records.index(next(r for r in base.records if r.id == item["id"]))
        z = load_npz(cache, base.rows[v], ("times", "mel_times", "fps"))
        dt = sampling_interval(z["times"], float(z["fps"]))
        t0, t1 = float(item["times"][0]), float(item["times"][item["mask"]][-1]) + dt
        spans.add(round(t1 - t0, 3))
        ok = item["audio_mask"].numpy()
        at = item["audio_times"].numpy().astype(np.float64)
        inside = z["mel_times"][(z["mel_times"] >= t0 - 1e-6) & (z["mel_times"] < t1 - 1e-6)]
        if len(inside) > base.width:  # longer than the window: resampled over the span
            assert ok.all()
            resampled += 1
            assert at[0] == pytest.approx(inside[0], abs=1e-5) and at[-1] == pytest.approx(inside[-1], abs=1e-5)
        else:
            padded += not ok.all()
            assert ok.sum() == len(inside)
            np.testing.assert_allclose(at[ok], inside, atol=1e-5)  # exactly the clip's mel frames
        afl = item["audio_frame_labels"].numpy()
        assert item["audio_label"] == (afl[ok].max() if ok.any() else 0.0)
    assert len(spans) > 1  # the videos' clips span different times
    if audio_seconds is None:
        assert resampled == 0 and padded > 0  # the default window holds the longest clip
    else:
        assert resampled > 0


# ------------------------------------------------------------------ MixUp / CutMix (item 4)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mixing_mixes_each_target_as_much_as_its_input(mode):
    """The video is mixed, the audio is not: visual targets (per clip and per frame) follow the
    pixels with the same weight; audio targets stay; "fake in any stream" is the mixed visual label
    or the sample's own audio label, whichever is faker; unknown stays unknown."""
    from fakelens.train.augment import BatchMix

    torch.manual_seed(3)
    b, t = 4, 3
    video = torch.stack([torch.full((t, 3, 16, 16), float(i + 1)) for i in range(b)])  # sample i is all i + 1
    # 0: audio-only fake, 1: real, 2: visual-only fake, 3: a fake of unknown stream (DFDC-like)
    visual = torch.tensor([0.0, 0.0, 1.0, -1.0])
    audio_l = torch.tensor([1.0, 0.0, 0.0, -1.0])
    label = torch.tensor([1.0, 0.0, 1.0, 1.0])
    vfl = torch.stack([torch.full((t,), float(v)) for v in visual])  # (B, T)
    vfl[2, 0] = 0.0  # the visual fake starts at its second frame
    afl = torch.stack([torch.full((10,), float(a)) for a in audio_l])  # (B, W)
    batch = {"video": video, "audio": torch.randn(b, 1, 8, 10), "label": label, "video_label": label.clone(),
             "visual_label": visual, "audio_label": audio_l, "frame_labels": vfl.clamp_min(0), "visual_frame_labels": vfl,
             "audio_frame_labels": afl, "mask": torch.ones(b, t, dtype=torch.bool), "id": list("abcd")}
    batch["mask"][1, 2] = False  # sample 1's last frame is padding
    out = BatchMix(mode, alpha=1.0)(batch)
    mixed = out["video"][:, 0, 0]  # (B, H, W) one channel of the first frame
    own = (mixed == (torch.arange(b) + 1.0)[:, None, None]).float().mean(dim=(1, 2))  # cutmix: own area
    lam = own if mode == "cutmix" else (mixed.mean(dim=(1, 2)) - torch.arange(b).roll(1) - 1.0) / (
        torch.arange(b) - torch.arange(b).roll(1)).float()  # mixup: x = lam * own + (1 - lam) * partner
    partner = torch.arange(b).roll(1)  # v2 pairs each sample with the previous one
    assert 0 < lam.min() and lam.max() < 1
    for k in ("audio", "audio_label", "audio_frame_labels"):
        assert torch.equal(out[k], batch[k])  # the audio is not mixed, nor its labels
    for i in range(b):
        j = int(partner[i])
        for key in ("visual_label", "visual_frame_labels"):
            a, c = batch[key][i], batch[key][j]
            want = torch.where((a < 0) | (c < 0), torch.tensor(-1.0), lam[i] * a + (1 - lam[i]) * c)
            torch.testing.assert_close(out[key][i], want, atol=1e-5, rtol=0)
        assert out["mask"][i].tolist() == (batch["mask"][i] & batch["mask"][j]).tolist()
    assert out["label"][0] == 1.0  # the audio-only fake's voice is still fake, whatever the face
    assert out["label"][2] == pytest.approx(float(lam[2] * 1 + (1 - lam[2]) * 0))  # visual fake x real face
    assert out["visual_label"][3] == -1 and out["label"][3] == pytest.approx(  # unknown stream: as the video
        float(lam[3] * 1 + (1 - lam[3]) * 1))
    assert out["label"][1] == pytest.approx(0.0)  # real face and voice of 1, real face of 0 pasted in


# ------------------------------------------------------------------ --resume (item 5)


def _weights(run: Path) -> dict:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_resume_reproduces_the_uninterrupted_run(layout_cache, tmp_path, workers):
    """Two epochs in one go, or one epoch and --resume for the second: the same weights (the demo
    recipe: random clip starts, flips, dropout; with loader workers too). The resumed run used to
    replay epoch 0's order and clip starts (max |dw| 0.038)."""
    from fakelens.train.engine import fit

    _, cache = layout_cache("avdeepfake1m")
    base = [f"data.cache={cache}", "model.image_size=32", "data.clip_frames=4", "model.num_frames=4",
            "model.audio_frames=48", "optim.scheduler=constant", "train.batch_size=2", f"train.num_workers={workers}",
            "train.progress_bar=false", "train.log_every_n_steps=1", "augment.p=0.5"]
    cfg2 = load_train_config(CONFIGS / "demo.yaml", base + ["train.epochs=2"])
    fit(cfg2, tmp_path / "straight")
    fit(load_train_config(CONFIGS / "demo.yaml", base + ["train.epochs=1"]), tmp_path / "resumed")
    first = _weights(tmp_path / "resumed")
    fit(cfg2, tmp_path / "resumed", resume=True)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert set(a) == set(b)
    moved = max(float((first[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    assert moved > 1e-3  # the second epoch trained
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def test_dry_run_table_names_every_target_apart_and_fits_80_columns():
    """The av task reads visual_label / audio_label twice (the stream head and the MIL term): the
    table names them apart, and at COLUMNS=80 its header and rows are whole (large AV-1M-sized
    counts, the longest names, a disabled target), nothing wrapped or cut with an ellipsis."""
    from rich.console import Console

    from fakelens.cli.train import targets_table
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.targets import TABLE_COLUMNS, TargetCount, TargetPlan, table_rows

    task = build_task(TaskConfig(name="av", mil_weight=0.5, frame_weight=1.0, audio_frame_weight=1.0))
    counts = [TargetCount(t.term, t.name, t.weight, t.unknown, positives=12_345_678.9, negatives=98_765_432.1,
                          unknown=1_234_567.0, pos_weight=123.456) for t in task.targets()]
    counts[2].status, counts[2].pos_weight = "disabled (weight 0.5 -> 0): the stream of the fakes is unknown", None
    plan = TargetPlan(counts, 2000, 700_000)
    names = [row[0] for row in table_rows(plan)]
    assert len(set(names)) == len(names) == 7
    assert {"visual_label (head_v)", "visual_label (MIL)", "audio_label (head_a)", "audio_label (MIL)",
            "label", "visual_frame_labels", "audio_frame_labels"} == set(names)
    rec = Console(width=80, record=True, file=io.StringIO())
    rec.print(targets_table(plan, "targets of task 'av' per epoch (2000 of 700000 training videos, scaled)"))
    lines = rec.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in "".join(lines)
    header = next(line for line in lines if line.startswith("target"))
    assert header.split() == list(TABLE_COLUMNS)
    assert any(line.startswith("audio_label (head_a)") and line.split()[-1] == "disabled" for line in lines)
    assert any(line.split()[:4] == ["visual_label", "(MIL)", "12.3M", "98.8M"] for line in lines)


def test_target_lines_show_whole_counts_as_integers_and_say_when_counts_are_expected():
    """Before: 'target label (video logit): 1.0 positive / 1.0 negative' for DFDC video labels, and
    '1.4 positive / 2.6 negative' (an av model's expected clip counts) without saying so."""
    from fakelens.train.targets import TargetCount, TargetPlan

    whole = TargetPlan([TargetCount("video", "label (video logit)", 1.0, "video_label", positives=1.0, negatives=1.0)], 2, 2)
    assert whole.lines() == ["target label (video logit): 1 positive / 1 negative, weight 1: trains"]
    expected = TargetPlan([TargetCount("video", "label", 1.0, "video_label", positives=1.4, negatives=2.6)], 4, 4)
    (line,) = expected.lines()
    assert line.startswith("target label: 1.4 positive / 2.6 negative expected per epoch (")
    from fakelens.train.targets import table_rows  # the --dry-run table too (before: '1.0  1.0  0.0')

    assert table_rows(whole)[0][1:4] == ["1", "1", "0"] and table_rows(expected)[0][1:3] == ["1.4", "2.6"]


@pytest.mark.parametrize("layout", ["avdeepfake1m", "lavdf"])
def test_a_visual_only_model_is_not_taught_that_the_untouched_face_of_an_audio_only_fake_is_fake(layout_cache,
                                                                                                   layout):
    """Face-only datasets (clips, frames) take their targets from the VISUAL stream where the format
    states it: an audio-only fake's clips, frames and face are real to a model that cannot hear,
    a visual fake's clip label is its visual label; the audio-visual dataset keeps the any-stream
    label (its model hears the fake voice), and the video label (evaluation) stays the official one.
    The --dry-run counts show it: the visual-only model's `label` positives are the av task's
    visual_label ones."""
    from fakelens.data.dataset import AVDataset, ClipDataset, FrameDataset
    from fakelens.train.engine import dry_run
    from fakelens.types import Modality

    _, cache = layout_cache(layout)
    clips = ClipDataset(cache, clip_frames=4, random=False, labeled_only=True)
    av = AVDataset(cache, clip_frames=4, random=False, labeled_only=True)
    frames = FrameDataset(cache, random=False, labeled_only=True)
    seen = set()
    for v, rec in enumerate(clips.records):
        z = clips._load(v)
        tiles = [clips.tile(v, k, z) for k in range(clips.n_tiles(v))]
        av_tiles = [av.tile(v, k, av._load(v)) for k in range(av.n_tiles(v))]
        assert all(float(t["video_label"]) == float(rec.is_fake) for t in tiles)  # evaluation: official labels
        if rec.modality is Modality.AUDIO:
            seen.add("audio")
            assert clips.face_labels(v).tolist() == [0.0] * len(clips.face_labels(v))
            assert all(float(t["label"]) == 0 and (t["frame_labels"] == 0).all() for t in tiles)
            assert all(item["label"] == 0 for item in clips.census_labels(v, clips.label_arrays(v), 8))
            assert float(frames[v]["label"].max()) == 0.0
            assert max(float(t["label"]) for t in av_tiles) == 1.0  # the av model hears it: fake
            assert av.face_labels(v).tolist() == [1.0]
        if rec.modality is Modality.VISUAL:
            seen.add("visual")
            assert [float(t["label"]) for t in tiles] == [float(t["visual_label"]) for t in av_tiles]
            assert max(float(t["label"]) for t in tiles) == 1.0
    assert seen == {"audio", "visual"}
    base = [f"data.cache={cache}", "data.val_split=val", "data.clip_frames=4", "model.image_size=32"]
    visual = dry_run(load_train_config(None, base + ["data.dataset=clips", "model.name=frame_tiny"]))
    both = dry_run(load_train_config(None, base + ["data.dataset=av", "model.name=av_tiny", "task.name=av"]))
    by = {c.term: c for c in both.counts}
    assert visual.counts[0].positives == pytest.approx(by["visual"].positives)
    assert by["video"].positives > by["visual"].positives  # the pitch-shifted fakes train the av model as fake
