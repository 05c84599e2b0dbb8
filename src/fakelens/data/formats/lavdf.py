"""LAV-DF: one `metadata.json` (or its smaller twin `metadata.min.json`, preferred when both exist)
listing every video of every split.

Each entry: `file` ("train/000001.mp4", relative to the dataset root; also the record id),
`fake_periods` [[start_s, end_s], ...], `modify_video`, `modify_audio` (required); optionally
`n_fakes` (checked against fake_periods), `duration` (seconds), `video_frames` (25 fps), `split`
(train/dev/test; `dev`, LAV-DF's validation split, is read as "val" so that training validates on
it by default), `original`, `visual_fake_periods`, `audio_fake_periods`. Other keys are ignored.
Told apart from DFDC's metadata.json (an object, not a list) and AV-1M (`fake_segments`, not
`fake_periods`). A video is fake iff it has a fake period; the modify flags must agree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fakelens.data.formats.base import (
    FORMATS,
    FormatReader,
    RecordCollector,
    entry_item,
    get_bool,
    get_number,
    get_str,
    json_kind,
    load_json,
    parse_segments,
    rel_source,
    require_keys,
)
from fakelens.data.splits import canonical_split
from fakelens.errors import FormatError
from fakelens.types import Label, Modality, VideoRecord

FPS = 25.0
NAMES = ("metadata.min.json", "metadata.json")
REQUIRED = ("file", "fake_periods", "modify_video", "modify_audio")


def _is_metadata(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    kind, head = json_kind(path)
    return kind == "list_objects" and '"fake_periods"' in head


def _metadata_in(folder: Path) -> Path | None:
    for name in NAMES:
        if _is_metadata(folder / name):
            return folder / name
    return None


@FORMATS.register("lavdf")
class LavdfReader(FormatReader):
    """LAV-DF metadata.json list."""

    name = "lavdf"
    looks_for = "metadata.json (or metadata.min.json) as a list of {file, fake_periods, modify_video, ...} (LAV-DF)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return _is_metadata(path) if path.is_file() else _metadata_in(path) is not None

    @classmethod
    def read(cls, path: Path, out: RecordCollector) -> None:
        meta = path if path.is_file() else _metadata_in(path)
        if meta is None:
            raise FormatError(path, f"no LAV-DF {' or '.join(NAMES)} (a list with fake_periods) here")
        data = load_json(meta)
        if not isinstance(data, list):
            raise FormatError(meta, f"a LAV-DF metadata file is a JSON list, got a JSON {type(data).__name__}")
        out.add_source(meta)
        source = rel_source(meta, out.root)
        for i, entry in enumerate(data):
            rec, item = _parse_entry(entry, i, meta, source)
            if rec.split is not None and canonical_split(rec.split) != rec.split:
                out.note(f"LAV-DF's {rec.split!r} split is read as 'val' (the validation split)")
                rec = dataclasses.replace(rec, split=canonical_split(rec.split))
            out.add(rec, meta, item=item)


def _parse_entry(entry: object, i: int, meta: Path, source: str) -> tuple[VideoRecord, str]:
    item = entry_item(i, entry.get("file") if isinstance(entry, dict) else None)
    entry = require_keys(entry, REQUIRED, meta, item)
    file = get_str(entry, "file", meta, item)
    visual, audio = get_bool(entry, "modify_video", meta, item), get_bool(entry, "modify_audio", meta, item)
    n_frames = get_number(entry, "video_frames", meta, item, integer=True)
    duration = get_number(entry, "duration", meta, item)
    if duration is None and n_frames is not None:
        duration = n_frames / FPS
    segments = parse_segments(entry["fake_periods"], "fake_periods", meta, item, duration=duration, fps=FPS)
    n_fakes = get_number(entry, "n_fakes", meta, item, integer=True, positive=False)
    if n_fakes is not None and n_fakes != len(segments):
        raise FormatError(meta, f"n_fakes is {n_fakes} but fake_periods lists {len(segments)}", item=item)
    if (visual or audio) != bool(segments):
        problem = (f"fake_periods lists {len(segments)} period(s) but modify_video and modify_audio are false"
                   if segments else "modify_video/modify_audio say fake but fake_periods is empty")
        raise FormatError(meta, problem, item=item)
    per = {}
    for key in ("visual_fake_periods", "audio_fake_periods"):
        value = entry.get(key)
        per[key] = () if value is None else parse_segments(value, key, meta, item, duration=duration, fps=FPS)
    rec = VideoRecord(
        id=file,
        path=meta.parent / file,
        label=Label.FAKE if segments else Label.REAL,
        segments=segments,
        modality=Modality.from_flags(visual, audio),
        split=get_str(entry, "split", meta, item, optional=True),
        original=get_str(entry, "original", meta, item, optional=True),
        source=source,
        visual_segments=per["visual_fake_periods"],
        audio_segments=per["audio_fake_periods"],
        duration=float(duration) if duration is not None else None,
        fps=FPS,
        n_frames=n_frames,
    )
    return rec, item
