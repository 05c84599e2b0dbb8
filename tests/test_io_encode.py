"""Encoding test/synthetic media: lossless round trip, h264 cropping, audio, rotation, GOP, atomicity."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.io.audio import read_audio
from fakelens.io.encode import write_video
from fakelens.io.video import iter_frames, probe


def _frames(n: int, h: int, w: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]  # each (H, W, 3)


def test_ffv1_is_lossless(tmp_path):
    frames = _frames(4, 17, 23)  # odd sizes survive in ffv1
    path = write_video(tmp_path / "x.mkv", frames, 5.0, codec="ffv1")
    got = [img for _, img in iter_frames(path)]
    assert len(got) == 4
    for a, b in zip(frames, got):
        np.testing.assert_array_equal(a, b)


def test_h264_crops_to_even_size_and_keeps_audio(tmp_path):
    audio = np.zeros(8000, np.float32)  # (S,) 0.5 s at 16 kHz
    path = write_video(tmp_path / "x.mp4", _frames(5, 17, 23), 10.0, audio=audio)
    info = probe(path)
    assert (info.width, info.height, info.codec, info.has_audio) == (22, 16, "h264", True)
    assert read_audio(path).shape == (8000,)


def test_gop_sets_keyframe_interval(tmp_path):
    import av

    frames = [np.full((16, 16, 3), 10 * i, np.uint8) for i in range(12)]  # no scene cuts
    path = write_video(tmp_path / "x.mp4", frames, 10.0, gop=4)
    with av.open(str(path)) as c:
        tb = c.streams.video[0].time_base
        keys = sorted(round(float(p.pts * tb) * 10) for p in c.demux(video=0) if p.size and p.is_keyframe)
    assert keys == [0, 4, 8]  # frame indices of the keyframes


def test_bad_input_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="rotation"):
        write_video(tmp_path / "x.mkv", _frames(2, 8, 8), 5.0, codec="ffv1", rotation=45)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "y.mkv", [], 5.0, codec="ffv1")
    assert list(tmp_path.iterdir()) == []  # atomic: no half-written or temporary files


def test_variable_frame_rate_timestamps(tmp_path):
    """`times` gives each frame its own presentation time (30 fps, then 10 fps), to the millisecond."""
    import av

    times = [k / 30 for k in range(15)] + [0.5 + k / 10 for k in range(5)]
    path = write_video(tmp_path / "vfr.mp4", _frames(20, 16, 16), 30.0, times=times)
    with av.open(str(path)) as c:
        pts = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert np.allclose(pts, times, atol=5e-4)
    with pytest.raises(ValueError, match="fewer times than frames"):
        write_video(tmp_path / "short.mp4", _frames(3, 16, 16), 30.0, times=[0.0, 0.1])
