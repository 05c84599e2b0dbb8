"""Voice: a formant synthesizer (glottal pulses through vowel resonances), syllables and pauses."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
                    [300, 870, 2240], [660, 1720, 2410]], np.float64)  # a e i o u ae (Hz, adult male)
_BANDWIDTHS = (80.0, 110.0, 160.0, 250.0, 300.0)
_HIGH_FORMANTS = (3500.0, 4500.0)  # F4, F5: speaker-dependent only through the vocal-tract scale


@dataclass(frozen=True)
class Speaker:
    """Voice parameters: base pitch (Hz), vocal-tract scale, speaking rate (syllables/s)..."""

    f0: float
    formant: float
    rate: float
    breath: float
    jitter: float
    intonation: float  # semitones
    tilt: float  # one-pole glottal low-pass coefficient


@dataclass(frozen=True)
class Syllable:
    start: float  # seconds, consonant onset
    consonant: float  # seconds (0 = none)
    vowel_dur: float  # seconds
    vowel: int
    stress: float  # peak amplitude in (0, 1]
    word: int = 0  # index of the word it belongs to (words are separated by pauses)

    @property
    def end(self) -> float:
        return self.start + self.consonant + self.vowel_dur


def _speaker(rng: np.random.Generator) -> Speaker:
    f0 = float(np.exp(rng.uniform(np.log(85), np.log(235))))
    formant = 0.92 + 0.2 * (np.log(f0 / 85) / np.log(235 / 85)) + rng.uniform(-0.04, 0.04)
    return Speaker(f0, float(formant), rng.uniform(3.6, 5.2), rng.uniform(0.03, 0.1), rng.uniform(0.004, 0.015),
                   rng.uniform(1.5, 4.0), rng.uniform(0.6, 0.85))


def _utterance(rng: np.random.Generator, duration: float, rate: float) -> list[Syllable]:
    """Words of 1-4 syllables separated by pauses, covering `duration` seconds."""
    out: list[Syllable] = []
    t = rng.uniform(0.05, 0.3)
    word = 0
    while t < duration:
        n = int(rng.integers(1, 5))
        stressed = int(rng.integers(n))
        for k in range(n):
            cons = rng.uniform(0.03, 0.07) if rng.random() < 0.7 else 0.0
            vdur = max(0.06, rng.uniform(0.55, 0.95) / rate - cons)
            out.append(Syllable(t, cons, vdur, int(rng.integers(len(_VOWELS))),
                                1.0 if k == stressed else rng.uniform(0.55, 0.8), word))
            t += cons + vdur + rng.uniform(0.0, 0.03)
        t += rng.uniform(0.12, 0.45) if rng.random() < 0.85 else rng.uniform(0.5, 0.8)
        word += 1
    return out


def word_spans(syllables: Sequence[Syllable]) -> dict[int, tuple[float, float]]:
    """{word index: (start, end) seconds}, in order."""
    spans: dict[int, tuple[float, float]] = {}
    for syl in syllables:
        a, b = spans.get(syl.word, (syl.start, syl.end))
        spans[syl.word] = (a, max(b, syl.end))
    return spans


def within(syllables: Sequence[Syllable], spans: Sequence[tuple[float, float]]) -> list[Syllable]:
    """The whole words that lie inside one of `spans` (seconds): a person speaks only there."""
    keep = {w for w, (a, b) in word_spans(syllables).items() if any(lo <= a and b <= hi for lo, hi in spans)}
    return [s for s in syllables if s.word in keep]


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centered box filter of width n along the last axis (cumulative sums: O(len)), same shape."""
    if n <= 1:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(n // 2 + 1, n - n // 2 - 1)]
    c = np.cumsum(np.pad(x, pad), axis=-1)
    return (c[..., n:] - c[..., :-n]) / n


class _Spectrum:
    """Filtering by multiplication in the frequency domain (no scipy.signal: it takes seconds to import).

    Responses are those of the classic filters: 2-pole resonators and a one-pole glottal low-pass
    (their exact frequency responses, so the same phase as the IIR filters), and zero-phase
    Butterworth magnitudes. Padding keeps the circular wrap-around of the short responses negligible.
    """

    def __init__(self, n: int, sr: int):
        self.n = n
        self.nfft = -(-(n + 2048) // 4096) * 4096
        self.f = np.fft.rfftfreq(self.nfft, 1 / sr)  # (F,) Hz
        self.z = np.exp(-2j * np.pi * self.f / sr)  # (F,) e^{-jw}
        self.sr = sr

    def spectrum(self, x: np.ndarray) -> np.ndarray:
        return np.fft.rfft(x, self.nfft)

    def signal(self, spec: np.ndarray) -> np.ndarray:
        return np.fft.irfft(spec, self.nfft)[: self.n]

    def resonator(self, freq: float, bandwidth: float) -> np.ndarray:
        """2-pole resonance, unit gain at 0 Hz."""
        r = math.exp(-math.pi * bandwidth / self.sr)
        c = -2 * r * math.cos(2 * math.pi * min(freq, 0.45 * self.sr) / self.sr)
        return (1 + c + r * r) / (1 + c * self.z + r * r * self.z**2)

    def one_pole(self, a: float) -> np.ndarray:
        return (1 - a) / (1 - a * self.z)

    def lowpass(self, cutoff: float, order: int) -> np.ndarray:
        return 1 / np.sqrt(1 + (self.f / cutoff) ** (2 * order))

    def highpass(self, cutoff: float, order: int) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1 / np.sqrt(1 + (cutoff / np.maximum(self.f, 1e-9)) ** (2 * order))


_CHUNK_S = 30.0  # long recordings are synthesized in pieces of about this length, cut in pauses


def synthesize_voice(syllables: Sequence[Syllable], spk: Speaker, n: int, sr: int, rng: np.random.Generator,
                     *, flat: float = 0.0, lowpass: float | None = None, room_db: float = 0.0,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Render speech. Returns audio (n,) float32 (peak about 0.5) and the voicing envelope (n,) in [0, 1].

    `flat` in [0, 1] removes intonation and jitter (TTS-like monotony); `lowpass` (Hz) band-limits
    the result like a vocoder at a low sample rate; `room_db` lowers the room noise (a studio TTS
    voice spliced into a recording lacks it). Recordings longer than ~45 s are made of ~30 s pieces
    joined in pauses between words, so memory and time stay linear in the length.
    """
    kw = dict(flat=flat, lowpass=lowpass, room_db=room_db)
    if n <= 1.5 * _CHUNK_S * sr:
        return _synthesize(syllables, spk, n, sr, rng, **kw)
    cuts, target = [0], _CHUNK_S
    for prev, syl in zip(syllables, syllables[1:]):
        if syl.start >= target and syl.word != prev.word and (n / sr - syl.start) > 0.5 * _CHUNK_S:
            cut = (prev.end + syl.start) / 2
            cuts.append(int(cut * sr))
            target = cut + _CHUNK_S
    cuts.append(n)
    audio, env = [], []
    for a, b in zip(cuts, cuts[1:]):
        piece = [dataclasses.replace(s, start=s.start - a / sr) for s in syllables if a <= s.start * sr < b]
        x, e = _synthesize(piece, spk, b - a, sr, rng, **kw)
        audio.append(x)
        env.append(e)
    return np.concatenate(audio), np.concatenate(env)


def _synthesize(syllables: Sequence[Syllable], spk: Speaker, n: int, sr: int, rng: np.random.Generator,
                *, flat: float, lowpass: float | None, room_db: float) -> tuple[np.ndarray, np.ndarray]:
    env_v = np.zeros(n, np.float64)  # (n,) vowel amplitude
    env_c = np.zeros(n, np.float64)  # (n,) consonant noise amplitude
    vowel_w = np.zeros((len(_VOWELS), n))  # (V, n) which vowel's resonances are active
    stress = np.zeros(n)
    for syl in syllables:
        c0 = int(syl.start * sr)
        if c0 >= n:
            break
        c1 = c0 + int(syl.consonant * sr)
        v1 = c1 + int(syl.vowel_dur * sr)
        if c1 > c0:
            env_c[c0 : min(c1, n)] += np.hanning(c1 - c0)[: max(0, min(c1, n) - c0)]
        length = v1 - c1
        att, rel = min(int(0.015 * sr), length // 3), min(int(0.045 * sr), length // 2)
        shape = np.ones(length)
        shape[:att] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, att))
        shape[length - rel :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, rel))
        stop = min(v1, n)
        if stop > c1:
            env_v[c1:stop] = np.maximum(env_v[c1:stop], syl.stress * shape[: stop - c1])
            stress[c1:stop] = syl.stress
        vowel_w[syl.vowel, max(0, c0 - int(0.02 * sr)) : stop] = 1
    vowel_w = _moving_average(vowel_w, int(0.025 * sr))
    vowel_w[0] += 1e-6  # a defined mix where no vowel is active (silence there anyway)
    vowel_w /= vowel_w.sum(0, keepdims=True)

    t = np.arange(n) / sr
    semis = spk.intonation * (0.45 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
                              + 0.8 * (_moving_average(stress, int(0.08 * sr)) - 0.5)) - 1.5 * t / max(t[-1], 1e-3)
    jitter_ctrl = rng.normal(0, 1, n // 160 + 2)
    jitter = np.interp(np.arange(n) / 160, np.arange(len(jitter_ctrl)), jitter_ctrl) * spk.jitter * 12
    f0 = spk.f0 * 2 ** ((semis + jitter) * (1 - flat) / 12)  # (n,) Hz
    phase = 2 * np.pi * np.cumsum(f0) / sr
    top = min(0.45 * sr, lowpass or sr)
    k = max(1, int(top / f0.max()))
    half = np.sin(phase / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # band-limited pulse train: sum of k harmonics of the phase (Dirichlet kernel)
        pulses = np.where(np.abs(half) > 1e-6, np.sin((k + 0.5) * phase) / (2 * half) - 0.5, k) / k  # (n,)
    fx = _Spectrum(n, sr)
    source = fx.spectrum(pulses) * fx.one_pole(spk.tilt)
    voiced = np.zeros(n)
    for v, formants in enumerate(_VOWELS):
        if vowel_w[v].max() < 1e-3:
            continue
        freqs = [*formants, *_HIGH_FORMANTS]
        resp = np.prod([fx.resonator(f * spk.formant, bw) for f, bw in zip(freqs, _BANDWIDTHS)], axis=0)
        voiced += vowel_w[v] * fx.signal(source * resp)
    loud = env_v > 0.5
    voiced /= max(float(np.sqrt(np.mean(voiced[loud] ** 2))) if loud.any() else 1.0, 1e-9)
    noise = fx.spectrum(rng.normal(0, 1, n))
    hiss = fx.signal(noise * fx.highpass(min(3000, 0.4 * sr), 4))
    breath = fx.signal(noise * fx.highpass(400, 2) * fx.lowpass(min(4000, 0.45 * sr), 2))
    audio = voiced * env_v + 0.12 * hiss * env_c + spk.breath * breath * env_v
    if lowpass is not None:
        audio = fx.signal(fx.spectrum(audio) * fx.lowpass(lowpass, 8))
    audio *= 0.5 / max(float(np.percentile(np.abs(audio), 99.9)), 1e-9)
    room_noise = fx.signal(fx.spectrum(rng.normal(0, 1, n)) * fx.lowpass(1500, 1))
    audio += 10 ** ((rng.uniform(-48, -40) - room_db) / 20) * room_noise / max(float(room_noise.std()), 1e-9)
    return audio.astype(np.float32), np.clip(env_v, 0, 1).astype(np.float32)


def _mouth_openness(env: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean voicing envelope over each frame's audio, frame k spanning samples edges[k]:edges[k + 1]:
    (T,) in [0, 1] for T + 1 edges."""
    n_frames = len(edges) - 1
    step = edges[1] - edges[0]
    if step > 0 and np.array_equal(edges, edges[0] + step * np.arange(n_frames + 1)) and edges[0] == 0:
        per_frame = env[: n_frames * step].reshape(n_frames, step).mean(1)  # constant frame rate
    else:
        per_frame = np.array([env[a:b].mean() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    return np.clip(per_frame / 0.8, 0, 1)
