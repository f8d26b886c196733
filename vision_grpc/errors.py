"""The one exception tree of vision-grpc, and the tables that map status codes.

Every failure a caller can see is a ``VisionError``::

    VisionError
    ├── ValidationError        your request breaks a documented rule; nothing was sent (also ValueError)
    ├── InvalidTemplateError   a google.api.http path template is malformed (also ValueError)
    ├── ApiError               the service (or a proxy in front of it) answered with an error status
    │   ├── InvalidArgument        400, the service rejected the request
    │   ├── Unauthenticated        401, credentials missing, expired or not accepted
    │   ├── PermissionDenied       403
    │   ├── NotFound               404, e.g. an unknown operation name or input object
    │   ├── ResourceExhausted      429, quota; see ``retry_delay``
    │   ├── Cancelled              499
    │   ├── Unimplemented          501
    │   ├── Unavailable            503, transient: safe to retry idempotent calls
    │   │   └── ConnectError           no connection could be made: the request never reached a server
    │   └── DeadlineExceeded       504
    ├── OperationError         a long-running operation finished with an error status
    ├── OperationTimeout       waiting for an operation ran out of time; it may still finish (also TimeoutError)
    ├── ItemErrors             the call succeeded but some of its pages or images failed (outputs.raise_for_errors)
    ├── ClientClosedError      the client was closed; make a new one (also RuntimeError)
    └── TransportError         the connection failed before any status was received

Codes follow google/rpc/code.proto; the HTTP equivalents are those of the same file (and of
grpc-gateway's ``HTTPStatusFromCode``). Messages and reprs never include request metadata,
so credentials cannot leak through an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from google.rpc import code_pb2, error_details_pb2, status_pb2

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "ApiError",
    "api_error",
    "Cancelled",
    "ClientClosedError",
    "ConnectError",
    "DeadlineExceeded",
    "InvalidArgument",
    "InvalidTemplateError",
    "ItemErrors",
    "NotFound",
    "OperationError",
    "OperationTimeout",
    "PermissionDenied",
    "ResourceExhausted",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "ValidationError",
    "VisionError",
    "code_name",
    "from_http",
    "from_status",
    "http_status_for",
    "code_for_http_status",
]

# google.rpc.Code -> HTTP status, as documented in google/rpc/code.proto.
_HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,  # nginx's "client closed request"; there is no standard code
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,  # not 412: the system is in the wrong state, not a header
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}

# HTTP status -> code, used only when a response carries no google.rpc.Status (a proxy's page).
_CODE_FOR_HTTP: dict[int, int] = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.ABORTED,
    412: code_pb2.FAILED_PRECONDITION,
    416: code_pb2.OUT_OF_RANGE,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    502: code_pb2.UNAVAILABLE,  # a gateway that could not reach the backend: transient
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}

# Rich error details a google.rpc.Status may carry (google/rpc/error_details.proto).
_DETAIL_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.DebugInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.BadRequest,
        error_details_pb2.RequestInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
    )
}


def code_name(code: int) -> str:
    """``3`` -> ``"INVALID_ARGUMENT"``; unknown numbers give ``"CODE_<n>"``."""
    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return f"CODE_{code}"


def http_status_for(code: int) -> int:
    """The HTTP status that google/rpc/code.proto pairs with a ``google.rpc.Code``."""
    return _HTTP_STATUS.get(code, 500)


def code_for_http_status(http_status: int) -> int:
    """Best ``google.rpc.Code`` for a bare HTTP status (no error body to say better)."""
    if http_status in _CODE_FOR_HTTP:
        return _CODE_FOR_HTTP[http_status]
    if 400 <= http_status < 500:
        return int(code_pb2.FAILED_PRECONDITION)
    return int(code_pb2.OK if 200 <= http_status < 300 else code_pb2.UNKNOWN)  # 1xx and 3xx: unexpected


class VisionError(Exception):
    """Base class of every error raised by vision-grpc."""


class ValidationError(VisionError, ValueError):
    """The request breaks a documented rule; it was not sent. Fix the request.

    ``field`` is the proto field path (``requests[3].input_config.gcs_source.uri``) and ``rule``
    says what it must satisfy.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class InvalidTemplateError(VisionError, ValueError):
    """A google.api.http path template is malformed; a bug in the proto options, not in your call."""

    def __init__(self, template: str, position: int, reason: str) -> None:
        self.template = template
        self.position = position
        self.reason = reason
        super().__init__(f"invalid path template {template!r} at position {position}: {reason}")


