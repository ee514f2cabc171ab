"""The protocol's messages are attrs classes, but for ``OrderResponse``, a msgspec struct on the hot
path (``protocol.messages``): what the tests need of either, in one place."""

from __future__ import annotations

from typing import Any

import attrs
import msgspec


def fields(kind: type) -> list[tuple[str, Any, bool]]:
    """(name, resolved type, required) of every field, in declaration order."""
    if issubclass(kind, msgspec.Struct):
        return [(f.name, f.type, f.required) for f in msgspec.structs.fields(kind)]
    return [(a.name, a.type, a.default is attrs.NOTHING) for a in attrs.fields(attrs.resolve_types(kind))]


def names(value: object) -> list[str]:
    return [name for name, _, _ in fields(type(value))]


def replace(value: Any, **changes: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(value, **changes)
    return attrs.evolve(value, **changes)


def structure_by_fields(structure: Any, kind: type, payload: dict[str, Any]) -> Any:
    """``kind`` built field by field with ``structure(value, field_type)`` (cattrs' generic hooks,
    say): the reference the fast paths are compared with. A required field missing is a KeyError."""
    values = {}
    for name, kind_of_field, required in fields(kind):
        if name in payload:
            values[name] = structure(payload[name], kind_of_field)
        elif required:
            raise KeyError(name)
    return kind(**values)
