"""Perturbations of media files by name: the degradations real videos suffer, at a severity.

Each `Perturbation` in PERTURBATIONS changes the frames (H.264 re-encoding at a CRF, JPEG
quality, downscaling, Gaussian blur or noise, brightness/contrast) or the audio (noise at an SNR,
resampling, MP3) of a video and writes the perturbed copy as a new file (`perturb_file`), which
then goes through the one media -> features path like any video (fakelens.features.media). A
perturbation of the frames keeps the audio samples, one of the audio keeps the pixels: the
copy is written losslessly (FFV1 + FLAC in .mkv) except for `h264_crf`, whose point is the
H.264 encoder (.mp4, AAC). `audio_removed` drops the audio stream (what most footage in the field
looks like to an audio-visual model). Attacks on a model's inputs (FGSM, PGD) are not media
perturbations: they live in fakelens.inference.adversarial and are listed here with stream
"model" so that one registry names everything `fakelens robustness` can apply.

Severities are numbers in the perturbation's own unit (`unit`; an attack's eps in 1/255 of the
pixel range); the noise is seeded from the
seed given and the video's name, so a copy is the same on every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from fakelens.errors import FakelensError
from fakelens.registry import Registry

FrameFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]  # (H, W, 3) uint8 -> same
AudioFn = Callable[[np.ndarray, int, float, np.random.Generator], np.ndarray]  # (S,) float32, rate -> (S,)


@dataclass(frozen=True)
class Perturbation:
    """A degradation by name: `stream` "video" (frames), "audio", "container" (streams removed)
    or "model" (an attack on the model's inputs, fakelens.inference.adversarial); `severities`
    its default levels in `unit`, mildest first."""

    name: str
    stream: str
    severities: tuple[float, ...]
    unit: str
    about: str
    frames: FrameFn | None = None
    audio: AudioFn | None = None


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def _add(p: Perturbation) -> Perturbation:
    PERTURBATIONS.register(p.name)(p)
    return p


def _identity(frame: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    return frame


def _jpeg(frame: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise FakelensError(f"JPEG encoding at quality {quality} failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _downscale(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Scaled down by `factor` (area) and back up to the original size (bilinear), as a platform
    that stores a small copy and a player that shows it full size do."""
    import cv2

    h, w = frame.shape[:2]
    small = cv2.resize(frame, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _blur(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(frame, (0, 0), sigmaX=float(sigma))


def _noise(frame: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noisy = frame.astype(np.float32) + rng.normal(0.0, float(std), frame.shape).astype(np.float32)  # (H, W, 3)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _contrast(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Contrast scaled by `factor` about mid-grey and brightness shifted by (factor - 1) * 64:
    factor < 1 is a dim, flat picture, > 1 a bright, harsh one."""
    out = (frame.astype(np.float32) - 128.0) * float(factor) + 128.0 + (float(factor) - 1.0) * 64.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _audio_noise(audio: np.ndarray, rate: int, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at `snr_db` dB below the signal's mean power (silence gets none)."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) if audio.size else 0.0
    std = np.sqrt(power / (10.0 ** (float(snr_db) / 10.0)))
    return (audio + rng.normal(0.0, std, audio.shape)).astype(np.float32)


def _resample(audio: np.ndarray, rate: int, low: float, rng: np.random.Generator) -> np.ndarray:
    """Down to `low` Hz and back to the original rate (a telephone-band copy at 8000)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    if low >= rate:
        return audio
    f = Fraction(int(low), int(rate)).limit_denominator(1000)
    down = resample_poly(audio, f.numerator, f.denominator)
    up = resample_poly(down, f.denominator, f.numerator)
    out = np.zeros_like(audio)
    n = min(len(out), len(up))
    out[:n] = up[:n]
    return out.astype(np.float32)


def _mp3(audio: np.ndarray, rate: int, kbps: float, rng: np.random.Generator) -> np.ndarray:
    """Through the LAME MP3 encoder at `kbps` and decoded back (same length, same rate)."""
    import tempfile

    import av

    from fakelens.io.audio import read_audio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.mp3"
        with av.open(str(path), "w") as out:
            s = out.add_stream("libmp3lame", rate=rate)
            s.layout = "mono"
            s.bit_rate = int(kbps * 1000)
            frame = av.AudioFrame.from_ndarray(np.clip(audio, -1, 1)[None].astype(np.float32), format="flt",
                                               layout="mono")
            frame.sample_rate = rate
            for packet in s.encode(frame):
                out.mux(packet)
            for packet in s.encode():
                out.mux(packet)
        back = read_audio(path, rate)
    res = np.zeros_like(audio)
    n = min(len(res), len(back))
    res[:n] = back[:n]
    return res


_add(Perturbation("h264_crf", "video", (28, 34, 40, 46), "CRF",
                  "re-encoded with H.264 (x264, veryfast) at this constant rate factor (23 = default; 51 = worst)",
                  frames=_identity))
_add(Perturbation("jpeg", "video", (70, 40, 20, 10), "quality",
                  "each frame through JPEG at this quality (OpenCV)", frames=_jpeg))
_add(Perturbation("downscale", "video", (0.5, 0.25, 0.125), "factor",
                  "scaled down by this factor and back up", frames=_downscale))
_add(Perturbation("blur", "video", (1.0, 2.0, 4.0), "sigma (px)", "Gaussian blur", frames=_blur))
_add(Perturbation("noise", "video", (5.0, 10.0, 20.0, 40.0), "std (0-255)", "Gaussian pixel noise",
                  frames=_noise))
_add(Perturbation("contrast", "video", (0.5, 0.75, 1.5), "factor",
                  "contrast scaled about mid-grey, brightness shifted with it", frames=_contrast))
_add(Perturbation("audio_noise", "audio", (30.0, 20.0, 10.0, 0.0), "SNR (dB)", "white noise on the audio",
                  audio=_audio_noise))
_add(Perturbation("audio_resample", "audio", (8000.0, 4000.0), "Hz", "audio resampled down to this rate and back",
                  audio=_resample))
_add(Perturbation("audio_mp3", "audio", (64.0, 32.0, 16.0), "kbit/s", "audio through MP3 (LAME) at this bit rate",
                  audio=_mp3))
_add(Perturbation("audio_removed", "container", (1.0,), "-", "the audio stream removed"))
_add(Perturbation("fgsm", "model", (1.0, 2.0, 4.0, 8.0), "eps (/255)",
                  "white-box FGSM (torchattacks) on the face crops the model sees, against the true label"))
_add(Perturbation("pgd", "model", (1.0, 2.0, 4.0, 8.0), "eps (/255)",
                  "white-box PGD (torchattacks: 10 steps of eps/4, random start) on the face crops"))


def seed_for(path: str | Path, name: str, severity: float, seed: int) -> np.random.Generator:
    """The noise of one file's copy: from the seed, the perturbation and the file's name."""
    key = f"{seed}:{name}:{severity!r}:{Path(path).name}".encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def output_suffix(name: str) -> str:
    """The container a perturbed copy is written in: mp4 for the H.264 re-encoding, else lossless mkv."""
    return ".mp4" if name == "h264_crf" else ".mkv"


def perturb_file(src: str | Path, dst: str | Path, name: str, severity: float, seed: int = 0) -> Path:
    """Write `src` with perturbation `name` at `severity` to `dst` (atomically; the suffix should be
    `output_suffix(name)`); frames are streamed one at a time, the audio is read whole."""
    from fakelens.io.audio import read_audio
    from fakelens.io.encode import write_video
    from fakelens.io.video import iter_frames, probe

    p = PERTURBATIONS.get(name)
    if p.stream == "model":
        raise FakelensError(f"{name} attacks a model's inputs, not a media file (fakelens.inference.adversarial)")
    src, dst = Path(src), Path(dst)
    info = probe(src)
    rng = seed_for(src, name, severity, seed)
    rate = int(info.audio_rate or 16000)
    audio = None
    if info.has_audio and p.stream != "container":
        audio = read_audio(src, rate)  # (S,) mono
        if p.audio is not None:
            audio = p.audio(audio, rate, float(severity), rng)
    frame_fn = p.frames or _identity
    times: list[float] = []

    def frames():
        for t, rgb in iter_frames(src):
            times.append(t)
            yield frame_fn(rgb, float(severity), rng)

    ft = info.frame_times
    # frame times not probed (a file above COUNT_MAX_BYTES): the rate may vary, keep each frame's time
    vfr = ft is None or (len(ft) > 2 and float(np.ptp(np.diff(ft))) > 0.5 / max(info.fps, 1e-6))
    kw = dict(codec="h264", crf=int(round(severity))) if name == "h264_crf" else dict(codec="ffv1")
    dst.parent.mkdir(parents=True, exist_ok=True)
    # a variable frame rate keeps each frame's own time (read as it is decoded: write_video takes
    # the next time as it encodes each frame), a constant one its rate
    return write_video(dst, frames(), info.fps, audio=audio, sample_rate=rate, times=times if vfr else None, **kw)
