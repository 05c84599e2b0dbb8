"""Per-video forensic reports: an inference.evidence.Evidence rendered as report.json (validated
against report.schema.json), timeline.png, crops.png and a self-contained report.html.

Reports render, they do not compute: every number comes from the inference pipeline that
`fakelens predict` uses (through fakelens.inference.evidence), so `detect`, the web page and
`predict` never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_FILES = ("report.json", "timeline.png", "crops.png", "report.html")


@dataclass
class RenderedReport:
    """One video's report in memory: the JSON document, the PNGs (absent for a failed video), the page."""

    document: dict[str, Any]
    images: dict[str, bytes]  # "timeline.png" / "crops.png" -> PNG bytes
    html: str


def render(ev: Any) -> RenderedReport:
    """Evidence -> the report's document, pictures and page."""
    from fakelens.report.document import report_document
    from fakelens.report.html import report_html
    from fakelens.report.plots import crops_png, timeline_png

    doc = report_document(ev)
    images: dict[str, bytes] = {}
    if ev.status == "ok":
        images = {"timeline.png": timeline_png(ev), "crops.png": crops_png(ev)}
    return RenderedReport(document=doc, images=images, html=report_html(doc, images))


def write_report(rendered: RenderedReport, out_dir: str | Path) -> dict[str, Path]:
    """Write the report's files into `out_dir` atomically (report.json last); returns name -> path.
    A failed video gets report.json and report.html (stating why); stale pictures are removed."""
    import json

    from fakelens.atomic import atomic_write_bytes, atomic_write_text

    from fakelens.atomic import ensure_writable

    out = ensure_writable(out_dir)  # a full disk or a file in the way: an OutputError naming the folder
    written: dict[str, Path] = {}
    for name in ("timeline.png", "crops.png"):
        if name in rendered.images:
            atomic_write_bytes(out / name, rendered.images[name])
            written[name] = out / name
        else:
            (out / name).unlink(missing_ok=True)
    atomic_write_text(out / "report.html", rendered.html)
    written["report.html"] = out / "report.html"
    atomic_write_text(out / "report.json", json.dumps(rendered.document, indent=2) + "\n")
    written["report.json"] = out / "report.json"
    return written


__all__ = ["REPORT_FILES", "RenderedReport", "render", "write_report"]
