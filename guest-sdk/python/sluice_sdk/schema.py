"""Input types: a JSON Schema (draft 2020-12) derived from a dataclass or TypedDict,
and parsing of a call's JSON into that type with errors that name the field.

Supported annotations: `str`, `int`, `float`, `bool`, `None`, `Any`, `list[T]`,
`dict[str, T]`, `Optional[T]` / `T | None`, `Literal[...]`, `Enum` subclasses,
nested dataclasses and TypedDicts, and `Annotated[T, "description"]`.

A field with a default (or `Optional`, or `NotRequired` in a TypedDict) is not
`required`; a default appears as `default`. Descriptions come from the class
docstring and from `Annotated[T, "..."]` or `field(metadata={"description": ...})`.
`@schema_options(rename_all="camelCase", deny_unknown_fields=True)` sets JSON names
and `additionalProperties: false`; `field(metadata={"name": "..."})` renames one field.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any

from .errors import InvalidInput

_MISSING = object()


def schema_options(*, rename_all: str | None = None, deny_unknown_fields: bool = False,
                   description: str | None = None):
    """Class decorator: JSON names (`camelCase`, `lowercase`, ...), strictness, description."""

    def decorate(cls):
        cls.__sluice_options__ = {
            "rename_all": rename_all,
            "deny_unknown_fields": deny_unknown_fields,
            "description": description,
        }
        return cls

    return decorate


def _rename(name: str, rule: str | None) -> str:
    if rule is None:
        return name
    parts = name.split("_")
    if rule == "camelCase":
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    if rule == "PascalCase":
        return "".join(p[:1].upper() + p[1:] for p in parts)
    if rule == "lowercase":
        return name.lower()
    if rule == "UPPERCASE":
        return name.upper()
    if rule == "kebab-case":
        return name.replace("_", "-")
    raise ValueError(f"unknown rename_all rule {rule!r}")


class _Field(typing.NamedTuple):
    attr: str  # the Python name
    name: str  # the JSON name
    hint: Any
    default: Any  # _MISSING when required
    description: str | None


def _options(cls) -> dict:
    return getattr(cls, "__sluice_options__", {})


def _doc(cls) -> str | None:
    explicit = _options(cls).get("description")
    if explicit:
        return explicit
    doc = cls.__doc__
    if not doc:
        return None
    doc = doc.strip()
    # A dataclass without a docstring gets its signature as one: not a description.
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
        return None
    return " ".join(doc.split())


def _is_typeddict(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__") \
        and hasattr(tp, "__total__")


def _split_annotated(hint):
    description = None
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        hint = args[0]
        for extra in args[1:]:
            if isinstance(extra, str):
                description = extra
    return hint, description


def _fields(cls) -> list[_Field]:
    hints = typing.get_type_hints(cls, include_extras=True)
    rule = _options(cls).get("rename_all")
    out = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            hint, description = _split_annotated(hints[f.name])
            description = f.metadata.get("description", description)
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            elif _optional_inner(hint) is not None:
                default = None
            else:
                default = _MISSING
            name = f.metadata.get("name", _rename(f.name, rule))
            out.append(_Field(f.name, name, hint, default, description))
        return out
    required_keys = getattr(cls, "__required_keys__", frozenset(hints))
    for attr, hint in hints.items():
        hint, description = _split_annotated(hint)
        origin = typing.get_origin(hint)
        # `NotRequired`/`Required` as written win over `__required_keys__`, which
        # Python 3.11 computes wrongly under `from __future__ import annotations`.
        marked = None
        if origin in (typing.NotRequired, typing.Required):
            marked = origin is typing.Required
            hint, d2 = _split_annotated(typing.get_args(hint)[0])
            description = description or d2
        required = (attr in required_keys) if marked is None else marked
        optional = not required or _optional_inner(hint) is not None
        out.append(_Field(attr, _rename(attr, rule), hint, None if optional else _MISSING,
                          description))
    return out


def _optional_inner(hint):
    """T when `hint` is Optional[T] / T | None, else None."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _json_default(value):
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def schema_of(hint) -> dict:
    """The JSON Schema of a type annotation."""
    hint, description = _split_annotated(hint)
    schema = _schema(hint)
    if description:
        schema = {**schema, "description": description}
    return schema


def _schema(hint) -> dict:
    if hint is Any or hint is object:
        return {}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is type(None) or hint is None:
        return {"type": "null"}
    if hint is dict:
        return {"type": "object"}
    if hint is list:
        return {"type": "array"}
    inner = _optional_inner(hint)
    if inner is not None:
        s = schema_of(inner)
        if isinstance(s.get("type"), str):
            return {**s, "type": [s["type"], "null"]}
        return {"anyOf": [s, {"type": "null"}]}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [schema_of(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, typing.List, tuple, set, frozenset) or origin is typing.Sequence:
        return {"type": "array", "items": schema_of(args[0])} if args else {"type": "array"}
    if origin in (dict, typing.Dict) or origin is typing.Mapping:
        schema: dict = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = schema_of(args[1])
        return schema
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typeddict(hint)):
        return object_schema(hint)
    raise TypeError(f"no JSON Schema for the annotation {hint!r}")


