"""The one inference pipeline: decode sampled frames/audio -> faces -> model -> per-frame and per-clip
scores -> video score (a named aggregation) -> Prediction with temporal proposals.

Decoding, face extraction and log-mels are fakelens.features.media.compute_features with the training
cache's own parameters (saved in the checkpoint), so prediction sees exactly the crops training saw.
Faces are cut into clips of the training clip length by fakelens.data.dataset.tile_clips (audio-only
models: mel windows by tile_windows), batched through the model under torch.inference_mode(), and
the video score is fakelens.inference.aggregate.video_score; training validation calls the same
functions on the cached features, so the validation metrics are those of this pipeline.

Many videos stream: features are computed by worker processes a bounded window ahead
(WINDOW_PER_WORKER videos per worker, consumed and released in input order), and clips of
consecutive videos are batched together on the model's device (`--device`, see
fakelens.inference.device), so memory stays flat in the number of videos and a GPU gets full
batches even from short videos.

Failures are never silent: a video that cannot be decoded, has no face (unless the full-frame
fallback is asked for) or lacks the audio the model needs is a `Failure` with its reason. Only
with on_error="prior" does it get a score, the training-set prior P(fake), recorded in
`Prediction.fallback`.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from fakelens.errors import ConfigError, FakelensError, MediaError
from fakelens.inference.aggregate import AGGREGATIONS, FACE_AGGREGATIONS, LEVELS, aggregate, faces_score, video_score
from fakelens.inference.postprocess import SUPPRESSIONS, proposals_from_cells
from fakelens.inference.runs import resolve_checkpoint
from fakelens.types import FaceScore, Prediction, VideoRecord

ON_ERROR = ("raise", "prior")
NO_FACE = ("error", "full_frame")
PRIOR_FALLBACK = "prior"  # Prediction.fallback of a failed video scored with the training prior
AUDIO_VISUAL, VISUAL_ONLY, AUDIO_ONLY = "audio-visual", "visual only", "audio only"  # Prediction.streams
FULL_FRAME_FALLBACK = "no_face: full frame"
PADDED_FALLBACK = "padded clip"  # Prediction.fallback's part for face clips filled out with padding
PADDED_AUDIO_FALLBACK = "padded audio"  # ... for an audio track shorter than the model's window
AUDIO_ENDS_FALLBACK = "audio ends early"  # ... for clips past the end of the audio track (no audio of their own)


@dataclass
class LoadedRun:
    """A trained model with everything needed to feed it: configs, preprocessing, prior."""

    cfg: Any  # fakelens.train.config.TrainConfig
    cache: Any  # fakelens.features.media.MediaConfig used to build the training cache
    model: torch.nn.Module
    task: Any  # fakelens.tasks.Task
    prior: float
    checkpoint: Path
    audio_width: int | None  # mel frames per model audio input (from training), None without audio
    features: Any = None  # fakelens.data.features.FeatureConfig of a localizer run (dense features), else None
    encoder: Any = None  # its fakelens.inference.dense.DenseEncoder (weights from the checkpoint)
    # The model outputs training trained (fakelens.tasks.classification.trained_outputs): recorded in
    # the checkpoint, inferred from its config and disabled terms for an older one; None: all
    trained_outputs: frozenset[str] | None = None


def load_run(run_or_checkpoint: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model of a run from its checkpoint alone (config, prior, cache parameters inside)."""
    from fakelens.config import from_dict
    from fakelens.features.media import MediaConfig
    from fakelens.models import create_model
    from fakelens.tasks import build_task
    from fakelens.train.config import TrainConfig

    ckpt_path = resolve_checkpoint(run_or_checkpoint)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise FakelensError(f"{ckpt_path}: not a fakelens checkpoint, or a damaged one: {_load_failure(ckpt_path, e)}; "
                            "give the folder of a `fakelens train` run or its checkpoints/best.ckpt") from e
    if not isinstance(ckpt, dict):
        raise FakelensError(f"{ckpt_path}: not a fakelens checkpoint (it holds a {type(ckpt).__name__}, "
                            "not a checkpoint of a `fakelens train` run)")
    hp = ckpt.get("hyper_parameters") or {}
    if "config" not in hp or "state_dict" not in ckpt:
        raise FakelensError(f"{ckpt_path}: not a fakelens checkpoint (no config or weights inside)")
    cfg = from_dict(TrainConfig, hp["config"])
    if hp.get("cache_config") is None:
        raise FakelensError(f"{ckpt_path}: the run was trained without a preprocessing cache, so its face/audio "
                            "parameters are unknown; predict needs a run trained with `fakelens train`")
    from fakelens.data.features import FeatureConfig, is_features_config

    features = encoder = None
    if is_features_config(hp["cache_config"]):  # a localizer over dense features: rebuild their encoder
        from fakelens.inference.dense import DenseEncoder

        features = FeatureConfig.from_dict(hp["cache_config"])
        if "feature_encoder" not in ckpt:
            raise FakelensError(f"{ckpt_path}: a localizer checkpoint without its feature encoder weights")
        encoder = DenseEncoder.from_state(ckpt["feature_encoder"]).to(device)
        cache = features.media
    else:
        cache = MediaConfig(**hp["cache_config"])
    model = create_model(dataclasses.replace(cfg.model, pretrained=False, audio_pretrained=None))
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    model.eval().to(device)
    prior = hp.get("prior")
    if prior is None:
        raise FakelensError(f"{ckpt_path}: no training-set prior recorded")
    # the terms training left out (a per-stream head without both classes): that head cannot score alone
    task = build_task(cfg.task, time_stride=getattr(model, "time_stride", None),
                      disabled=hp.get("disabled") or ()).to(device)
    if "trained_outputs" in ckpt:
        trained = None if ckpt["trained_outputs"] is None else frozenset(ckpt["trained_outputs"])
    else:  # a checkpoint from before the record: the task's weights and disabled terms say it
        from fakelens.tasks.classification import trained_outputs

        trained = trained_outputs(task, getattr(model, "output_heads", {}))
    return LoadedRun(cfg=cfg, cache=cache, model=model, task=task, prior=float(prior),
                     checkpoint=ckpt_path, audio_width=hp.get("audio_width"), features=features, encoder=encoder,
                     trained_outputs=trained)