class ApiError(VisionError):
    """The service answered with an error status.

    ``code`` is the ``google.rpc.Code`` number (``code_name`` gives its name), ``http_status``
    its HTTP equivalent, ``details`` the decoded rich details (``ErrorInfo``, ``BadRequest``,
    ``RetryInfo``, ...; unknown ones stay ``Any``), and ``status`` the whole ``google.rpc.Status``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = code_pb2.UNKNOWN,
        http_status: int | None = None,
        details: Sequence[Message] = (),
        status: status_pb2.Status | None = None,
    ) -> None:
        self.code = code
        self.code_name = code_name(code)
        self.http_status = http_status if http_status is not None else http_status_for(code)
        self.message = message
        self.details = list(details)
        self.status = status if status is not None else status_pb2.Status(code=code, message=message)
        super().__init__(f"{self.code_name} ({self.http_status}): {message}")

    def detail(self, detail_type: type[Any]) -> Any:
        """The first decoded detail of ``detail_type`` (e.g. ``error_details_pb2.ErrorInfo``), or None."""
        return next((d for d in self.details if isinstance(d, detail_type)), None)

    @property
    def retry_delay(self) -> float | None:
        """Seconds the server asked us to wait (``google.rpc.RetryInfo``), if it said."""
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None or not info.HasField("retry_delay"):
            return None
        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)

    @property
    def field_violations(self) -> list[tuple[str, str]]:
        """``(field, description)`` pairs from a ``google.rpc.BadRequest`` detail."""
        bad = self.detail(error_details_pb2.BadRequest)
        return [(v.field, v.description) for v in bad.field_violations] if bad is not None else []

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_api_error, (type(self), self.message, self.code, self.http_status, self.status))


def _rebuild_api_error(cls: type[ApiError], message: str, code: int, http: int, status: Any) -> ApiError:
    return cls(message, code=code, http_status=http, details=decode_details(status), status=status)


class InvalidArgument(ApiError):
    """400: the service rejected the request as malformed; see ``field_violations``."""


class Unauthenticated(ApiError):
    """401: no valid credentials; check ADC, the key file or the API key."""


class PermissionDenied(ApiError):
    """403: the credentials are valid but may not do this (API disabled, bucket ACLs, API key on a
    method that does not accept keys, ...)."""


class NotFound(ApiError):
    """404: no such operation, input object or route."""


class ResourceExhausted(ApiError):
    """429: quota or rate limit; ``retry_delay`` says how long to wait when the server said."""


class Cancelled(ApiError):
    """499: the call (or the operation) was cancelled."""


class Unimplemented(ApiError):
    """501: the server does not implement this method or feature."""


class Unavailable(ApiError):
    """503: transient unavailability; idempotent calls are retried automatically."""


class ConnectError(Unavailable):
    """No connection could be made (refused, unresolvable, TLS handshake failed, nothing listening).

    The request never reached a server, so even a non-idempotent submit is safe to send again.
    Raised by the transports, never built from a server's status.
    """

    def __init__(self, message: str, *, code: int = code_pb2.UNAVAILABLE, **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)


class DeadlineExceeded(ApiError):
    """504: the call's deadline passed before an answer."""


