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


class _MeanPixel(torch.nn.Module):
    """A visual "encoder" whose feature is the crop's mean pixel: (B, T, 3, S, S) -> (B, T, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))[..., None]


def _split_track_stream(n: int = 40):
    """One person whose track split in two at step 24 (track 0: steps 0-24, track 1: 22-39, as the
    tracker gives when it lost and re-found the face); each track's crops are filled with its value."""
    from types import SimpleNamespace

    found = np.zeros((2, n), bool)
    found[0, :25] = True
    found[1, 22:] = True
    boxes = np.stack([np.tile([1, 1, 9, 9], (n, 1)), np.tile([2, 2, 10, 10], (n, 1))]).astype(np.float32)

    def iter_crops(chunk):
        for a in range(0, n, chunk):
            k = min(chunk, n - a)
            crops = np.zeros((2, k, 4, 4, 3), np.uint8)
            crops[0], crops[1] = 51, 204  # track 0 -> 0.2, track 1 -> 0.8
            yield a, crops

    tracks = SimpleNamespace(times=np.arange(n) / 25.0, indices=np.arange(n), n_faces=2, fallback=None, found=found,
                             boxes=boxes, iter_crops=iter_crops, fps=25.0, duration=n / 25.0, width=64, height=64,
                             status="ok", n_detect_runs=10, n_refined=0, n_detected=10, n_tracks=2,
                             known=lambda: None)
    return SimpleNamespace(faces=tracks, mel=np.zeros((16, 0), np.float32), mel_times=np.zeros(0), has_audio=False,
                           audio_message="no audio stream", timings={})


def test_a_split_face_track_is_followed_across_both_pieces(monkeypatch):
    import fakelens.inference.dense as dense
    from fakelens.data.features import FeatureConfig
    from fakelens.features.media import MediaConfig
    from fakelens.inference.dense import face_rows

    np.testing.assert_array_equal(face_rows(np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0]], bool)), [0, 0, 1, 0, 0])
    monkeypatch.setattr(dense, "open_features", lambda path, media, detector, known=None, centred=False: _split_track_stream())
    enc = DenseEncoder({"visual": {"kind": "frame", "backbone": "mean", "dim": 1}, "audio": None}, _MeanPixel(), None)
    dv = dense.dense_features("v.mp4", FeatureConfig(media=MediaConfig(sampling="all", max_faces=4), encoder={}), enc,
                              chunk_frames=16)
    a = dv.arrays
    assert a["found"].all() and dv.counts["found"] == 40 and dv.counts["tracks_used"] == 2  # was 25 of 40: track 0 only
    np.testing.assert_array_equal(a["face_track"], [0] * 25 + [1] * 15)
    np.testing.assert_allclose(a["visual"][:, 0].astype(np.float32), [0.2] * 25 + [0.8] * 15, atol=2e-3)
    np.testing.assert_array_equal(a["boxes"][30], [2, 2, 10, 10])  # each step's box is its face's
