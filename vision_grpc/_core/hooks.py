"""What a REST interceptor sees of one attempt: ``RestCall``, and the ``RestInterceptor`` shape.

gRPC has its own interceptors (``grpc.UnaryUnaryClientInterceptor``, ``grpc.aio`` ones), passed
to the channel as they are. The REST transports offer the equivalent: each interceptor is called
with the attempt's ``RestCall`` and returns a context manager entered around the HTTP exchange, so
it can add headers (tracing context, auth of one's own) and time or trace the call (an
OpenTelemetry span per RPC); an exception of the call passes through its ``__exit__``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

__all__ = ["RestCall", "RestInterceptor"]


@dataclass
class RestCall:
    """One REST attempt: ``rpc`` is the gRPC method path (``/google.cloud.vision.v1.ImageAnnotator/...``)."""

    rpc: str
    http_method: str
    url: str  # the full URL
    headers: dict[str, str]  # sent after every interceptor was entered: add to it, never log it whole


RestInterceptor = Callable[[RestCall], AbstractContextManager[object]]
