"""One video -> everything its forensic report shows: the Prediction of the one inference
pipeline (`Predictor.features` + `Predictor.predict_features`, exactly what `predict` computes)
and the evidence behind it: the face crops the model found most and least suspicious (ranked by
its own per-frame scores) with Grad-CAM saliency (fakelens.inference.explain), the log-mel and its
most suspicious span, the sampled frames without a face, the segments above the decision
threshold, and what could not be analysed. `fakelens detect` and the web page both call
`Analyser.analyse`; fakelens.report only draws what it returns.

A video that cannot be scored is not an exception here: it comes back as an `Evidence` with
status "failed" and the reason, so that a batch goes on and the failure is reported like the rest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakelens.errors import FakelensError
from fakelens.types import FaceScore, Prediction, Proposal

DEFAULT_THRESHOLD = 0.5  # P(fake) at or above which a video is called fake and a segment is shown
# What the report says when an audio-visual model could score only one stream (Prediction.streams).
STREAM_NOTES = {
    "visual only": "no usable audio: the score rests on the visual stream alone (the model's visual head); "
                   "a fake voice cannot be seen",
    "audio only": "no face found in any sampled frame: the score rests on the audio stream alone (the model's "
                  "audio head); a fake face cannot be heard",
}
SILENCE_MARGIN = 3.0  # a mel frame is sound when its loudest bin is this far (natural log) above the floor
SILENT_FRACTION = 0.01  # audio with fewer sound frames than this is reported as silent


@dataclass
class Note:
    """Something the report must say: what could not be analysed, and how that was handled."""

    code: str  # stable identifier, e.g. "no_audio_branch" (documented in the report schema)
    level: str  # "warning" (the verdict rests on less than the video) or "info"
    message: str


@dataclass
class Crop:
    """One face crop shown in the report, with the model's score for it and its saliency map."""

    face: int  # face track index (FaceScore.index)
    kind: str  # "most suspicious" | "least suspicious" | "not scored" (a track the model did not score)
    time: float  # seconds
    position: int  # index of the sampled frame
    score: float | None  # P(fake) of that frame (the Prediction's own per-frame score); None: track not scored
    image: np.ndarray  # (S, S, 3) uint8 RGB crop the model saw
    box: tuple[float, float, float, float] | None  # x1, y1, x2, y2 in displayed pixels
    saliency: np.ndarray | None = None  # (S, S) float32 in [0, 1]
    saliency_peak: float | None = None  # raw Grad-CAM maximum (0: nothing pushed this frame towards fake)


@dataclass
class Span:
    """A time span in seconds with the mean score over it."""

    start: float
    end: float
    score: float


@dataclass
class Evidence:
    """What one video's report shows. Arrays are None when the model or the video lacks them."""

    name: str  # the video's display name (file name)
    status: str  # "ok" | "failed"
    error: str | None = None
    path: str | None = None
    prediction: Prediction | None = None
    media: dict[str, Any] = field(default_factory=dict)  # probe: duration, fps, size, rotation, audio
    sampled_times: np.ndarray | None = None  # (T,) seconds of the frames the model saw
    face_found: np.ndarray | None = None  # (F, T) bool: face detected (or interpolated) per track and frame
    faces: list[FaceScore] = field(default_factory=list)  # every scored face track
    crops: list[Crop] = field(default_factory=list)
    mel: np.ndarray | None = None  # (n_mels, M) float32 log-mel the model heard
    mel_times: np.ndarray | None = None  # (M,) seconds
    audio_span: Span | None = None  # the most suspicious audio span (among the audio heard)
    audio_heard: list[tuple[float, float]] | None = None  # [start, end) s of audio the model heard; None: no audio
    # seconds of audio one column of the model's audio windows spans (pipeline.audio_column_seconds):
    # the mel hop, or more where a clip's audio was resampled into the window (then `audio_heard` is
    # what the windows spanned, not audio heard at the track's rate); None: no audio
    audio_column: float | None = None
    segments: list[Proposal] = field(default_factory=list)  # non-overlapping, confidence >= threshold
    top_proposal: Proposal | None = None  # the most confident proposal, shown when no segment passes
    threshold: float = DEFAULT_THRESHOLD
    notes: list[Note] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    saliency: dict[str, str] | None = None  # method, layer, target
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    @property
    def verdict(self) -> str | None:
        """"fake" / "real" at the threshold, None when the video could not be scored."""
        if self.prediction is None:
            return None
        return "fake" if self.prediction.score >= self.threshold else "real"


