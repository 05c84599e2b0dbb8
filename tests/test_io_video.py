"""Video probing and frame decoding: frame identity, timing, strategies, resize, rotation, errors."""

from __future__ import annotations

import dataclasses
import wave

import numpy as np
import pytest

from fakelens.errors import MediaError
from fakelens.io.encode import write_video
from fakelens.io.video import (
    SEEK_COST_FRAMES,
    choose_strategy,
    iter_frames,
    iter_frames_at,
    probe,
    read_frames,
    sample_times,
)


def red(frames: np.ndarray) -> np.ndarray:
    """(N,) mean red value per frame: the fixture encodes frame i as red = (i * 10) % 256."""
    return frames[..., 0].reshape(len(frames), -1).mean(axis=1)


def test_probe_lossless_mkv_counts_frames(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0, size=(48, 64))
    info = probe(path)
    assert (info.n_frames, info.fps, info.width, info.height) == (20, 10.0, 64, 48)
    assert info.duration == pytest.approx(2.0)
    assert info.codec == "ffv1" and info.rotation == 0
    assert not info.has_audio and info.audio_rate is None and not info.n_frames_estimated


def test_probe_h264_with_audio(make_video):
    info = probe(make_video("v.mp4", n_frames=20, fps=10.0, audio_seconds=2.0))
    assert (info.n_frames, info.codec, info.has_audio, info.audio_rate) == (20, "h264", True, 16000)
    assert info.duration == pytest.approx(2.0)


def test_frame_identity_and_times_to_indices(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    # The frame for t is the one whose pts is nearest (half a frame either side, ties to the
    # earlier one); 2.0 = duration shows the last frame.
    times = [0.0, 0.05, 0.1, 0.94, 0.96, 1.0, 1.95, 2.0]
    got = read_frames(path, times)
    want = np.array([0, 0, 1, 9, 10, 10, 19, 19])
    np.testing.assert_array_equal(got.indices, want)
    np.testing.assert_allclose(got.times, want / 10.0)
    np.testing.assert_array_equal(got.frames[..., 0].max(axis=(1, 2)), want * 10)
    np.testing.assert_array_equal(got.frames[..., 0].min(axis=(1, 2)), want * 10)
    assert got.frames.shape == (8, 48, 64, 3) and got.frames.dtype == np.uint8 and got.scale == 1.0


def test_unsorted_and_repeated_times_keep_request_order(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    got = read_frames(path, [1.5, 0.2, 1.5, 0.0])
    np.testing.assert_array_equal(got.indices, [15, 2, 15, 0])
    np.testing.assert_array_equal(red(got.frames), [150, 20, 150, 0])


@pytest.mark.parametrize("strategy", ["sequential", "seek"])
def test_iter_frames_at_yields_sorted_unique_frames_one_at_a_time(make_video, strategy):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    items = list(iter_frames_at(path, [1.5, 0.2, 1.5, 0.0, 0.25], max_side=32, keep_full=True, strategy=strategy))
    # sorted unique times 0.0, 0.2, 0.25, 1.5; 0.2 and 0.25 are both frame 2 (converted once)
    assert [round(t * 10) for t, _, _ in items] == [0, 2, 2, 15]
    assert [int(rgb[..., 0].mean()) for _, rgb, _ in items] == [0, 20, 20, 150]
    assert items[1][1] is items[2][1] and items[1][2] is items[2][2]
    assert items[0][1].shape == (24, 32, 3) and items[3][2].shape == (48, 64)
    assert int(items[3][2].crop(0, 0, 64, 48)[..., 0].mean()) == 150
    assert all(full is None for _, _, full in iter_frames_at(path, [0.5]))


def test_background_decoding_equals_direct_and_raises_where_it_fails(make_video, tmp_path):
    from fakelens.io.prefetch import background

    path = make_video("v.mkv", n_frames=20, fps=10.0)
    times = np.arange(20) / 10.0
    direct = [t for t, _, _ in iter_frames_at(path, times)]
    assert [t for t, _, _ in background(iter_frames_at(path, times), depth=2)] == direct
    short = make_video("short.mkv", n_frames=5, fps=10.0)
    info = dataclasses.replace(probe(short), duration=2.0, n_frames=20)  # claims more than it has
    got = []
    with pytest.raises(MediaError, match="truncated"):
        for t, _, _ in background(iter_frames_at(short, times, info=info)):
            got.append(t)
    # the frames before the failure arrive first: 0.0-0.4 s, and 0.5 s shows the last frame (0.4 s)
    assert got == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])


