"""Flags shared by the resumable, shardable per-video jobs (`preprocess`, `features`)."""

from __future__ import annotations

import argparse


def add_job_arguments(p: argparse.ArgumentParser, *, force_help: str) -> None:
    """--workers, --shard, --merge, --allow-missing and --force, with the job's own words for --force."""
    p.add_argument("--workers", type=int, default=0, help="worker processes (0 = this process)")
    p.add_argument("--shard", default=None, metavar="I/N", help="process only shard I of N (0-based)")
    p.add_argument("--merge", action="store_true", help="combine the finished shard indexes into index.jsonl")
    p.add_argument("--allow-missing", action="store_true", help="skip listed videos missing on disk")
    p.add_argument("--force", action="store_true", help=force_help)
