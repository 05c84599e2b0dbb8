"""A tiny name -> factory registry (as timm does for models), used for models, detectors,
aggregators, dataset formats and submission formats."""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from fakelens.errors import FakelensError

T = TypeVar("T")


class UnknownNameError(FakelensError, KeyError):
    """A name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to objects (usually factories). `register` is a decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot register {obj!r} in {self.kind} registry without a name")
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def static_registry(kind: str, names: tuple[str, ...]) -> Registry[None]:
    """A Registry holding `names` (no objects): its `get` raises the real registry's error, with
    the same suggestions, for a registry known by its names alone (fakelens.names)."""
    reg: Registry[None] = Registry(kind)
    for name in names:
        reg.register(name)(None)
    return reg


_DEFERRED_CHECKS: "contextvars.ContextVar[bool]"


def _deferred() -> "contextvars.ContextVar[bool]":
    global _DEFERRED_CHECKS
    try:
        return _DEFERRED_CHECKS
    except NameError:
        import contextvars

        _DEFERRED_CHECKS = contextvars.ContextVar("fakelens_deferred_name_checks", default=False)
        return _DEFERRED_CHECKS


@contextmanager
def deferred_name_checks() -> Iterator[None]:
    """Within this block, `check_registered` skips registries whose (heavy) module is not imported
    yet: the CLI checks a config's keys, types and ranges in well under a second this way, before
    importing torch, and checks it again in full afterwards."""
    token = _deferred().set(True)
    try:
        yield
    finally:
        _deferred().reset(token)


def check_registered(module: str, registry: str, name: str) -> None:
    """Raise UnknownNameError (with suggestions) unless `name` is in `module`.`registry`. A registry
    listed in fakelens.names is checked against that static list (no import: a config loads
    without torch or Lightning), a name it lacks against the real registry when its module is
    imported (an entry registered at run time); another registry by importing the module (which
    registers its entries), skipped inside `deferred_name_checks` while the module is not imported."""
    import importlib
    import sys

    from fakelens.names import REGISTRY_NAMES

    if (module, registry) in REGISTRY_NAMES:
        kind, names = REGISTRY_NAMES[module, registry]
        if name in names:
            return
        if module in sys.modules:  # imported: the real registry, with entries registered at run time
            getattr(sys.modules[module], registry).get(name)
            return
        static_registry(kind, names).get(name)
        return
    if module not in sys.modules and _deferred().get():
        return
    getattr(importlib.import_module(module), registry).get(name)
