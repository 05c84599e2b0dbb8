"""Folders: `real/` and `fake/` sub-folders of videos, optionally under split folders.

Layouts: `<root>/real/`, `<root>/fake/` (records without a split) and/or `<root>/<split>/real/`,
`<root>/<split>/fake/` (e.g. train/real, val/fake); folder names are matched case-insensitively.
Videos are found recursively, hidden files skipped; a file is a video when PyAV opens a video
stream in it (known extensions such as .mp4 .ts .m2ts .3gp .flv .wmv .mpg are taken without
opening). Record id = the video's path relative to the root (`train/fake/method/a.mp4`), unique even when names repeat.
Files are enumerated, so none can be missing. Fakes get Modality.UNKNOWN (the layout does not say
which stream was manipulated), noted in the dataset.
"""

from __future__ import annotations

from pathlib import Path

from fakelens.data.formats.base import (
    FORMATS,
    VIDEOS_LOOKED_FOR,
    FormatReader,
    RecordCollector,
    find_videos,
    rel_source,
    subdirs,
)
from fakelens.errors import FormatError
from fakelens.types import Label, VideoRecord

LABEL_DIRS = {"real": Label.REAL, "fake": Label.FAKE}
MODALITY_NOTE = "real/fake folders do not say which stream was manipulated: the stream of every fake is unknown"


def _label_dirs(folder: Path) -> list[tuple[Path, Label]]:
    return [(d, LABEL_DIRS[d.name.lower()]) for d in subdirs(folder) if d.name.lower() in LABEL_DIRS]


def _layout(root: Path) -> list[tuple[str | None, Path, Label]]:
    """(split, folder, label) for every real/fake folder: at the root and one split level down."""
    found: list[tuple[str | None, Path, Label]] = [(None, d, lab) for d, lab in _label_dirs(root)]
    for sub in subdirs(root):
        if sub.name.lower() not in LABEL_DIRS:
            found.extend((sub.name, d, lab) for d, lab in _label_dirs(sub))
    return found


@FORMATS.register("folders")
class FoldersReader(FormatReader):
    """real/ and fake/ folders, optionally under split folders."""

    name = "folders"
    looks_for = f"real/ and fake/ folders of {VIDEOS_LOOKED_FOR}, optionally under split folders (train/real, val/fake, ...)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and bool(_layout(path))

    @classmethod
    def read(cls, path: Path, out: RecordCollector) -> None:
        if not path.is_dir():
            raise FormatError(path, "the folders format reads a folder holding real/ and fake/, not a file")
        layout = _layout(path)
        if not layout:
            raise FormatError(path, "no real/ or fake/ folders here or in split folders")
        n_videos = 0
        for split, folder, label in layout:
            if not out.wants(split):
                out.skipped(split)
                continue
            videos = find_videos(folder)
            n_videos += len(videos)
            out.add_source(folder)
            source = rel_source(folder, out.root)
            for v in videos:
                rec = VideoRecord(id=v.relative_to(path).as_posix(), path=v, label=label,
                                  modality=out.unstated_modality(label, MODALITY_NOTE),
                                  split=split, source=source)
                out.add(rec, v)
        if out.split is None and n_videos == 0:
            raise FormatError(path, f"real/ and fake/ folders hold no videos (looked for {VIDEOS_LOOKED_FOR})")
