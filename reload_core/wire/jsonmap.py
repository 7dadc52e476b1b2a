"""JSON view of codec structures, using the RFC's field names.

``to_json`` walks a frozen dataclass; ``from_json`` rebuilds one from its type hints.
Conventions: ``bytes`` are lowercase hex strings, known code points are their RFC names
(an unknown one stays a number), tuples are lists. A field typed as a union of
dataclasses is matched by its key set, so variants of one union must differ in their
field names.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import IntEnum
from functools import cache
from typing import Any, Union, get_args, get_origin

JSON = Any


def to_json(obj: object) -> JSON:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, IntEnum):
        return obj.name
    if isinstance(obj, int):
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).hex()
    if isinstance(obj, (tuple, list)):
        return [to_json(x) for x in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in wire_fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    raise TypeError(f"cannot express {type(obj).__name__} as JSON")


NOT_ON_WIRE = "not_on_wire"
"""Field metadata key: the field caches something derived (it is no part of the
message's structure), so JSON neither shows nor takes it."""


def wire_fields(obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a dataclass (or instance) that its wire structure has."""
    return tuple(f for f in dataclasses.fields(obj) if not f.metadata.get(NOT_ON_WIRE))


class JsonShapeError(ValueError):
    """The JSON does not have the shape of the structure asked for (says where)."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def from_json(tp: Any, value: JSON, where: str = "$") -> Any:
    """Build a value of type ``tp`` from its JSON form; errors name the JSON path."""
    if tp is Any:
        return value
    if _is_union(tp):
        members = get_args(tp)
        if value is None and type(None) in members:
            return None
        enums = [m for m in members if isinstance(m, type) and issubclass(m, IntEnum)]
        if isinstance(value, str) and enums:
            for m in enums:
                if value in m.__members__:
                    return m[value]
            raise JsonShapeError(f"{where}: unknown name {value!r}")
        if isinstance(value, dict):
            classes: list[type] = [m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m)]
            for cls in classes:
                cls_fields = wire_fields(cls)
                names = {f.name for f in cls_fields}
                required = {
                    f.name
                    for f in cls_fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                }
                if required <= set(value) <= names:
                    return from_json(cls, value, where)
            raise JsonShapeError(
                f"{where}: object with keys {sorted(value)} matches none of "
                + ", ".join(c.__name__ for c in classes)
            )
        last: Exception | None = None
        for m in members:
            if m is type(None):
                continue
            try:
                return from_json(m, value, where)
            except (JsonShapeError, ValueError, TypeError) as exc:
                last = exc
        raise JsonShapeError(f"{where}: {value!r} fits none of {tp}") from last
    origin = get_origin(tp)
    if origin is tuple or origin is list:
        if not isinstance(value, list):
            raise JsonShapeError(f"{where}: expected a list")
        args = get_args(tp)
        item_t = args[0] if args else Any
        items = [from_json(item_t, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        kt, vt = get_args(tp)
        if not isinstance(value, dict):
            raise JsonShapeError(f"{where}: expected an object")
        return {from_json(kt, k, where): from_json(vt, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise JsonShapeError(f"{where}: expected an object for {tp.__name__}")
        hints = _hints(tp)
        fields = {f.name: f for f in wire_fields(tp)}
        unknown = set(value) - set(fields)
        if unknown:
            raise JsonShapeError(f"{where}: {tp.__name__} has no field(s) {sorted(unknown)}")
        kwargs = {k: from_json(hints[k], v, f"{where}.{k}") for k, v in value.items()}
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise JsonShapeError(f"{where}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        if isinstance(value, str):
            if value not in tp.__members__:
                raise JsonShapeError(f"{where}: {value!r} is not a {tp.__name__}")
            return tp[value]
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return tp(value)
            except ValueError:
                raise JsonShapeError(f"{where}: {value} is not a {tp.__name__}") from None
        raise JsonShapeError(f"{where}: expected a {tp.__name__} name")
    if tp is bool:
        if not isinstance(value, bool):
            raise JsonShapeError(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise JsonShapeError(f"{where}: expected an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise JsonShapeError(f"{where}: expected a string")
        return value
    if tp is bytes:
        if not isinstance(value, str):
            raise JsonShapeError(f"{where}: expected a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise JsonShapeError(f"{where}: {value!r} is not hex") from None
    if tp is type(None):
        if value is not None:
            raise JsonShapeError(f"{where}: expected null")
        return None
    raise JsonShapeError(f"{where}: unsupported type {tp}")
