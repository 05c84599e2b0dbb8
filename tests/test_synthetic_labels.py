"""The synthetic generator renders exactly what its labels say (issue 17 item 11): on many random
plans, every manipulated frame is labelled fake and every frame labelled fake is manipulated
(visual), and every frame whose audio was replaced is labelled fake and vice versa (audio), with
the labels computed as the readers and the challenges compute them: int(start * fps) edges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakelens.data.synthetic import plan_videos, preset, render_video
from fakelens.types import Segment, frame_labels

FPS_CHOICES = (25.0, 29.97, 12.5, 30.0)
SCENES = ("single", "single", "two_people", "leave", "cut")


def _random_configs(n: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    for i in range(n):
        lo = float(rng.uniform(0.12, 0.6))
        vfr = i % 7 == 6
        yield preset(
            "tiny", seed=int(rng.integers(1 << 30)), n_videos=2, split_fractions=(1.0, 0.0, 0.0), size=(64, 64),
            duration=(1.2, 2.4), fps=25.0 if vfr else float(rng.choice(FPS_CHOICES)), layout="dfdc",
            scenes=(str(rng.choice(SCENES)),), segments_per_fake=(1, 3), segment_duration=(lo, lo + 0.6),
            modality_mix=tuple(rng.dirichlet([1, 1, 1])), strength=float(rng.uniform(0.4, 1.0)),
            variable_fps=(30.0, 10.0) if vfr else ())


def _labels(segments: tuple[Segment, ...], src) -> np.ndarray:
    """What a reader labels: the segments as written to JSON and read back, then int(t * fps) edges
    (frame times inside the segment for a variable frame rate)."""
    back = tuple(Segment(*s) for s in json.loads(json.dumps([s.to_list() for s in segments])))
    if src.frame_times:
        t = src.times()
        return np.any([(t >= s.start) & (t < s.end) for s in back], axis=0) if back else np.zeros(len(t), bool)
    return frame_labels(back, src.fps, src.n_frames).astype(bool)


N_CASES = 16


@pytest.fixture(scope="module")
def cases():
    """(config, fake plan, its original's plan) for N_CASES random configs."""
    out = []
    for config in _random_configs(N_CASES):
        plans = plan_videos(config)
        fake = next(p for p in plans if p.fake is not None)
        out.append((config, fake, next(p for p in plans if p.file == fake.original)))
    return out


@pytest.mark.parametrize("case", range(N_CASES))
def test_rendered_fakes_match_their_frame_labels(cases, case):
    config, fake, original = cases[case]
    src = fake.source
    f, r = render_video(fake), render_video(original)
    edges = src.sample_edges()
    visual_changed = (f.frames != r.frames).reshape(src.n_frames, -1).any(1)
    audio_changed = np.array([not np.array_equal(f.audio[a:b], r.audio[a:b]) for a, b in zip(edges[:-1], edges[1:])])
    visual_labels = _labels(fake.visual_segments, src)
    audio_labels = _labels(fake.audio_segments, src)
    where = f"{config.fps:g} fps, {src.scene}, {fake.modality.value}, segments {fake.fake.segments}"
    assert np.array_equal(visual_changed, visual_labels), f"{where}: {np.flatnonzero(visual_changed ^ visual_labels)}"
    assert np.array_equal(audio_changed, audio_labels), f"{where}: {np.flatnonzero(audio_changed ^ audio_labels)}"
    assert visual_labels.any() or audio_labels.any()


def test_segment_edges_give_back_their_frames_by_the_label_rule():
    """Edges are stored so that int(t * fps) is the intended frame even where k / fps * fps < k in
    floating point (1.16 s at 25 fps); across 600 random plans no fake frame is lost or gained."""
    lost = 0
    for config in _random_configs(300, seed=5):
        for p in plan_videos(config):
            if p.fake is None or p.source.frame_times:
                continue
            for seg in p.fake.segments:
                k0, k1 = int(seg.start * config.fps), int(seg.end * config.fps)
                lost += abs(seg.start - k0 / config.fps) > 2e-6 or abs(seg.end - k1 / config.fps) > 2e-6
    assert lost == 0


def test_written_labels_as_training_reads_them_match_the_rendering(tiny_synth):
    """End to end on the tiny preset (the set the detect, web and demo tests train on), as
    written (AV-Deepfake1M layout, per-stream segments), read back by its reader, turned into
    per-frame visual and audio labels exactly as the training datasets do
    (fakelens.data.dataset), and compared with what was rendered: pixels for the visual stream,
    samples for the audio stream."""
    from fakelens.data.dataset import _labels_at_indices, _stream_segments
    from fakelens.data.formats import load_dataset

    root = tiny_synth
    plans = plan_videos(preset("tiny"))
    by_path = {(root / p.file).resolve(): p for p in plans}
    by_file = {p.file: p for p in plans}
    records = [r for r in load_dataset(root).records if r.has_label]
    assert len(records) == len(plans)  # every split of the tiny set is labelled
    n_fake = 0
    for rec in records:
        p = by_path[rec.path.resolve()]
        src = p.source
        idx = np.arange(src.n_frames)
        visual = _labels_at_indices(_stream_segments(rec, "visual"), rec, src.fps, idx)  # (N,)
        audio = _labels_at_indices(_stream_segments(rec, "audio"), rec, src.fps, idx)  # (N,)
        if p.fake is None:
            assert rec.label.as_int == 0 and not visual.any() and not audio.any()
            continue
        n_fake += 1
        f, r = render_video(p), render_video(by_file[p.original])
        edges = src.sample_edges()
        pixels = (f.frames != r.frames).reshape(src.n_frames, -1).any(1)  # (N,) any pixel changed
        samples = np.array([not np.array_equal(f.audio[a:b], r.audio[a:b]) for a, b in zip(edges[:-1], edges[1:])])
        assert np.array_equal(pixels, visual == 1), (rec.id, np.flatnonzero(pixels != (visual == 1)))
        assert np.array_equal(samples, audio == 1), (rec.id, np.flatnonzero(samples != (audio == 1)))
        # and no sample outside the labelled frames' span of samples changed, none inside is left out
        changed = np.flatnonzero(f.audio != r.audio)
        if len(changed):
            inside = np.zeros(len(f.audio), bool)
            for k in np.flatnonzero(audio == 1):
                inside[edges[k]:edges[k + 1]] = True
            assert inside[changed].all()
    assert n_fake == sum(p.fake is not None for p in plans) >= 2
