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


def _timestamp(text: str, target: timestamp_pb2.Timestamp) -> None:
    """RFC 3339 by slicing (``FromJsonString`` uses strptime, ~15 us); odd forms fall back to it."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        target.FromJsonString(text)
        return
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    target.seconds = seconds
    target.nanos = int((fraction or "0").ljust(9, "0"))


def _metadata(data: dict[str, Any], target: any_pb2.Any) -> None:
    cls = LRO_TYPES.get(str(data.get("@type", "")).rpartition("/")[2])
    if cls is None or not data.keys() <= _FAST_METADATA_FIELDS or "state" not in cls.DESCRIPTOR.fields_by_name:
        json_format.ParseDict(data, target, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
        return
    meta: Any = cls()
    state = data.get("state", 0)
    meta.state = type(meta).State.Value(state) if isinstance(state, str) else int(state)
    for key, field_name in (("createTime", "create_time"), ("updateTime", "update_time")):
        if key in data:
            _timestamp(data[key], getattr(meta, field_name))
    target.Pack(meta)


def operation_from_json(data: dict[str, Any]) -> operations_pb2.Operation:
    """``google.longrunning.Operation`` from its proto3 JSON, faster than ``json_format`` for the
    common shape (name, done, Vision ``OperationMetadata``); anything else goes through json_format."""
    operation = operations_pb2.Operation(name=data.get("name", ""), done=bool(data.get("done", False)))
    if "metadata" in data:
        _metadata(data["metadata"], operation.metadata)
    for key in ("response", "error"):
        if key in data:
            json_format.ParseDict(
                data[key], getattr(operation, key), ignore_unknown_fields=True, descriptor_pool=JSON_TYPES
            )
    return operation
