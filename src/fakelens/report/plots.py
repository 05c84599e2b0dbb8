"""The report's two pictures, drawn from an inference.evidence.Evidence (nothing is computed here):

- timeline: per-frame visual P(fake) of every face track and per-step audio P(fake) over time,
  the suspicious segments shaded, the decision threshold, and the sampled frames where no face
  was found marked along the bottom;
- crops: for each face track its most and least suspicious crop, plain and with the Grad-CAM
  overlay, and the log-mel the model heard with its most suspicious span boxed.

Figures are made with matplotlib's object API on the Agg canvas (no pyplot state), so the web
server can draw from several threads; each function returns PNG bytes.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

FACE_COLOURS = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")
AUDIO_COLOUR = "#ff7f0e"
SEGMENT_COLOUR = "#d62728"
DPI = 100


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # a title with characters the font lacks (a Japanese file name) is drawn with boxes: no console noise
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _duration(ev: Any) -> float:
    d = ev.media.get("duration") if ev.media else None
    ends = [0.0]
    if ev.sampled_times is not None and len(ev.sampled_times):
        ends.append(float(ev.sampled_times[-1]))
    if ev.mel_times is not None and len(ev.mel_times):
        ends.append(float(ev.mel_times[-1]))
    return float(d) if d else max(ends) or 1.0


def timeline_png(ev: Any) -> bytes:
    """Scores over time; see the module docstring."""
    from matplotlib.figure import Figure

    pred = ev.prediction
    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    duration = _duration(ev)
    for seg in ev.segments:
        ax.axvspan(seg.start, seg.end, color=SEGMENT_COLOUR, alpha=0.15, lw=0)
        ax.text((seg.start + seg.end) / 2, 1.02, f"{seg.confidence:.2f}", ha="center", va="bottom", fontsize=8,
                color=SEGMENT_COLOUR, transform=ax.get_xaxis_transform())
    drawn = False
    many = len(ev.faces) > 1
    for i, face in enumerate(ev.faces):
        if face.frame_scores is None or len(face.frame_scores) == 0:
            continue
        label = f"face {face.index} (visual)" if many else "visual P(fake) per frame"
        ax.plot(face.frame_times, face.frame_scores, marker="o", ms=3, lw=1.4,
                color=FACE_COLOURS[i % len(FACE_COLOURS)], label=label)
        drawn = True
    if not ev.faces and pred is not None and pred.frame_scores is not None:
        ax.plot(pred.frame_times, pred.frame_scores, marker="o", ms=3, lw=1.4, color=FACE_COLOURS[0],
                label="visual P(fake) per frame")
        drawn = True
    if pred is not None and pred.audio_scores is not None and len(pred.audio_scores):
        t, y = audio_line(pred.audio_times, pred.audio_scores, ev.audio_heard, duration)
        ax.plot(t, y, lw=1.2, color=AUDIO_COLOUR, label="audio P(fake) per step")
        drawn = True
    if ev.sampled_times is not None and ev.face_found is not None and len(ev.face_found):
        rows = [i for i, row in enumerate(np.asarray(ev.face_found, bool)) if row.any()]  # tracks present
        for k, i in enumerate(rows):
            missing = ~np.asarray(ev.face_found[i], bool)
            if not missing.any():
                continue
            t = np.asarray(ev.sampled_times)[missing]
            colour = "black" if len(rows) == 1 else FACE_COLOURS[i % len(FACE_COLOURS)]
            label = "no face found" if len(rows) == 1 else f"face {i} not found"
            ax.plot(t, np.full(len(t), -0.04 - 0.035 * k), ls="none", marker="x", ms=6, mew=1.5, color=colour,
                    label=label, clip_on=False)
    ax.axhline(ev.threshold, ls="--", lw=0.8, color="grey", label=f"threshold {ev.threshold:.2f}")
    if ev.segments:
        ax.axvspan(0, 0, color=SEGMENT_COLOUR, alpha=0.15, lw=0, label="suspicious segment")
    if not drawn:
        ax.text(0.5, 0.5, "the model gives no scores over time", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, duration)
    ax.set_ylim(-0.06, 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    score = f"P(fake) = {pred.score:.3f}" if pred is not None else "not scored"
    ax.set_title(f"{ev.name}: {score}", fontsize=10, loc="left", pad=14)
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.07, right=0.78, bottom=0.16, top=0.86)
    return _png(fig)


def audio_line(times: np.ndarray, scores: np.ndarray, heard: list[tuple[float, float]] | None,
               duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-step audio scores as a step line, each score standing from its time to the next (the
    pipeline's cell convention), cut where the model heard nothing (NaN breaks the line): the
    line never bridges audio that was not scored. heard None = no coverage known (no cut)."""
    t = np.asarray(times, np.float64)
    y = np.asarray(scores, np.float64)
    ends = np.append(t[1:], max(float(duration), float(t[-1]))) if len(t) else t
    xs: list[float] = []
    ys: list[float] = []
    for a, b, v in zip(t, ends, y):
        if heard:  # clip the cell to the heard span holding its start
            span = next(((s, e) for s, e in heard if s - 1e-6 <= a < e), None)
            if span is None:
                continue
            b = min(b, span[1])
        if xs and abs(xs[-1] - a) > 1e-6:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.extend([float(a), float(b)])
        ys.extend([float(v), float(v)])
    return np.asarray(xs), np.asarray(ys)


