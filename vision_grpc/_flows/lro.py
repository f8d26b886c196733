"""google.longrunning.Operation contents: typed metadata, typed response, or a typed error.

The ``Any`` fields are resolved by full message name against the types that the protos'
``google.longrunning.operation_info`` options name, so an operation can be resumed by name
alone (from another process) and still yield the right typed response.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf import any_pb2, json_format, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor as _FieldDescriptor
from google.protobuf.message import Message

from vision_grpc._core.methods import METHODS
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc.errors import OperationError, VisionError

__all__ = ["LRO_TYPES", "metadata_of", "operation_from_json", "result_of", "unpack"]

LRO_TYPES: dict[str, type[Message]] = {}
for _info in METHODS.values():
    for _cls in (_info.lro_response_type, _info.lro_metadata_type):
        if _cls is not None:
            LRO_TYPES[_cls.DESCRIPTOR.full_name] = _cls


def unpack(value: any_pb2.Any, expected: type[Message] | None = None) -> Message:
    """The message inside ``value``; checked against ``expected`` when given."""
    name = value.TypeName()
    cls = LRO_TYPES.get(name)
    if cls is None or (expected is not None and cls is not expected):
        want = expected.DESCRIPTOR.full_name if expected is not None else "a Vision operation type"
        raise VisionError(f"operation carries {name or 'an empty Any'}, expected {want}")
    message = cls()
    value.Unpack(message)
    return message


def metadata_of(operation: operations_pb2.Operation) -> Message | None:
    """The typed ``OperationMetadata`` (state, create_time, update_time), if the server sent one."""
    if not operation.HasField("metadata"):
        return None
    return unpack(operation.metadata)


def result_of(operation: operations_pb2.Operation, expected: type[Message] | None = None) -> Message:
    """The typed response of a done operation; ``OperationError`` if it failed."""
    if not operation.done:
        raise VisionError(f"operation {operation.name} is not done")
    if operation.HasField("error"):
        raise OperationError(operation.name, operation.error)
    if not operation.HasField("response"):
        raise VisionError(f"operation {operation.name} is done but has neither response nor error")
    return unpack(operation.response, expected)


# -- Operation JSON (REST polling is a hot path) -------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_FAST_METADATA_FIELDS = {"@type", "state", "createTime", "updateTime"}
_FAST_OPERATION_FIELDS = {"name", "done", "metadata", "response", "error"}
_TYPE_URL_PREFIX = "type.googleapis.com/"
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z


def operation_from_json(data: dict[str, Any]) -> operations_pb2.Operation:
    """``google.longrunning.Operation`` from its proto3 JSON (unknown fields ignored): exactly what
    ``json_format.ParseDict`` gives, faster for the common shape (name, done, Vision ``OperationMetadata``).

    The JSON is a server's: anything that is not an Operation raises ``json_format.ParseError``
    (wrong types at any level, numbers out of range, nesting too deep), never another exception.
    """
    operation = _fast_operation(data) if isinstance(data, dict) else None
    if operation is not None:
        return operation
    operation = operations_pb2.Operation()
    try:
        json_format.ParseDict(data, operation, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
    except json_format.ParseError:
        raise
    except Exception as exc:  # json_format lets TypeError, AttributeError, RecursionError... through on odd input
        raise json_format.ParseError(f"not a google.longrunning.Operation ({type(exc).__name__})") from None
    return operation


def _fast_operation(data: dict[str, Any]) -> operations_pb2.Operation | None:
    """The common shape without json_format; None when ``data`` is anything else (json_format decides)."""
    name, done = data.get("name", ""), data.get("done", False)
    if not (data.keys() <= _FAST_OPERATION_FIELDS and isinstance(name, str) and isinstance(done, bool)):
        return None
    if "response" in data and "error" in data:  # one oneof: json_format refuses both
        return None
    operation = operations_pb2.Operation(name=name, done=done)
    if "metadata" in data and not _metadata(data["metadata"], operation.metadata):
        return None
    for key in ("response", "error"):
        if key in data:
            field = getattr(operation, key)
            try:
                json_format.ParseDict(data[key], field, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
            except Exception:  # whatever it is, json_format on the whole message reports it
                return None
            field.SetInParent()  # set even when empty ({}), as json_format sets it
    return operation


def _metadata(data: Any, target: any_pb2.Any) -> bool:
    """Vision ``OperationMetadata`` of the common shape, written into ``target`` as ``Any.Pack`` would (its
    type URL and serialized bytes), without building the message; False for any other shape."""
    if not isinstance(data, dict) or not data.keys() <= _FAST_METADATA_FIELDS:
        return False
    type_url = data.get("@type")
    if not isinstance(type_url, str):
        return False
    states = _METADATA_STATES.get(type_url)
    if states is None:
        return False
    state = data.get("state", 0)
    if isinstance(state, str):
        number = states.get(state)
    elif isinstance(state, int) and not isinstance(state, bool) and state in states.values():
        number = state
    else:
        return False
    if number is None:
        return False
    value = b"\x08" + _varint(number) if number else b""  # field 1, state
    for key, tag in (("createTime", b"\x2a"), ("updateTime", b"\x32")):  # fields 5 and 6, Timestamps
        if key in data:
            parsed = _timestamp_of(data[key])
            if parsed is None:
                return False
            seconds, nanos = parsed
            inner = (b"\x08" + _varint(seconds) if seconds else b"") + (b"\x10" + _varint(nanos) if nanos else b"")
            value += tag + _varint(len(inner)) + inner
    target.type_url = type_url
    target.value = value
    return True


def _varint(number: int) -> bytes:
    """Protobuf's base-128 varint of an int64 (negative numbers as their 64-bit two's complement)."""
    number &= (1 << 64) - 1
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _metadata_states() -> dict[str, dict[str, int]]:
    """Type URL -> state names of the OperationMetadata types whose wire form ``_metadata`` writes (state = 1,
    create_time = 5, update_time = 6, as in v1 and v1p4beta1); the others take the generic way."""
    out = {}
    for name, cls in LRO_TYPES.items():
        fields = {field.name: (field.number, field.type) for field in cls.DESCRIPTOR.fields}
        timestamp = _FieldDescriptor.TYPE_MESSAGE
        if fields == {
            "state": (1, _FieldDescriptor.TYPE_ENUM),
            "create_time": (5, timestamp),
            "update_time": (6, timestamp),
        }:
            state: Any = cls.DESCRIPTOR.fields_by_name["state"]
            out[_TYPE_URL_PREFIX + name] = {value.name: value.number for value in state.enum_type.values}
    return out


_METADATA_STATES = _metadata_states()
_TIMESTAMPS: dict[str, tuple[int, int] | None] = {}  # RFC 3339 text -> (seconds, nanos): polls repeat them
_TIMESTAMPS_KEPT = 512


def _timestamp_of(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    if text in _TIMESTAMPS:
        return _TIMESTAMPS[text]
    target = timestamp_pb2.Timestamp()
    parsed = (target.seconds, target.nanos) if _timestamp(text, target) else None
    if len(_TIMESTAMPS) >= _TIMESTAMPS_KEPT:
        _TIMESTAMPS.clear()
    _TIMESTAMPS[text] = parsed
    return parsed


def _timestamp(text: Any, target: timestamp_pb2.Timestamp) -> bool:
    """RFC 3339 by slicing (``FromJsonString`` uses strptime, ~15 us); False for anything but a plain valid one."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match[7], match[8]
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return False
    if not (hour <= 23 and minute <= 59 and second <= 59):
        return False
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        return False
    target.seconds = seconds
    target.nanos = int((fraction or "0").ljust(9, "0"))
    return True
