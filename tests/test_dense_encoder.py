"""Dense features' encoders and face rows: what `fakelens features` stores per step must be what the
run's encoders computed in training (the audio encoder's padding masked), whatever the padding."""

from __future__ import annotations

import numpy as np
import torch

from fakelens.inference.dense import DenseEncoder
from fakelens.models.audio import AudioEncoder


def _audio_encoder(width: int = 64, stride: int = 4) -> DenseEncoder:
    torch.manual_seed(0)
    net = AudioEncoder("tinycnn", False, 16, stride)
    with torch.no_grad():  # BatchNorm statistics of a trained model: the mel bins' scale matters
        net.bn0.running_mean.fill_(-6.0)
        net.bn0.running_var.fill_(4.0)
    spec = {"visual": None, "audio": {"kind": "cnn", "backbone": "tinycnn", "n_mels": 16, "time_stride": stride,
                                      "window": width, "dim": int(net.out_dim)}}
    return DenseEncoder(spec, None, net)


def test_the_last_audio_window_is_encoded_as_in_training_whatever_its_padding():
    enc = _audio_encoder()
    rng = np.random.default_rng(0)
    n = 64 * 2 + 23  # two whole windows and 23 mel frames of a third
    mel = rng.normal(-6.0, 2.0, (16, n)).astype(np.float32)  # (n_mels, M)
    times = 0.005 + 0.01 * np.arange(n)
    feats, t = enc.encode_mel(mel, times)
    assert feats.shape == (-(-n // 4), enc.audio_dim) and len(t) == len(feats)
    # training's AudioEncoder on the last window: the padding masked (filled with the window's mean),
    # so any value past the audio's end gives the same features
    with torch.no_grad():
        for fill in (np.log(1e-6), 0.0, 30.0):
            last = np.full((16, 64), fill, np.float32)
            last[:, :23] = mel[:, 128:]
            f, _ = enc.audio(torch.from_numpy(last)[None, None], torch.arange(64)[None] < 23)  # (1, 16, D)
            np.testing.assert_allclose(feats[32:], f[0, :6].numpy(), rtol=1e-4, atol=1e-4)
    # the whole windows are untouched by the last one's padding: the same audio cut at a window multiple
    cut, _ = enc.encode_mel(mel[:, :128], times[:128])
    np.testing.assert_allclose(feats[:32], cut, rtol=1e-5, atol=1e-5)
