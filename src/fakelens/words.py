"""Counts in messages: "1 video", "2 videos" (not "1 videos")."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one ("1 video", "0 videos", "2 ids")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
