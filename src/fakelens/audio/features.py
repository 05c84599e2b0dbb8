"""Log-mel spectrograms with torch.stft and a numpy Slaney mel filterbank (no torchaudio/librosa).

Defaults follow speech practice: 16 kHz mono, 80 mels, 25 ms Hann window, 10 ms hop, FFT 512.
Frames are centred (the signal is reflect-padded by half an FFT), so mel frame f is centred
at f * hop seconds: `mel_times` aligns audio with video frame times in seconds.
The filterbank equals librosa.filters.mel(htk=False, norm="slaney").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Natural-log floor: log(1e-6) ~ -13.8; keeps digital silence finite and float16-safe.
LOG_FLOOR = 1e-6


@dataclass(frozen=True)
class MelConfig:
    """Log-mel parameters; `hop_seconds` sets the time resolution of `mel_times`."""

    sample_rate: int = 16000
    n_mels: int = 80
    win_seconds: float = 0.025
    hop_seconds: float = 0.010
    n_fft: int = 512
    fmin: float = 0.0
    fmax: float | None = None  # None = sample_rate / 2

    @property
    def win_length(self) -> int:
        return int(round(self.win_seconds * self.sample_rate))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_seconds * self.sample_rate))


# Slaney's mel scale: linear (F_SP Hz per mel) below MIN_LOG_HZ, logarithmic (LOGSTEP) above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    return np.where(f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, f / _F_SP)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    m = np.asarray(m, np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular filters: (n_mels, n_fft // 2 + 1) float32 (each filter has area ~1)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)  # (n_bins,)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))  # (n_mels, n_bins)
    weights *= (2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels]))[:, None]
    weights.setflags(write=False)
    return weights.astype(np.float32)


def mel_centres(cfg: MelConfig = MelConfig()) -> np.ndarray:
    """(n_mels,) centre frequency in Hz of each mel band."""
    fmax = cfg.sample_rate / 2 if cfg.fmax is None else cfg.fmax
    return mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(fmax), cfg.n_mels + 2))[1:-1]


def log_mel(wave: np.ndarray, cfg: MelConfig = MelConfig(), block_frames: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Mono float waveform (S,) at cfg.sample_rate -> (log-mel (n_mels, F) float32, times (F,) seconds).

    F = 1 + S // hop (centred frames); an empty waveform gives F = 0. Long audio is transformed
    in blocks of `block_frames` frames (20 s by default: ~8 MB of spectra) so memory stays
    bounded; the result is the same as one transform of the whole signal.
    """
    import torch

    wave = np.asarray(wave, np.float32).reshape(-1)  # (S,)
    n_frames = 0 if len(wave) == 0 else 1 + len(wave) // cfg.hop_length
    times = np.arange(n_frames) * cfg.hop_seconds  # (F,)
    out = np.zeros((cfg.n_mels, n_frames), np.float32)  # (n_mels, F)
    if n_frames == 0:
        return out, times
    half = cfg.n_fft // 2
    # Centring pads half an FFT on each side (reflected, or zeros for a very short signal); the
    # blocks are cut from that virtual padded signal, never building a padded copy of it all.
    if len(wave) > half:
        left, right = wave[1 : half + 1][::-1], wave[-half - 1 : -1][::-1]  # (half,) each, "reflect"
    else:
        left = right = np.zeros(half, np.float32)
    window = torch.hann_window(cfg.win_length)
    fb = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax))
    for f0 in range(0, n_frames, block_frames):
        f1 = min(n_frames, f0 + block_frames)
        piece = torch.from_numpy(_padded_slice(wave, left, right, f0 * cfg.hop_length,
                                               (f1 - 1) * cfg.hop_length + cfg.n_fft))
        spec = torch.stft(piece, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=window, center=False, return_complex=True)  # (n_bins, f1 - f0)
        power = spec.real**2 + spec.imag**2
        out[:, f0:f1] = torch.log((fb @ power).clamp_min(LOG_FLOOR)).numpy()
    return out, times


def _padded_slice(wave: np.ndarray, left: np.ndarray, right: np.ndarray, p0: int, p1: int) -> np.ndarray:
    """Samples [p0, p1) of concatenate([left, wave, right]) without building it -> (p1 - p0,) float32."""
    n_left, n = len(left), len(wave)
    parts = []
    if p0 < n_left:
        parts.append(left[p0 : min(p1, n_left)])
    a, b = max(p0 - n_left, 0), min(p1 - n_left, n)
    if b > a:
        parts.append(wave[a:b])
    if p1 > n_left + n:
        parts.append(right[max(p0 - n_left - n, 0) : p1 - n_left - n])
    return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0], np.float32)
