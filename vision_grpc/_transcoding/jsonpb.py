"""JSON to protobuf messages, fast and exactly as ``json_format.ParseDict`` (``ignore_unknown_fields=True``).

``json_format`` is pure Python and walks every field through generic code: ~100 ms for one dense OCR
page. Here a decoded JSON object is checked and renamed (camelCase or snake_case keys to field
names) by a walk precompiled per message type, and the message is then built by its constructor in
C (upb builds nested dicts and lists of dicts itself).

The fast walk accepts only the well-typed subset of what ``json_format`` accepts, and builds the
same message from it; anything else raises ``Fallback`` and the caller parses with ``json_format``,
which then decides (the same message, or its error). Outside the subset: a value of another JSON
type than the field's (``json_format`` converts some: ``"1"`` or ``1.0`` for an integer, ``1`` for
an enum given as a float, ``"NaN"`` for a float...), floats out of range (NaN, infinities, beyond
float32), a bool where a number is expected, unknown enum names (``json_format`` drops them), a field
given under both of its names, ``null`` in a list, ``[extension]`` keys, and every field whose type
has a JSON form of its own (well-known types: ``Any``, ``Timestamp``, wrappers...; ``bytes``; maps;
oneofs). The equivalence is tested against ``json_format`` on many generated documents
(``tests/unit/test_fast_json.py``).

``loads``: JSON bytes to Python objects with msgspec's C decoder when the ``fast`` extra is
installed, else the standard library's; ``msgspec`` decodes a subset of what ``json.loads`` does
(it refuses ``NaN``, ``Infinity``, lone surrogates, numbers beyond float range), and gives the same
objects for it, so on its error ``json.loads`` is asked.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers

__all__ = ["FAST_JSON", "INT64_TYPES", "Fallback", "loads", "message_builder", "message_to_dict", "split_array"]

_msgspec: Any
try:  # the `fast` extra
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - exercised in CI without the extra
    _msgspec = None

FAST_JSON = _msgspec is not None  # whether msgspec is there: loads and split_array in C


class Fallback(Exception):
    """The fast path declines this input: parse it with ``json_format``, which decides."""


def loads(data: Any) -> Any:
    """``json.loads(data)`` (bytes, or an element from ``split_array``), with msgspec's faster decoder when it
    is installed (the same objects)."""
    if _msgspec is not None:
        try:
            return _DECODE(data)
        except Exception:  # noqa: BLE001 - msgspec refuses what json.loads may accept: it decides
            pass
    return json.loads(bytes(data))


if _msgspec is not None:
    _DECODE = _msgspec.json.Decoder().decode
    _OBJECT_OF_RAW = _msgspec.json.Decoder(dict[str, _msgspec.Raw]).decode
    _LIST_OF_RAW = _msgspec.json.Decoder(list[_msgspec.Raw]).decode


def split_array(data: bytes, array: str, keep: set[str] | frozenset[str]) -> tuple[dict[str, Any], list[Any]] | None:
    """The top-level JSON object in ``data``: its members (decoded if in ``keep``, else None; ``array`` None)
    and the elements of its member ``array``, a JSON list, undecoded (buffers over ``data``, for ``loads``;
    ``bytes()`` of one is its JSON text); None when msgspec is
    missing or this is not such a document (invalid JSON, not an object, ``array`` not a list...): the
    caller's own reader decides then.

    Memory: ``data``, and a small object per element. As the elements are located before any is counted,
    a document whose commas could stand for more elements than ~4 bytes of them per byte of ``data`` is
    left to the caller's reader (hostile: ``[0,0,0,...]``), which stops counting at its own limit.
    """
    if _msgspec is None:
        return None
    try:
        top = _OBJECT_OF_RAW(data)
        raw = top.get(array)
        if raw is not None and _RAW_SIZE * (data.count(b",") + 1) > 4 * len(data) + (1 << 20):
            return None
        elements = [] if raw is None else _LIST_OF_RAW(raw)
        members = {key: _DECODE(value) if key in keep and key != array else None for key, value in top.items()}
    except Exception:  # noqa: BLE001 - not for the fast path: the caller's reader gives the verdict
        return None
    return members, elements


_RAW_SIZE = 56  # bytes per located element: a msgspec.Raw and its list slot


# -- the precompiled walk ----------------------------------------------------------------------------

_MESSAGE, _MESSAGES, _INT, _FLOAT, _DOUBLE, _BOOL, _STRING, _ENUM, _NEVER, _POINTS, _EMPTY = range(11)
_REPEATED = 16  # added to a scalar kind: a list of them

_FLOAT_MAX: float = type_checkers._FLOAT_MAX  # type: ignore[attr-defined]  # json_format refuses beyond it
_FLOAT_MIN: float = type_checkers._FLOAT_MIN  # type: ignore[attr-defined]
_INTEGERS = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}


class Table(dict[str, tuple[str, int, Any]]):
    """JSON key (both names of each field) -> (field name, kind, the message's table or the enum's names)."""

    __slots__ = ("aliases",)
    aliases: frozenset[str]  # the field names that differ from their JSON names: a key among them may be a duplicate


_BUILDERS: dict[Any, Callable[[Any], Any]] = {}


def message_builder(cls: Any) -> Callable[[Any], Any]:
    """A function: decoded JSON -> a new ``cls`` message, as ``ParseDict(js, cls(), ignore_unknown_fields=True)``
    gives it; ``Fallback`` when ``js`` is outside the fast subset (see the module's docstring). Made once per
    class (a lost race only builds it twice)."""
    build = _BUILDERS.get(cls)
    if build is None:
        build = _BUILDERS[cls] = _new_builder(cls)
    return build


def _new_builder(cls: Any) -> Callable[[Any], Any]:
    table = _table(cls.DESCRIPTOR, {})

    def build(js: Any) -> Any:
        if type(js) is not dict:
            raise Fallback
        try:
            return cls(**_convert(table, js))
        except Fallback:
            raise
        except Exception:  # noqa: BLE001 - the constructor's own checks (int range, surrogates): json_format decides
            raise Fallback from None

    return build


def _table(descriptor: Descriptor, tables: dict[str, Table]) -> Table:
    """The walk's table of ``descriptor`` (tables of recursive types are shared through ``tables``)."""
    if descriptor.full_name in tables:
        return tables[descriptor.full_name]
    table = Table()
    table.aliases = frozenset(field.name for field in descriptor.fields if field.name != field.json_name)
    tables[descriptor.full_name] = table
    oneofs = bool(descriptor.oneofs)
    for field in descriptor.fields:
        spec = (field.name, *_kind(field, oneofs, tables))
        table[field.json_name] = spec
        table[field.name] = spec
    return table


def _kind(field: Any, oneofs: bool, tables: dict[str, Table]) -> tuple[int, Any]:
    repeated = field.is_repeated
    if oneofs or field.is_extension:
        return _NEVER, None  # oneof members (json_format refuses two of one oneof): json_format's
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        message = field.message_type
        if message.GetOptions().map_entry:
            return _NEVER, None  # maps have a JSON form of their own
        if message.full_name.startswith("google.protobuf."):  # so do well-known types: none but []
            return (_EMPTY if repeated else _NEVER), None
        points = _points(message)
        if repeated and points is not None:
            return _POINTS, points
        return (_MESSAGES if repeated else _MESSAGE), _table(message, tables)
    if field.type == FieldDescriptor.TYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue" or field.enum_type.is_closed:
            return _NEVER, None
        kind, arg = _ENUM, frozenset(value.name for value in field.enum_type.values)
    elif field.type in _INTEGERS:
        kind, arg = _INT, None
    elif field.type == FieldDescriptor.TYPE_FLOAT:
        kind, arg = _FLOAT, None
    elif field.type == FieldDescriptor.TYPE_DOUBLE:
        kind, arg = _DOUBLE, None
    elif field.type == FieldDescriptor.TYPE_BOOL:
        kind, arg = _BOOL, None
    elif field.type == FieldDescriptor.TYPE_STRING:
        kind, arg = _STRING, None
    else:  # bytes: base64 in JSON
        return _NEVER, None
    return kind + (_REPEATED if repeated else 0), arg


def _points(message: Descriptor) -> tuple[frozenset[str], bool] | None:
    """(field names, float32 or not) for a message of float32 fields only, or of int32 ones only, whose JSON
    names are their names (``Vertex``, ``NormalizedVertex``): lists of them go to the constructor as they are."""
    kinds = {field.type for field in message.fields}
    if (
        message.oneofs
        or not message.fields
        or kinds - {FieldDescriptor.TYPE_FLOAT}
        and kinds - {FieldDescriptor.TYPE_INT32}
    ):
        return None
    if any(field.is_repeated or field.json_name != field.name for field in message.fields):
        return None
    return frozenset(field.name for field in message.fields), kinds == {FieldDescriptor.TYPE_FLOAT}


def _convert(table: Table, js: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the message's constructor: field names, nested dicts and lists of them.

    Raises ``Fallback``, or another exception for a ``js`` that is not a dict (no ``items``).
    """
    out: dict[str, Any] = {}
    aliases = table.aliases
    twice = aliases and not aliases.isdisjoint(js)  # a proto name among the keys: is its JSON name there too?
    for key, value in js.items():
        spec = table.get(key)
        if spec is None:
            if key[:1] == "[":
                raise Fallback  # json_format refuses extension keys on messages without extensions
            continue  # unknown: ignored, as with ignore_unknown_fields=True
        name, kind, arg = spec
        if twice and name in out:
            raise Fallback  # the field under both of its names: json_format merges or clears
        if value is None:
            if kind == _NEVER:
                raise Fallback  # null is a value for google.protobuf.Value and NullValue
            out[name] = None  # json_format clears the field; the constructor skips it
        elif kind == _MESSAGE:
            out[name] = _convert(arg, value)  # not a dict: no .items(), so AttributeError (-> Fallback)
        elif kind == _STRING:
            if type(value) is not str:
                raise Fallback
            out[name] = value  # lone surrogates: the constructor refuses them, json_format too
        elif kind == _FLOAT:
            if type(value) is float:
                if not _FLOAT_MIN <= value <= _FLOAT_MAX:  # NaN too
                    raise Fallback
            elif type(value) is not int:
                raise Fallback
            out[name] = value
        elif kind == _POINTS:  # a list of Vertex or NormalizedVertex: checked, then given as it is
            names, floats = arg
            if type(value) is not list:
                raise Fallback
            for item in value:
                if type(item) is not dict or not item.keys() <= names:
                    raise Fallback
                for number in item.values():
                    if type(number) is not int and not (
                        floats and type(number) is float and _FLOAT_MIN <= number <= _FLOAT_MAX
                    ):
                        raise Fallback
            out[name] = value
        elif kind == _MESSAGES:
            if type(value) is not list:
                raise Fallback
            out[name] = [_convert(arg, item) for item in value]  # items that are not dicts: as for _MESSAGE
        elif kind < _REPEATED:
            if kind == _EMPTY and value == []:
                continue  # an empty list of a well-known type (Status.details): nothing to set
            out[name] = _scalar(kind, arg, value)
        else:
            if type(value) is not list:
                raise Fallback
            out[name] = [_scalar(kind - _REPEATED, arg, item) for item in value]
    return out


def _scalar(kind: int, arg: Any, value: Any) -> Any:
    """``value`` when it is of the fast subset for a field of ``kind``; else ``Fallback``."""
    kind_of = type(value)
    if kind == _FLOAT:
        if kind_of is float:
            if _FLOAT_MIN <= value <= _FLOAT_MAX:  # False for NaN
                return value
        elif kind_of is int:
            return value
    elif kind == _STRING:
        if kind_of is str:
            return value  # lone surrogates: the constructor refuses them, json_format too
    elif kind == _INT:
        if kind_of is int:
            return value  # out of range: the constructor refuses it (-> Fallback)
    elif kind == _ENUM:
        if (kind_of is str and value in arg) or kind_of is int:
            return value
    elif kind == _DOUBLE:
        if kind_of is float:
            if not math.isinf(value) and value == value:
                return value
        elif kind_of is int:
            return value
    elif kind == _BOOL:
        if kind_of is bool:
            return value
    raise Fallback


# -- messages to JSON objects ------------------------------------------------------------------------

(
    _PLAIN,
    _SUB,
    _SUBS,
    _ENUM_NAME,
    _ENUMS,
    _FLOAT32,
    _FLOAT32S,
    _DOUBLE64,
    _DOUBLES,
    _INT64,
    _INT64S,
    _BYTES,
    _MAP,
    _OTHER,
) = range(14)
INT64_TYPES = {  # the integer types whose JSON form is a string
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
Encoding = dict[str, tuple[str, int, Any]]  # field name -> (JSON name, kind, encoding of the message or enum names)


def message_to_dict(message: Any, generic: Callable[[Any], Any]) -> dict[str, Any]:
    """``json_format.MessageToDict(message)`` (JSON names, enums as names, int64 as strings), by a walk
    precompiled per message type; the fields whose types have JSON forms of their own (well-known types,
    maps, bytes, extensions) go through ``generic`` (``MessageToDict`` of the message that holds them)."""
    encoding = _ENCODINGS.get(message.DESCRIPTOR)
    if encoding is None:
        encoding = _ENCODINGS[message.DESCRIPTOR] = _encoding(message.DESCRIPTOR, {})
    return _encode(encoding, message, generic)


_ENCODINGS: dict[Descriptor, Encoding | None] = {}


def _encoding(descriptor: Descriptor, encodings: dict[str, Encoding | None]) -> Encoding | None:
    """None for a message that ``generic`` must write whole (a well-known type, or one holding a map...)."""
    if descriptor.full_name in encodings:
        return encodings[descriptor.full_name]
    if descriptor.full_name.startswith("google.protobuf.") or descriptor.GetOptions().map_entry:
        encodings[descriptor.full_name] = None
        return None
    encoding: Encoding = {}
    encodings[descriptor.full_name] = encoding
    field: Any
    arg: Any
    for field in descriptor.fields:
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            plain = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_INT32)
            kind, arg = (_MAP, None) if key.type == value.type == FieldDescriptor.TYPE_STRING else (_OTHER, None)
            kind = kind if value.type in plain else _OTHER
        elif field.type == FieldDescriptor.TYPE_MESSAGE:  # None: a well-known type, written by ``generic``
            kind, arg = (_SUBS if repeated else _SUB), _encoding(field.message_type, encodings)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            if field.enum_type.full_name == "google.protobuf.NullValue" or field.enum_type.is_closed:
                kind, arg = _OTHER, None
            else:
                names = {value.number: value.name for value in field.enum_type.values}
                kind, arg = (_ENUMS if repeated else _ENUM_NAME), names
        elif field.type == FieldDescriptor.TYPE_FLOAT:
            kind, arg = (_FLOAT32S if repeated else _FLOAT32), None
        elif field.type == FieldDescriptor.TYPE_DOUBLE:
            kind, arg = (_DOUBLES if repeated else _DOUBLE64), None
        elif field.type in INT64_TYPES:
            kind, arg = (_INT64S if repeated else _INT64), None
        elif field.type == FieldDescriptor.TYPE_BYTES:
            kind, arg = (_OTHER if repeated else _BYTES), None
        else:  # strings, bools, 32-bit integers: as they are
            kind, arg = _PLAIN, repeated
        encoding[field.name] = (field.json_name, kind, arg)
    if any(kind == _OTHER for _, kind, _ in encoding.values()):
        encodings[descriptor.full_name] = None  # written whole by ``generic``
        return None
    return encoding


def _encode(encoding: Encoding | None, message: Any, generic: Callable[[Any], Any]) -> dict[str, Any]:
    if encoding is None:
        written: dict[str, Any] = generic(message)
        return written
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        spec = encoding.get(field.name)
        if spec is None or field.is_extension:
            return generic(message)  # type: ignore[no-any-return]
        name, kind, arg = spec
        if kind == _PLAIN:
            out[name] = list(value) if arg else value
        elif kind == _SUB:
            out[name] = _encode(arg, value, generic)
        elif kind == _SUBS:
            out[name] = [_encode(arg, item, generic) for item in value]
        elif kind == _ENUM_NAME:
            out[name] = arg.get(value, value)
        elif kind == _ENUMS:
            out[name] = [arg.get(item, item) for item in value]
        elif kind == _INT64:
            out[name] = str(value)
        elif kind == _INT64S:
            out[name] = [str(item) for item in value]
        elif kind == _MAP:
            out[name] = dict(value)
        elif kind == _BYTES:
            out[name] = base64.b64encode(value).decode("utf-8")
        elif kind in (_FLOAT32, _DOUBLE64):
            out[name] = _float(value, kind == _FLOAT32)
        else:
            out[name] = [_float(item, kind == _FLOAT32S) for item in value]
    return out


def _float(value: float, single: bool) -> Any:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if value != value:
        return "NaN"
    return type_checkers.ToShortestFloat(value) if single else value
