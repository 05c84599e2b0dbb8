"""Shared fixtures: tiny media written on the fly (lossless where pixel values are checked)."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keep the suite predictable on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def make_video(tmp_path):
    """make_video(name, n_frames=20, fps=10, size=(48, 64), audio_seconds=None, codec=...) -> Path.

    Frame i has every pixel's red channel = (i * 10) % 256 so frame identity can be checked.
    """
    from fakelens.io.encode import write_video

    def _make(name="v.mkv", n_frames=20, fps=10.0, size=(48, 64), audio_seconds=None, codec=None,
              sample_rate=16000, rotation=0):
        h, w = size
        frames = []
        for i in range(n_frames):
            img = np.zeros((h, w, 3), np.uint8)  # (H, W, 3)
            img[..., 0] = (i * 10) % 256
            img[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
            frames.append(img)
        audio = None
        if audio_seconds:
            t = np.arange(int(audio_seconds * sample_rate)) / sample_rate
            audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # (S,)
        path = tmp_path / name
        if codec is None:
            codec = "ffv1" if path.suffix == ".mkv" else "h264"
        return write_video(path, frames, fps, audio=audio, sample_rate=sample_rate, codec=codec,
                           rotation=rotation)

    return _make


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """The synthetic "tiny" preset, generated once per session; tests only read it."""
    from fakelens.data.synthetic import generate, preset

    return generate(tmp_path_factory.mktemp("synth") / "tiny", preset("tiny"), progress=False)