def display_segments(proposals: tuple[Proposal, ...] | list[Proposal], threshold: float) -> list[Proposal]:
    """The proposals a person reads: confidence >= threshold, greedily by confidence, dropping any
    that overlaps one already kept (proposal lists for scorers are nested and overlapping), in
    time order."""
    kept: list[Proposal] = []
    for p in sorted(proposals, key=lambda p: -p.confidence):
        if p.confidence < threshold:
            break
        if all(min(p.end, k.end) <= max(p.start, k.start) for k in kept):
            kept.append(p)
    return sorted(kept, key=lambda p: p.start)


def _positions(sampled: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of each time in the sampled frame times (nearest sample)."""
    idx = np.searchsorted(sampled, times)
    idx = np.clip(idx, 0, len(sampled) - 1)
    prev = np.clip(idx - 1, 0, len(sampled) - 1)
    closer = np.abs(sampled[prev] - times) < np.abs(sampled[idx] - times)
    return np.where(closer, prev, idx)


def _fmt_times(times: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(f"{t:.2f}" for t in times[:limit])
    return shown + (f" ... ({len(times)} in all)" if len(times) > limit else "") + " s"


def _own_error(e: FakelensError, path: Path, name: str) -> str:
    """The failure's message without its own file's prefix: the report names the video already
    (the CLI prints "name: error"), so "e.mp4: e.mp4: no audio" says it once, and a web upload's
    temporary path never shows."""
    own = getattr(e, "path", None)
    cause = getattr(e, "cause", None) or getattr(e, "problem", None)
    if own is not None and cause and getattr(e, "line", None) is None and getattr(e, "item", None) is None and (
            str(own) in (str(path), name, path.name) or Path(str(own)).name in (path.name, name)):
        return str(cause)
    return str(e)


class Analyser:
    """Analyses videos with one loaded run and fixed settings (threshold, saliency on/off)."""

    def __init__(self, predictor: Any, *, threshold: float = DEFAULT_THRESHOLD, saliency: bool = True):
        if not 0.0 < threshold < 1.0:
            raise FakelensError(f"threshold must be in (0, 1), got {threshold}")
        self.predictor = predictor
        self.threshold = float(threshold)
        self.saliency = bool(saliency)

    # ------------------------------------------------------------------ what the model is

    def model_info(self) -> dict[str, Any]:
        from fakelens.config import to_dict

        pr = self.predictor
        run = pr.run
        inputs = list(pr.inputs)
        p = run.cfg.predict
        hop = run.cache.hop_seconds
        return {
            "checkpoint": str(run.checkpoint),
            "name": run.cfg.model.name,
            "inputs": inputs,
            "clip_frames": int(pr.clip_frames) if "video" in inputs else None,
            "audio_window_seconds": float(run.audio_width * hop) if run.audio_width else None,
            "prior": float(run.prior),
            "aggregate": pr.aggregate_name,
            "level": pr.level,
            "proposals": {"thresholds": [float(t) for t in p.thresholds], "suppression": p.suppression,
                          "iou_threshold": float(p.iou_threshold), "max_proposals": int(p.max_proposals)},
            "media": to_dict(pr.cache_cfg),
        }

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "saliency": self.saliency, "device": str(self.predictor.device),
                "no_face": self.predictor.no_face, "batch_size": int(self.predictor.batch_size)}

    # ------------------------------------------------------------------ one video

    def analyse(self, path: str | Path, name: str | None = None) -> Evidence:
        """Score one video and gather its evidence; a video that cannot be scored gives status "failed"."""
        from fakelens.io.video import probe

        t_start = time.perf_counter()
        path = Path(path)
        ev = Evidence(name=name or path.name, status="ok", path=str(path), threshold=self.threshold,
                      model=self.model_info(), settings=self.settings())
        try:
            t0 = time.perf_counter()
            info = probe(path)
            ev.timings["probe"] = time.perf_counter() - t0
            ev.media = {"duration": float(info.duration), "fps": float(info.fps), "n_frames": int(info.n_frames),
                        "width": int(info.width), "height": int(info.height), "rotation": int(info.rotation),
                        "codec": info.codec, "has_audio": bool(info.has_audio),
                        "audio_rate": info.audio_rate, "size_bytes": int(path.stat().st_size)}
            feats = self.predictor.features(path)
            ev.timings.update({k: float(v) for k, v in feats.timings.items() if k != "probe"})
            pred, t_model, clips, probs = self.predictor.score_features(ev.name, feats)
            ev.timings["model"] = float(t_model)
        except FakelensError as e:
            ev.status, ev.error = "failed", _own_error(e, path, ev.name)
            ev.timings["total"] = time.perf_counter() - t_start
            return ev
        ev.prediction = pred
        if "audio" in self.predictor.inputs:
            from fakelens.inference.pipeline import audio_column_seconds, heard_spans

            ev.audio_heard = heard_spans(clips)
            ev.audio_column = audio_column_seconds(clips)
        self._fill(ev, pred, feats, clips, probs)
        ev.timings["total"] = time.perf_counter() - t_start
        return ev

    def _fill(self, ev: Evidence, pred: Prediction, feats: Any, clips: list | None = None,
              probs: dict | None = None) -> None:
        inputs = self.predictor.inputs
        ev.segments = display_segments(pred.proposals, self.threshold)
        ev.top_proposal = max(pred.proposals, key=lambda p: p.confidence) if pred.proposals else None
        if "video" in inputs:
            clip = feats.clip
            ev.sampled_times = np.asarray(clip.times, np.float64)  # (T,)
            ev.face_found = np.asarray(clip.found, bool)  # (F, T)
            # scored from the audio alone (no face anywhere): no face track to show
            ev.faces = [] if pred.streams == "audio only" else list(pred.faces) or self._main_track(pred, clip)
            if not pred.faces and ev.faces and ev.faces[0].frame_scores is None and clips and probs:
                self._clip_ranked(ev, clip, clips, probs)
            elif clips and probs and all("face" in c for c in clips) and \
                    any(f.frame_scores is None for f in ev.faces):
                self._clip_ranked_faces(ev, clip, clips, probs)
            t0 = time.perf_counter()
            self._crops(ev, feats)
            ev.timings["saliency"] = time.perf_counter() - t0
        if "audio" in inputs and feats.has_audio:
            ev.mel, ev.mel_times = feats.mel, feats.mel_times
            ev.audio_span = self._audio_span(pred, feats)
        ev.notes.extend(self._notes(ev, pred, feats))
        # what the run's predictions leave out (an untrained head's outputs), as predict says it
        ev.notes.extend(Note("untrained_head", "info", text) for text in self.predictor.notes)

    @staticmethod
    def _main_track(pred: Prediction, clip: Any) -> list[FaceScore]:
        """The pipeline's single scored track as a FaceScore, when the Prediction lists no faces: its
        arrays over the scored frames where that face was found (FaceScore's contract; a full-frame
        fallback's frames are all what was scored), detection its mean detector confidence when the
        features keep one."""
        if len(clip.faces) == 0:
            return []
        found = np.asarray(clip.found[0], bool)  # (T,)
        det = getattr(clip, "detection", None)  # (F, T) detector confidence (0 where interpolated), if kept
        detection = float(np.mean(np.asarray(det[0])[found])) if det is not None and found.any() else None
        if pred.frame_times is None:
            times = np.asarray(clip.times, np.float64)
            keep = np.ones(len(times), bool) if clip.fallback else found
            return [FaceScore(index=0, score=pred.score, frame_times=times[keep],
                              boxes=np.asarray(clip.boxes[0][keep], np.float32), detection=detection)]
        pos = _positions(np.asarray(clip.times), np.asarray(pred.frame_times))
        keep = np.ones(len(pos), bool) if clip.fallback else found[pos]
        if pred.frame_scores is not None:
            keep &= np.isfinite(np.asarray(pred.frame_scores, np.float64))  # NaN: no face scored there
        return [FaceScore(index=0, score=pred.score, frame_times=np.asarray(pred.frame_times, np.float64)[keep],
                          frame_scores=np.asarray(pred.frame_scores, np.float64)[keep],
                          boxes=np.asarray(clip.boxes[0][pos[keep]], np.float32), detection=detection)]

    def _clip_ranked(self, ev: Evidence, clip: Any, clips: list, probs: dict) -> None:
        """A clip-level model (no per-frame scores, e.g. the 3D CNNs): each frame of the one track
        gets the P(fake) of the clip it counts in, so crops are ranked by the clip logit and the
        saliency explains that clip (explain.py's clip path; a 3D map is sliced at the frame).
        A frame is taken from the clip explain.py rebuilds for it (position // clip_frames)."""
        c_len = int(self.predictor.clip_frames)
        n_clips = len(clips)
        sampled = np.asarray(clip.times)
        times, scores = [], []
        for k, c in enumerate(clips):
            own = np.asarray(c["counted"], bool)
            for t in np.asarray(c["times"])[own]:
                p = int(_positions(sampled, np.array([t]))[0])
                if min(p // c_len, n_clips - 1) == k:
                    times.append(float(t))
                    scores.append(float(probs["video_logit"][k]))
        face = ev.faces[0]
        keep = np.isin(np.round(np.asarray(times), 6), np.round(np.asarray(face.frame_times), 6))
        pos = _positions(sampled, np.asarray(times)[keep]) if keep.any() else np.zeros(0, int)
        ev.faces[0] = FaceScore(index=face.index, score=face.score, frame_times=np.asarray(times)[keep],
                                frame_scores=np.asarray(scores)[keep],
                                boxes=np.asarray(clip.boxes[face.index][pos], np.float32), detection=face.detection)
        ev.notes.append(Note("clip_ranked", "info", "the model scores whole clips: each frame shown carries the "
                                                    "P(fake) of its clip, and crops are ranked by clip"))

    def _clip_ranked_faces(self, ev: Evidence, clip: Any, clips: list, probs: dict) -> None:
        """A clip-level model (no per-frame scores) scoring every face track: each frame of a face
        gets the P(fake) of that face's clip counting it, so crops are ranked by clip and the
        saliency explains that clip (explain.py takes the clip that counts the frame)."""
        sampled = np.asarray(clip.times)
        out = []
        for face in ev.faces:
            if face.frame_scores is not None:
                out.append(face)
                continue
            pos, scores = [], []
            for k, c in enumerate(clips):
                if int(c["face"]) != face.index:
                    continue
                for p in np.asarray(c["positions"])[np.asarray(c["counted"], bool)]:
                    pos.append(int(p))
                    scores.append(float(probs["video_logit"][k]))
            order = np.argsort(pos, kind="stable")
            p = np.asarray(pos, int)[order]
            out.append(FaceScore(index=face.index, score=face.score, frame_times=sampled[p].astype(np.float64),
                                 frame_scores=np.asarray(scores, np.float64)[order],
                                 boxes=np.asarray(clip.boxes[face.index][p], np.float32), detection=face.detection))
        ev.faces = out
        ev.notes.append(Note("clip_ranked", "info", "the model scores whole clips: each frame shown carries the "
                                                    "P(fake) of its clip, and crops are ranked by clip"))

    def _crops(self, ev: Evidence, feats: Any) -> None:
        """Most and least suspicious crop of each face track, among frames where that face was found."""
        clip = feats.clip
        sampled = np.asarray(clip.times)
        for face in ev.faces:
            if face.index >= len(clip.faces) or face.frame_scores is None or len(face.frame_scores) == 0:
                continue
            pos = _positions(sampled, np.asarray(face.frame_times))
            ok = clip.found[face.index][pos] & np.isfinite(face.frame_scores)
            if clip.fallback:  # full-frame fallback crops have no detection but are what was scored
                ok = np.isfinite(face.frame_scores)
            if not ok.any():
                continue
            cand = np.flatnonzero(ok)
            order = cand[np.argsort(np.asarray(face.frame_scores)[cand], kind="stable")]
            picks = [("most suspicious", int(order[-1]))]
            if len(order) > 1:
                picks.append(("least suspicious", int(order[0])))
            for kind, i in picks:
                p = int(pos[i])
                box = clip.boxes[face.index][p]
                ev.crops.append(Crop(face=face.index, kind=kind, time=float(sampled[p]), position=p,
                                     score=float(face.frame_scores[i]), image=clip.faces[face.index][p].copy(),
                                     box=tuple(float(v) for v in box) if np.all(np.isfinite(box)) else None))
        scored = {f.index for f in ev.faces}
        for index in range(len(clip.faces)):  # tracks found but not scored: shown, never ranked
            found = np.asarray(clip.found[index], bool)
            if index in scored or not found.any():
                continue
            det = getattr(clip, "detection", None)
            p = int(np.argmax(np.where(found, np.asarray(det[index]), -np.inf))) if det is not None else int(
                np.flatnonzero(found)[len(np.flatnonzero(found)) // 2])
            box = clip.boxes[index][p]
            ev.crops.append(Crop(face=index, kind="not scored", time=float(sampled[p]), position=p, score=None,
                                 image=clip.faces[index][p].copy(),
                                 box=tuple(float(v) for v in box) if np.all(np.isfinite(box)) else None))
        if not self.saliency or not any(c.score is not None for c in ev.crops):
            return
        from fakelens.inference.explain import face_saliency

        try:
            for index in sorted({c.face for c in ev.crops if c.score is not None}):
                mine = [c for c in ev.crops if c.face == index and c.score is not None]
                sal = face_saliency(self.predictor.run, feats, index, [c.position for c in mine],
                                    device=self.predictor.device, predictor=self.predictor)
                for c, m, peak in zip(mine, sal.maps, sal.peaks):
                    c.saliency, c.saliency_peak = m, float(peak)
                ev.saliency = {"method": sal.method, "layer": sal.layer, "target": sal.target}
        except (ValueError, RuntimeError) as e:  # a model captum cannot explain: said, not hidden
            for c in ev.crops:
                c.saliency = c.saliency_peak = None
            ev.saliency = None
            ev.notes.append(Note("saliency_unavailable", "info", f"no saliency map: {e}"))

    def _audio_span(self, pred: Prediction, feats: Any) -> Span | None:
        """The most confident run of high per-step audio scores, from the pipeline's proposal code."""
        from fakelens.inference.postprocess import proposals_from_cells, step_cells

        if pred.audio_times is None or pred.audio_scores is None or len(pred.audio_scores) == 0:
            return None
        p = self.predictor.run.cfg.predict
        hop = float(feats.mel_times[1] - feats.mel_times[0]) if len(feats.mel_times) > 1 else 0.01
        duration = float(feats.mel_times[-1] + hop)
        stride = int(getattr(self.predictor.run.model, "time_stride", 0) or 0)
        starts, ends = step_cells(pred.audio_times, stride * hop if stride else None, duration)  # the pipeline's cells
        props = proposals_from_cells(starts, ends, pred.audio_scores, thresholds=p.thresholds, suppression="nms",
                                     iou_threshold=0.0, max_proposals=1)
        best = props[0]
        return Span(float(best.start), float(best.end), float(best.confidence))

    @staticmethod
    def _coverage(ev: Evidence, feats: Any) -> list[Note]:
        """How much of the audio track the model heard, and the gaps it never heard (a note; the
        timeline leaves them blank and the log-mel greys them); and, when the clips' audio was
        resampled into the model's window (`Evidence.audio_column` wider than the mel hop), that
        the spans were heard one column per so many mel frames, not as the track holds them."""
        mt = np.asarray(feats.mel_times, np.float64)
        if ev.audio_heard is None or not len(mt):
            return []
        hop = float(mt[1] - mt[0]) if len(mt) > 1 else 0.01
        col = ev.audio_column
        resampled = col is not None and col > hop * (1 + 1e-3)
        notes = []
        if resampled:
            share = 100 * hop / col
            notes.append(Note("audio_resampled", "warning" if col > 2 * hop else "info",
                              f"the clips span more audio than the model's window holds: their audio was resampled "
                              f"into the window, one column every {1000 * col:.0f} ms instead of every "
                              f"{1000 * hop:.0f} ms (the mel hop), so about {share:.0f}% of the mel frames in the "
                              "windows reached the model, the rest only through the interpolation between them"))
        start, end = float(mt[0]), float(mt[-1]) + hop
        gaps, at = [], start
        for a, b in ev.audio_heard:
            if a > at + hop:
                gaps.append((at, min(a, end)))
            at = max(at, b)
        if end > at + hop:
            gaps.append((at, end))
        if not gaps:
            return notes
        total = end - start
        missed = sum(b - a for a, b in gaps)
        heard = max(0.0, total - missed)
        shown = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in gaps[:6]) + (f" ... ({len(gaps)} in all)" if len(gaps) > 6 else "")
        level = "warning" if missed > 0.05 * total else "info"
        said = "the model's audio windows spanned" if resampled else "the model heard"
        return [Note("audio_coverage", level,
                     f"{said} {heard:.2f} s of the {total:.2f} s audio track ({100 * heard / total:.0f}%"
                     + ("; resampled, see audio_resampled" if resampled else "") + f"); not heard: {shown} s "
                     "(blank on the timeline, greyed on the log-mel; nothing there is scored)"), *notes]

    def _dense_notes(self, ev: Evidence, pred: Prediction, feats: Any) -> list[Note]:
        """The notes of a localizer run (dense per-step features, fakelens.inference.dense): what its
        visual and audio features rest on, by the features' own masks and the model's widths (a
        localizer's inputs are feature arrays, not "video"/"audio")."""
        model = self.predictor.run.model
        a = feats.arrays
        notes: list[Note] = []
        n, total = len(a["times"]), ev.media.get("n_frames")
        k = int(a["step_frames"])
        seen = (f"the model saw all {n} frames of the video" if k == 1 and (not total or n >= total) else
                f"the model saw {n} frames" + (f" of the video's {total}" if total else "")
                + (f" (every {k}th)" if k > 1 else ""))
        notes.append(Note("sampled_frames", "info", seen))
        if int(getattr(model, "dv", 1)) == 0:
            notes.append(Note("no_visual_branch", "warning",
                              "the model has no visual branch: faces and frames were not analysed"))
        elif feats.fallback:
            notes.append(Note("full_frame_fallback", "warning",
                              "no face was found: the whole frame's features were used instead of a face's"))
        elif feats.has_face:  # no face at all: the streams note says the score rests on the audio
            missing = ~np.asarray(a["found"], bool)
            if missing.any():
                notes.append(Note("no_face_frames", "warning",
                                  f"no face found in {int(missing.sum())} of {n} frames (at "
                                  f"{_fmt_times(np.asarray(a['times'])[missing])}): their visual features are "
                                  "masked (the model sees no face there)"))
        if int(getattr(model, "da", 1)) == 0:
            why = ("the video has no audio stream either" if not ev.media.get("has_audio")
                   else "the audio track was not analysed")
            notes.append(Note("no_audio_branch", "warning", f"the model has no audio branch: {why}"))
        elif not feats.has_audio:
            notes.append(Note("no_audio", "warning", f"audio not analysed: {feats.audio_message or 'no audio'}"))
        if pred.streams in STREAM_NOTES and int(getattr(model, "dv", 1)) and int(getattr(model, "da", 1)):
            notes.append(Note("streams", "warning", STREAM_NOTES[pred.streams]))
        from fakelens.inference.pipeline import AUDIO_ENDS_FALLBACK

        early = [f for f in (pred.fallback or "").split("; ") if f.startswith(AUDIO_ENDS_FALLBACK + ":")]
        if early:  # the full-frame fallback has its own note above
            notes.append(Note("fallback", "warning", f"fallback used: {'; '.join(early)}"))
        return notes

    def _notes(self, ev: Evidence, pred: Prediction, feats: Any) -> list[Note]:
        from fakelens.audio.features import LOG_FLOOR

        if self.predictor.dense:
            return self._dense_notes(ev, pred, feats)
        inputs = self.predictor.inputs
        run = self.predictor.run
        notes: list[Note] = []
        if "video" in inputs:
            clip = feats.clip
            n, total = len(clip.times), ev.media.get("n_frames")
            if total and n >= total:
                seen = f"the model saw all {total} frames of the video"
            else:
                seen = (f"the model saw {n} sampled frames" + (f" of the video's {total}" if total else "")
                        + "; frames in between were not analysed")
            notes.append(Note("sampled_frames", "info", seen))
            n_found = sum(1 for row in np.asarray(clip.found, bool) if row.any()) if len(clip.faces) else 0
            scored = sorted(f.index for f in ev.faces)
            if n_found > len(scored) and not clip.fallback:
                unscored = [i for i in range(len(clip.faces)) if i not in scored and np.asarray(clip.found[i]).any()]
                notes.append(Note("faces_not_scored", "warning",
                                  f"{n_found} face tracks were found but only {len(scored)} scored "
                                  f"(face {', '.join(map(str, scored)) or 'none'}); face "
                                  f"{', '.join(map(str, unscored))} was not analysed and the verdict does not "
                                  "rest on it (its crop is shown, marked not scored)"))
            if clip.fallback:
                notes.append(Note("full_frame_fallback", "warning",
                                  "no face was found: the whole frame was scored instead of a face crop"))
            elif len(clip.faces):
                missing = ~np.asarray(clip.found[0], bool)
                if missing.any():
                    times = np.asarray(clip.times)[missing]
                    ft = None if pred.frame_times is None else np.asarray(pred.frame_times)
                    fs = None if pred.frame_scores is None else np.asarray(pred.frame_scores, np.float64)
                    scored = ft is not None and (fs is None or len(fs) == len(ft)) and np.isin(
                        np.round(times, 6), np.round(ft if fs is None else ft[np.isfinite(fs)], 6)).any()
                    how = ("the model still scored the face crop held from the nearest frame with a face"
                           if scored else "those frames were not scored")
                    notes.append(Note("no_face_frames", "warning",
                                      f"no face found in {int(missing.sum())} of {n} sampled frames "
                                      f"(at {_fmt_times(times)}): {how}; they are marked on the timeline"))
            if n < self.predictor.clip_frames:
                real, padded = pred.extras.get("real_frames"), pred.extras.get("padded_frames")
                counts = f" ({int(real)} real, {int(padded)} padded)" if real is not None and padded else ""
                notes.append(Note("short_video", "warning",
                                  f"only {n} sampled frames, shorter than the model's clip of "
                                  f"{self.predictor.clip_frames}: the clip was padded with the last frame{counts} "
                                  "(padding is not scored)"))
            if (pred.frame_scores is None and pred.streams != "audio only"
                    and not any(n.code == "clip_ranked" for n in ev.notes)):
                notes.append(Note("no_frame_scores", "info",
                                  "the model scores whole clips, not single frames: no per-frame scores "
                                  "and no ranked face crops"))
            if len(pred.faces) > 1 and pred.face_aggregate:
                notes.append(Note("faces", "info", f"{len(pred.faces)} faces scored; the video score is the "
                                                   f"{pred.face_aggregate} over faces"))
        else:
            notes.append(Note("no_visual_branch", "warning",
                              "the model has no visual branch: faces and frames were not analysed"))
        if "audio" in inputs:
            if not feats.has_audio:  # the pipeline refuses this for audio models; kept for other outcomes
                notes.append(Note("no_audio", "warning", f"audio not analysed: {feats.audio_message or 'no audio'}"))
            else:
                loud = feats.mel.max(axis=0) > math.log(LOG_FLOOR) + SILENCE_MARGIN if feats.mel.size else np.zeros(0)
                if loud.size == 0 or loud.mean() < SILENT_FRACTION:
                    notes.append(Note("silent_audio", "warning",
                                      "the audio track is silent (below about -60 dBFS): the audio scores "
                                      "rest on silence"))
                notes.extend(self._coverage(ev, feats))
                width = run.audio_width
                if width and feats.mel.shape[1] < width:
                    notes.append(Note("short_audio", "warning",
                                      f"only {feats.mel.shape[1] * run.cache.hop_seconds:.2f} s of audio, shorter "
                                      f"than the model's audio window of {width * run.cache.hop_seconds:.2f} s: "
                                      "padded (padding is not scored)"))
        else:
            why = ("the video has no audio stream either" if not ev.media.get("has_audio")
                   else "the audio track was not analysed")
            notes.append(Note("no_audio_branch", "warning", f"the model has no audio branch: {why}"))
        if pred.streams in STREAM_NOTES and "video" in inputs and "audio" in inputs:
            notes.append(Note("streams", "warning", STREAM_NOTES[pred.streams]))
        from fakelens.inference.pipeline import FULL_FRAME_FALLBACK, PADDED_AUDIO_FALLBACK, PADDED_FALLBACK

        said = {FULL_FRAME_FALLBACK} if "video" in inputs and feats.clip.fallback else set()  # its own note
        short = any(n.code == "short_video" for n in notes)  # says the padding, with its counts
        short_audio = any(n.code == "short_audio" for n in notes)  # says the audio padding
        rest = [f for f in (pred.fallback or "").split("; ")
                if f and f not in said and not (short and f.startswith(PADDED_FALLBACK + ":"))
                and not (short_audio and f.startswith(PADDED_AUDIO_FALLBACK + ":"))]
        if rest:
            notes.append(Note("fallback", "warning", f"fallback used: {'; '.join(rest)}"))
        return notes


__all__ = ["Analyser", "Crop", "DEFAULT_THRESHOLD", "Evidence", "Note", "Span", "display_segments"]