def object_schema(cls) -> dict:
    """The schema of a dataclass or TypedDict (an object, properties in declaration order)."""
    properties = {}
    required = []
    for f in _fields(cls):
        s = schema_of(f.hint)
        if f.description:
            s = {**s, "description": f.description}
        if f.default is _MISSING:
            required.append(f.name)
        elif f.default is not None:
            s = {**s, "default": _json_default(f.default)}
        properties[f.name] = s
    schema: dict = {"type": "object"}
    doc = _doc(cls)
    if doc:
        schema["description"] = doc
    schema["properties"] = properties
    if required:
        schema["required"] = required
    if _options(cls).get("deny_unknown_fields"):
        schema["additionalProperties"] = False
    return schema


def input_schema(hint) -> dict:
    """The `inputs` schema of a handler whose input is annotated `hint`."""
    if hint is None or hint is Any or hint is dict or hint is NoInput:
        return {"type": "object"}
    return schema_of(hint)


class NoInput:
    """The input type of a handler that takes nothing: any object is accepted."""


# ---- parsing -------------------------------------------------------------------


class _ParseError(Exception):
    def __init__(self, path: list, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


def parse(hint, value, what: str = "input"):
    """Converts the JSON `value` to `hint`; raises `InvalidInput` naming the field."""
    if value is None and (hint is None or hint is Any or hint is dict or hint is NoInput
                          or _is_object_type(hint)):
        value = {}  # no input, or null, reads as {}
    try:
        return _parse(hint, value, [])
    except _ParseError as err:
        at = "".join(
            (f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p))
            for i, p in enumerate(err.path)
        )
        where = f" at `{at}`" if at else ""
        raise InvalidInput(f"invalid {what}{where}: {err.message}") from None


def _is_object_type(hint) -> bool:
    hint, _ = _split_annotated(hint)
    return isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typeddict(hint))


def _type_name(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _parse(hint, value, path):
    hint, _ = _split_annotated(hint)
    if hint is None or hint is Any or hint is object or hint is NoInput:
        return value
    if hint is str:
        if not isinstance(value, str):
            raise _ParseError(path, f"expected a string, found {_type_name(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _ParseError(path, f"expected a boolean, found {_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise _ParseError(path, f"expected an integer, found {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _ParseError(path, f"expected a number, found {_type_name(value)}")
        return float(value)
    if hint is type(None):
        if value is not None:
            raise _ParseError(path, f"expected null, found {_type_name(value)}")
        return None
    if hint is dict:
        if not isinstance(value, dict):
            raise _ParseError(path, f"expected an object, found {_type_name(value)}")
        return value
    if hint is list:
        if not isinstance(value, list):
            raise _ParseError(path, f"expected an array, found {_type_name(value)}")
        return value
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else _parse(inner, value, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        for arg in args:
            try:
                return _parse(arg, value, path)
            except _ParseError:
                continue
        raise _ParseError(path, f"{_type_name(value)} matches none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise _ParseError(path, f"unknown variant {value!r}, expected one of "
                              + ", ".join(repr(a) for a in args))
        return value
    if origin in (list, typing.List, tuple, set, frozenset) or origin is typing.Sequence:
        if not isinstance(value, list):
            raise _ParseError(path, f"expected an array, found {_type_name(value)}")
        items = [_parse(args[0], v, path + [i]) if args else v for i, v in enumerate(value)]
        return origin(items) if origin in (tuple, set, frozenset) else items
    if origin in (dict, typing.Dict) or origin is typing.Mapping:
        if not isinstance(value, dict):
            raise _ParseError(path, f"expected an object, found {_type_name(value)}")
        if len(args) == 2:
            return {k: _parse(args[1], v, path + [k]) for k, v in value.items()}
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if member.value == value:
                return member
        raise _ParseError(path, f"unknown variant {value!r}, expected one of "
                          + ", ".join(repr(m.value) for m in hint))
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typeddict(hint)):
        return _parse_object(hint, value, path)
    raise _ParseError(path, f"cannot read {hint!r}")


def _parse_object(cls, value, path):
    if not isinstance(value, dict):
        raise _ParseError(path, f"expected an object, found {_type_name(value)}")
    fields = _fields(cls)
    if _options(cls).get("deny_unknown_fields"):
        known = {f.name for f in fields}
        for key in value:
            if key not in known:
                expected = ", ".join(f"`{f.name}`" for f in fields)
                raise _ParseError(path, f"unknown field `{key}`, expected one of {expected}")
    kwargs = {}
    for f in fields:
        if f.name in value:
            kwargs[f.attr] = _parse(f.hint, value[f.name], path + [f.name])
        elif f.default is _MISSING:
            raise _ParseError(path, f"missing field `{f.name}`")
        elif _is_typeddict(cls):
            continue  # an absent optional key stays absent in a TypedDict
        else:
            kwargs[f.attr] = f.default
    return cls(**kwargs)


def json_default(value):
    """`json.dumps`'s hook for what JSON lacks: called only for those values, so plain
    data is encoded in one pass (a pre-pass over a large result costs real fuel)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
