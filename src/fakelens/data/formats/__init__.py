"""Dataset format readers, auto-detected, each parsing labels once into `VideoRecord`s.

    ds = load_dataset("data/dfdc_train_part_0")          # format detected
    ds = load_dataset("val_metadata.json", check_files=False)   # ground truth only
    FORMATS.names() -> ['avdeepfake1m', 'csv', 'dfdc', 'folders', 'lavdf']

Each module's docstring documents the layouts it reads and where it looks for videos.
"""

from __future__ import annotations

from fakelens.data.formats.base import (
    FORMATS,
    VIDEO_EXTENSIONS,
    Dataset,
    FormatReader,
    RecordCollector,
    detect_format,
    load_dataset,
    load_inputs,
)

# Importing the reader modules registers them in FORMATS.
from fakelens.data.formats import avdeepfake1m, csv_labels, dfdc, folders, lavdf  # noqa: E402,F401

__all__ = [
    "FORMATS",
    "VIDEO_EXTENSIONS",
    "Dataset",
    "FormatReader",
    "RecordCollector",
    "detect_format",
    "load_dataset",
    "load_inputs",
]
