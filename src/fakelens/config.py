"""Typed configuration: dataclass defaults < YAML file < CLI `key=value` overrides.

Unknown keys are errors with a suggestion; values are coerced to the declared field types
(`--set train.precision=32` gives the string "32" a Literal["32", ...] field wants, `5e6` an int,
`no` a bool or the text "no" for a string field); `save_config` writes the resolved config next
to a run so it can be reproduced.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar, get_args, get_origin, get_type_hints

from fakelens.atomic import atomic_write_text
from fakelens.errors import ConfigError

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


@dataclasses.dataclass(frozen=True)
class Override:
    """A `--set key=value` value as typed and as YAML reads it: a field typed as text takes the
    text (`--set data.val_split=no` is "no", not False), any other field the YAML value."""

    text: str
    value: Any


def _wants_text(tp: Any) -> bool:
    """str, Path, or a Literal of strings: fields whose value is the text as typed."""
    if tp in (str, Path):
        return True
    return get_origin(tp) is typing.Literal and all(isinstance(a, str) for a in get_args(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise ConfigError naming the key."""
    origin = get_origin(tp)
    if isinstance(value, Override) and origin not in (typing.Union, types.UnionType):
        value = value.value if isinstance(value.value, str) or not _wants_text(tp) else value.text
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        plain = value.value if isinstance(value, Override) else value
        if plain is None and type(None) in args:
            return None
        if isinstance(plain, str) and plain.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: cannot use {value!r}")
    if origin is typing.Literal:
        allowed = get_args(tp)
        if value not in allowed:  # YAML reads `32` as a number: match the allowed values by their text
            same = [a for a in allowed if str(a) == str(value) and not isinstance(value, bool)]
            if same:
                return same[0]
            close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=where + ".")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.strip("[]()").split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[float, float]: that many items
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values "
                                  f"({', '.join(getattr(a, '__name__', str(a)) for a in args)}), got "
                                  f"{len(value)}: {list(value)!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return parse_count(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(value)
    return value


_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9}
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")  # what a unit suffix follows: 1.5 in 1.5G


def parse_count(value: Any) -> int:
    """An integer as people write counts: 5000000, 5e6, 5_000_000, 200M, 1.5G, 250k (ValueError
    otherwise, also for a non-integer like 5.5)."""
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    text = str(value).strip().replace("_", "")
    scale = 1.0
    if text[-1:].lower() in _SUFFIXES:
        scale, text = _SUFFIXES[text[-1].lower()], text[:-1]
        if not _PLAIN_NUMBER.fullmatch(text):  # 1e3k, infk: an exponent and a unit at once is no count
            raise ValueError(f"not an integer: {value!r}")
    try:
        f = float(text) * scale
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"not an integer: {value!r}")
    return int(f)


def from_dict(cls: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Build dataclass `cls` from a mapping; unknown keys raise ConfigError with a suggestion."""
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"unknown config key '{prefix}{key}'{hint}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        text = str(e)
        where = prefix.rstrip(".") or cls.__name__
        # a message that names its key already (train.epochs ...) needs no section before it
        raise ConfigError(text if text.startswith(prefix) and prefix else f"{where}: {text}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (Paths and tuples made YAML-friendly)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def parse_override(text: str) -> tuple[list[str], Override]:
    """'train.lr=3e-4' -> (['train', 'lr'], Override('3e-4', 3e-4)): the value as typed and as
    YAML reads it (the field's type picks one, see `Override`)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), Override(raw.strip(), value)


def merge_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides to a nested dict (a copy)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = nxt
        # A whole section given as a mapping (--set 'optim={lr: 0.1}') is a plain value.
        node[path[-1]] = value.value if isinstance(value.value, (dict, list)) else value
    return out


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Defaults of `cls`, updated by the YAML file at `path`, then by `overrides` ('a.b=v')."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    merged = merge_overrides(data, overrides or [])
    try:
        return from_dict(cls, merged)
    except ConfigError as e:
        raise ConfigError(_blame(str(e), path, overrides or [])) from None


def _blame(message: str, path: str | Path | None, overrides: list[str]) -> str:
    """A config error named by where its value came from: the `--set key=value` whose key the
    message is about, else the YAML file (a bad --set value was said to be the recipe's)."""
    keys = [(t.split("=", 1)[0].strip(), t) for t in overrides]
    said = re.match(r"(?:unknown config key ')?([A-Za-z0-9_.\[\]]+)", message)
    key = said.group(1) if said else ""
    for name, text in reversed(keys):  # the last override of a key is the one in effect
        if key == name or key.startswith(name + ".") or key.startswith(name + "["):
            return f"--set {text}: {message}"
    for name, text in reversed(keys):  # a check across keys that names an overridden one with its value
        value = text.split("=", 1)[1].strip() if "=" in text else ""
        if value and re.search(rf"(?<![\w.]){re.escape(name)}\W+(?:is\s+)?{re.escape(value)}(?![\w.])", message):
            return f"{path} with --set {text}: {message}" if path else f"--set {text}: {message}"
    return f"{path}: {message}" if path else message


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    import yaml

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))