_CLASS_FOR_CODE: dict[int, type[ApiError]] = {
    code_pb2.INVALID_ARGUMENT: InvalidArgument,
    code_pb2.UNAUTHENTICATED: Unauthenticated,
    code_pb2.PERMISSION_DENIED: PermissionDenied,
    code_pb2.NOT_FOUND: NotFound,
    code_pb2.RESOURCE_EXHAUSTED: ResourceExhausted,
    code_pb2.CANCELLED: Cancelled,
    code_pb2.UNIMPLEMENTED: Unimplemented,
    code_pb2.UNAVAILABLE: Unavailable,
    code_pb2.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def decode_details(status: status_pb2.Status) -> list[Message]:
    """Unpack the ``Any`` details of a status into their google.rpc types where known."""
    decoded: list[Message] = []
    for any_detail in status.details:
        cls = _DETAIL_TYPES.get(any_detail.TypeName())
        if cls is None:
            decoded.append(any_detail)
            continue
        message = cls()
        any_detail.Unpack(message)
        decoded.append(message)
    return decoded


def from_status(status: status_pb2.Status, *, http_status: int | None = None, hint: str = "") -> ApiError:
    """The ``ApiError`` subclass for a ``google.rpc.Status``; ``hint`` is appended to the message."""
    cls = _CLASS_FOR_CODE.get(status.code, ApiError)
    message = status.message or code_name(status.code)
    if hint:
        message = f"{message} ({hint})"
    return cls(message, code=status.code, http_status=http_status, details=decode_details(status), status=status)


def from_http(http_status: int, body: bytes, content_type: str = "") -> ApiError:
    """Map an HTTP error response: the service's JSON error body, or any other page. Never raises.

    Google APIs answer ``{"error": {"code", "message", "status", "details": [...]}}``; the
    details are ``Any`` in JSON form (``{"@type": ..., ...}``) and decode to the same types as
    over gRPC. Any other body (a proxy's HTML page, a gateway's own JSON, garbage) still gives the
    error for ``http_status``. The body is the server's (or a proxy's) and anything goes: what of it
    reaches the message is short, printable and has credential-shaped values redacted
    (``describe``), since a page may echo the request's headers.
    """
    looks_json = "json" in content_type.lower() or body[:64].lstrip()[:1] in (b"{", b"[")
    error = _json_error(body, http_status) if looks_json else None
    if error is None:
        snippet = describe(body[: 8 * _SNIPPET].decode("utf-8", "replace"), _SNIPPET)
        code = _error_code_for_http(http_status)
        message = f"HTTP {http_status} without a JSON error body" + (f": {snippet}" if snippet else "")
        return from_status(status_pb2.Status(code=code, message=message), http_status=http_status)
    return from_status(error, http_status=http_status)


_SNIPPET = 200  # characters of a non-JSON error page kept in the message
_MESSAGE_LIMIT = 1000  # characters of a server's error message kept
_MAX_DETAILS = 32  # rich details decoded from one error body; the rest are dropped
# Credential-shaped values a page may echo (a debugging proxy printing the request): the name stays,
# the value goes.
_REDACT = (
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|x-goog-api-key|x-api-key|cookie|set-cookie)"
            r"(\"?\s*:\s*\"?)(?:(?:bearer|basic)\s+)?[^\s\"'<>,;]+"
        ),
        r"\1\2<redacted>",
    ),
    (re.compile(r"(?i)\b(key|api_key|access_token|token)=[^\s\"'<>&,;]+"), r"\1=<redacted>"),
    (re.compile(r"(?i)\bbearer\s+[^\s\"'<>,;]+"), "Bearer <redacted>"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{20,}"), "<redacted>"),  # a Google API key
    (re.compile(r"\bya29\.[0-9A-Za-z_\-.]+"), "<redacted>"),  # a Google OAuth access token
)