def _load_failure(path: Path, e: BaseException) -> str:
    """Why torch.load refused a file, in one line (torch's own message is a page of advice that
    ends in weights_only=False, which would run the file's code)."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        return f"cannot open it ({err.strerror or err})"
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        return "a truncated or corrupt zip archive (an interrupted copy or download?)"
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        return f"not a PyTorch checkpoint (neither a zip archive nor a pickle; it starts with {head!r})"
    text = str(e)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return (f"it holds data torch.load(weights_only=True) will not unpickle ({detail}); fakelens never runs "
                "code from a checkpoint, so it cannot be used")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"corrupt or truncated ({type(e).__name__}: {first[:200]})"


@dataclass
class Failure:
    """A video the pipeline could not score, and why."""

    id: str
    path: str | None
    reason: str
    fallback: str | None = None  # what it got instead (PRIOR_FALLBACK) or None when it got nothing


@dataclass
class PredictResult:
    """Predictions in input order (failed videos included only when a fallback was used) and failures."""

    predictions: list[Prediction]
    failures: list[Failure] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # total seconds per stage


class _NoFace(FakelensError):
    pass


def _features_job(path: str, cache_dict: dict[str, Any], known: Any = None) -> Any:
    """Worker-process entry: decode + faces + log-mel with the detector built once per process
    (`known` face tracks reused: Predictor.known_tracks)."""
    from fakelens.features.media import MediaConfig, compute_features

    return compute_features(path, MediaConfig(**cache_dict), _WORKER_DETECTOR, known)


def _dense_job(path: str, features_dict: dict[str, Any], known: Any = None) -> Any:
    """Worker-process entry of a localizer run: dense features with the encoder built once per process
    (`known` face tracks reused: Predictor.known_tracks)."""
    from fakelens.data.features import FeatureConfig
    from fakelens.inference.dense import dense_features

    return dense_features(path, FeatureConfig.from_dict(features_dict), _WORKER_ENCODER, _WORKER_DETECTOR,
                          known=known)


_WORKER_DETECTOR: Any = None
_WORKER_ENCODER: Any = None
WINDOW_PER_WORKER = 2  # videos whose features are computed ahead, per worker process


def _worker_init(detector: str, parent_pid: int | None = None, encoder_state: dict[str, Any] | None = None) -> None:
    global _WORKER_DETECTOR, _WORKER_ENCODER
    if encoder_state is not None:
        from fakelens.inference.dense import DenseEncoder

        _WORKER_ENCODER = DenseEncoder.from_state(encoder_state)
    from fakelens.faces.detectors import build_detector

    if parent_pid is not None:
        from fakelens.workers import die_with_parent

        die_with_parent(parent_pid)
    torch.set_num_threads(1)
    _WORKER_DETECTOR = build_detector(detector)


@dataclass
class _Pending:
    """A video between its features and its Prediction: clips waiting for the model, their outputs."""

    rec: VideoRecord
    feats: Any = None
    clips: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    outputs: list[dict[str, np.ndarray] | None] = field(default_factory=list)  # per clip, once scored
    n_scored: int = 0
    t_model: float = 0.0

    @property
    def ready(self) -> bool:
        return self.n_scored == len(self.clips)


class Predictor:
    """Scores videos with a loaded run. Options default to the run's `predict` section."""

    def __init__(self, run: LoadedRun, *, aggregate_name: str | None = None, level: str | None = None,
                 no_face: str | None = None, batch_size: int = 8, device: str | torch.device = "auto",
                 face_aggregate: str | None = None, proposals: str | None = None,
                 sample_fps: float | None = None, features: str | Path | None = None):
        if proposals is not None:  # e.g. a localizer's own per-step scores thresholded (the dense baseline)
            from fakelens.inference.localize import PROPOSAL_METHODS

            if proposals not in PROPOSAL_METHODS:
                raise ConfigError(f"proposals must be one of {PROPOSAL_METHODS}, got {proposals!r}")
            run = dataclasses.replace(run, cfg=dataclasses.replace(
                run.cfg, predict=dataclasses.replace(run.cfg.predict, proposals=proposals)))
        p = run.cfg.predict
        self.run = run
        self.aggregate_name = aggregate_name or p.aggregate
        AGGREGATIONS.get(self.aggregate_name)
        self.face_aggregate = face_aggregate or p.face_aggregate
        FACE_AGGREGATIONS.get(self.face_aggregate)
        self.max_faces = run.cfg.data.max_faces  # face tracks scored per video (None: every one found)
        self.level = level or p.level
        if self.level not in LEVELS:
            raise ConfigError(f"level must be 'frames' or 'clips', got {self.level!r}")
        self.no_face = no_face or p.no_face
        if self.no_face not in NO_FACE:
            raise ConfigError(f"no_face must be one of {NO_FACE}, got {self.no_face!r}")
        SUPPRESSIONS.get(p.suppression)
        self.dense = run.features is not None  # a localizer over dense features (fakelens.inference.localize)
        if self.dense:
            # A localizer's video score (Task 1) is the maximum of its per-step scores, as its
            # validation scored it (fakelens.inference.localize.finish): another aggregation or the
            # clip level asked for is refused rather than ignored, and the run's own predict.aggregate
            # / level (the defaults, mean over frames, when its recipe names none) are not what it does.
            asked = []
            if aggregate_name not in (None, "max"):
                asked.append(f"aggregation {aggregate_name!r}")
            if level not in (None, "frames"):
                asked.append(f"level {level!r}")
            if asked:
                raise ConfigError(f"{run.checkpoint}: a localizer's video score is the maximum of its per-step "
                                  f"scores; {' and '.join(asked)} cannot be given to it (leave --aggregate / --level "
                                  "out)")
            self.aggregate_name, self.level = "max", "frames"
        if p.proposals == "boundaries" and not self.dense:
            raise ConfigError(f"predict.proposals=boundaries needs a localizer run; {run.checkpoint} is a "
                              f"{run.cfg.model.name!r} model: use thresholds (its per-frame scores)")
        self.batch_size = max(1, int(batch_size))  # clips per forward pass, across videos
        from fakelens.inference.device import resolve_device

        self.device = resolve_device(device)
        run.model.to(self.device)
        run.task.to(self.device)
        self.inputs = tuple(run.model.input_names)
        self.clip_frames = run.cfg.data.clip_frames
        # outputs of heads training never trained (an untrained head scores ~0.5 for every input):
        # left out of every score, timeline, proposal and extra, and said in `notes`
        heads = getattr(run.model, "output_heads", {}) or {}
        self.untrained = frozenset() if run.trained_outputs is None or self.dense else \
            frozenset(o for o in heads if o not in run.trained_outputs)
        self.notes: list[str] = self._untrained_notes(heads)
        if self.dense and not self._modality_trained():
            why = "disabled (its training labels held one class)" if "modality" in run.task.disabled else \
                "task.modality_weight=0"
            self.notes.append(f"the visual-fake and audio-fake scores (extras visual_score, audio_score) left out: "
                              f"the run never trained the localizer's modality head ({why})")
        if self.level == "frames" and "frame_logits" in self.untrained:
            raise ConfigError(f"{run.checkpoint}: level 'frames' needs per-frame scores, but this run never trained "
                              f"the head giving them ({self._why('frame_logits')}): use level 'clips'")
        use_full = run.cache.fallback == "full_frame" or self.no_face == "full_frame"
        self.cache_cfg = dataclasses.replace(run.cache, fallback="full_frame" if use_full else "none")
        if sample_fps is not None:
            # Frames sampled at a rate instead of the run's (e.g. 24 frames a video): a clip classifier's
            # per-frame scores over the whole of a long video (the task-2 threshold baseline). The clip
            # then spans clip_frames / sample_fps seconds: the run's own rate keeps what it was trained on.
            if self.dense:
                raise ConfigError(f"{run.checkpoint}: a localizer scores the steps of its features "
                                  f"({run.cache.sampling} frames); a sampling rate cannot be given to it")
            if not sample_fps > 0:
                raise ConfigError(f"the sampling rate must be > 0 frames per second, got {sample_fps}")
            self.cache_cfg = dataclasses.replace(self.cache_cfg, sampling="fps", sample_fps=float(sample_fps))
        if self.dense:
            from fakelens.data.features import FEATURES_VERSION, stale_features

            if run.features.version != FEATURES_VERSION and run.cache.sampling != "all":
                # every frame (k = 1) is the same in both versions; a --fps grid's frames are not
                raise FakelensError(f"{run.checkpoint}: a localizer trained on {stale_features(run.features.version)}: "
                                    "it would be scored on other frames than it learned from; make its features "
                                    "again (`fakelens features RUN DATA --out FEATS --force`) and train it again")
        # A localizer run's dense features read from a features folder instead of computed from the
        # media (`predict --features FEATS`): the folder must hold what this run would compute
        self.stored = None
        if features is not None:
            if not self.dense:
                raise ConfigError(f"--features {features}: {run.checkpoint} is a {run.cfg.model.name!r} model, "
                                  "which scores the media itself; stored dense features serve localizer runs")
            from fakelens.inference.dense import StoredFeatures

            self.stored = StoredFeatures(features, self.features_cfg, str(run.checkpoint))
        if "audio" in self.inputs and run.audio_width is None:
            raise FakelensError(f"{run.checkpoint}: audio model without a recorded audio window length")
        self._detector = None
        # clip_transform(record, clips) -> clips, applied to each video's model inputs before the
        # model (e.g. an adversarial attack on the crops, fakelens.inference.adversarial)
        self.clip_transform: Callable[[VideoRecord, list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        # Face tracks by video id (fakelens.faces.extract.KnownTracks): `record_tracks` is filled with
        # those each scored video's features found; a video in `known_tracks` reuses its own when its
        # file's sampled frames are the frames they were found on (no face is looked for again: the
        # conditions of fakelens.inference.robustness that leave the pixels alone). Not for a localizer.
        self.record_tracks: dict[str, Any] | None = None
        self.known_tracks: dict[str, Any] | None = None

    def _why(self, output: str) -> str:
        from fakelens.tasks.classification import untrained_reason

        return untrained_reason(self.run.task, getattr(self.run.model, "output_heads", {}), output)

    def _untrained_notes(self, heads: dict[str, str]) -> list[str]:
        """What this run's predictions leave out, and why (printed by predict, kept by detect)."""
        what = {"frame_logits": "per-frame scores", "time_logits": "per-audio-step scores",
                "visual_logit": "the visual-fake score (extras visual_score)",
                "audio_logit": "the audio-fake score (extras audio_score)"}
        notes = [f"{what.get(o, o)} left out: the run never trained the head giving them ({self._why(o)})"
                 for o in what if o in self.untrained]
        self.timeline_note: str | None = None  # said only where a timeline or proposals are output (notes_for)
        if not self.dense and heads and not ({"frame_logits", "time_logits"} & (set(heads) - self.untrained)):
            why = "their heads were not trained" if {"frame_logits", "time_logits"} & self.untrained else \
                f"model {self.run.cfg.model.name!r} gives none"
            self.timeline_note = (f"no per-frame or per-audio-step scores ({why}): the timeline and the temporal "
                                  f"proposals (Task 2) are per clip of {self.clip_frames} frames, each clip's "
                                  "P(fake) from its first new frame")
            notes.append(self.timeline_note)
        return notes

    def notes_for(self, timeline: bool) -> list[str]:
        """`notes` for an output that holds timelines or temporal proposals (`timeline`), or only
        video scores (a DFDC submission: how coarse a timeline is does not concern it)."""
        return [n for n in self.notes if timeline or n != self.timeline_note]

    # ------------------------------------------------------------------ features

    def detector(self) -> Any:
        if self._detector is None and ("video" in self.inputs or self.dense):
            from fakelens.faces.detectors import build_detector

            self._detector = build_detector(self.cache_cfg.detector)
        return self._detector

    def features(self, path: str | Path, known: Any = None) -> Any:
        """Decode, faces, log-mel of one video (fakelens.features.media.compute_features; `known`
        face tracks reused where the frames are theirs), or for a localizer run its dense features
        (fakelens.inference.dense.dense_features)."""
        if self.dense:
            from fakelens.inference.dense import dense_features

            return dense_features(path, self.features_cfg, self.run.encoder, self.detector(), known=known)
        from fakelens.features.media import compute_features

        return compute_features(path, self.cache_cfg, self.detector(), known)

    def _known(self, rec: VideoRecord) -> Any:
        """The face tracks `rec` may reuse (known_tracks), None to find its faces."""
        return None if self.known_tracks is None else self.known_tracks.get(rec.id)

    @property
    def features_cfg(self) -> Any:
        """The dense-features config with this predictor's media parameters (e.g. the no-face fallback)."""
        return dataclasses.replace(self.run.features, media=self.cache_cfg)

    # ------------------------------------------------------------------ model

    def window(self) -> int | None:
        """Frames of one clip window in the run's sampling "windows" (clips never span two), else None."""
        return int(self.run.cache.window_frames) if self.run.cache.sampling == "windows" else None

    def _clips(self, feats: Any, streams: str = AUDIO_VISUAL) -> list[dict[str, Any]]:
        """Model inputs of one video, one dict per clip: tensors without batch dim, plus times/masks
        (numpy: times (C,) / audio_times (W,) seconds, mask / counted (C,), audio_mask (W,) bool) and,
        for faces, the track `face` and the sampled-frame `positions` (C,). Every face track is cut
        into clips of its own frames (fakelens.data.tiling.tile_face): frames without that face
        are never fed to the model. An audio-visual model scoring one stream gets the other as a
        blank input masked out entirely (all-False mask / audio_mask), as modality dropout hid it
        in training."""
        from fakelens.data.dataset import clip_audio_window, clip_span, face_frames, mel_window, tile_face, tile_windows

        clips: list[dict[str, Any]] = []
        z = {"mel": feats.mel, "mel_times": feats.mel_times}
        if streams == AUDIO_ONLY and "video" in self.inputs:
            return self._audio_only_clips(feats)
        if "video" in self.inputs:
            clip = feats.clip
            times = clip.times  # (T,)
            frames = face_frames(clip.found, bool(clip.fallback))  # (F, T)
            for f in range(min(len(clip.faces), self.max_faces or len(clip.faces))):  # data.max_faces, main first
                faces = clip.faces[f]  # (T, S, S, 3) uint8
                tiling = tile_face(frames[f], self.clip_frames, self.window())  # (K, C) each
                for pick, mask, counted in zip(tiling.picks, tiling.mask, tiling.counted):
                    video = torch.from_numpy(np.ascontiguousarray(faces[pick])).permute(0, 3, 1, 2).float() / 255.0  # (C,3,S,S)
                    item = {"video": video, "times": times[pick], "mask": mask, "counted": counted, "face": f,
                            "positions": pick, "streams": streams}
                    if "audio" in self.inputs and streams == VISUAL_ONLY:
                        item.update(self._blank_audio(float(times[pick[0]])))
                    elif "audio" in self.inputs:  # the clip's own span of audio, as training cuts it
                        t0, t1 = clip_span(times, pick, mask, float(clip.fps))
                        mel, mt, mmask = clip_audio_window(z, t0, t1, int(self.run.audio_width))
                        item.update(audio=torch.from_numpy(mel)[None], audio_times=mt, audio_mask=mmask)  # (1, M, W)
                    clips.append(item)
        else:
            width = int(self.run.audio_width)
            mt = feats.mel_times  # (M_total,)
            for a in tile_windows(len(mt), width):
                mel, times, mmask = mel_window(z, float(mt[a]), width)
                clips.append({"audio": torch.from_numpy(mel)[None], "audio_times": times, "audio_mask": mmask,
                              "streams": streams})
        return clips

    def _blank_audio(self, start: float) -> dict[str, Any]:
        """A window of silence masked out entirely: the audio input of a visual-only clip."""
        width, hop = int(self.run.audio_width), float(self.run.cache.hop_seconds)
        n_mels = int(getattr(self.run.cfg.model, "n_mels", None) or self.run.cache.n_mels)
        return {"audio": torch.zeros(1, n_mels, width),  # (1, M, W)
                "audio_times": start + hop * np.arange(width), "audio_mask": np.zeros(width, bool)}

    def _audio_only_clips(self, feats: Any) -> list[dict[str, Any]]:
        """An audio-visual model's clips for a video without a face: the mel windows as an audio
        model would tile them, each with blank faces masked out entirely."""
        from fakelens.data.dataset import mel_window, tile_windows

        width = int(self.run.audio_width)
        side = int(self.run.cfg.model.image_size or self.run.cache.size)
        z = {"mel": feats.mel, "mel_times": feats.mel_times}
        mt = feats.mel_times  # (M_total,)
        clips = []
        for a in tile_windows(len(mt), width):
            mel, times, mmask = mel_window(z, float(mt[a]), width)
            span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
            clips.append({"video": torch.zeros(self.clip_frames, 3, side, side),  # (C, 3, S, S)
                          "times": float(times[0]) + span * np.arange(self.clip_frames) / self.clip_frames,
                          "mask": np.zeros(self.clip_frames, bool), "counted": np.zeros(self.clip_frames, bool),
                          "audio": torch.from_numpy(mel)[None], "audio_times": times, "audio_mask": mmask,
                          "streams": AUDIO_ONLY})
        return clips

    def stream_head(self, streams: str) -> str | None:
        """The output a video's score rests on when only one of an audio-visual model's streams can
        be scored (`visual_logit` without audio, `audio_logit` without a face), or None when this
        run cannot do that: not an `av` task, that head not trained (weight 0, or disabled because
        the training labels of its stream held one class), or mid fusion trained without
        task.modality_dropout (its heads never saw one stream alone)."""
        cfg = self.run.cfg
        if cfg.task.name != "av" or not {"video", "audio"} <= set(self.inputs):
            return None
        term = "visual" if streams == VISUAL_ONLY else "audio"
        weight = getattr(cfg.task, f"{term}_weight") if term not in getattr(self.run.task, "disabled", ()) else 0.0
        alone = getattr(cfg.model, "fusion", "late") == "late" or cfg.task.modality_dropout > 0
        head = {VISUAL_ONLY: "visual_logit", AUDIO_ONLY: "audio_logit"}.get(streams)
        return head if weight > 0 and alone and head not in self.untrained else None

    def streams(self, video_id: str, feats: Any) -> str:
        """What this video's score can rest on ("audio-visual", "visual only", "audio only"), or
        the reason it cannot be scored (MediaError / _NoFace)."""
        has_video, has_audio = "video" in self.inputs, "audio" in self.inputs
        face = has_video and len(feats.clip.faces) > 0
        sound = has_audio and feats.has_audio
        no_face = "no face found in any sampled frame (use --no-face full_frame to score the whole frame)"
        no_sound = f"the model needs audio: {feats.audio_message or 'no audio'}"
        if has_video and has_audio:
            if face and sound:
                return AUDIO_VISUAL
            if face and self.stream_head(VISUAL_ONLY):
                return VISUAL_ONLY
            if sound and self.stream_head(AUDIO_ONLY):
                return AUDIO_ONLY
            if not face and not sound:
                raise _NoFace(f"{no_face}, and {feats.audio_message or 'no audio'}: nothing to score")
            if not face:
                raise _NoFace(no_face)
            raise MediaError(video_id, no_sound)
        if has_video and not face:
            raise _NoFace(no_face)
        if has_audio and not sound:
            raise MediaError(video_id, no_sound)
        return VISUAL_ONLY if has_video else AUDIO_ONLY

    @torch.inference_mode()
    def _forward(self, clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One forward pass over clips (of any videos) on the device -> per output, batch dim = clip:
        P(fake) for the logits, bool for the model's masks (frame_mask, time_mask). The clips'
        masks and times go in with them (fakelens.models.forward_inputs). A localizer's windows:
        {output: [per window]}, windows of any length padded together."""
        from fakelens.models import forward_inputs

        if self.dense:
            from fakelens.inference.localize import forward_items

            outs = forward_items(self.run.model, clips, self.device)
            return {k: [o[k] for o in outs] for k in outs[0]}
        non_blocking = self.device.type == "cuda"
        names = tuple(self.inputs) + tuple(getattr(self.run.model, "optional_input_names", ()))
        batch = {k: torch.stack([torch.as_tensor(c[k]) for c in clips]).to(self.device, non_blocking=non_blocking)
                 for k in names if k in clips[0]}  # e.g. video (B, C, 3, S, S), audio (B, 1, M, W), mask (B, C)
        out = dict(self.run.model(**forward_inputs(self.run.model, batch)))
        out["video_logit"] = self.run.task.video_logit(out)  # (B,)
        for key in self.untrained:  # an untrained head's outputs (and their masks) are never scored
            out.pop(key, None)
            out.pop({"frame_logits": "frame_mask", "time_logits": "time_mask"}.get(key, ""), None)
        return {k: (v if v.dtype == torch.bool else torch.sigmoid(v.float())).cpu().numpy() for k, v in out.items()}

    def _run_model(self, clips: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Batched forward over the clips of one video -> numpy arrays per output, batch dim = clip."""
        outs = [self._forward(clips[i:i + self.batch_size]) for i in range(0, len(clips), self.batch_size)]
        if self.dense:
            return {k: [v for o in outs for v in o[k]] for k in outs[0]}
        return {k: np.concatenate([o[k] for o in outs], axis=0) for k in outs[0]}

    def _prepare(self, video_id: str, feats: Any) -> list[dict[str, Any]]:
        """The model inputs of one video (its clips), or the reason it cannot be scored."""
        if self.dense:
            from fakelens.data.features import step_inputs
            from fakelens.inference.localize import window_items

            if not feats.has_face and not feats.fallback and not feats.has_audio:
                raise _NoFace("neither a face nor audio: nothing to localize from (use --no-face full_frame "
                              "to use the whole frame)")
            p = self.run.cfg.predict
            return window_items(step_inputs(feats.arrays), p.window_steps, p.window_overlap)
        clips = self._clips(feats, self.streams(video_id, feats))
        if not clips:
            raise _NoFace("no face found in any sampled frame (use --no-face full_frame to score the whole frame)")
        return clips

    def predict_features(self, video_id: str, feats: Any) -> tuple[Prediction, float]:
        """Score one video from its features; returns the Prediction and the model time (s)."""
        pred, t_model, _, _ = self.score_features(video_id, feats)
        return pred, t_model

    def score_features(self, video_id: str, feats: Any
                       ) -> tuple[Prediction, float, list[dict[str, Any]], dict[str, np.ndarray]]:
        """predict_features, also returning the clips the model got (their times and masks say
        what was seen and heard: `heard_spans`) and its outputs on them (batch dim = clip)."""
        t0 = time.perf_counter()
        clips = self._prepare(video_id, feats)
        probs = self._run_model(clips)
        t_model = time.perf_counter() - t0
        return self._finish(video_id, feats, clips, probs), t_model, clips, probs

    def _finish(self, video_id: str, feats: Any, clips: list[dict[str, Any]], probs: dict[str, np.ndarray]
                ) -> Prediction:
        """The Prediction of one video from its clips and the model's outputs on them (batch dim = clip):
        each face track scored on its own clips (`Prediction.faces`), the video score the face
        aggregation of theirs; the timeline at each sampled time the most suspicious face there."""
        if self.dense:
            return self._finish_dense(video_id, feats, clips, probs)
        audio_times = audio_scores = None
        streams = clips[0].get("streams", AUDIO_VISUAL)
        head = self.stream_head(streams) if {"video", "audio"} <= set(self.inputs) else None
        if streams == AUDIO_ONLY and head:  # no face: the frame outputs rest on blank, masked inputs
            probs = {k: v for k, v in probs.items() if k not in ("frame_logits", "frame_mask", "visual_logit")}
        if streams == VISUAL_ONLY and head:  # no audio: neither do the audio outputs
            probs = {k: v for k, v in probs.items() if k not in ("time_logits", "time_mask", "audio_logit")}
        if "time_logits" in probs:
            audio_times, audio_scores = self._audio_steps(clips, probs["time_logits"], probs.get("time_mask"))
        clip_scores = probs[head] if head else probs["video_logit"]  # (n_clips,) one stream's head, or both
        level = "clips" if streams == AUDIO_ONLY and head else self.level  # no frame scores without a face
        model = f"model {self.run.cfg.model.name!r}"
        faces: list[FaceScore] = []
        frame_times = frame_scores = None
        if "video" in self.inputs and all("face" in c for c in clips):
            clip = feats.clip
            face_of = np.array([c["face"] for c in clips], np.int64)  # (n_clips,)
            for f in np.unique(face_of):
                rows = np.flatnonzero(face_of == f)
                masks = None
                ft = fs = None
                pos = np.concatenate([clips[r]["positions"][clips[r]["mask"]] for r in rows])
                if "frame_logits" in probs:
                    # each frame once (the tiling's overlap and padding out), valid for the model
                    masks = np.stack([clips[r]["counted"] for r in rows])  # (k, C)
                    if "frame_mask" in probs:
                        masks = masks & probs["frame_mask"][rows]
                    keep = masks.reshape(-1)  # (k * C,)
                    pos = np.concatenate([clips[r]["positions"] for r in rows])[keep]  # (T_f,)
                    ft = clip.times[pos].astype(np.float64)  # (T_f,)
                    fs = probs["frame_logits"][rows].reshape(-1)[keep].astype(np.float64)  # (T_f,)
                else:
                    pos = np.unique(pos)
                    ft = clip.times[pos].astype(np.float64)
                score = video_score(self.aggregate_name, level, clip_scores[rows],
                                    None if "frame_logits" not in probs else probs["frame_logits"][rows], masks,
                                    model=model)
                det = None if clip.detection is None or f >= len(clip.detection) else \
                    np.asarray(clip.detection[f], np.float64)
                faces.append(FaceScore(
                    index=int(f), score=float(score), frame_times=ft, frame_scores=fs,
                    boxes=np.asarray(clip.boxes[f][pos], np.float32),
                    detection=float(det[det > 0].mean()) if det is not None and (det > 0).any() else None))
            score = faces_score(self.face_aggregate, [fc.score for fc in faces], [len(fc.frame_times) for fc in faces])
            if "frame_logits" in probs:
                frame_times, frame_scores = _most_suspicious(faces, clip.times)
        else:  # audio only (or an audio-visual model scoring a video without a face)
            score = video_score(self.aggregate_name, level, clip_scores, None, None, model=model)
        duration = float(feats.clip.duration) if "video" in self.inputs else float(
            feats.mel_times[-1] + (feats.mel_times[1] - feats.mel_times[0] if len(feats.mel_times) > 1 else 0.01))
        sampled = np.asarray(feats.clip.times, np.float64) if "video" in self.inputs else None
        fps = getattr(feats.clip, "fps", None) if "video" in self.inputs else None
        frame_seconds = 1.0 / float(fps) if fps else None  # None: every frame taken as sampled
        audio_step = None
        if audio_times is not None:
            audio_step = int(self.run.model.time_stride) * float(getattr(self.run.cache, "hop_seconds", 0.0) or 0.01)
        starts, ends, scores = self._timeline(clips, clip_scores, frame_times, frame_scores, audio_times,
                                              audio_scores, duration, frame_seconds=frame_seconds,
                                              audio_step=audio_step, sampled_times=sampled)
        p = self.run.cfg.predict
        proposals = proposals_from_cells(starts, ends, scores, thresholds=p.thresholds,
                                         suppression=p.suppression, iou_threshold=p.iou_threshold,
                                         max_proposals=p.max_proposals)
        extras = {"clips": float(len(clips))}
        for head in ("visual_logit", "audio_logit"):
            if head in probs:
                # the head's clip scores made one value as the verdict's own aggregation makes it
                extras[head.replace("_logit", "_score")] = float(aggregate(self.aggregate_name, probs[head]))
        used = [FULL_FRAME_FALLBACK] if "video" in self.inputs and feats.clip.fallback else []
        real, padded = clip_padding(clips)
        if padded:  # a face seen on fewer frames than the model's clip: filled out, recorded
            extras.update(real_frames=float(real), padded_frames=float(padded))
            used.append(f"{PADDED_FALLBACK}: {real} real frame{'s' if real != 1 else ''} and {padded} padded (the "
                        f"last frame repeated, masked) to fill the model's {self.clip_frames}-frame clip"
                        f"{'s' if len(clips) > 1 else ''}, the padding not scored")
        short = audio_padding(feats, self.run.audio_width, self.run.cache.hop_seconds) \
            if "audio" in self.inputs and streams != VISUAL_ONLY else None
        if short:  # less audio than one model window: filled out with masked silence, recorded
            heard, window = short
            extras.update(audio_seconds=heard, audio_window_seconds=window)
            used.append(f"{PADDED_AUDIO_FALLBACK}: {heard:.2f} s of audio padded with masked silence to fill the "
                        f"model's {window:.2f}-s audio window, the padding not scored")
        early = audio_ends_early(feats, clips, self.run.cache.hop_seconds) \
            if {"video", "audio"} <= set(self.inputs) and streams == AUDIO_VISUAL else None
        if early:  # clips after the audio track's end: scored with their audio masked out, recorded
            heard, seconds, silent, n = early
            extras.update(audio_seconds=heard, video_seconds=seconds, clips_without_audio=float(silent))
            used.append(f"{AUDIO_ENDS_FALLBACK}: the audio track ends at {heard:.2f} s of the {seconds:.2f}-s video, "
                        f"{silent} of {n} clips had none of it and were scored with their audio masked out "
                        "(the visual stream alone)")
        fallback = "; ".join(used) or None
        return Prediction(id=video_id, score=float(score), proposals=proposals, frame_times=frame_times,
                          frame_scores=frame_scores, audio_times=audio_times, audio_scores=audio_scores,
                          fallback=fallback, extras=extras, streams=streams, faces=tuple(faces),
                          face_aggregate=self.face_aggregate if faces else None)

    def _finish_dense(self, video_id: str, feats: Any, windows: list[dict[str, Any]], outs: dict[str, list]
                      ) -> Prediction:
        """A localizer's Prediction: proposals from its windows (fakelens.inference.localize.finish),
        per-step scores as the timeline, the video score their maximum."""
        from fakelens.data.features import step_inputs
        from fakelens.inference.localize import finish

        per_window = [{k: v[i] for k, v in outs.items()} for i in range(len(windows))]
        steps = step_inputs(feats.arrays)
        loc = finish(steps, windows, per_window, self.run.cfg.predict)
        seen = feats.has_face or bool(feats.fallback)  # the full-frame fallback's features are seen too
        streams = AUDIO_VISUAL if seen and feats.has_audio else (VISUAL_ONLY if seen else AUDIO_ONLY)
        extras = {"windows": float(loc.n_windows)}
        used = [FULL_FRAME_FALLBACK] if feats.fallback else []
        early = dense_audio_ends_early(steps, feats.arrays) if streams == AUDIO_VISUAL else None
        if early:  # the steps after the audio track's end: scored with their audio masked out, recorded
            ends, seconds, silent, n = early
            extras.update(audio_seconds=ends, video_seconds=seconds, steps_without_audio=float(silent))
            used.append(f"{AUDIO_ENDS_FALLBACK}: the audio track ends at about {ends:.2f} s of the {seconds:.2f}-s "
                        f"video, the last {silent} of {n} steps had none of it and were scored with their audio "
                        "masked out (the visual stream alone)")
        if self._modality_trained() and loc.visual_score is not None:
            # the modality head (visual / audio fake): an untrained one's guess is left out, and so
            # is its answer for a stream the video does not have (no face seen, no audio)
            if seen:
                extras["visual_score"] = loc.visual_score
            if feats.has_audio:
                extras["audio_score"] = loc.audio_score
        return Prediction(id=video_id, score=loc.score, proposals=loc.proposals, frame_times=loc.step_times,
                          frame_scores=loc.step_scores, streams=streams, fallback="; ".join(used) or None,
                          extras=extras)

    def _modality_trained(self) -> bool:
        """A localizer run trained its modality head: the task's `modality` term had a weight and
        was not disabled (fakelens.train.targets refuses or disables a one-class term)."""
        task = self.run.task
        return any(t.term == "modality" and task.weight(t) > 0 for t in task.targets())

    def _audio_steps(self, clips: list[dict[str, Any]], steps: np.ndarray,
                     step_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(n_clips, F') per-step P(fake) -> (A,) step start times (s) and scores, in time order.

        Step i of a window covers its mel frames [i*s, (i+1)*s), s = the audio encoder's stride
        (fakelens.models.audio), so a step's score stands for [its first frame's time, the time
        after its last frame): the cell convention of fakelens.inference.postprocess (a score at
        time t stands until the next time). Steps without valid audio are dropped; where windows
        overlap (the last window ends at the last mel frame), a step that reaches past the steps
        already kept stands for its new part only (its time moves to where they end), so each
        moment counts once and none is left out."""
        stride = int(getattr(self.run.model, "time_stride", 0) or 0)
        if stride < 1:
            raise FakelensError(f"model {self.run.cfg.model.name!r} gives time_logits without a time_stride")
        hop = float(getattr(self.run.cache, "hop_seconds", 0.0) or 0.01)
        times, scores = [], []
        end = -np.inf
        for j in np.argsort([float(c["audio_times"][0]) for c in clips], kind="stable"):
            c, s = clips[j], steps[j]
            mt, mmask = np.asarray(c["audio_times"], np.float64), np.asarray(c["audio_mask"], bool)  # (W,), (W,)
            col = float(mt[1] - mt[0]) if len(mt) > 1 else hop  # the window's own spacing (a resampled one differs)
            for i in range(len(s)):
                a, b = i * stride, min(len(mt), (i + 1) * stride)  # the step's mel frames [a, b)
                if a >= len(mt) or not mmask[a:b].any() or (step_mask is not None and not step_mask[j][i]):
                    continue
                step_end = float(mt[b - 1]) + col
                if step_end <= end + 1e-9:
                    continue
                times.append(max(float(mt[a]), end))
                scores.append(float(s[i]))
                end = step_end
        return np.asarray(times, np.float64), np.asarray(scores, np.float64)

    @staticmethod
    def _timeline(clips, clip_scores, frame_times, frame_scores, audio_times, audio_scores, duration=None, *,
                  frame_seconds=None, audio_step=None, sampled_times=None):
        """Fakeness over time for proposals: (N,) cell starts, ends (s) and P(fake) (NaN: nothing
        scored there). Per-frame scores stand for their sampled frames' cells
        (fakelens.inference.postprocess.frame_cells, `frame_seconds` = 1 / fps: sampled frames'
        cells meet in the middle of the unseen gaps), NaN where no face was scored; audio-step
        scores for their own steps (`audio_step` s long: postprocess.step_cells). When the model
        gives both, they are combined on the union of their boundaries, each piece taking the
        higher score (a fake of either stream is a fake segment; postprocess.union_cells): an
        audio step is never stretched to a frame cell. A clip-level model: each sampled frame
        (`sampled_times`) the highest score of the clips counting it; an audio model's clips:
        each window from its start to the next."""
        from fakelens.inference.postprocess import frame_cells, step_cells, union_cells

        parts = []
        if frame_scores is not None and len(frame_scores):
            order = np.argsort(frame_times, kind="stable")
            t, s = np.asarray(frame_times, np.float64)[order], np.asarray(frame_scores, np.float64)[order]
            keep = np.concatenate([[True], np.diff(t) > 1e-9])
            t, s = t[keep], s[keep]
            parts.append((*frame_cells(t, duration, frame_seconds), s))
        if audio_scores is not None and len(audio_scores):
            parts.append((*step_cells(audio_times, audio_step, duration), np.asarray(audio_scores, np.float64)))
        if len(parts) == 2:
            return union_cells(*parts)
        if parts:
            return parts[0]
        if sampled_times is not None and clips and all("positions" in c for c in clips):
            best = np.full(len(sampled_times), np.nan)  # (T,) per sampled frame, NaN: no clip counts it
            for c, sc in zip(clips, np.asarray(clip_scores, np.float64)):
                own = np.asarray(c["counted"] if "counted" in c else c["mask"], bool)
                np.fmax.at(best, np.asarray(c["positions"])[own], sc)
            return (*frame_cells(np.asarray(sampled_times, np.float64), duration, frame_seconds), best)
        starts = []
        for c in clips:
            own = np.asarray(c["counted"] if "counted" in c else c.get("mask", ()), bool)
            if "times" in c and own.any():
                starts.append(float(np.asarray(c["times"])[own][0]))
            else:
                starts.append(float(np.asarray(c["audio_times"])[0]))
        t = np.asarray(starts)
        order = np.argsort(t, kind="stable")
        t, sc = t[order], np.asarray(clip_scores, np.float64)[order]
        new = np.concatenate([[True], np.diff(t) > 1e-9])
        # clips starting at the same moment: the most suspicious there
        group = np.cumsum(new) - 1
        best = np.full(int(group[-1]) + 1, -np.inf)
        np.maximum.at(best, group, sc)
        return (*frame_cells(t[new], duration), best)

    # ------------------------------------------------------------------ many videos

    def _iter_features(self, records: Sequence[VideoRecord], workers: int) -> Iterator[tuple[VideoRecord, Any, float]]:
        """(record, features or the exception, seconds) in input order. With workers, at most
        workers * WINDOW_PER_WORKER videos are submitted ahead of the one being consumed, and a
        video's features are released once consumed: memory stays flat in len(records).
        `seconds` is how long this process waited for the video's features (computed here, or
        blocked on its worker's result), so their sum is the wall time the features cost: a
        video's whole latency in the window (queued behind the others) would count the same
        seconds up to workers * WINDOW_PER_WORKER times. With stored features (`features=`), each
        video's arrays are read from the folder in this process (no decoding: `workers` unused)."""
        if self.stored is not None:
            for rec in records:
                t0 = time.perf_counter()
                try:
                    feats = self.stored.load(rec)
                except MediaError as e:
                    feats = e
                yield rec, feats, time.perf_counter() - t0
            return
        if workers <= 0:
            for rec in records:
                t0 = time.perf_counter()
                try:
                    if rec.path is None:
                        raise MediaError(rec.id, "the dataset lists no file for this video")
                    feats: Any = self.features(rec.path, self._known(rec))
                except MediaError as e:
                    feats = e
                yield rec, feats, time.perf_counter() - t0
            return
        import multiprocessing
        import os

        from fakelens.config import to_dict
        from fakelens.features.media import release_large_allocations
        from fakelens.workers import ordered_window

        # Each result is unpickled into a few large buffers (4.8 MB for 32 x 224^2 crops): with glibc's
        # dynamic mmap threshold they would land on the heap, which fragments and never shrinks.
        release_large_allocations()
        cache_dict = to_dict(self.cache_cfg)
        job, job_cfg, encoder_state = _features_job, cache_dict, None
        if self.dense:
            job, job_cfg, encoder_state = _dense_job, self.features_cfg.to_dict(), self.run.encoder.state()

        # spawn, not fork: forking a process whose torch thread pools are running can deadlock.
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                 initargs=(self.cache_cfg.detector, os.getpid(), encoder_state),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            def submit(rec: VideoRecord) -> Any:
                if rec.path is None:
                    return None
                known = self._known(rec)  # face tracks to reuse: only then a third argument
                return pool.submit(job, str(rec.path), job_cfg, *([known] if known is not None else []))

            try:
                window = ordered_window(submit, records, workers * WINDOW_PER_WORKER)
                while True:
                    t0 = time.perf_counter()  # the window waits for the next video's features, then tops up
                    try:
                        rec, fut = next(window)
                    except StopIteration:
                        break
                    if fut is None:
                        yield rec, MediaError(rec.id, "the dataset lists no file for this video"), 0.0
                        continue
                    try:
                        feats = fut.result()
                    except MediaError as e:
                        feats = e
                    del fut  # the pool keeps no reference either: released once the caller drops it
                    yield rec, feats, time.perf_counter() - t0
                    del feats
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def predict(self, records: Sequence[VideoRecord], *, on_error: str = "raise", workers: int = 0,
                progress: bool = False, on_prediction: Callable[[VideoRecord, Prediction], None] | None = None
                ) -> PredictResult:
        """Score every record. on_error="raise": failures are collected and returned (the caller
        refuses to write a submission); "prior": failed videos get the training prior, recorded.

        Clips of consecutive videos share forward passes of `batch_size` clips; predictions and
        failures come out in input order. `on_prediction(record, prediction)` is called as each
        video is scored (not for failures), e.g. to journal it (fakelens.inference.journal)."""
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if self.stored is not None:
            self.stored.check(records)  # videos without stored features are refused before any work
        preds: list[Prediction] = []
        failures: list[Failure] = []
        totals = {"decode": 0.0, "faces": 0.0, "audio": 0.0, "model": 0.0, "features_wall": 0.0}
        if self.dense:
            totals["encoder"] = 0.0
        items: Iterable = self._iter_features(records, workers)
        if progress:
            from fakelens.progress import progress as progress_bar

            items = progress_bar(items, total=len(records), desc="predict", unit="video")
        pending: deque[_Pending] = deque()  # videos not yet emitted, in input order
        queue: deque[tuple[_Pending, int]] = deque()  # (video, clip index) waiting for the model

        def run_batch() -> None:
            batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
            t0 = time.perf_counter()
            out = self._forward([p.clips[k] for p, k in batch])
            share = (time.perf_counter() - t0) / len(batch)
            for i, (p, k) in enumerate(batch):
                p.outputs[k] = {name: v[i] for name, v in out.items()}
                p.n_scored += 1
                p.t_model += share

        def emit() -> None:
            while pending and pending[0].ready:
                done = pending.popleft()
                n_failed = len(failures)
                self._emit(done, on_error, preds, failures, totals)
                if on_prediction is not None and len(failures) == n_failed:
                    on_prediction(done.rec, preds[-1])

        for rec, feats, seconds in items:
            totals["features_wall"] += seconds
            p = _Pending(rec)
            try:
                if isinstance(feats, BaseException):
                    raise feats
                p.feats = feats
                if self.record_tracks is not None and getattr(feats, "tracks", None) is not None:
                    self.record_tracks[rec.id] = feats.tracks
                p.clips = self._prepare(rec.id, feats)
                if self.clip_transform is not None:
                    p.clips = self.clip_transform(rec, p.clips)
                p.outputs = [None] * len(p.clips)
                queue.extend((p, k) for k in range(len(p.clips)))
            except (MediaError, _NoFace) as e:
                p.feats, p.clips, p.error = None, [], e
            del feats
            pending.append(p)
            while len(queue) >= self.batch_size:
                run_batch()
            emit()
        while queue:
            run_batch()
        emit()
        return PredictResult(preds, failures, totals)

    def _emit(self, p: _Pending, on_error: str, preds: list[Prediction], failures: list[Failure],
              totals: dict[str, float]) -> None:
        """A finished video: its Prediction (clip outputs stacked as one forward would give them) or failure."""
        rec = p.rec
        try:
            if p.error is not None:
                raise p.error
            tm = p.feats.timings
            totals["decode"] += tm.get("probe", 0.0) + tm.get("decode", 0.0)
            totals["faces"] += tm.get("detect", 0.0) + tm.get("track", 0.0) + tm.get("crop", 0.0)
            totals["audio"] += tm.get("audio", 0.0)
            if self.dense:
                totals["encoder"] += tm.get("visual_encoder", 0.0) + tm.get("audio_encoder", 0.0)
                probs = {k: [o[k] for o in p.outputs] for k in p.outputs[0]}  # {output: [per window]}
            else:
                probs = {k: np.stack([o[k] for o in p.outputs]) for k in p.outputs[0]}  # (n_clips, ...)
            pred = self._finish(rec.id, p.feats, p.clips, probs)
            totals["model"] += p.t_model
            pred.extras.update({f"t_{k}": float(v) for k, v in tm.items()})
            pred.extras["t_model"] = p.t_model
            preds.append(pred)
        except (MediaError, _NoFace) as e:
            reason = str(e)
            path = None if rec.path is None else str(rec.path)
            if on_error == "prior":
                preds.append(Prediction(id=rec.id, score=self.run.prior, fallback=PRIOR_FALLBACK,
                                        extras={"failed": 1.0}))
                failures.append(Failure(rec.id, path, reason, PRIOR_FALLBACK))
            else:
                failures.append(Failure(rec.id, path, reason))


def heard_spans(clips: Sequence[dict[str, Any]], gap: float = 1e-6) -> list[tuple[float, float]]:
    """[start, end) seconds of audio the model heard, merged and in time order, from the clips it
    was given: each clip's valid mel columns (audio_mask) stand from their first time to their
    last plus one column. Empty when no clip carries audio."""
    spans = []
    for c in clips:
        if "audio_times" not in c:
            continue
        mt, mmask = np.asarray(c["audio_times"], np.float64), np.asarray(c["audio_mask"], bool)  # (W,), (W,)
        if not mmask.any():
            continue
        col = float(mt[1] - mt[0]) if len(mt) > 1 else 0.01
        valid = mt[mmask]
        spans.append((float(valid[0]), float(valid[-1]) + col))
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def clip_padding(clips: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(real, padded) frame slots of a video's face clips: each real frame once (`counted`), and the
    slots filled with the last frame because the face was seen on fewer frames than a clip holds
    (mask False). (0, 0) for audio clips and the blank faces of a video scored from its audio alone."""
    real = padded = 0
    for c in clips:
        if "video" not in c or "mask" not in c or c.get("streams") == AUDIO_ONLY:
            continue
        mask = np.asarray(c["mask"], bool)  # (C,)
        real += int(np.asarray(c.get("counted", mask), bool).sum())
        padded += int((~mask).sum())
    return real, padded


def audio_padding(feats: Any, width: int | None, hop_seconds: float) -> tuple[float, float] | None:
    """(seconds of audio, seconds of the model's window) when a video's whole audio track holds
    fewer mel frames than one model audio window (`width`), so every window was padded with masked
    silence; None when the track fills a window, or there is no audio or no window."""
    mel = getattr(feats, "mel", None)
    if not width or mel is None or not getattr(feats, "has_audio", True):
        return None
    n = int(mel.shape[1])  # (M, T_mel)
    if n == 0 or n >= int(width):
        return None
    hop = float(hop_seconds or 0.01)
    return round(n * hop, 6), round(int(width) * hop, 6)


def audio_ends_early(feats: Any, clips: Sequence[dict[str, Any]], hop_seconds: float
                     ) -> tuple[float, float, int, int] | None:
    """(seconds of audio, seconds of video, clips without audio, clips) when the audio track ends
    before some audio-visual clips begin, so their audio windows are masked out entirely
    (fakelens.data.dataset.clip_audio_window) and the model scored them from the faces alone;
    None when every clip heard some of the track (or the video has no audio: "visual only")."""
    mel = getattr(feats, "mel", None)
    if mel is None or not getattr(feats, "has_audio", True):
        return None
    av = [c for c in clips if "video" in c and "audio_mask" in c]
    silent = sum(1 for c in av if not np.asarray(c["audio_mask"], bool).any())
    if not silent:
        return None
    heard = round(int(mel.shape[1]) * float(hop_seconds or 0.01), 6)
    return heard, round(float(feats.clip.duration), 6), int(silent), len(av)


def dense_audio_ends_early(steps: Any, arrays: dict[str, Any]) -> tuple[float, float, int, int] | None:
    """(about where the audio ends, seconds of video, steps after it, steps) when a localizer's last
    steps lie past the end of the video's audio features (fakelens.data.features.StepInputs'
    audio_mask, False after the last feature) by more than one audio feature's spacing (a track a few
    ms short of the video is not counted); None otherwise."""
    heard = np.asarray(steps.audio_mask, bool)  # (T,)
    at = np.asarray(arrays.get("audio_times", ()), np.float64)  # (A,) audio feature centres
    if not heard.any() or heard[-1] or len(at) == 0:
        return None
    last = int(np.flatnonzero(heard)[-1]) + 1
    step = steps.step_frames / steps.fps
    spacing = float(np.median(np.diff(at))) if len(at) > 1 else step
    if (len(heard) - last) * step <= spacing + 1e-9:
        return None
    ends = float(steps.indices[0]) / steps.fps + last * step
    return round(ends, 6), round(float(steps.duration), 6), len(heard) - last, len(heard)


def audio_column_seconds(clips: Sequence[dict[str, Any]]) -> float | None:
    """The seconds of audio one column of the model's audio windows truly spans: the widest spacing
    between the columns of the clips' windows that carry audio. It is the mel hop when every
    window holds the mel frames as they are; a clip longer than the window had its audio resampled
    into the window's columns (fakelens.data.dataset.clip_audio_window), one column for several
    mel frames. None when no clip carries audio."""
    widest = None
    for c in clips:
        if "audio_times" not in c or not np.asarray(c["audio_mask"], bool).any():
            continue
        mt = np.asarray(c["audio_times"], np.float64)  # (W,)
        if len(mt) > 1:
            col = float(np.max(np.diff(mt)))
            widest = col if widest is None else max(widest, col)
    return widest


def _most_suspicious(faces: Sequence[FaceScore], sampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The video's per-frame timeline from its faces': (T,) every sampled time of the features and
    at each the highest P(fake) of the faces scored there, NaN where no face was (not found in
    that frame, or a frame the model did not count): each sampled frame has a score or says it
    has none (`Prediction.frame_scores`)."""
    t = np.asarray(sampled, np.float64)  # (T,)
    best = np.full(len(t), np.nan)
    for f in faces:
        if f.frame_scores is None or not len(f.frame_times):
            continue
        pos = np.clip(np.searchsorted(t, f.frame_times), 0, len(t) - 1)
        on = np.abs(t[pos] - f.frame_times) <= 1e-9  # the faces' frames are sampled times exactly
        np.fmax.at(best, pos[on], np.asarray(f.frame_scores, np.float64)[on])
    return t, best


def journal_header(run: LoadedRun, predictor: "Predictor") -> dict[str, Any]:
    """What a journaled Prediction depends on (fakelens.inference.journal): the checkpoint file,
    the inference settings and the preprocessing parameters."""
    from fakelens import __version__
    from fakelens.config import to_dict
    from fakelens.inference.journal import file_stamp

    return {"checkpoint": str(Path(run.checkpoint).resolve()), "checkpoint_file": file_stamp(run.checkpoint),
            "aggregate": predictor.aggregate_name, "level": predictor.level, "no_face": predictor.no_face,
            "face_aggregate": predictor.face_aggregate, "proposals": predictor.run.cfg.predict.proposals,
            "media": to_dict(predictor.cache_cfg), "fakelens": __version__}


def one_stream(predictions: Sequence[Prediction], inputs: Sequence[str]) -> list[Prediction]:
    """The predictions an audio-visual model (`inputs` has video and audio) could make from one
    stream only (no audio, or no face): their score rests on less than the model can use."""
    if not {"video", "audio"} <= set(inputs):
        return []
    return [p for p in predictions if p.streams in (VISUAL_ONLY, AUDIO_ONLY)]


def failures_report(result: PredictResult, prior: float, inputs: Sequence[str] = ()) -> dict[str, Any]:
    """JSON-ready report of the failed videos, and of those scored from one stream only
    (written next to a submission)."""
    degraded = one_stream(result.predictions, inputs)
    return {
        "n_failed": len(result.failures),
        "fallback": None if not result.failures or result.failures[0].fallback is None else {
            "name": PRIOR_FALLBACK, "score": prior,
            "meaning": "training-set P(fake), given because --on-error prior was asked for"},
        "failures": [dataclasses.asdict(f) for f in result.failures],
        "n_one_stream": len(degraded),
        "one_stream": [{"id": p.id, "streams": p.streams,
                        "meaning": "no usable audio: scored by the visual head alone" if p.streams == VISUAL_ONLY
                        else "no face found: scored by the audio head alone"} for p in degraded],
    }
