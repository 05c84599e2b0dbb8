"""The synthetic generator's real-looking hard cases: two people with one faked, a person leaving the
frame, a shot cut, small dark faces at 1080p, no audio, portrait with a display matrix, odd and
variable frame rates, long videos. Each is a preset; sizes are cut down here to keep tests fast."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from fakelens.data.synthetic import generate, plan_videos, preset, render_video
from fakelens.data.synthetic.manipulations import _face_roi
from fakelens.data.synthetic.motion import _raw_boxes, person_boxes, person_motion, person_sprite
from fakelens.data.synthetic.plan import person_voice
from fakelens.data.synthetic.voice import word_spans
from fakelens.errors import ConfigError
from fakelens.types import Modality

SMALL = dict(size=(108, 192), duration=(2.0, 2.0))


def _fakes(name: str, **overrides):
    """(fake plan, its original's plan) pairs of a preset, with SMALL sizes unless overridden."""
    plans = plan_videos(preset(name, **{**SMALL, **overrides}))
    by_file = {p.file: p for p in plans}
    return [(p, by_file[p.original]) for p in plans if p.fake is not None]


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ between two frames."""
    return (a != b).any(-1)


def test_two_people_only_the_target_face_is_manipulated():
    pairs = _fakes("two_people", n_videos=12)
    assert {fake.fake.target for fake, _ in pairs} == {0, 1}  # either person may be the fake one
    for fake, original in [next(pair for pair in pairs if pair[0].fake.target == k) for k in (0, 1)]:
        f, r = render_video(fake), render_video(original)
        target, other = fake.fake.target, 1 - fake.fake.target
        assert f.person_boxes.shape == (2, fake.source.n_frames, 4) and np.isfinite(f.person_boxes).all()
        assert fake.source.persons[0].identity != fake.source.persons[1].identity
        fake_frames = fake.source.fake_frames(fake.fake.segments)
        assert fake_frames.all()  # the preset fakes the whole video
        for t in range(0, fake.source.n_frames, 10):
            changed = _changed(f.frames[t], r.frames[t])
            x1, y1, x2, y2 = _face_roi(f.person_boxes[target, t], fake.source.size)
            inside = np.zeros_like(changed)
            inside[y1:y2, x1:x2] = True
            assert changed[inside].mean() > 0.3 and not changed[~inside].any()
            ox1, oy1, ox2, oy2 = _face_roi(f.person_boxes[other, t], fake.source.size)
            assert not changed[oy1:oy2, ox1:ox2].any()  # the other face is untouched
        if fake.modality.audio:  # "both": the target's own voice is replaced, in the mix
            assert not np.array_equal(f.audio, r.audio)


def test_two_people_take_turns_speaking_and_boxes_do_not_overlap():
    fake, _ = _fakes("two_people", duration=(8.0, 8.0))[0]
    src = fake.source
    spans = [list(word_spans(person_voice(src, k)[1]).values()) for k in range(2)]
    assert spans[0] and spans[1]
    for a0, b0 in spans[0]:
        assert all(b1 <= a0 or b0 <= a1 for a1, b1 in spans[1])  # one speaks at a time
    boxes = person_boxes(src)
    left, right = sorted(range(2), key=lambda k: boxes[k, 0, 0])
    assert (boxes[left, :, 2] < boxes[right, :, 0]).all()


def test_face_box_sidecar_names_each_person_and_the_fake_one(tmp_path):
    root = generate(tmp_path / "two", preset("two_people", **SMALL, n_videos=3, split_fractions=(1, 0, 0)),
                    progress=False)
    plans = {p.file: p for p in plan_videos(preset("two_people", **SMALL, n_videos=3, split_fractions=(1, 0, 0)))}
    sidecar = json.loads((root / "train_face_boxes.json").read_text())
    manifest = {v["file"]: v for v in json.loads((root / "synthetic.json").read_text())["videos"]}
    for file, entry in sidecar.items():
        p = plans[file]
        assert [face["person"] for face in entry["faces"]] == [0, 1]
        flagged = [face["person"] for face in entry["faces"] if face["fake"]]
        assert flagged == ([p.fake.target] if p.fake is not None and p.modality.visual else [])
        assert manifest[file]["fake_person"] == (p.fake.target if p.fake else None)
        assert manifest[file]["scene"] == "two_people" and len(manifest[file]["persons"]) == 2
        for k, face in enumerate(entry["faces"]):
            assert np.allclose(face["boxes"], person_boxes(p.source)[k], atol=0.06)
            if face["fake"]:
                assert face["fake_segments"] == [s.to_list() for s in p.visual_segments]


def test_person_leaving_the_frame_leaves_frames_without_a_face():
    pairs = _fakes("leave_frame", duration=(3.0, 3.0))
    for fake, original in pairs[:1]:
        src = fake.source
        person = src.persons[0]
        assert person.leaves and 0.3 * src.duration < person.end < 0.7 * src.duration
        boxes = person_boxes(src)[0]  # (T, 4)
        t = src.times()
        present = np.isfinite(boxes).all(1)
        assert present[t < person.end].all() and not present[t > person.end + 0.8].any()
        assert (~present).mean() > 0.2
        # gone means gone: the whole face box is outside the picture in those frames
        raw = _raw_boxes(person_sprite(src, 0), person_motion(src, 0))
        w = src.size[1]
        gone = t > person.end + 0.8
        assert ((raw[gone, 0] > w) | (raw[gone, 2] < 0)).all()
        # the fake is manipulated only where the face is in the picture
        f, r = render_video(fake), render_video(original)
        changed = np.flatnonzero((f.frames != r.frames).reshape(len(t), -1).any(1))
        assert len(changed) and present[changed].all()
        assert np.array_equal(f.boxes, boxes, equal_nan=True)


def test_shot_cut_switches_person_at_the_same_place():
    pairs = _fakes("shot_cut", n_videos=12)
    assert {fake.fake.target for fake, _ in pairs} == {0, 1}
    for fake, original in [next(pair for pair in pairs if pair[0].fake.target == k) for k in (0, 1)]:
        src = fake.source
        a, b = src.persons
        assert a.identity != b.identity and a.end == b.start and a.start == 0 and b.end == src.duration
        boxes = person_boxes(src)  # (2, T, 4)
        shown = np.isfinite(boxes).all(-1)  # (2, T)
        assert not (shown[0] & shown[1]).any() and (shown[0] | shown[1]).all()
        cut = int(np.argmax(shown[1]))
        before, after = boxes[0, cut - 1], boxes[1, cut]
        w = src.size[1]
        assert abs((before[0] + before[2]) / 2 - (after[0] + after[2]) / 2) < 0.15 * w  # the same place
        # each speaks in their own shot
        for k, (lo, hi) in enumerate([(a.start, a.end), (b.start, np.inf)]):
            assert all(lo <= s and e <= hi for s, e in word_spans(person_voice(src, k)[1]).values())
        # the fake person is manipulated only during their shot
        f, r = render_video(fake), render_video(original)
        changed = (f.frames != r.frames).reshape(src.n_frames, -1).any(1)
        assert changed.any() and not (changed & ~shown[fake.fake.target]).any()


def test_small_dark_faces_at_1080p():
    config = preset("small_dark", n_videos=2, split_fractions=(1, 0, 0), duration=(0.4, 0.4))
    assert config.size == (1080, 1920)
    plan = plan_videos(config)[0]
    heights = person_boxes(plan.source)[0, :, 3] - person_boxes(plan.source)[0, :, 1]
    assert 55 <= heights.min() and heights.max() <= 110
    from fakelens.data.synthetic.render import Rendering

    frame = next(Rendering(plan).frames())
    assert frame.shape == (1080, 1920, 3) and frame.mean() < 70  # dim light
    x1, y1, x2, y2 = _face_roi(person_boxes(plan.source)[0, 0], (1080, 1920))
    assert frame[y1:y2, x1:x2].std() > 5  # a face is there, not a flat patch


def test_no_audio_track_and_portrait_rotation(tmp_path):
    from fakelens.io.audio import has_audio
    from fakelens.io.video import probe, read_frames

    config = preset("no_audio", n_videos=2, split_fractions=(1, 0, 0), duration=(1.0, 1.0), size=(64, 96))
    root = generate(tmp_path / "mute", config, progress=False)
    for p in plan_videos(config):
        assert not has_audio(root / p.file)
    with pytest.raises(ConfigError, match="audio"):
        preset("no_audio", modality_mix=(1.0, 1.0, 0.0))

    config = preset("portrait", n_videos=2, split_fractions=(1, 0, 0), duration=(1.0, 1.0), size=(192, 108))
    root = generate(tmp_path / "portrait", config, progress=False)
    plan = plan_videos(config)[0]
    info = probe(root / plan.file)
    assert info.rotation == 90 and (info.width, info.height) == (108, 192)  # upright, as displayed
    import av

    with av.open(str(root / plan.file)) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height) == (192, 108)  # stored landscape
    decoded = read_frames(root / plan.file, n=4)
    rendered = render_video(plan).frames[decoded.indices]
    mse = np.mean((decoded.frames.astype(float) - rendered.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 28


@pytest.mark.parametrize("name,rate", [("fps_29_97", Fraction(30000, 1001)), ("fps_12_5", Fraction(25, 2))])
def test_odd_frame_rates_are_written_exactly(tmp_path, name, rate):
    from fakelens.io.video import probe

    config = preset(name, n_videos=2, split_fractions=(1, 0, 0), duration=(2.0, 2.0), size=(64, 96))
    assert Fraction(config.fps).limit_denominator(1001) == rate
    root = generate(tmp_path / name, config, progress=False)
    for p in plan_videos(config):
        info = probe(root / p.file)
        assert info.fps == pytest.approx(float(rate), abs=1e-6) and info.n_frames == p.source.n_frames
        if p.fake is not None:  # segment edges give back their frames by the label rule
            for seg in p.fake.segments:
                k = int(seg.start * config.fps)
                assert abs(k / config.fps - seg.start) < 2e-6


def test_variable_frame_rate_frames_carry_their_planned_times(tmp_path):
    import av

    config = preset("vfr", n_videos=2, split_fractions=(1, 0, 0), duration=(2.0, 2.0), size=(64, 96))
    root = generate(tmp_path / "vfr", config, progress=False)
    sidecar = json.loads((root / "train_face_boxes.json").read_text())
    for p in plan_videos(config):
        times = np.asarray(p.source.frame_times)
        gaps = np.round(np.diff(times), 4)
        assert set(gaps) == {round(1 / 30, 4), round(1 / 10, 4)}  # 30 fps, then 10 fps
        with av.open(str(root / p.file)) as c:
            pts = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        assert np.allclose(pts, times - times[0], atol=5e-4)  # stored on a millisecond clock
        assert sidecar[p.file]["times"] == list(p.source.frame_times)
        if p.fake is not None:  # fake frames: those whose time is inside a segment
            mask = p.source.fake_frames(p.fake.segments)
            for seg in p.fake.segments:
                assert mask[(times >= seg.start) & (times < seg.end)].all()
            assert mask.sum() == sum(((times >= s.start) & (times < s.end)).sum() for s in p.fake.segments)


def test_long_speech_is_synthesized_in_pieces_joined_in_pauses():
    from fakelens.data.synthetic.voice import _speaker, _utterance, synthesize_voice

    rng = np.random.default_rng(3)
    speaker = _speaker(rng)
    words = _utterance(rng, 70.0, speaker.rate)
    audio, env = synthesize_voice(words, speaker, 70 * 16000, 16000, rng)  # two pieces
    assert audio.shape == env.shape == (1_120_000,) and np.isfinite(audio).all()
    rms = np.sqrt(np.mean(audio.reshape(14, -1) ** 2, axis=1))  # every 5 s
    assert rms.min() > 0.3 * rms.max()  # speech all along, at one loudness
    # every word is voiced: none is cut where two pieces meet
    for a, b in list(word_spans(words).values())[:-1]:
        assert env[int(a * 16000) : int(b * 16000)].max() > 0.3


@pytest.mark.slow
def test_long_preset_writes_minutes_of_video(tmp_path):
    from fakelens.io.video import probe

    config = preset("long", duration=(46.0, 46.0), size=(64, 64))
    assert preset("long").duration == (180.0, 180.0)
    root = generate(tmp_path / "long", config, progress=False)
    fake = next(p for p in plan_videos(config) if p.fake)
    assert len(fake.fake.segments) >= 4
    info = probe(root / fake.file)
    assert info.duration == pytest.approx(46.0, abs=0.1) and info.has_audio and info.n_frames == 1150


def test_scene_options_are_validated():
    for field, value, match in [("scenes", ("crowd",), "scenes"), ("rotation", 45, "rotation"),
                                ("face_height", (0.5, 0.2), "face_height"), ("variable_fps", (30.0,), "variable"),
                                ("brightness", (0.0, 1.0), "brightness")]:
        with pytest.raises(ConfigError, match=match):
            preset("tiny", **{field: value})


def test_identities_and_donors_are_disjoint_across_splits():
    for name in ("demo", "avdf1m", "two_people", "shot_cut"):
        seen: dict[str, set[int]] = {}
        for p in plan_videos(preset(name)):
            ids = seen.setdefault(p.split, set())
            ids.update(q.identity for q in p.source.persons)
            if p.fake is not None and p.fake.visual_method == "face_swap" and p.modality.visual:
                ids.add(p.fake.donor)
                assert p.fake.donor not in {q.identity for q in p.source.persons}
        splits = sorted(seen)
        for i, a in enumerate(splits):
            for b in splits[i + 1 :]:
                assert not seen[a] & seen[b], f"{name}: {a} and {b} share identities {seen[a] & seen[b]}"
    # the astronaut, the most common face, belongs to one split only
    demo = plan_videos(preset("demo"))
    assert {p.split for p in demo if p.source.identity == 0} == {"train"}
    assert sum(p.modality is not Modality.NONE for p in demo) == 80
