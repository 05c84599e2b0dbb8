"""Dense per-step features: the media -> faces -> crops path of every frame (or a stated fps)
with an encoder stage, per video and as the resumable, sharded `fakelens features` job.

The frames, faces and crops come from fakelens.features.media.open_features (the path
`preprocess` and `predict` use); the crops are cut in chunks (`FaceTracks.iter_crops`) and each
chunk goes through the frozen visual encoder at once, so memory holds one chunk whatever the
video's length. The log-mel goes through the audio encoder in windows. Encoders (`DenseEncoder`):
- the visual encoder of a trained run (frame or audio-visual models: their per-frame CNN), or
  a named 2D backbone (timm or fakelens', random init with a fixed seed unless `pretrained`);
- the audio encoder of a trained run (audio or audio-visual models), a named 2D backbone over
  the log-mel, "logmel" (the log-mel bands averaged over `stride` mel frames: no parameters), or
  "none".
The encoders' weights are written to FEATS/encoder.pt (and copied into every run trained on the
folder, so `predict` needs nothing else); FEATS/config.json records their names, widths and a
digest of the weights. The folder layout is fakelens.data.features.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from fakelens.data.cache import CacheJob, _record_fields, file_identity, params_digest, safe_id
from fakelens.data.features import FEATURE_DTYPE, FEATURES_VERSION, FeatureConfig, stale_features
from fakelens.errors import ConfigError, FakelensError, MediaError
from fakelens.features.media import MediaConfig, open_features, step_frames
from fakelens.types import VideoRecord

ENCODER_FILE = "encoder.pt"
LOGMEL_STRIDE = 4  # mel frames (10 ms each) per "logmel" audio step: 40 ms, a 25 fps frame
AUDIO_WINDOW = 1000  # mel frames per window of a named audio backbone (10 s)
CHUNK_FRAMES = 64  # face crops per forward pass of the visual encoder
# Face tracks followed per video for the dense features (media.max_faces): one feature row per step,
# taken per frame from the first of these tracks (most detections first) that has the face there
# (`face_rows`), so a face whose track splits in two (a missed link, a long miss) stays seen.
DENSE_MAX_FACES = 4


# ------------------------------------------------------------------------------------ encoders


class LogMelSteps(nn.Module):
    """The parameter-free audio "encoder": (n_mels, M) log-mel -> (ceil(M / stride), n_mels) means."""

    def __init__(self, stride: int = LOGMEL_STRIDE):
        super().__init__()
        self.stride = int(stride)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        m = mel.shape[-1]
        pad = (-m) % self.stride
        x = torch.nn.functional.pad(mel, (0, pad), mode="replicate") if pad and m else mel  # (n_mels, M')
        return x.reshape(x.shape[0], -1, self.stride).mean(dim=2).T  # (A, n_mels)


@dataclass
class DenseEncoder:
    """The frozen encoders of a features folder. `spec` describes them (what rebuilds them):
    {"visual": {"kind": "frame", "backbone", "dim"} | None,
     "audio": {"kind": "cnn", "backbone", "n_mels", "time_stride", "window", "dim"}
              | {"kind": "logmel", "stride", "dim"} | None}."""

    spec: dict[str, Any]
    visual: nn.Module | None = None  # fakelens.models.frame.FrameEncoder: (B, T, 3, S, S) -> (B, T, D)
    audio: nn.Module | None = None  # AudioEncoder (B, 1, n_mels, W) -> (B, W', D), or LogMelSteps
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        for m in (self.visual, self.audio):
            if m is not None:
                m.eval().requires_grad_(False)

    @property
    def visual_dim(self) -> int:
        return int((self.spec.get("visual") or {}).get("dim", 0))

    @property
    def audio_dim(self) -> int:
        return int((self.spec.get("audio") or {}).get("dim", 0))

    def to(self, device: str | torch.device) -> "DenseEncoder":
        self.device = torch.device(device)
        for m in (self.visual, self.audio):
            if m is not None:
                m.to(self.device)
        return self

    def state(self) -> dict[str, Any]:
        """Spec and weights (what encoder.pt and a localizer checkpoint hold)."""
        out: dict[str, Any] = {"spec": self.spec}
        for name in ("visual", "audio"):
            m = getattr(self, name)
            out[name] = {k: v.detach().cpu() for k, v in m.state_dict().items()} if m is not None else {}
        return out

    def digest(self) -> str:
        """SHA-1 of the weights (names, shapes, values) and the spec."""
        h = hashlib.sha1(json.dumps(self.spec, sort_keys=True).encode())
        state = self.state()
        for name in ("visual", "audio"):
            for k in sorted(state[name]):
                t = state[name][k].contiguous()
                h.update(f"{name}.{k}:{tuple(t.shape)}:{t.dtype}".encode())
                h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        return h.hexdigest()[:20]

    def record(self) -> dict[str, Any]:
        """What FEATS/config.json records about the encoders."""
        return {**self.spec, "digest": self.digest()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "DenseEncoder":
        spec = dict(state["spec"])
        enc = cls(spec, _build_visual(spec.get("visual")), _build_audio(spec.get("audio")))
        for name in ("visual", "audio"):
            m = getattr(enc, name)
            if m is not None and state.get(name):
                m.load_state_dict(state[name])
        enc.__post_init__()
        return enc

    @torch.inference_mode()
    def encode_crops(self, crops: np.ndarray) -> np.ndarray:
        """(k, S, S, 3) uint8 face crops -> (k, Dv) float32."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return self.visual(x[None]).float()[0].cpu().numpy()  # (k, Dv)

    @torch.inference_mode()
    def encode_mel(self, mel: np.ndarray, mel_times: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(n_mels, M) log-mel at (M,) centre times -> (A, Da) float32 features and (A,) step centre times."""
        a = self.spec.get("audio")
        if a is None or mel.shape[1] == 0:
            return np.zeros((0, self.audio_dim), np.float32), np.zeros(0)
        m = torch.from_numpy(np.ascontiguousarray(mel, np.float32)).to(self.device)  # (n_mels, M)
        n = m.shape[1]
        if a["kind"] == "logmel":
            feats = self.audio(m).cpu().numpy()  # (A, n_mels)
            stride = int(a["stride"])
        else:
            stride, width = int(a["time_stride"]), int(a["window"])
            width = -(-width // stride) * stride  # whole steps per window: windows tile the steps
            # the last window is padded past the audio's end and the padding masked, as in training
            # (AudioEncoder fills masked mel frames with the window's mean): its value never matters
            pad = (-n) % width
            x = torch.nn.functional.pad(m, (0, pad))  # (n_mels, K*W)
            valid = torch.arange(x.shape[1], device=x.device) < n  # (K*W,)
            windows = x.reshape(x.shape[0], -1, width).permute(1, 0, 2)[:, None]  # (K, 1, n_mels, W)
            wmask = valid.reshape(-1, width)  # (K, W)
            outs = [self.audio(windows[i:i + batch], wmask[i:i + batch])[0].float()
                    for i in range(0, len(windows), batch)]  # (b, W', D)
            feats = torch.cat(outs).reshape(-1, outs[0].shape[-1]).cpu().numpy()  # (K*W', D)
        steps = -(-n // stride)
        feats = feats[:steps]
        hop = float(mel_times[1] - mel_times[0]) if len(mel_times) > 1 else 0.01
        times = mel_times[0] + (np.arange(steps) * stride + (stride - 1) / 2) * hop  # (A,) centres
        return feats.astype(np.float32), times


def _build_visual(spec: dict[str, Any] | None) -> nn.Module | None:
    if spec is None:
        return None
    from fakelens.models.frame import FrameEncoder

    return FrameEncoder(spec["backbone"], False)


def _build_audio(spec: dict[str, Any] | None) -> nn.Module | None:
    if spec is None:
        return None
    if spec["kind"] == "logmel":
        return LogMelSteps(int(spec["stride"]))
    from fakelens.models.audio import AudioEncoder

    return AudioEncoder(spec["backbone"], False, int(spec["n_mels"]), int(spec["time_stride"]))


def build_encoder(source: str, *, audio: str | None = None, media: MediaConfig | None = None,
                  pretrained: bool = False, seed: int = 0) -> tuple[DenseEncoder, MediaConfig]:
    """The encoders named by `source` and `audio`, and the media parameters their inputs need.

    source: a `fakelens train` run folder or checkpoint (its per-frame visual encoder, the crops
    of its cache: size, margin, detector), or a 2D backbone name (random init with `seed`, or
    ImageNet weights with `pretrained`; crops of `media`). audio: "run" (the run's audio encoder;
    the default for a run that has one), "logmel" (the default otherwise), a 2D backbone name, or
    "none". Returns the encoder and the media config (sampling as given in `media`)."""
    media = media or MediaConfig(sampling="all", find_every=4, max_faces=DENSE_MAX_FACES)
    run_model = None
    run_media = None
    audio_width = None
    p = Path(source)
    if p.exists():
        from fakelens.inference.pipeline import load_run

        run = load_run(p)
        run_model, run_media, audio_width = run.model, run.cache, run.audio_width
        if getattr(run, "features", None) is not None:
            raise ConfigError(f"{source}: a localizer run has no frame encoder of its own; give the run (or "
                              "backbone) its features were made with")
    spec: dict[str, Any] = {}
    visual = audio_mod = None
    if run_model is not None:
        from fakelens.models.audio import AudioEncoder
        from fakelens.models.frame import FrameEncoder

        parts = list(run_model.children())
        visual = next((m for m in parts if isinstance(m, FrameEncoder)), None)
        run_audio = next((m for m in parts if isinstance(m, AudioEncoder)), None)
        if visual is not None:
            spec["visual"] = {"kind": "frame", "backbone": run_model.cfg.backbone, "dim": int(visual.out_dim)}
        audio = audio or ("run" if run_audio is not None else "logmel")
        if audio == "run":
            if run_audio is None:
                raise ConfigError(f"{source}: model {run_model.cfg.name!r} has no audio encoder; use --audio logmel, "
                                  "a backbone name or none")
            audio_mod = run_audio
            spec["audio"] = {"kind": "cnn", "backbone": run_model.cfg.audio_backbone, "n_mels": run_model.cfg.n_mels,
                             "time_stride": int(run_audio.time_stride), "window": int(audio_width or AUDIO_WINDOW),
                             "dim": int(run_audio.out_dim)}
        if visual is None and spec.get("audio") is None and audio in (None, "none"):
            raise ConfigError(f"{source}: model {run_model.cfg.name!r} has no per-frame visual encoder")
        media = MediaConfig(**{**run_media.to_dict(), "sampling": media.sampling, "sample_fps": media.sample_fps,
                               "find_every": media.find_every, "max_faces": media.max_faces,
                               "version": run_media.version})
    else:
        from fakelens.models.backbones import check_image_backbone
        from fakelens.models.frame import FrameEncoder

        check_image_backbone(source, "features")
        torch.manual_seed(seed)
        visual = FrameEncoder(source, pretrained)
        spec["visual"] = {"kind": "frame", "backbone": source, "dim": int(visual.out_dim),
                          "init": "pretrained" if pretrained else f"random (seed {seed})"}
        audio = audio or "logmel"
    if audio == "logmel":
        audio_mod = LogMelSteps(LOGMEL_STRIDE)
        spec["audio"] = {"kind": "logmel", "stride": LOGMEL_STRIDE, "dim": int(media.n_mels)}
    elif audio not in ("run", "none", None):
        from fakelens.models.audio import AudioEncoder
        from fakelens.models.backbones import check_image_backbone

        check_image_backbone(audio, "features")
        torch.manual_seed(seed + 1)
        audio_mod = AudioEncoder(audio, pretrained, media.n_mels, 4)
        spec["audio"] = {"kind": "cnn", "backbone": audio, "n_mels": media.n_mels, "time_stride": 4,
                         "window": AUDIO_WINDOW, "dim": int(audio_mod.out_dim),
                         "init": "pretrained" if pretrained else f"random (seed {seed + 1})"}
    spec.setdefault("visual", None)
    spec.setdefault("audio", None)
    import copy

    enc = DenseEncoder(spec, copy.deepcopy(visual) if visual is not None else None,
                       copy.deepcopy(audio_mod) if audio_mod is not None else None)
    return enc, media


def save_encoder(enc: DenseEncoder, path: Path) -> None:
    from fakelens.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(enc.state(), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_encoder(path: str | Path, digest: str | None = None) -> DenseEncoder:
    """The encoders of encoder.pt; FakelensError when absent, unreadable or not the expected weights."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        enc = DenseEncoder.from_state(state)
    except FileNotFoundError:
        raise FakelensError(f"{path}: missing (the features folder's encoder weights)") from None
    except Exception as e:  # torch raises many types for a damaged file
        raise FakelensError(f"{path}: cannot read the encoder weights ({type(e).__name__}: {e})") from e
    if digest is not None and enc.digest() != digest:
        raise FakelensError(f"{path}: encoder weights differ from the ones config.json records (digest "
                            f"{enc.digest()} != {digest}); the folder mixes encoders: re-run with --force")
    return enc


# ------------------------------------------------------------------------------------ one video


@dataclass
class DenseVideo:
    """What `dense_features` computes for one video: the arrays stored per video (see
    fakelens.data.features), its face/audio status and the seconds spent per step."""

    arrays: dict[str, np.ndarray]
    status: str  # "ok" | "no_face" | "no_audio"
    message: str
    has_face: bool
    has_audio: bool
    counts: dict[str, int]
    timings: dict[str, float]
    fallback: str | None = None
    audio_message: str = ""  # why there is no audio (empty when there is)
    # the face tracks found (fakelens.faces.extract.KnownTracks): a copy of the video with the same
    # frames (its audio changed) can reuse them (dense_features' `known`); not stored with the features
    tracks: Any = None

    @property
    def duration(self) -> float:
        return float(self.arrays["duration"])


def dense_features(path: str | Path, cfg: FeatureConfig, encoder: DenseEncoder, detector=None,
                   chunk_frames: int = CHUNK_FRAMES, known=None) -> DenseVideo:
    """Dense visual and audio features of one video (MediaError when it cannot be decoded).
    `known` face tracks (fakelens.faces.extract.KnownTracks, found with these media settings in a
    video with the same frames) are reused when this video's sampled frames are theirs (a copy
    whose audio alone changed): no face is looked for (fakelens.features.media.open_features).
    On a grid of k > 1 frames a step (a --fps grid) each step's frame is the middle one of its k
    frames, so the visual feature, the audio averaged into the step and its target all stand for
    the cell's centre (fakelens.data.features)."""
    stream = open_features(path, cfg.media, detector, known, centred=True)
    tracks = stream.faces
    n = len(tracks.times)
    face = tracks.n_faces > 0 and tracks.fallback is None
    row = face_rows(tracks.found) if face else np.zeros(n, np.int64)  # (T,) the track each step shows
    visual = np.zeros((n, encoder.visual_dim), FEATURE_DTYPE)  # (T, Dv)
    t_visual = 0.0
    if encoder.visual is not None and tracks.n_faces:
        for a, crops in tracks.iter_crops(chunk_frames):  # (F, k, S, S, 3), main face first
            k = crops.shape[1]
            t0 = time.perf_counter()
            visual[a:a + k] = encoder.encode_crops(crops[row[a:a + k], np.arange(k)])  # (k, S, S, 3) -> (k, Dv)
            t_visual += time.perf_counter() - t0
    t0 = time.perf_counter()
    audio, audio_times = encoder.encode_mel(stream.mel, stream.mel_times)
    t_audio = time.perf_counter() - t0
    # the visual mask: frames with a face; with the full-frame fallback (no face anywhere, asked
    # for by media.fallback = "full_frame") every frame's whole-frame features are what is seen
    steps = np.arange(n)
    found = tracks.found[row, steps] if face else np.full(n, tracks.fallback == "full_frame" and tracks.n_faces > 0)
    boxes = tracks.boxes[row, steps] if tracks.n_faces else np.zeros((n, 4), np.float32)  # (T, 4)
    k_step = step_frames(tracks.fps, cfg.media)
    # the frame where step 0's cell starts: its sampled frame is the cell's middle one, (k - 1) // 2 in
    first_frame = max(int(tracks.indices[0]) - (k_step - 1) // 2, 0) if n else 0
    arrays = {"visual": visual, "times": tracks.times, "indices": tracks.indices, "found": found, "boxes": boxes,
              "face_track": np.where(found, row, -1).astype(np.int8) if face else np.full(n, -1, np.int8),
              "audio": audio.astype(FEATURE_DTYPE), "audio_times": audio_times,
              "step_frames": np.int64(k_step), "first_frame": np.int64(first_frame), "fps": np.float64(tracks.fps),
              "duration": np.float64(tracks.duration), "width": np.int64(tracks.width),
              "height": np.int64(tracks.height)}
    messages = []
    if tracks.status == "no_face":
        messages.append("no face found in any sampled frame: " + (
            "the whole frame's features stored instead (full-frame fallback)" if tracks.fallback
            else "visual features masked"))
    if not stream.has_audio:
        messages.append(f"{stream.audio_message}: audio features masked")
    status = "no_face" if tracks.status == "no_face" else ("ok" if stream.has_audio else "no_audio")
    timings = dict(stream.timings)
    timings.update(visual_encoder=t_visual, audio_encoder=t_audio)
    counts = {"frames": n, "found": int(found.sum()), "audio_steps": int(len(audio_times)),
              "detect_runs": tracks.n_detect_runs, "refined": tracks.n_refined, "detected": tracks.n_detected,
              "tracks": tracks.n_tracks, "tracks_used": int(len(np.unique(row[found]))) if face else 0,
              "mel_frames": int(stream.mel.shape[1])}
    return DenseVideo(arrays=arrays, status=status, message="; ".join(messages), has_face=face,
                      has_audio=stream.has_audio, counts=counts, timings=timings, fallback=tracks.fallback,
                      audio_message="" if stream.has_audio else str(stream.audio_message or "no audio"),
                      tracks=tracks.known())


def face_rows(found: np.ndarray) -> np.ndarray:
    """(F, T) found flags of the face tracks (main first: most detections) -> (T,) int64 the track
    whose face each step's features show: the first track found at that step, the main track where
    none is. One person whose track split (the tracker lost and re-found the face) is seen on both
    pieces; with several people at once the main one is kept, the others only where it is absent."""
    found = np.asarray(found, bool)
    if found.ndim != 2 or found.shape[0] == 0:
        raise ValueError(f"found must be (F >= 1, T), got shape {found.shape}")
    return np.where(found.any(axis=0), found.argmax(axis=0), 0).astype(np.int64)  # (T,)


def process_dense_video(rec: VideoRecord, out_dir: Path, cfg: FeatureConfig, state: tuple) -> dict[str, Any]:
    """Dense features of one video into FEATS/videos/<safe_id>.npz, then its row; returns the row."""
    from fakelens.atomic import atomic_output, atomic_write_text
    from fakelens.data.arrays import file_size, save_arrays

    detector, encoder, chunk = state
    t0 = time.perf_counter()
    params = cfg.to_dict()
    name = safe_id(rec.id)
    row = _record_fields(rec)
    row.update(status="ok", message="", npz=None, fallback=None, has_face=False, has_audio=False, fps=None,
               duration=None, counts={}, timings={}, params=params_digest(params), npz_bytes=None,
               file=None if rec.path is None else file_identity(rec.path))
    try:
        if rec.path is None:
            raise MediaError(rec.id, "the dataset lists no file for this video")
        dv = dense_features(rec.path, cfg, encoder, detector, chunk)
    except MediaError as e:
        row.update(status="decode_error", message=str(e))
    else:
        t1 = time.perf_counter()
        rel = f"videos/{name}.npz"
        with atomic_output(out_dir / rel) as tmp:
            save_arrays(tmp, dv.arrays, params)
        dv.timings["write"] = time.perf_counter() - t1
        row.update(status=dv.status, message=dv.message, npz=rel, fallback=dv.fallback, has_face=dv.has_face,
                   has_audio=dv.has_audio, fps=float(dv.arrays["fps"]), duration=dv.duration,
                   npz_bytes=file_size(out_dir / rel), counts=dv.counts,
                   timings={k: round(v, 4) for k, v in dv.timings.items()})
    row["timings"]["total"] = round(time.perf_counter() - t0, 4)
    atomic_write_text(out_dir / "rows" / f"{name}.json", json.dumps(row, sort_keys=True))
    if row["npz"] is None:
        (out_dir / "videos" / f"{name}.npz").unlink(missing_ok=True)
    return row


@dataclass
class FeaturesJob(CacheJob):
    """The `fakelens features` job for fakelens.data.cache.preprocess: each process loads the
    folder's encoder.pt (checked against config.json) and builds the face detector once."""

    folder: str = ""
    chunk_frames: int = CHUNK_FRAMES
    device: str = "cpu"
    desc = "features"

    def setup(self, cfg: FeatureConfig) -> tuple:
        from fakelens.faces.detectors import build_detector

        enc = load_encoder(Path(self.folder) / ENCODER_FILE, cfg.encoder.get("digest")).to(self.device)
        return build_detector(cfg.media.detector), enc, self.chunk_frames

    def process(self, rec: VideoRecord, cache_dir: Path, cfg: FeatureConfig, state: tuple) -> dict[str, Any]:
        return process_dense_video(rec, cache_dir, cfg, state)


def run_features(source: str, records: Sequence[VideoRecord], out: str | Path, *, audio: str | None = None,
                 media: MediaConfig | None = None, pretrained: bool = False, seed: int = 0, workers: int = 0,
                 shard: tuple[int, int] | None = None, force: bool = False, progress: bool = True,
                 chunk_frames: int = CHUNK_FRAMES, device: str = "cpu", split: str | None = None):
    """Dense features of `records` into the folder `out` (resumable, shardable, parallel: the
    cache job of fakelens.data.cache with FeaturesJob); returns its PreprocessSummary. `split`:
    the records are that split of the dataset (the index keeps the other splits' rows)."""
    from fakelens.data.cache import load_config, preprocess

    out = Path(out)
    enc, media = build_encoder(source, audio=audio, media=media, pretrained=pretrained, seed=seed)
    cfg = FeatureConfig(media=media, encoder=enc.record())
    old = load_config(out) if (out / "config.json").exists() else None
    if old is None or old == cfg or force:  # otherwise preprocess refuses, naming the differences
        out.mkdir(parents=True, exist_ok=True)
        save_encoder(enc, out / ENCODER_FILE)  # the same weights when the folder is resumed
    job = FeaturesJob(folder=str(out), chunk_frames=chunk_frames, device=device)
    return preprocess(list(records), out, cfg, workers=workers, shard=shard, force=force, progress=progress,
                      split=split, job=job)


# ------------------------------------------------------------------------------------ stored features


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"media": {"size": 64}} -> {"media.size": 64}: settings named as a user reads them."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


class StoredFeatures:
    """A features folder (`fakelens features ... --out FEATS`) read back instead of recomputing the
    dense features of each video (`predict RUN DATA --features FEATS`): the arrays a localizer run
    would compute from the media, as `DenseVideo`s. Refused, naming both sides, when the folder's
    encoder (its weights' digest) or media settings are not the run's; `check(records)` refuses
    videos the folder lacks or whose file changed since (by size, then mtime or content hash)."""

    def __init__(self, folder: str | Path, expected: FeatureConfig, run_name: str = "the run"):
        from fakelens.data.cache import check_cache, load_config, read_index

        self.folder = Path(folder)
        if not (self.folder / "config.json").exists():
            raise FakelensError(f"{self.folder}: not a features folder (no config.json); make one with "
                                f"`fakelens features RUN DATA --split test --out {self.folder}`")
        cfg = load_config(self.folder)
        if not isinstance(cfg, FeatureConfig):
            raise FakelensError(f"{self.folder}: a preprocessing cache, not a features folder (made by "
                                "`fakelens preprocess`); give one made by `fakelens features`")
        if cfg.version != FEATURES_VERSION:
            raise FakelensError(f"{self.folder}: {stale_features(cfg.version)}: make them again with "
                                f"`fakelens features RUN DATA --split SPLIT --out {self.folder} --force`, or "
                                "predict from the media without --features")
        mine, theirs = cfg.encoder.get("digest"), expected.encoder.get("digest")
        if mine != theirs:
            raise FakelensError(f"{self.folder}: features of another encoder (digest {mine}) than {run_name} was "
                                f"trained on (digest {theirs}): make them with the run whose encoder made the "
                                f"training features (`fakelens features RUN DATA --out {self.folder}`), or predict "
                                "from the media without --features")
        # the features' own version is the folder's (just checked); the run's is Predictor's to check
        a, b = ({k: v for k, v in _flat(c.to_dict()).items() if k != "version"} for c in (cfg, expected))
        diff = [f"{k} {a.get(k)!r} in the folder, {b.get(k)!r} in the run"
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diff:
            raise FakelensError(f"{self.folder}: features made with other settings than the run predicts with "
                                f"({run_name}): {'; '.join(diff)}; make them again with the run's settings, or "
                                "predict from the media without --features")
        self.cfg = cfg
        if not (self.folder / "index.jsonl").is_file():  # read_index would name `fakelens preprocess`
            sharded = (self.folder / "shards").is_dir()
            raise FakelensError(f"{self.folder}: no index.jsonl: "
                                + (f"its shards are not merged (`fakelens features --out {self.folder} --merge`)"
                                   if sharded else "the features job did not finish (run it again: it resumes)")
                                + ", or predict from the media without --features")
        self.rows = {r["id"]: r for r in read_index(self.folder)}
        check_cache(self.folder, list(self.rows.values()))  # version, and every row made with config.json

    def check(self, records: Sequence[VideoRecord]) -> None:
        """Refuse (FakelensError, listing them) videos the folder has no features of, and those whose
        file changed since their features were made. A video it failed to decode is left to
        `load` (a failure of that video, as predicting from the media would give)."""
        from fakelens.data.cache import same_file

        missing, changed = [], []
        for rec in records:
            row = self.rows.get(rec.id)
            if row is None:
                missing.append(rec.id)
                continue
            recorded = row.get("file") or {}
            if rec.path is None or row.get("status") == "decode_error" or not recorded:
                continue
            now = file_identity(rec.path, with_hash=False)
            if now is None:
                continue  # unreadable now: the stored features still stand for what it was
            if not same_file(rec.path, recorded, now):
                changed.append(rec.id)

        def some(ids: list[str]) -> str:
            return ", ".join(ids[:5]) + (f" ... ({len(ids)} in all)" if len(ids) > 5 else "")

        remedy = f"run `fakelens features RUN DATA --split SPLIT --out {self.folder}` (it adds and redoes them)"
        if missing:
            raise FakelensError(f"{self.folder}: no features of {len(missing)} of the {len(records)} videos to predict "
                                f"({some(missing)}): {remedy}, or predict from the media without --features")
        if changed:
            raise FakelensError(f"{self.folder}: {len(changed)} video file(s) changed since their features were made "
                                f"({some(changed)}): {remedy}")

    def load(self, rec: VideoRecord) -> DenseVideo:
        """The stored DenseVideo of one checked video (MediaError when its features could not be made)."""
        from fakelens.data.cache import load_npz

        row = self.rows[rec.id]
        if row.get("status") == "decode_error" or not row.get("npz"):
            # the job's message names the file already ("PATH: cause"), as decoding it here would
            where = str(row.get("path") or rec.path or rec.id)
            message = row.get("message") or "the features folder could not decode it"
            raise MediaError(where, message[len(where) + 2:] if message.startswith(f"{where}: ") else message)
        t0 = time.perf_counter()
        arrays = load_npz(self.folder, row)
        has_audio = bool(row.get("has_audio"))
        return DenseVideo(arrays=arrays, status=row["status"], message=row.get("message", ""),
                          has_face=bool(row.get("has_face")), has_audio=has_audio,
                          counts=dict(row.get("counts") or {}), timings={"load": time.perf_counter() - t0},
                          fallback=row.get("fallback"),
                          audio_message="" if has_audio else (row.get("message") or "no audio"))
