"""Log-mel features: Slaney mel scale and filterbank, shapes, time alignment, tones in the right band."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.audio.features import MelConfig, hz_to_mel, log_mel, mel_centres, mel_filterbank, mel_to_hz

SR = 16000


def test_slaney_mel_scale_hand_checked():
    # linear below 1 kHz (200/3 Hz per mel), log above with 27 mels per factor 6.4
    np.testing.assert_allclose(hz_to_mel([0, 200 / 3, 1000, 6400]), [0, 1, 15, 42], atol=1e-9)
    f = np.array([10.0, 440, 999, 1000, 3000, 7999])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9)


def test_filterbank_shape_triangles_and_slaney_area():
    fb = mel_filterbank(SR, 512, 80)
    assert fb.shape == (80, 257) and fb.dtype == np.float32 and (fb >= 0).all()
    assert (fb.sum(axis=1) > 0).all()  # no empty band at 80 mels / 512 FFT
    centres = mel_centres(MelConfig())
    assert np.all(np.diff(centres) > 0) and centres[0] > 0 and centres[-1] < SR / 2
    # Slaney norm: each triangle has unit area over Hz (discretisation error aside for wide ones)
    df = SR / 512
    area = fb.sum(axis=1) * df
    np.testing.assert_allclose(area[40:], 1.0, rtol=0.05)
    # peaks sit at the band centres
    freqs = np.linspace(0, SR / 2, 257)
    peak = freqs[fb.argmax(axis=1)]
    assert np.all(np.abs(peak[20:] - centres[20:]) <= df)


def test_filterbank_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=80, htk=False, norm="slaney")
    np.testing.assert_allclose(mel_filterbank(SR, 512, 80), ref, rtol=1e-4, atol=1e-7)


def test_shape_and_frame_times():
    wave = np.zeros(SR * 2 + 37, np.float32)
    mel, times = log_mel(wave)
    assert mel.shape == (80, 1 + len(wave) // 160) and mel.dtype == np.float32
    np.testing.assert_allclose(times, np.arange(mel.shape[1]) * 0.01)
    assert np.isfinite(mel).all() and mel.max() == pytest.approx(np.log(1e-6))
    empty, t0 = log_mel(np.zeros(0, np.float32))
    assert empty.shape == (80, 0) and t0.shape == (0,)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_pure_tone_lands_in_its_band(freq):
    t = np.arange(SR) / SR
    mel, _ = log_mel((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    band = int(np.median(mel.argmax(axis=0)))
    expected = int(np.argmin(np.abs(mel_centres(MelConfig()) - freq)))
    assert abs(band - expected) <= 1, (band, expected)


def test_click_time_aligns_with_mel_times():
    wave = np.zeros(SR, np.float32)
    wave[int(0.537 * SR)] = 1.0  # a click at 0.537 s
    mel, times = log_mel(wave)
    assert abs(times[mel.mean(axis=0).argmax()] - 0.537) <= 0.01


def test_audio_of_a_video_aligns_with_its_duration(make_video):
    from fakelens.io.audio import read_audio

    path = make_video("a.mkv", n_frames=20, fps=10, audio_seconds=2.0)
    mel, times = log_mel(read_audio(path))
    assert abs(times[-1] - 2.0) <= 0.02
    band = int(np.median(mel.argmax(axis=0)))
    assert abs(mel_centres(MelConfig())[band] - 220) < 60  # the fixture's 220 Hz tone


def test_blocks_equal_one_transform():
    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.1, SR * 3 + 123).astype(np.float32)
    whole, t1 = log_mel(wave, block_frames=10**6)
    blocks, t2 = log_mel(wave, block_frames=37)
    np.testing.assert_allclose(blocks, whole, atol=1e-4)
    np.testing.assert_array_equal(t1, t2)


@pytest.mark.parametrize("n", [SR * 2 + 77, 200])
def test_edges_match_torch_centred_stft(n):
    """Blocks cut from the virtual padded signal equal torch.stft(center=True) of the whole wave
    (reflect padding; zero padding below half an FFT)."""
    import torch

    from fakelens.audio.features import LOG_FLOOR, MelConfig, mel_filterbank

    cfg = MelConfig()
    wave = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    mode = "reflect" if n > cfg.n_fft // 2 else "constant"
    spec = torch.stft(torch.from_numpy(wave), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                      win_length=cfg.win_length, window=torch.hann_window(cfg.win_length), center=True,
                      pad_mode=mode, return_complex=True)  # (n_bins, F)
    fb = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels))
    want = torch.log((fb @ spec.abs() ** 2).clamp_min(LOG_FLOOR)).numpy()  # (n_mels, F)
    got, _ = log_mel(wave, cfg, block_frames=23)
    np.testing.assert_allclose(got, want, atol=1e-3)
