"""Blocking REST transport: HTTP/1.1 JSON over a keep-alive connection pool of our own.

Until 0.2 this was a urllib3 pool; ``transports._http_client`` says why it was replaced (client CPU
per call). urllib3 stays a dependency for google-auth's token refresh only, imported when credentials
are used.
"""

from __future__ import annotations

import os
import ssl
from contextlib import ExitStack

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._auth import AuthPlan, token_request
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import MAX_RESPONSE_BYTES, ClientOptions
from vision_grpc.errors import ConnectError, TransportError, api_error
from vision_grpc.transports import _http_client as http
from vision_grpc.transports._error_map import ErrorMap
from vision_grpc.transports._rest_common import PreparedRequest, RestCodec, enter_interceptors
from vision_grpc.transports.base import Metadata

__all__ = ["RestTransport", "http1_error_map"]

DEADLINE, UNAVAILABLE, EXHAUSTED = code_pb2.DEADLINE_EXCEEDED, code_pb2.UNAVAILABLE, code_pb2.RESOURCE_EXHAUSTED


def http1_error_map(origin: str) -> ErrorMap:
    """``transports._http_client``'s exceptions, most specific first."""

    def connect_failed(exc: BaseException, _: float | None) -> ConnectError:
        # No connection was made (refused, unresolvable, nothing answering, TLS handshake failed):
        # the request never left, so any call may be sent again.
        tls = isinstance(exc, http.ConnectFailed) and exc.tls
        text = f"TLS handshake with {origin} failed: {exc}" if tls else f"cannot connect to {origin}: {exc}"
        return ConnectError(text)

    return ErrorMap(
        [
            (http.ConnectFailed, connect_failed),
            (http.ResponseTimeout, lambda _, timeout: api_error(DEADLINE, f"no answer within {timeout}s")),
            # Every pooled connection stayed busy for the whole timeout (max_connections).
            (http.PoolTimeout, lambda _, timeout: api_error(DEADLINE, f"no free connection within {timeout}s")),
            (http.ResponseTooLarge, lambda exc, _: api_error(EXHAUSTED, f"answer from {origin} too large: {exc}")),
            # The connection dropped mid-call: transient, as over gRPC, but the server may have seen it.
            (http.ConnectionLost, lambda exc, _: api_error(UNAVAILABLE, f"connection to {origin} lost: {exc}")),
            (http.HttpError, lambda exc, _: TransportError(f"{type(exc).__name__} from {origin}: {exc}")),
        ]
    )


class RestTransport:
    """Calls over one keep-alive connection pool to the endpoint (``_http_client.ConnectionPool``)."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        self._codec = RestCodec(options, auth)
        # A call beyond max_connections waits (within its own timeout) for a free connection.
        self._pool = http.ConnectionPool(
            self._codec.host,
            self._codec.port,
            tls=None if self._codec.scheme == "http" else _tls_context(),
            maxsize=options.max_connections,
            max_body=MAX_RESPONSE_BYTES,
        )
        self._token_request = token_request() if auth.credentials is not None else None
        self._errors = http1_error_map(self._codec.origin)
        self._connect_deadline = options.retry.connect_deadline

    def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        prepared = self._codec.prepare(method, request, metadata)
        if self._codec.credentials is not None:
            self._codec.credentials.before_request(
                self._token_request, prepared.method, self._codec.origin + prepared.url, prepared.headers
            )
        with self._errors.during(timeout):
            if self._codec.interceptors:
                with ExitStack() as interceptors:
                    enter_interceptors(interceptors, self._codec, method, prepared)
                    response = self._send(prepared, timeout)
            else:
                response = self._send(prepared, timeout)
        return self._codec.read(method, response.status, response.body, response.headers.get("content-type", ""))

    def _send(self, prepared: PreparedRequest, timeout: float | None) -> http.Response:
        # Connecting gets at most the connect deadline: a host that never answers is a ConnectError.
        return self._pool.request(
            prepared.method,
            prepared.url,
            prepared.headers,
            prepared.body,
            timeout=timeout,
            connect_timeout=self._connect_deadline,
        )

    def close(self) -> None:
        self._pool.close()


_TLS_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def _tls_context() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured), host name checked, as urllib3 did.

    One per process and trust-store setting: loading the store takes ~35 ms, which every client would
    otherwise pay (urllib3 paid it per connection); an SSLContext may serve many threads at once."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _TLS_CONTEXTS.get(key)
    if context is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        _TLS_CONTEXTS[key] = context  # a lost race only builds it twice
    return context
