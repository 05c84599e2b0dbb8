"""Audio decoding: length, rate, time ranges, missing audio."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from fakelens.errors import MediaError
from fakelens.io.audio import has_audio, read_audio


def _sine(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # (S,) as in conftest


def test_lossless_audio_round_trip(make_video):
    path = make_video("v.mkv", n_frames=10, audio_seconds=1.0)  # FLAC in mkv
    assert has_audio(path)
    x = read_audio(path)
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_allclose(x, _sine(1.0), atol=1e-4)


def test_resample_and_time_range(make_video):
    path = make_video("v.mkv", n_frames=10, audio_seconds=1.0)
    assert read_audio(path, sample_rate=8000).shape == (8000,)
    part = read_audio(path, start=0.25, end=0.75)
    assert part.shape == (8000,)
    np.testing.assert_allclose(part, _sine(1.0)[4000:12000], atol=1e-4)
    assert read_audio(path, start=0.5).shape == (8000,)


def test_aac_in_mp4_length_and_alignment(make_video):
    path = make_video("v.mp4", n_frames=20, fps=10.0, audio_seconds=2.0)
    x = read_audio(path)
    assert x.shape == (32000,)  # AAC's padding of the last frame is cut
    assert float(np.abs(x).max()) <= 1.0
    # Lossy, but in phase: the middle matches the sine closely.
    assert np.abs(x[8000:24000] - _sine(2.0)[8000:24000]).max() < 0.02


def test_audio_absent(make_video):
    path = make_video("v.mp4", n_frames=10)
    assert not has_audio(path)
    with pytest.raises(MediaError, match="has no audio stream") as exc:
        read_audio(path)
    assert str(path) in str(exc.value)


def test_audio_range_errors(make_video):
    path = make_video("v.mkv", n_frames=10, audio_seconds=1.0)
    for kwargs, match in [({"start": -1.0}, "negative"), ({"end": 3.0}, "past the audio's end"),
                          ({"start": 0.6, "end": 0.4}, "empty")]:
        with pytest.raises(MediaError, match=match) as exc:
            read_audio(path, **kwargs)
        assert str(path) in str(exc.value)


def test_audio_only_wav(tmp_path):
    path = tmp_path / "tone.wav"
    pcm = (_sine(0.5, 8000) * 32767).astype(np.int16)  # (S,)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    x = read_audio(path, sample_rate=8000)
    np.testing.assert_allclose(x, pcm / 32768, atol=1e-4)
    assert read_audio(path, sample_rate=16000).shape == (8000,)


def test_audio_missing_file(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        read_audio(tmp_path / "none.wav")


def _tone(amplitude: float, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # (S,)


def test_stereo_downmix_is_the_mean_of_the_channels_without_gain(make_video, tmp_path):
    from fakelens.audio.features import MelConfig, log_mel
    from fakelens.io.encode import write_video

    frames = [np.zeros((16, 16, 3), np.uint8)] * 10
    x = _tone(0.5)
    mono = read_audio(write_video(tmp_path / "mono.mkv", frames, 10.0, audio=x, codec="ffv1"))
    stereo = read_audio(write_video(tmp_path / "stereo.mkv", frames, 10.0, audio=np.stack([x, x]), codec="ffv1"))
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(mono) == pytest.approx(0.5 / np.sqrt(2), abs=1e-4)  # 0.354
    assert rms(stereo) == pytest.approx(rms(mono), abs=1e-4)  # libswresample's 0.707 (L + R) gave 0.500
    np.testing.assert_allclose(log_mel(stereo, MelConfig())[0], log_mel(mono, MelConfig())[0], atol=1e-3)
    half = read_audio(write_video(tmp_path / "left.mkv", frames, 10.0, audio=np.stack([x, 0 * x]), codec="ffv1"))
    np.testing.assert_allclose(half, x / 2, atol=1e-4)  # one channel silent: the mean, half the level


def test_loud_stereo_is_not_clipped(tmp_path):
    from fakelens.io.encode import write_video

    frames = [np.zeros((16, 16, 3), np.uint8)] * 10
    peak = 10 ** (-1 / 20)  # -1 dBFS in both channels
    x = _tone(peak)
    got = read_audio(write_video(tmp_path / "loud.mkv", frames, 10.0, audio=np.stack([x, x]), codec="ffv1"))
    assert float(np.abs(got).max()) == pytest.approx(peak, abs=1e-3)  # not 1.0: no sample clipped
    np.testing.assert_allclose(got, x, atol=1e-4)