def _overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """(S,S,3) uint8 crop and (S,S) map in [0, 1] -> (S,S,3) float RGB blend in [0, 1] with the jet colormap."""
    from matplotlib import colormaps

    heat = colormaps["jet"](np.clip(saliency, 0, 1))[..., :3]  # (S,S,3)
    alpha = 0.5 * np.clip(saliency, 0, 1)[..., None] + 0.15  # (S,S,1): cold pixels stay readable
    blend = (1 - alpha) * (image.astype(np.float32) / 255.0) + alpha * heat
    return np.clip(blend, 0.0, 1.0)  # float rounding may pass 1 (imshow would warn and clip)


def unheard(heard: list[tuple[float, float]] | None, start: float, end: float, tol: float = 0.0
            ) -> list[tuple[float, float]]:
    """The parts of [start, end) outside the heard spans (longer than tol); none when heard is None."""
    if heard is None:
        return []
    gaps, at = [], start
    for a, b in heard:
        if a > at + tol:
            gaps.append((at, min(a, end)))
        at = max(at, b)
    if end > at + tol:
        gaps.append((at, end))
    return gaps


def crops_png(ev: Any) -> bytes:
    """Face crops with saliency, and the log-mel; see the module docstring."""
    from matplotlib.figure import Figure

    faces = sorted({c.face for c in ev.crops})
    rows = len(faces)
    has_mel = ev.mel is not None and ev.mel.size > 0
    audio_rows = 1
    fig = Figure(figsize=(10, 2.6 * rows + 2.3 * audio_rows + (0.6 if not rows else 0)))
    grid = fig.add_gridspec(rows + audio_rows, 4, height_ratios=[2.6] * rows + [2.0] * audio_rows,
                            hspace=0.45, wspace=0.08)
    for r, index in enumerate(faces):
        mine = [c for c in ev.crops if c.face == index]
        for k, c in enumerate(mine[:2]):
            ax_plain = fig.add_subplot(grid[r, 2 * k])
            ax_sal = fig.add_subplot(grid[r, 2 * k + 1])
            ax_plain.imshow(c.image)
            if c.score is None:
                ax_plain.set_title(f"face {c.face}, NOT SCORED\nt = {c.time:.2f} s (found, not analysed)", fontsize=8)
            else:
                ax_plain.set_title(f"face {c.face}, {c.kind}\nt = {c.time:.2f} s, P(fake) = {c.score:.3f}",
                                   fontsize=8)
            if c.score is None:
                ax_sal.text(0.5, 0.5, "not scored:\nno saliency", ha="center", va="center", fontsize=8,
                            transform=ax_sal.transAxes)
            elif c.saliency is not None:
                ax_sal.imshow(_overlay(c.image, c.saliency))
                if not (c.saliency_peak or 0) > 0:
                    title = "Grad-CAM: nothing pushes\ntowards fake"
                elif c.score < ev.threshold:
                    title = "Grad-CAM towards fake (relative;\nweak: the frame scored real)"
                else:
                    title = "Grad-CAM towards fake\n(relative)"
                ax_sal.set_title(title, fontsize=8)
            else:
                ax_sal.text(0.5, 0.5, "no saliency map", ha="center", va="center", fontsize=8,
                            transform=ax_sal.transAxes)
            for ax in (ax_plain, ax_sal):
                ax.set_xticks([])
                ax.set_yticks([])
    ax = fig.add_subplot(grid[rows, :])
    if has_mel:
        t = ev.mel_times
        hop = float(t[1] - t[0]) if len(t) > 1 else 0.01
        ax.imshow(ev.mel, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                  extent=(float(t[0]) - hop / 2, float(t[-1]) + hop / 2, 0, ev.mel.shape[0]))
        span = ev.audio_span
        gaps = unheard(ev.audio_heard, float(t[0]) - hop / 2, float(t[-1]) + hop / 2, hop)
        for a, b in gaps:  # audio the model never heard: greyed, never labelled
            ax.axvspan(a, b, color="#bbbbbb", alpha=0.75, lw=0, hatch="//")
        heard_text = "" if not gaps else "heard part; grey = not heard, not scored; "
        if span is not None:
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((span.start, 0.5), span.end - span.start, ev.mel.shape[0] - 1, fill=False,
                                   ec="#00e5ff", lw=2))
            ax.set_title(f"log-mel; {heard_text}most suspicious audio span {span.start:.2f}-{span.end:.2f} s "
                         f"(P(fake) {span.score:.3f})", fontsize=9, loc="left")
        else:
            ax.set_title("log-mel (the model gives no per-step audio scores)", fontsize=9, loc="left")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel bin")
    else:
        ax.set_axis_off()
        why = next((n.message for n in ev.notes if n.code in ("no_audio_branch", "no_audio")), "no audio analysed")
        ax.text(0.5, 0.5, f"audio: {why}", ha="center", va="center", fontsize=9, wrap=True, transform=ax.transAxes)
    if not rows:
        fig.suptitle("no face crop to show: " + next(
            (n.message for n in ev.notes if n.code in ("no_visual_branch", "no_frame_scores", "full_frame_fallback")),
            "no face was found"), fontsize=9)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.93 if rows else 0.85)
    return _png(fig)


__all__ = ["audio_line", "crops_png", "timeline_png", "unheard"]
