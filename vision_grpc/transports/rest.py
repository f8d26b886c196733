"""Blocking REST transport: HTTP/1.1 JSON over a pooled keep-alive urllib3 connection pool.

urllib3 was chosen by measurement (README, "REST transport"): its per-call overhead on
loopback is a fraction of requests', it sets TCP_NODELAY (no Nagle/delayed-ACK stalls), and
google-auth refreshes tokens over it too.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._auth import AuthPlan, token_request
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import ClientOptions
from vision_grpc.errors import ConnectError, TransportError, api_error
from vision_grpc.transports._error_map import ErrorMap
from vision_grpc.transports._rest_common import PreparedRequest, RestCodec, enter_interceptors
from vision_grpc.transports.base import Metadata

__all__ = ["RestTransport", "urllib3_error_map"]

DEADLINE, UNAVAILABLE = code_pb2.DEADLINE_EXCEEDED, code_pb2.UNAVAILABLE


def _urllib3() -> Any:
    try:
        import urllib3
    except ImportError as exc:  # pragma: no cover - urllib3 is a runtime dependency
        raise ImportError("transport='rest' needs urllib3: pip install urllib3") from exc
    return urllib3


def urllib3_error_map(origin: str) -> ErrorMap:
    """urllib3's exceptions, most specific first (``NewConnectionError`` is also a ``TimeoutError``)."""
    errors = _urllib3().exceptions
    return ErrorMap(
        [
            # No connection was made (refused, unresolvable, nothing answering, TLS handshake failed):
            # the request never left, so any call may be sent again.
            (errors.NewConnectionError, lambda exc, _: ConnectError(f"cannot connect to {origin}: {exc}")),
            (errors.ConnectTimeoutError, lambda exc, _: ConnectError(f"cannot connect to {origin}: {exc}")),
            (errors.SSLError, lambda exc, _: ConnectError(f"TLS handshake with {origin} failed: {exc}")),
            (errors.TimeoutError, lambda _, timeout: api_error(DEADLINE, f"no answer within {timeout}s")),
            # Every pooled connection stayed busy for the whole timeout (max_connections).
            (errors.EmptyPoolError, lambda _, timeout: api_error(DEADLINE, f"no free connection within {timeout}s")),
            # The connection dropped mid-call: transient, as over gRPC, but the server may have seen it.
            (errors.ProtocolError, lambda exc, _: api_error(UNAVAILABLE, f"connection to {origin} lost: {exc}")),
            (errors.HTTPError, lambda exc, _: TransportError(f"{type(exc).__name__} talking to {origin}: {exc}")),
        ]
    )


class RestTransport:
    """Calls over one urllib3 connection pool to the endpoint (connections are reused)."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        urllib3 = _urllib3()
        self._codec = RestCodec(options, auth)
        pool_class = urllib3.HTTPConnectionPool if self._codec.scheme == "http" else urllib3.HTTPSConnectionPool
        # block=True: a call beyond max_connections waits (pool_timeout: its own timeout) for a free
        # connection, instead of opening one that urllib3 then discards with a warning.
        self._pool = pool_class(
            self._codec.host, self._codec.port, maxsize=options.max_connections, block=True, retries=False
        )
        self._token_request = token_request() if auth.credentials is not None else None
        self._errors = urllib3_error_map(self._codec.origin)
        self._timeout = urllib3.Timeout
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
        return self._codec.read(method, response.status, response.data, response.headers.get("content-type", ""))

    def _send(self, prepared: PreparedRequest, timeout: float | None) -> Any:
        return self._pool.urlopen(
            prepared.method,
            prepared.url,
            body=prepared.body,
            headers=prepared.headers,
            timeout=self._attempt_timeout(timeout),
            pool_timeout=timeout,
            retries=False,
            redirect=False,
            preload_content=True,
        )

    def _attempt_timeout(self, timeout: float | None) -> Any:
        # Connecting gets at most the connect deadline: a host that never answers is a ConnectError.
        connect = self._connect_deadline if timeout is None else min(timeout, self._connect_deadline)
        return self._timeout(connect=connect, read=timeout)

    def close(self) -> None:
        self._pool.close()
