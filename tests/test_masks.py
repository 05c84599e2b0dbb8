"""Padding is masked, never scored: every temporal pooling, both fusions and the MIL tasks give a
padded clip exactly the result of the unpadded one, and predict cuts a video whose length is not
a multiple of the clip into clips of real frames only (issue 17, items 2 and 13)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fakelens.models import POOLINGS, create_model, resolve_config

PAD = 5  # copies of the last frame appended to a 3-frame clip


def _pad_last(x: torch.Tensor, copies: int = PAD, dim: int = 1) -> torch.Tensor:
    last = x.narrow(dim, x.shape[dim] - 1, 1)
    return torch.cat([x] + [last] * copies, dim=dim)


def _mask(b: int, valid: int, copies: int = PAD) -> torch.Tensor:
    return torch.cat([torch.ones(b, valid, dtype=torch.bool), torch.zeros(b, copies, dtype=torch.bool)], dim=1)


@pytest.mark.parametrize("name", POOLINGS.names())
def test_every_pooling_ignores_masked_steps(name):
    cfg = resolve_config("frame_tiny", temporal_dim=16, dropout=0.0)
    torch.manual_seed(0)
    pool = POOLINGS.get(name)(16, cfg).eval()
    x = torch.randn(2, 3, 16)  # (B, T, D)
    with torch.no_grad():
        seq, pooled = pool(x)
        seq_p, pooled_p = pool(_pad_last(x), _mask(2, 3))
        _, pooled_nomask = pool(_pad_last(x))
    torch.testing.assert_close(pooled_p, pooled, rtol=0, atol=1e-5)
    torch.testing.assert_close(seq_p[:, :3], seq, rtol=0, atol=1e-5)
    if name != "max":  # copies of the last frame do move an unmasked pooling (max is idempotent)
        assert not torch.allclose(pooled_nomask, pooled, atol=1e-4)
    with torch.no_grad():  # a row with nothing valid pools to a finite value (never scored)
        _, empty = pool(x, torch.zeros(2, 3, dtype=torch.bool))
    assert torch.isfinite(empty).all()


@pytest.mark.parametrize("pooling", POOLINGS.names())
def test_frame_model_padded_clip_gives_the_unpadded_result(pooling):
    torch.manual_seed(0)
    model = create_model("frame_tiny", num_frames=3, image_size=32, pooling=pooling, temporal_dim=16).eval()
    video = torch.rand(2, 3, 3, 32, 32)  # (B, T, 3, S, S)
    with torch.no_grad():
        ref = model(video)
        out = model(_pad_last(video), mask=_mask(2, 3))
    torch.testing.assert_close(out["logit"], ref["logit"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out["frame_logits"][:, :3], ref["frame_logits"], rtol=0, atol=1e-5)
    assert out["frame_mask"].tolist() == _mask(2, 3).tolist()


@pytest.mark.parametrize("fusion", ["late", "mid"])
@pytest.mark.parametrize("pooling", POOLINGS.names())
def test_av_model_padded_frames_give_the_unpadded_result(fusion, pooling):
    torch.manual_seed(0)
    model = create_model("av_tiny", num_frames=3, image_size=32, n_mels=16, audio_frames=24, pooling=pooling,
                         fusion=fusion, temporal_dim=16, audio_time_stride=8).eval()
    video = torch.rand(2, 3, 3, 32, 32)  # (B, T, 3, S, S)
    audio = torch.randn(2, 1, 16, 24) - 4.0  # (B, 1, M, W)
    times = torch.tensor([[0.0, 0.08, 0.16], [1.0, 1.08, 1.16]])  # (B, T) seconds
    audio_times = times[:, :1] + 0.01 * torch.arange(24)  # (B, W)
    with torch.no_grad():
        ref = model(video, audio, times=times, audio_times=audio_times)
        out = model(_pad_last(video), audio, mask=_mask(2, 3), times=_pad_last(times), audio_times=audio_times)
    for key in ("logit", "visual_logit", "audio_logit", "time_logits"):
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-5)
    torch.testing.assert_close(out["frame_logits"][:, :3], ref["frame_logits"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("model_name", ["audio_tiny", "av_tiny"])
def test_padded_mel_frames_are_neutral_and_pooled_out(model_name):
    """What fills the mel frames past the end of the audio (the log floor, or anything) does not
    reach the output: the filler is replaced inside the model, and its steps are masked."""
    torch.manual_seed(0)
    kw = {"num_frames": 3, "image_size": 32} if model_name == "av_tiny" else {}
    model = create_model(model_name, n_mels=16, audio_frames=40, temporal_dim=16, audio_time_stride=8, dropout=0.0,
                         **kw)
    inputs = {"video": torch.rand(2, 3, 3, 32, 32)} if model_name == "av_tiny" else {}
    with torch.no_grad():  # batch-norm statistics of log-mel-like inputs, so the output depends on the input
        for _ in range(30):
            model(audio=torch.randn(8, 1, 16, 40) - 4.0, **{k: v.repeat(4, 1, 1, 1, 1) for k, v in inputs.items()})
    model.eval()
    audio = torch.randn(2, 1, 16, 40) - 4.0  # (B, 1, M, W)
    audio_mask = torch.ones(2, 40, dtype=torch.bool)
    audio_mask[:, 27:] = False  # 27 real mel frames: steps 0-3 valid, step 4 holds only padding
    floor = audio.clone()
    floor[..., 27:] = math.log(1e-6)
    other = audio.clone()
    other[..., 27:] = 5.0 * torch.randn(2, 1, 16, 13)
    with torch.no_grad():
        a = model(audio=floor, audio_mask=audio_mask, **inputs)
        b = model(audio=other, audio_mask=audio_mask, **inputs)
        unmasked = model(audio=floor, **inputs)
    torch.testing.assert_close(a["logit"], b["logit"], rtol=0, atol=1e-5)
    torch.testing.assert_close(a["time_logits"], b["time_logits"], rtol=0, atol=1e-5)
    assert a["time_mask"].tolist() == [[True] * 4 + [False]] * 2
    assert not torch.allclose(unmasked["logit"], a["logit"], atol=1e-4)  # the floor as signal moves the score


def test_mil_pooling_is_the_same_in_training_validation_and_predict():
    """LSE r=5 over [3, -4] plus 6 padded copies: the training loss and video_logit (validation and
    predict) pool the same valid frames, 3 - ln(2) / 5 = 2.861, not the padded 2.584."""
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.tasks.pooling import PoolingParams, pool

    task = build_task(TaskConfig(name="mil", pooling="lse", lse_r=5.0))
    frames = torch.tensor([[3.0, -4.0] + [-4.0] * 6])  # (1, 8)
    mask = torch.tensor([[True, True] + [False] * 6])
    outputs = {"frame_logits": frames, "frame_mask": mask}
    want = 3.0 - math.log(2.0) / 5.0
    assert task.video_logit(outputs).item() == pytest.approx(want, abs=1e-5)
    assert pool("lse", frames[:, :2], None, PoolingParams(r=5.0)).item() == pytest.approx(want, abs=1e-5)
    loss, _ = task.loss(outputs, {"label": torch.tensor([1.0])})
    assert loss.item() == pytest.approx(math.log1p(math.exp(-want)), abs=1e-5)
    mean = build_task(TaskConfig(name="mil", pooling="mean"))
    assert mean.video_logit(outputs).item() == pytest.approx(-0.5)  # not -3.125 with the copies


class _RepeatDetector(nn.Module):
    """A stand-in for a trained model that never saw a padded clip: its clip logit is high when
    consecutive valid frames are identical (a frozen video), its frame logits are a fixed function
    of each frame."""

    input_names = ("video",)
    optional_input_names = ("mask",)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b, t = video.shape[:2]
        m = torch.ones(b, t, dtype=torch.bool) if mask is None else mask.bool()
        diff = (video[:, 1:] - video[:, :-1]).abs().flatten(2).mean(dim=2)  # (B, T-1)
        pair = m[:, 1:] & m[:, :-1]
        frozen = ((diff < 1e-6) & pair).any(dim=1).float()  # (B,)
        frame = video.flatten(2).mean(dim=2) * 4 - 2  # (B, T)
        return {"logit": 8.0 * frozen - 4.0, "frame_logits": frame, "frame_mask": m}


def _predictor(clip_frames: int, level: str, aggregate: str):
    from fakelens.features.media import MediaConfig
    from fakelens.inference.pipeline import LoadedRun, Predictor
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.config import load_train_config

    cfg = load_train_config(None, ["model.name=frame_tiny", f"data.clip_frames={clip_frames}",
                                   f"predict.level={level}", f"predict.aggregate={aggregate}"])
    run = LoadedRun(cfg=cfg, cache=MediaConfig(detector="full_frame"),
                    model=_RepeatDetector(), task=build_task(TaskConfig()), prior=0.5, checkpoint=None,
                    audio_width=None)
    return Predictor(run)


def _feats(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)  # every frame different
    clip = SimpleNamespace(main=faces, faces=faces[None], times=np.arange(n) / 25.0, fallback=None,
                           duration=n / 25.0, found=np.ones((1, n), bool), boxes=np.zeros((1, n, 4), np.float32),
                           detection=None)
    return SimpleNamespace(clip=clip, mel=np.zeros((80, 0), np.float32), mel_times=np.zeros(0), has_audio=False,
                           audio_message=None)


def test_seventeen_frames_in_clips_of_eight_score_as_real():
    """The reported case: 17 sampled frames, clips of 8. The third clip used to be frame 16 and
    seven copies of it, which a model never trained on such clips scores as fake; now it is
    frames 9-16, and the video scores as its real frames do."""
    pred = _predictor(8, "clips", "max")
    clips = pred._clips(_feats(17))
    assert [c["mask"].all() for c in clips] == [True] * 3
    assert [int(c["times"][0] * 25) for c in clips] == [0, 8, 9]
    p, _ = pred.predict_features("v", _feats(17))
    assert p.score == pytest.approx(1 / (1 + math.exp(4.0)))  # no clip is frozen
    p16, _ = pred.predict_features("v", _feats(16))
    assert p.score == pytest.approx(p16.score)  # 17 vs 16 frames: same verdict
    short, _ = pred.predict_features("v", _feats(5))  # shorter than a clip: padded, and the padding masked
    assert short.score == pytest.approx(p.score)


@pytest.mark.parametrize("n", [8, 9, 17, 23])
def test_frame_level_scores_count_each_frame_once(n):
    pred = _predictor(8, "frames", "mean")
    feats = _feats(n)
    p, _ = pred.predict_features("v", feats)
    frame = feats.clip.main.reshape(n, -1).astype(np.float64).mean(axis=1) / 255.0 * 4 - 2
    want = 1 / (1 + np.exp(-frame))  # (n,) P(fake) per frame
    np.testing.assert_allclose(p.frame_times, np.arange(n) / 25.0)
    np.testing.assert_allclose(p.frame_scores, want, rtol=1e-5)
    assert p.score == pytest.approx(float(want.mean()), rel=1e-5)  # the overlap counts once


def test_mid_fusion_positions_are_seconds_from_the_clip_start():
    """Frames 1/6 s apart (a 1.33 s clip) and a fixed 1.21 s audio window: a frame and an audio
    step at the same moment get the same position code, wherever the clip is in the video
    (issue 17, item 14: the code used to be each stream's fraction of its own span)."""
    from fakelens.models.temporal import sinusoidal

    torch.manual_seed(0)
    model = create_model("av_tiny", num_frames=8, image_size=32, n_mels=16, audio_frames=121, fusion="mid",
                         temporal_dim=16, audio_time_stride=8).eval()
    t0 = 5.0
    times = (t0 + torch.arange(8, dtype=torch.float64) / 6.0)[None]  # (1, T) seconds
    audio_times = (t0 + 0.01 * torch.arange(121, dtype=torch.float64))[None]  # (1, W)
    video, audio = torch.rand(1, 8, 3, 32, 32), torch.randn(1, 1, 16, 121) - 4.0
    pos_v, pos_a = model.positions(video, audio, 16, times, audio_times, None)  # (1, T), (1, F')
    np.testing.assert_allclose(pos_v[0].numpy(), np.arange(8) / 6.0, atol=1e-6)
    step_means = np.array([np.mean(0.01 * np.arange(8 * i, min(121, 8 * i + 8))) for i in range(16)])
    np.testing.assert_allclose(pos_a[0].numpy(), step_means, atol=1e-6)
    # a window starting 15 ms before the first frame: step 6 (mel frames 48..55, mean 0.515 s into
    # the window) is at 0.5 s from the clip start, the moment of frame 3
    pos_v, pos_a = model.positions(video, audio, 16, times, audio_times - 0.015, None)
    assert abs(float(pos_v[0, 3]) - 0.5) < 1e-6 and abs(float(pos_a[0, 6]) - 0.5) < 1e-6
    code = sinusoidal(torch.stack([pos_v[0, 3], pos_a[0, 6]]) * 100.0, 16)
    torch.testing.assert_close(code[0], code[1], rtol=0, atol=1e-5)
    with torch.no_grad():  # the clip's place in the video does not matter, only times within it
        a = model(video, audio, times=times, audio_times=audio_times)
        b = model(video, audio, times=times - t0, audio_times=audio_times - t0)
    torch.testing.assert_close(a["logit"], b["logit"], rtol=0, atol=1e-5)
