"""report.html: one self-contained page (inline CSS, images as data URIs, no script, no network),
rendered from the report.json document and the two PNGs, so it opens offline and says exactly
what report.json says. Every text from the video or the user is HTML-escaped."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1040px;margin:0 auto;padding:20px}
h1{font-size:1.3rem;margin:0 0 4px;word-break:break-all}h2{font-size:1.05rem;margin:22px 0 8px}
.card{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:12px 0}
.verdict{display:flex;align-items:center;gap:18px;flex-wrap:wrap}
.badge{font-size:1.4rem;font-weight:700;padding:8px 16px;border-radius:6px;color:#fff}
.fake{background:#c62828}.real{background:#2e7d32}.failed{background:#616161}
.p{font-size:2rem;font-weight:700}.muted{color:#5f6675;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #e6e8ec}
th{color:#5f6675;font-weight:600}img{max-width:100%;height:auto;display:block}
.warning{border-left:4px solid #f9a825;padding-left:8px;margin:6px 0}.info{border-left:4px solid #90a4ae;padding-left:8px;margin:6px 0}
details{margin-top:8px}pre{white-space:pre-wrap;font-size:.8rem;background:#f4f5f7;padding:8px;border-radius:4px}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{float(x):.{digits}f}"


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)


def _media_text(media: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not media:
        return []
    audio = f"yes ({media['audio_rate']} Hz)" if media.get("has_audio") else "no audio stream"
    return [("duration", f"{media['duration']:.2f} s"), ("frames", f"{media['n_frames']} at {media['fps']:.3f} fps"),
            ("size", f"{media['width']} x {media['height']} (rotation {media['rotation']} deg)"),
            ("codec", str(media.get("codec"))), ("audio", audio)]


def report_html(doc: dict[str, Any], images: dict[str, bytes] | None = None) -> str:
    """The page for one report.json document; `images` maps "timeline.png"/"crops.png" to PNG bytes."""
    images = images or {}
    v = doc["verdict"]
    name = doc["video"]["name"]
    parts: list[str] = []
    if doc["status"] == "failed":
        badge = '<span class="badge failed">NOT ANALYSED</span>'
        headline = f'<div><div class="muted">{escape(doc["error"] or "")}</div></div>'
    else:
        label = v["label"]
        badge = f'<span class="badge {label}">{"LIKELY FAKE" if label == "fake" else "LIKELY REAL"}</span>'
        heads = []
        if v["visual_p_fake"] is not None:
            heads.append(f"visual {_f(v['visual_p_fake'])}")
        if v["audio_p_fake"] is not None:
            heads.append(f"audio {_f(v['audio_p_fake'])}")
        headline = (f'<div><div class="p" data-testid="p-fake">P(fake) = {_f(v["p_fake"])}</div>'
                    f'<div class="muted">{escape(v["aggregate"] or "")}; threshold {_f(v["threshold"], 2)}'
                    f'{"; " + escape(", ".join(heads) + " (" + (v["heads_aggregate"] or "") + ")") if heads else ""}'
                    f'{"; streams: " + escape(v["streams"]) if v["streams"] else ""}</div></div>')
    parts.append(f'<div class="card verdict">{badge}{headline}</div>')

    notes = sorted(doc["notes"], key=lambda n: n["level"] != "warning")
    if notes:
        items = "".join(f'<div class="{escape(n["level"])}">{escape(n["message"])}</div>' for n in notes)
        parts.append(f'<div class="card"><h2>Limits of this analysis</h2>{items}</div>')

    if doc["status"] == "ok":
        if doc["segments"]:
            rows = "".join(f"<tr><td>{s['start']:.2f}</td><td>{s['end']:.2f}</td><td>{s['end'] - s['start']:.2f}</td>"
                           f"<td>{s['confidence']:.3f}</td></tr>" for s in doc["segments"])
            seg = (f"<table><tr><th>start (s)</th><th>end (s)</th><th>length (s)</th><th>confidence</th></tr>"
                   f"{rows}</table>")
        else:
            top = doc["top_proposal"]
            seg = f"<p>No segment scored at or above {_f(v['threshold'], 2)}."
            if top:
                seg += (f" The most suspicious span is {top['start']:.2f}-{top['end']:.2f} s "
                        f"(confidence {top['confidence']:.3f}).")
            seg += "</p>"
        parts.append(f'<div class="card"><h2>Suspicious segments</h2>{seg}</div>')
        if "timeline.png" in images:
            parts.append(f'<div class="card"><h2>Timeline</h2><img alt="timeline" src="{data_uri(images["timeline.png"])}">'
                         "</div>")
        if doc["faces"]:
            rows = "".join(
                f"<tr><td>{f['index']}</td><td>{_f(f['score'])}</td><td>{len(f['frame_times'])}</td>"
                f"<td>{_seen(f['frame_times'])}</td>"
                f"<td>{_f(f['detection'])}</td><td>{escape(_box(f['boxes']))}</td></tr>" for f in doc["faces"])
            agg = f" (video score: {escape(doc['face_aggregate'])} over faces)" if doc["face_aggregate"] else ""
            parts.append(f'<div class="card"><h2>Faces{agg}</h2><table><tr><th>face</th><th>P(fake)</th>'
                         f"<th>frames scored</th><th>seen (s)</th><th>detection</th><th>first box (x1, y1, x2, y2)</th></tr>{rows}"
                         "</table></div>")
        if "crops.png" in images:
            sal = doc["saliency"]
            how = f" Saliency: {escape(sal['method'])} on {escape(sal['layer'])}, explaining the {escape(sal['target'])}." \
                if sal else ""
            parts.append(f'<div class="card"><h2>Face crops and audio</h2><p class="muted">The crops the model found '
                         f"most and least suspicious among frames where the face was found.{how}</p>"
                         f'<img alt="crops" src="{data_uri(images["crops.png"])}"></div>')

    facts = _media_text(doc["video"]["media"])
    m = doc["model"]
    facts += [("model", f"{m['name']} ({', '.join(m['inputs'])}) from {m['checkpoint']}")]
    if doc["timings"].get("total") is not None:
        facts.append(("analysis time", f"{doc['timings']['total']:.2f} s"))
    facts.append(("fakelens", f"{doc['fakelens_version']}, report made {doc['created']}"))
    parts.append(f'<div class="card"><h2>Video and model</h2><table>{_rows(facts)}</table>'
                 f"<details><summary>settings</summary><pre>{escape(_pretty(doc['settings']))}</pre></details>"
                 f"<details><summary>model and preprocessing</summary><pre>{escape(_pretty(m))}</pre></details>"
                 f"<details><summary>timings (s)</summary><pre>{escape(_pretty(doc['timings']))}</pre></details>"
                 "<p class=\"muted\">Every number of this page is in report.json.</p></div>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>fakelens report: {escape(name)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{escape(name)}</h1><div class=\"muted\">fakelens forensic report</div>"
            + "".join(parts) + "</main></body></html>\n")


def _seen(times: list[float]) -> str:
    """When a face was scored: its first and last scored frame's time (a face present for part of
    the video is scored there only)."""
    return f"{min(times):.2f}-{max(times):.2f}" if times else "n/a"


def _box(boxes: list[list[float]] | None) -> str:
    if not boxes:
        return "n/a"
    return ", ".join(f"{x:.0f}" for x in boxes[0])


def _pretty(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True)


__all__ = ["data_uri", "report_html"]
