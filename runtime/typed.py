"""JSON values into frozen dataclasses, checked field by field, so a malformed file names what is wrong."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union


class SchemaError(ValueError):
    """A JSON value that does not fit its dataclass; the message starts with the field's path."""


def from_json(cls: type, value: Any, where: str = "") -> Any:
    """Build `cls` (a dataclass, or a type hint over dataclasses and JSON types) from parsed JSON."""
    return _build(cls, value, where or cls.__name__)


def to_json(obj: Any) -> Any:
    """The JSON value of a dataclass tree (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


def _build(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object")
        return {str(k): _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise SchemaError(f"{where} must be a list")
        return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{where} must be a number")
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SchemaError(f"{where} must be an integer")
    if hint in (str, bool) and not isinstance(value, hint):
        raise SchemaError(f"{where} must be a {'string' if hint is str else 'boolean'}")
    return value


def _dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise SchemaError(f"{where} must be an object")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise SchemaError(f"{where} has unknown key(s) {', '.join(unknown)}")
    kwargs = {}
    for name, f in known.items():
        if name in value:
            kwargs[name] = _build(hints[name], value[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(f"{where} lacks '{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # the dataclass's own checks in __post_init__
        raise SchemaError(f"{where}: {e}") from None
