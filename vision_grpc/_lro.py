"""google.longrunning.Operation contents: typed metadata, typed response, or a typed error.

The ``Any`` fields are resolved by full message name against the types that the protos'
``google.longrunning.operation_info`` options name, so an operation can be resumed by name
alone (from another process) and still yield the right typed response.
"""

from __future__ import annotations

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message

from vision_grpc._methods import METHODS
from vision_grpc.errors import OperationError, VisionError

__all__ = ["LRO_TYPES", "unpack", "metadata_of", "result_of"]

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
