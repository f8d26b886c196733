"""Building the ``ApiError`` s the emulator raises, each carrying a full ``google.rpc.Status``.

Every error the emulator reports, whatever the transport, starts as a ``google.rpc.Status``
with rich details (``BadRequest``, ``RetryInfo``, ...), so the gRPC front can send it in
``grpc-status-details-bin`` and a REST front can render the same JSON error body. Errors are
built with ``vision_grpc.errors.from_status`` so they are the same classes a client would raise.
"""

from __future__ import annotations

from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vision_grpc.errors import ApiError, from_status

__all__ = ["api_error", "invalid_argument", "not_found", "status"]


def status(code: int, message: str, *details: Message) -> status_pb2.Status:
    """A ``google.rpc.Status`` with ``details`` packed as ``Any``."""
    result = status_pb2.Status(code=code, message=message)
    for detail in details:
        result.details.add().Pack(detail)
    return result


def api_error(code: int, message: str, *details: Message) -> ApiError:
    """The ``ApiError`` subclass for ``code``, with its status (and details) attached."""
    return from_status(status(code, message, *details))


def invalid_argument(field: str, rule: str) -> ApiError:
    """INVALID_ARGUMENT naming ``field`` and ``rule``, with a ``BadRequest`` field violation."""
    bad_request = error_details_pb2.BadRequest()
    bad_request.field_violations.add(field=field, description=rule)
    return api_error(code_pb2.INVALID_ARGUMENT, f"Request contains an invalid argument: {field}: {rule}", bad_request)


def not_found(message: str) -> ApiError:
    return api_error(code_pb2.NOT_FOUND, message)
