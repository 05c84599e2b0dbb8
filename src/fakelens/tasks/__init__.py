"""Training tasks (losses and targets over pure models) and MIL pooling strategies.

The names below are loaded on first use (PEP 562), so `fakelens.tasks.config` (the typed `task:`
section) imports without torch."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TASKS": "classification", "AVTask": "classification", "ClassificationTask": "classification",
    "MILTask": "classification", "Task": "classification", "Target": "classification",
    "build_task": "classification",
    "TaskConfig": "config",
    "LocalizationTask": "localization", "point_targets": "localization", "segment_steps": "localization",
    "POOLINGS": "pooling", "PoolingParams": "pooling", "pool": "pooling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