def test_sample_times_evenly_spaced_and_all_frames(make_video):
    info = probe(make_video("v.mkv", n_frames=20, fps=10.0))
    np.testing.assert_allclose(sample_times(info, 4), [0.2, 0.7, 1.2, 1.7])  # centres of 4 chunks of 5
    np.testing.assert_allclose(sample_times(info, 1), [1.0])
    np.testing.assert_allclose(sample_times(info, 50), np.arange(20) / 10.0)
    got = read_frames(info.path, n=4, info=info)
    np.testing.assert_array_equal(got.indices, [2, 7, 12, 17])
    np.testing.assert_array_equal(red(got.frames), [20, 70, 120, 170])


@pytest.mark.parametrize("name", ["v.mkv", "v.mp4"])
def test_sequential_and_seek_give_identical_frames(tmp_path, name):
    # 8-frame GOPs so seeks land mid-video and decode forward from a keyframe.
    frames = [np.full((32, 48, 3), (i * 10, 80, 160), np.uint8) for i in range(24)]  # (H, W, 3)
    path = write_video(tmp_path / name, frames, 10.0, codec="ffv1" if name.endswith("mkv") else "h264", gop=8)
    times = [0.0, 0.35, 0.8, 0.85, 1.25, 2.3, 2.4]
    seq = read_frames(path, times, strategy="sequential")
    seek = read_frames(path, times, strategy="seek")
    auto = read_frames(path, times, strategy="auto")
    np.testing.assert_array_equal(seq.indices, [0, 3, 8, 8, 12, 23, 23])
    for other in (seek, auto):
        np.testing.assert_array_equal(seq.frames, other.frames)
        np.testing.assert_array_equal(seq.indices, other.indices)
        np.testing.assert_array_equal(seq.times, other.times)
    np.testing.assert_allclose(red(seq.frames), seq.indices * 10, atol=4)  # lossy h264 is close


def test_auto_strategy_without_index_uses_frame_count(make_video):
    info = probe(make_video("v.mkv", n_frames=20, fps=10.0))  # mkv: no keyframe index at open
    assert choose_strategy(info, np.arange(32) / 10) == "sequential"
    long = dataclasses.replace(info, n_frames=32 * SEEK_COST_FRAMES + 1)
    assert choose_strategy(long, np.arange(32)) == "seek"
    assert choose_strategy(long, np.arange(33)) == "sequential"


@pytest.mark.parametrize("gop, n, late_one", [(8, 12, "seek"), (None, 2, "sequential")])
def test_auto_strategy_counts_frames_from_keyframe_index(tmp_path, gop, n, late_one):
    import av

    frames = [np.full((16, 16, 3), 5 * i, np.uint8) for i in range(48)]  # (H, W, 3)
    path = write_video(tmp_path / "v.mp4", frames, 10.0, gop=gop)
    info = probe(path)
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        # One late frame: 4 frames past a keyframe with 8-frame GOPs, 46 past the only one.
        assert choose_strategy(info, [4.6], vs) == late_one
        assert choose_strategy(info, sample_times(info, n), vs) == "sequential"
    assert read_frames(path, [4.6], info=info).strategy == late_one


def test_resize_max_side_and_size(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0, size=(48, 64))
    small = read_frames(path, [1.0], max_side=32)
    assert small.frames.shape == (1, 24, 32, 3) and small.scale == pytest.approx(0.5)
    assert red(small.frames)[0] == pytest.approx(100, abs=1)
    same = read_frames(path, [1.0], max_side=100)
    assert same.frames.shape == (1, 48, 64, 3) and same.scale == 1.0
    fixed = read_frames(path, [1.0], size=(20, 40))
    assert fixed.frames.shape == (1, 20, 40, 3) and fixed.scale == pytest.approx(40 / 64)
    with pytest.raises(ValueError):
        read_frames(path, [1.0], size=(20, 40), max_side=10)
    with pytest.raises(ValueError):
        read_frames(path, [1.0], n=3)


