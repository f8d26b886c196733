"""Building the statuses and errors the emulator reports: ``status``, ``invalid_argument``, ``not_found``.

Every error the emulator reports, whatever the transport, starts as a ``google.rpc.Status``
with rich details (``BadRequest``, ``RetryInfo``, ...), so the gRPC front can send it in
``grpc-status-details-bin`` and the REST front can render the same JSON error body
(``rest_server.http_error_body``). Errors are raised with ``vision_grpc.errors.api_error`` so
they are the same classes a client would raise; ``status`` builds a bare status for what is not
raised (a per-image ``error``, a failed operation).
"""

from __future__ import annotations

from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vision_grpc.errors import ApiError, api_error

__all__ = ["copy_across", "invalid_argument", "not_found", "status"]


def copy_across(target: Message, source: Message) -> None:
    """``target.CopyFrom(source)`` for messages of one type from two descriptor pools: a
    ``google.rpc.Status`` or ``Timestamp`` inside our messages is our pool's class (``_gen._pool``)."""
    target.Clear()
    target.MergeFromString(source.SerializeToString())


def status(code: int, message: str, *details: Message) -> status_pb2.Status:
    """A ``google.rpc.Status`` with ``details`` packed as ``Any``."""
    result = status_pb2.Status(code=code, message=message)
    for detail in details:
        result.details.add().Pack(detail)
    return result


def invalid_argument(field: str, rule: str) -> ApiError:
    """INVALID_ARGUMENT naming ``field`` and ``rule``, with a ``BadRequest`` field violation."""
    bad_request = error_details_pb2.BadRequest()
    bad_request.field_violations.add(field=field, description=rule)
    return api_error(code_pb2.INVALID_ARGUMENT, f"Request contains an invalid argument: {field}: {rule}", bad_request)


def not_found(message: str) -> ApiError:
    return api_error(code_pb2.NOT_FOUND, message)