def describe(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` (from a server or a file) made fit for an error message: credential-shaped values
    redacted, control and format characters (terminal escapes, line breaks) turned into spaces,
    whitespace runs collapsed, at most ``limit`` characters."""
    if len(text) > 8 * limit:  # bound the work; a value cut in two here could escape redaction: drop it
        text = text[: 8 * limit].rsplit(None, 1)[0] if any(c.isspace() for c in text[: 8 * limit]) else ""
    for pattern, replacement in _REDACT:
        text = pattern.sub(replacement, text)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _error_code_for_http(http_status: int) -> int:
    code = code_for_http_status(http_status)
    return code if code != code_pb2.OK else int(code_pb2.UNKNOWN)  # an error, whatever the status says


def _json_error(body: bytes, http_status: int) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` of a Google JSON error body; None when the body is not one. Never raises."""
    from google.protobuf import any_pb2, json_format

    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON or not UTF-8, too many digits, nested too deep
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    message = describe(_as_text(error.get("message")))
    status = status_pb2.Status(code=_error_code(error, http_status), message=message)
    details = error.get("details")
    for detail in details[:_MAX_DETAILS] if isinstance(details, list) else ():
        packed = any_pb2.Any()
        try:
            json_format.ParseDict(detail, packed)
        except Exception:  # json_format raises ParseError and, on odd input, TypeError, AttributeError,
            continue  # RecursionError...: a detail that cannot be decoded is dropped, not fatal
        status.details.append(packed)
    return status


def _error_code(error: dict[str, Any], http_status: int) -> int:
    """The body's ``status`` name; else its numeric ``code`` when it is an HTTP error status; else ``http_status``'s."""
    name = error.get("status")
    if isinstance(name, str) and name != "OK" and name in code_pb2.Code.keys():
        return int(code_pb2.Code.Value(name))
    number = error.get("code")
    if isinstance(number, int) and not isinstance(number, bool) and 400 <= number <= 599:
        return _error_code_for_http(number)
    return _error_code_for_http(http_status)


def _as_text(value: Any) -> str:
    """A message that is not a string: a number as its text; anything else (a list, an object) is no message."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, (int, float)) else ""


def api_error(code: int, message: str, *details: Message) -> ApiError:
    """The typed ``ApiError`` for a code and message, with rich ``details`` packed into its status."""
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return from_status(status)


class OperationError(VisionError):
    """A long-running operation finished with an error; ``error`` is the mapped ``ApiError``.

    This is an expected outcome (bad input object, cancelled operation), not a client bug.
    """

    def __init__(self, name: str, status: status_pb2.Status) -> None:
        self.name = name
        self.status = status
        self.error = from_status(status)
        super().__init__(f"operation {name} failed: {self.error}")

    @property
    def code(self) -> int:
        return int(self.status.code)


class OperationTimeout(VisionError, TimeoutError):
    """Waiting for operation ``name`` ran out of time; it may still finish: resume it by name."""

    def __init__(self, name: str, waited: float) -> None:
        self.name = name
        self.waited = waited
        super().__init__(f"operation {name} not done after {waited:.1f}s; resume it by name later")


class ClientClosedError(VisionError, RuntimeError):
    """The client was closed (``close()``, ``aclose()`` or the end of its ``with`` block); make a new one."""


class TransportError(VisionError):
    """No status was received: the connection failed (refused, reset, TLS, DNS)."""


class ItemErrors(VisionError):
    """The call or operation succeeded, but some (or all) of its pages or images failed.

    ``failed`` holds ``(label, error)`` for each failed item in order: ``label`` names the item
    (``gs://b/doc.pdf page 2``, ``image 0 gs://b/a.png``) and ``error`` is the ``ApiError`` mapped
    from the item's ``google.rpc.Status``. ``total`` is how many items were checked and ``items``
    the failed items themselves, when the raiser has them (``PageResult``, ``ImageResult``).
    Raised by ``vision_grpc.outputs.raise_for_errors``; the CLI exits 6 for it.
    """

    def __init__(
        self,
        failed: Sequence[tuple[str, status_pb2.Status]],
        total: int,
        unit: str = "item",
        items: Sequence[Any] = (),
    ) -> None:
        self.failed = [(label, from_status(status)) for label, status in failed]
        self.total = total
        self.items = list(items)
        shown = "; ".join(f"{label}: {error}" for label, error in self.failed[:3])
        more = f"; and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
        super().__init__(f"{len(self.failed)} of {total} {unit}(s) failed: {shown}{more}")
