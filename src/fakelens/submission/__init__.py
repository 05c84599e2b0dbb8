"""Submission files of each challenge: readers and writers in one registry, validated both ways.

    SUBMISSION_FORMATS.names() -> ['avdf1m-task1', 'avdf1m-task2', 'csv', 'dfdc', 'lavdf']
    write_submission("dfdc", "submission.csv", predictions, expected_ids_from("sample_submission.csv"))
    sub = read_submission("prediction.json")          # format detected; sub.proposals / sub.scores
"""

from __future__ import annotations

from fakelens.submission.base import (
    SUBMISSION_FORMATS,
    Submission,
    SubmissionFormat,
    WriteReport,
    check_ids,
    check_submission,
    detect_submission_format,
    expected_ids_from,
    read_submission,
    write_submission,
)

# Importing the format modules registers them.
from fakelens.submission import proposals, scores  # noqa: E402,F401

__all__ = [
    "SUBMISSION_FORMATS",
    "Submission",
    "SubmissionFormat",
    "WriteReport",
    "check_ids",
    "check_submission",
    "detect_submission_format",
    "expected_ids_from",
    "read_submission",
    "write_submission",
]