def test_iter_frames_streams_every_frame(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    items = list(iter_frames(path))
    assert len(items) == 20
    assert [round(t, 6) for t, _ in items] == [i / 10 for i in range(20)]
    assert [int(img[0, 0, 0]) for _, img in items] == [i * 10 for i in range(20)]
    every = list(iter_frames(path, every=3, max_side=32))
    assert len(every) == 7 and every[1][1].shape == (24, 32, 3)
    assert [int(img[0, 0, 0]) for _, img in every] == [i * 10 for i in range(0, 20, 3)]


@pytest.mark.parametrize("n_frames, every, frames", [
    (12, 5, [2, 7, 11]),  # runs 0-4, 5-9, 10-11: the middle frames, the short last run its last frame
    (13, 5, [2, 7, 12]),  # a last run of 3 reaches its middle frame
    (12, 4, [1, 5, 9]),  # even runs: the earlier of the two middle frames
    (1, 5, [0]),  # shorter than one run: still one frame
    (5, 1, [0, 1, 2, 3, 4]),  # every frame: nothing moves
])
def test_centred_runs_give_each_runs_middle_frame(make_video, n_frames, every, frames):
    """Dense features' --fps grids: the frame of each run of `every` frames is its middle one
    (the instant the run's centre stands for), with its own time, in the full frames too."""
    from fakelens.io.video import iter_frames_every

    path = make_video("v.mkv", n_frames=n_frames, fps=10.0)
    items = list(iter_frames_every(path, every=every, centred=True, keep_full=True, convert_every=2))
    assert [round(t, 6) for t, _, _ in items] == [f / 10 for f in frames]
    assert [int(img[0, 0, 0]) for _, img, _ in items[::2]] == [f * 10 for f in frames[::2]]
    assert all(img is None for _, img, _ in items[1::2])  # convert_every counts the sampled frames
    full = [ff.crop(0, 0, ff.shape[1], ff.shape[0]) for _, _, ff in items]  # (H, W, 3) each
    assert [int(np.median(c[..., 0])) for c in full] == [f * 10 for f in frames]


def _marker_frames(n: int = 3) -> list[np.ndarray]:
    """Asymmetric frames (H=32, W=48): a white 8x8 block at the top-left corner, red = i * 10."""
    out = []
    for i in range(n):
        img = np.zeros((32, 48, 3), np.uint8)  # (H, W, 3)
        img[..., 0] = i * 10
        img[:8, :8] = 255
        out.append(img)
    return out


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_probed_and_applied(tmp_path, rotation):
    frames = _marker_frames()
    path = write_video(tmp_path / "r.mkv", frames, 10.0, codec="ffv1", rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    want = np.rot90(frames[1], -rotation // 90)  # turned clockwise for display
    assert (info.height, info.width) == want.shape[:2]
    got = read_frames(path, [0.1], info=info)
    np.testing.assert_array_equal(got.frames[0], want)
    for strategy in ("sequential", "seek"):
        np.testing.assert_array_equal(read_frames(path, [0.1], strategy=strategy).frames[0], want)
    _, first = next(iter_frames(path))
    np.testing.assert_array_equal(first, np.rot90(frames[0], -rotation // 90))
    small = read_frames(path, [0.1], max_side=24)
    assert small.frames.shape[1:3] == tuple(s // 2 for s in want.shape[:2])


def test_rotation_in_h264_mp4(tmp_path):
    path = write_video(tmp_path / "r.mp4", _marker_frames(), 10.0, rotation=90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 32, 48)
    img = read_frames(path, [0.0], info=info).frames[0]  # (48, 32, 3)
    # Clockwise turn: the top-left marker ends at the top-right.
    assert img[:8, -8:].mean() > 200 and img[:8, :8].mean() < 60


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_full_frame_crops_equal_whole_frame_conversion(tmp_path, rotation):
    """keep_full: crops converted from the kept yuv420p planes match cropping the whole RGB frame."""
    rng = np.random.default_rng(rotation)
    coarse = rng.integers(0, 255, (7, 9, 3)).astype(np.uint8)
    img = np.kron(coarse, np.ones((8, 8, 1), np.uint8))[:50, :66]  # (50, 66, 3) blocks: smooth chroma
    path = write_video(tmp_path / "c.mp4", [img, img[::-1].copy(), img], 10.0, rotation=rotation)
    whole = read_frames(path, [0.1, 0.0])
    got = read_frames(path, [0.1, 0.0], keep_full=True, max_side=33)
    assert got.frames.shape[1:3] == tuple(s // 2 for s in whole.frames.shape[1:3])
    assert got.full[0].planes is not None and got.full[0].shape == whole.frames.shape[1:3]
    h, w = whole.frames.shape[1:3]
    for i in range(2):
        for x0, y0, x1, y1 in ((0, 0, w, h), (3, 5, 30, 27), (10, 1, 11, h), (w - 7, h - 4, w, h)):
            crop = got.full[i].crop(x0, y0, x1, y1)
            ref = whole.frames[i, y0:y1, x0:x1]
            assert crop.shape == ref.shape
            diff = np.abs(crop.astype(int) - ref.astype(int))
            assert diff.mean() < 0.5 and diff.max() <= 4, (x0, y0, x1, y1, diff.mean(), diff.max())  # exact here
    with pytest.raises(ValueError, match="not inside"):
        got.full[0].crop(0, 0, w + 1, h)


def test_full_frame_keeps_rgb_for_other_pixel_formats(tmp_path):
    frames = _marker_frames()
    path = write_video(tmp_path / "r.mkv", frames, 10.0, codec="ffv1", rotation=90)
    got = read_frames(path, [0.1], keep_full=True)
    want = np.rot90(frames[1], -1)  # (48, 32, 3)
    assert got.full[0].planes is None
    np.testing.assert_array_equal(got.full[0].crop(2, 3, 20, 40), want[3:40, 2:20])


# -- errors: each names the file and a human cause --------------------------------------------


def _raises(path, match: str, fn=probe, *args, **kwargs) -> MediaError:
    with pytest.raises(MediaError, match=match) as exc:
        fn(path, *args, **kwargs)
    assert str(path) in str(exc.value) and exc.value.path == str(path)
    return exc.value


def test_error_missing_file(tmp_path):
    _raises(tmp_path / "nope.mp4", "does not exist")


def test_error_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _raises(path, "empty")


def test_error_truncated_mp4(make_video):
    path = make_video("v.mp4", n_frames=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is written last: now gone
    _raises(path, r"media file \(MP4/MOV\) but is truncated or corrupt")


def test_error_truncated_mkv(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    info = probe(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises(path, "truncated: the header says 2.000 s")  # probe sees packets stop early
    # Decoding with the old probe (header intact, e.g. moov-first mp4) stops short: caught too.
    _raises(path, "truncated or corrupt: frame for 1.800 s", read_frames, [0.1, 1.8], info=info)


def test_error_not_a_media_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    _raises(path, "not a media file")


def test_error_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, np.int16).tobytes())
    _raises(path, "no video stream")
    _raises(path, "no video stream", read_frames, [0.0])


def test_error_times_outside_video(make_video):
    path = make_video("v.mkv", n_frames=20, fps=10.0)
    _raises(path, "-0.500 s is outside", read_frames, [0.0, -0.5])
    _raises(path, "2.500 s is outside", read_frames, [2.5])
    # Tiny float overshoot is clamped, not rejected.
    got = read_frames(path, [-1e-9, 2.0 + 1e-9])
    np.testing.assert_array_equal(got.indices, [0, 19])


def test_silent_video_reads_frames(make_video):
    path = make_video("v.mp4", n_frames=10)
    assert not probe(path).has_audio
    assert read_frames(path, n=2).frames.shape == (2, 48, 64, 3)


# -- footage as it comes: long MPEG-TS, variable frame rate, millisecond timestamps ----------


def _grey_frames(n: int, side: int = 32, step: int = 3):
    """n frames whose every pixel is (i * step) % 256: frame identity survives lossy coding."""
    return (np.full((side, side, 3), (i * step) % 256, np.uint8) for i in range(n))


def test_long_mpeg_ts_seeks_further_back_when_a_seek_decodes_nothing(tmp_path):
    # 4 minutes at 10 fps with x264's default keyframe interval (250 frames): MPEG-TS seeks by
    # bytes, and a seek to 228.7 s lands past the last keyframe (225 s), where nothing decodes.
    path = write_video(tmp_path / "long.ts", _grey_frames(2400), 10.0)
    info = probe(path)
    assert (info.n_frames, info.duration) == (2400, pytest.approx(240.0))
    seek = read_frames(path, n=32, strategy="seek", info=info)
    seq = read_frames(path, n=32, strategy="sequential", info=info)
    np.testing.assert_array_equal(seek.indices, np.floor((np.arange(32) + 0.5) * 2400 / 32))
    np.testing.assert_array_equal(seek.indices, seq.indices)
    np.testing.assert_array_equal(seek.frames, seq.frames)
    assert np.abs(red(seek.frames) - (seek.indices * 3) % 256).max() < 4


@pytest.mark.parametrize("name", ["vfr.mkv", "vfr.mp4"])
def test_variable_frame_rate_returns_every_frame_once_with_its_position(tmp_path, name):
    # 5 s at 30 fps, then 5 s at 10 fps: 200 frames, average 20 fps.
    times = np.concatenate([np.arange(150) / 30, 5 + np.arange(50) / 10])
    path = write_video(tmp_path / name, _grey_frames(200, step=1), 20.0, times=times,
                       codec="ffv1" if name.endswith("mkv") else "h264")
    info = probe(path)
    assert info.n_frames == 200
    np.testing.assert_allclose(info.frame_times, np.round(times, 3), atol=1e-6)
    for strategy in ("sequential", "seek"):
        every = read_frames(path, n=200, strategy=strategy, info=info)
        assert len(np.unique(every.times)) == 200  # was 150 distinct frames with index / fps times
        np.testing.assert_array_equal(every.indices, np.arange(200))  # the frame's own position
        assert np.abs(red(every.frames) - np.arange(200)).max() < 4
    some = read_frames(path, n=20, info=info)
    np.testing.assert_array_equal(some.indices, np.floor((np.arange(20) + 0.5) * 10))  # evenly spaced frames
    np.testing.assert_allclose(some.times, info.frame_times[some.indices])
    assert [round(t * 10) for t, _, _ in iter_frames_at(path, [5.3], info=info)] == [53]


@pytest.mark.parametrize("strategy", ["sequential", "seek"])
def test_millisecond_timestamps_at_29_97_fps_give_each_frame_once(tmp_path, strategy):
    # mkv stores pts in milliseconds: frame 2 of 29.97 fps is at 0.067 s, its nominal time 0.0667 s.
    path = write_video(tmp_path / "ntsc.mkv", _grey_frames(90, step=2), 30000 / 1001, codec="ffv1")
    info = probe(path)
    nominal = np.arange(90) * 1001 / 30000
    got = read_frames(path, nominal, strategy=strategy, info=info)  # nominal k / fps times
    np.testing.assert_array_equal(got.indices, np.arange(90))  # was 57 distinct frames
    np.testing.assert_array_equal(red(got.frames), (np.arange(90) * 2) % 256)
    np.testing.assert_array_equal(read_frames(path, n=90, strategy=strategy, info=info).indices, np.arange(90))


@pytest.mark.parametrize("ext, codec", [(".ts", "h264"), (".m2ts", "h264"), (".mts", "h264"), (".m4v", "h264"),
                                        (".3gp", "h264"), (".flv", "h264"), (".wmv", "mpeg4"),
                                        (".mpg", "mpeg2video"), (".webm", "libvpx-vp9")])
def test_broadcast_and_phone_containers_decode(tmp_path, ext, codec):
    path = write_video(tmp_path / f"v{ext}", _grey_frames(50, step=5), 25.0, codec=codec,
                       audio=np.zeros(32000, np.float32))
    info = probe(path)
    assert (info.n_frames, info.fps, info.has_audio) == (50, 25.0, True)
    got = read_frames(path, n=5, info=info)
    np.testing.assert_array_equal(got.indices, [5, 15, 25, 35, 45])
    assert np.abs(red(got.frames) - (got.indices * 5) % 256).max() < 6


def test_is_video_file_probes_what_the_extension_does_not_say(tmp_path):
    from fakelens.io.video import is_video_file

    clip = write_video(tmp_path / "clip.mp4", _grey_frames(5), 10.0)
    odd = tmp_path / "capture.dat"  # a video under an extension nobody listed
    odd.write_bytes(clip.read_bytes())
    bare = tmp_path / "capture"  # no extension at all
    bare.write_bytes(clip.read_bytes())
    import cv2

    cv2.imwrite(str(tmp_path / "still.jpeg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "still.img").write_bytes((tmp_path / "still.jpeg").read_bytes())  # a JPEG under an odd name
    (tmp_path / "notes.bin").write_bytes(b"not a video at all\n" * 50)
    (tmp_path / ".hidden.mp4").write_bytes(clip.read_bytes())
    assert [p.name for p in sorted(tmp_path.iterdir()) if is_video_file(p)] == ["capture", "capture.dat", "clip.mp4"]


@pytest.mark.parametrize("name", ["vfr.mkv", "vfr.mp4"])
def test_variable_frame_rate_duration_covers_the_last_frames(tmp_path, name):
    # mp4 states the stream's duration from its decode timestamps: with B-frames and a frame rate
    # that drops (30 then 10 fps) the last frames are shown after it (9.9 s against a stated 9.817 s)
    # and a frame's own time was refused as "outside the video" (preprocess, predict, detect)
    times = np.concatenate([np.arange(150) / 30, 5 + np.arange(50) / 10])
    path = write_video(tmp_path / name, _grey_frames(200, step=1), 20.0, times=times,
                       codec="ffv1" if name.endswith("mkv") else "h264")
    info = probe(path)
    assert info.duration >= info.frame_times[-1]
    got = read_frames(path, info.frame_times[-3:], info=info)  # the last frames by their own times
    np.testing.assert_array_equal(got.indices, [197, 198, 199])
    assert np.abs(red(got.frames) - np.arange(197, 200)).max() < 4


# -- RGB conversion through reused libswscale contexts: pixels as a fresh context per frame gives --


def _textured(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    """n (h, w, 3) frames of smooth colour plus pixel noise (chroma that varies within 2x2 blocks)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        coarse = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.int16)  # (h, w, 3)
        img += rng.integers(-40, 41, (h, w, 3)).astype(np.int16)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _decoded(path):
    import av

    with av.open(str(path)) as container:
        return list(container.decode(video=0))


# (file, codec, pix_fmt, stored (h, w), rotation): even yuv420p h264 (chroma rows odd in one),
# odd-sized yuv444p h264 (a non-yuv420p source), full-range yuvj420p, ffv1 bgr0
_CLIPS = [
    ("a.mp4", "h264", None, (64, 96), 0),
    ("b.mp4", "h264", None, (50, 66), 90),
    ("c.mp4", "h264", "yuv444p", (51, 67), 270),
    ("d.mp4", "h264", "yuvj420p", (48, 80), 180),
    ("e.mkv", "ffv1", None, (45, 59), 0),
]


@pytest.mark.parametrize("name,codec,pix_fmt,hw,rotation", _CLIPS + [("i.mp4", "h264", None, (544, 608), 90)])
def test_converter_reusing_one_reformatter_gives_the_pixels_of_a_fresh_conversion(tmp_path, name, codec, pix_fmt,
                                                                                   hw, rotation):
    from fakelens.io.video import _Converter

    path = write_video(tmp_path / name, _textured(4, *hw), 10.0, codec=codec, pix_fmt=pix_fmt, rotation=rotation)
    info = probe(path)
    frames = _decoded(path)
    dh, dw = info.height, info.width  # displayed
    k = -(rotation // 90)
    # same size; downscales to odd and even sizes (area averaging); an upscale; a squeeze
    for out_h, out_w in ((dh, dw), (dh // 2 + 1, dw // 2), (dh // 3, dw // 3 + 1), (dh * 2, dw + 3), (dh - 1, dw // 2)):
        convert = _Converter(rotation, out_h, out_w)
        cw, ch = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
        for frame in frames + frames[:1]:  # back to the first frame: the kept context is still right
            if (frame.width, frame.height) == (cw, ch):
                want = frame.to_ndarray(format="rgb24")
            else:
                down = cw < frame.width and ch < frame.height
                want = frame.reformat(width=cw, height=ch, format="rgb24",
                                      interpolation="AREA" if down else None).to_ndarray()
            want = np.rot90(want, k) if k % 4 else want
            got = convert(frame)
            assert got.shape == (out_h, out_w, 3)
            np.testing.assert_array_equal(got, want)
    # a converter holds its own reformatter, used for every frame
    a, b = _Converter(rotation, dh, dw), _Converter(rotation, dh, dw)
    assert a.reformatter is not b.reformatter


def _old_crop(ff, x0, y0, x1, y1):
    """FullFrame.crop as it was before the reused reformatters: a packed I420 copy, a new frame
    from it and VideoFrame.to_ndarray (a fresh SwsContext, automatic thread count) per crop."""
    import av

    a0, b0, a1, b1 = ff._coded_rect(x0, y0, x1, y1)
    if ff.planes is not None:
        e0, f0 = a0 // 2 * 2, b0 // 2 * 2
        e1, f1 = a1 + a1 % 2, b1 + b1 % 2
        y, u, v = ff.planes
        packed = np.concatenate([
            y[f0:f1, e0:e1].reshape(-1),
            u[f0 // 2 : f1 // 2, e0 // 2 : e1 // 2].reshape(-1),
            v[f0 // 2 : f1 // 2, e0 // 2 : e1 // 2].reshape(-1),
        ]).reshape(-1, e1 - e0)
        frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        frame.colorspace, frame.color_range = ff.colorspace, ff.color_range
        rgb = frame.to_ndarray(format="rgb24")[b0 - f0 : b1 - f0, a0 - e0 : a1 - e0]
    else:
        rgb = ff.rgb[b0:b1, a0:a1]
    k = -(ff.rotation // 90)
    return np.ascontiguousarray(np.rot90(rgb, k) if k % 4 else rgb)


def _crop_rects(h: int, w: int, n: int, seed: int) -> list[tuple[int, int, int, int]]:
    """The whole frame, corners, 1-pixel strips and n random rectangles at odd and even positions."""
    rng = np.random.default_rng(seed)
    rects = [(0, 0, w, h), (0, 0, 1, 1), (w - 1, h - 1, w, h), (1, 0, 2, h), (0, 3, w, 4), (3, 5, w - 2, h - 3)]
    for _ in range(n):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        rects.append((x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))))
    return rects


@pytest.mark.parametrize("name,codec,pix_fmt,hw,rotation", _CLIPS + [("f.mp4", "h264", None, (64, 96), 90),
                                                                    ("g.mp4", "h264", None, (50, 66), 180),
                                                                    ("h.mp4", "h264", None, (50, 66), 270),
                                                                    ("i.mp4", "h264", None, (544, 608), 90)])
def test_full_frame_crops_through_reused_reformatters_equal_the_old_crops(tmp_path, name, codec, pix_fmt, hw,
                                                                          rotation):
    import threading

    from fakelens.io.video import FullFrame

    path = write_video(tmp_path / name, _textured(3, *hw, seed=rotation), 10.0, codec=codec, pix_fmt=pix_fmt,
                       rotation=rotation)
    info = probe(path)
    fulls = [FullFrame(frame, info.rotation) for frame in _decoded(path)]
    assert (fulls[0].planes is not None) == (pix_fmt is None and codec == "h264")
    h, w = fulls[0].shape
    if fulls[0].planes is None:  # the whole RGB frame, made by the decode thread's reformatter
        for frame, ff in zip(_decoded(path), fulls):
            np.testing.assert_array_equal(ff.rgb, frame.to_ndarray(format="rgb24"))
    # (i.mp4: crops over ONE_THREAD_PIXELS take the automatic thread count, as before)
    cases = [(ff, r) for i, ff in enumerate(fulls) for r in _crop_rects(h, w, 40, i)]
    for ff, r in cases:
        np.testing.assert_array_equal(ff.crop(*r), _old_crop(ff, *r), err_msg=str(r))
    if fulls[0].planes is not None:
        # BT.709 and full range are passed on to libswscale as before
        ff = fulls[0]
        ff.colorspace, ff.color_range = 1, 2  # AVCOL_SPC_BT709, AVCOL_RANGE_JPEG
        for r in _crop_rects(h, w, 10, 7):
            np.testing.assert_array_equal(ff.crop(*r), _old_crop(ff, *r), err_msg=str(r))
        ff.colorspace, ff.color_range = fulls[1].colorspace, fulls[1].color_range
    # several threads cutting crops at once (decoding thread and main thread): each has its own
    want = [_old_crop(ff, *r) for ff, r in cases]
    bad: list[int] = []

    def cut(order):
        for i in order:
            if not np.array_equal(cases[i][0].crop(*cases[i][1]), want[i]):
                bad.append(i)

    threads = [threading.Thread(target=cut, args=(range(len(cases))[::s],)) for s in (1, -1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_each_thread_has_its_own_reformatters():
    import threading

    from fakelens.io.video import _reformatter

    mine = _reformatter(1)
    assert _reformatter(1) is mine and _reformatter(0) is not mine
    other: list = []
    t = threading.Thread(target=lambda: other.append(_reformatter(1)))
    t.start()
    t.join()
    assert other[0] is not mine
