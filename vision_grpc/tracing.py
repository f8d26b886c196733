"""OpenTelemetry for the REST transports: a span per RPC attempt, the trace context in the headers.

Over gRPC use OpenTelemetry's own interceptors (``opentelemetry-instrumentation-grpc``)::

    from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor

    Client(interceptors=[client_interceptor()])
    AsyncClient(interceptors=aio_client_interceptors())

Over REST (and ``transport="auto"``) add ``rest_interceptors=[otel_rest_interceptor()]``: spans
are named like the gRPC instrumentation's (``/google.cloud.vision.v1.ImageAnnotator/...``), so a
trace reads the same on either transport. OpenTelemetry is imported only when this is called.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from vision_grpc._core.hooks import RestCall, RestInterceptor

__all__ = ["otel_rest_interceptor"]


def otel_rest_interceptor(tracer_provider: Any = None) -> RestInterceptor:
    """A REST interceptor making one CLIENT span per attempt (``rpc.*`` and ``http.*`` attributes)."""
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("vision_grpc", tracer_provider=tracer_provider)

    @contextmanager
    def span(call: RestCall) -> Iterator[None]:
        service, _, method = call.rpc.lstrip("/").rpartition("/")
        attributes = {
            "rpc.system": "vision_grpc.rest",
            "rpc.service": service,
            "rpc.method": method,
            "http.request.method": call.http_method,
        }
        with tracer.start_as_current_span(call.rpc, kind=trace.SpanKind.CLIENT, attributes=attributes):
            propagate.inject(call.headers)  # traceparent / tracestate for the server side
            yield

    def interceptor(call: RestCall) -> AbstractContextManager[object]:
        return span(call)

    return interceptor
