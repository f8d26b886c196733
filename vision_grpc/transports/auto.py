"""``transport="auto"``: gRPC first; REST for good once the endpoint shows that it cannot carry gRPC.

Some networks pass HTTPS/HTTP/1.1 but not HTTP/2: a proxy or load balancer that answers the HTTP/2
client preface with an HTTP/1.1 error, resets or closes the connection, or (over TLS) does not
negotiate ``h2``. gRPC then fails before its connection is ready, and the gRPC transport maps that to
a ``ConnectError``. ``AutoTransport`` (and ``AsyncAutoTransport``) wrap the gRPC and the REST transport:

* Every call goes over gRPC until the switch.
* A gRPC attempt whose mapped error says the connection could not carry HTTP/2 (``grpc_refused``,
  the one place that decides) is sent again, as it is, over REST. If that exchange produced an HTTP
  response (the answer, or an error status built from the response), the endpoint speaks HTTP/1.1:
  the client switches to REST, logs it once at INFO, and stays on REST for the rest of its life
  (its gRPC channel is closed once no gRPC call is running on it, so it stops reconnecting).
* If REST cannot connect either, the gRPC error is raised and the next call tries gRPC again. A
  refused connection (nothing listening), a name that does not resolve or a connect timeout never
  tries REST: it would fail the same way.

Re-sending is safe for every call, a submit included: ``grpc_refused`` only accepts a
``ConnectError``, which gRPC reports while its connection is not ready, and a connection is ready
only after the server's HTTP/2 SETTINGS frame arrived. A failure at the preface (HTTP/1.1 answer,
reset, close, no ``h2`` in ALPN) therefore means that no request was ever delivered over gRPC.

Operations keep their names across transports, so an operation started over gRPC is polled over
REST after the switch (``WaitOperation`` has no REST binding: the REST transport says
``UNIMPLEMENTED`` and the wait flow polls ``GetOperation``).

The ``x-goog-api-client`` header is rewritten per attempt to name the transport actually used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from google.protobuf.message import Message

from vision_grpc._auth import AuthPlan
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import ClientOptions
from vision_grpc.errors import ApiError, ConnectError, VisionError
from vision_grpc.transports.base import Metadata

if TYPE_CHECKING:
    from vision_grpc.transports.grpc import GrpcTransport
    from vision_grpc.transports.grpc_aio import AsyncGrpcTransport
    from vision_grpc.transports.rest import RestTransport
    from vision_grpc.transports.rest_aio import AsyncRestTransport

__all__ = ["AsyncAutoTransport", "AutoTransport", "FallbackState", "answered_over_http", "grpc_refused"]

_log = logging.getLogger(__name__)
_API_CLIENT = "x-goog-api-client"

# How gRPC words a connection that was made but could not carry HTTP/2 (its text follows "last error:"
# in the mapped ConnectError's message): an HTTP/1.x server or proxy answered the preface, the peer reset
# or closed the connection at the preface, or TLS did not negotiate h2 (ALPN).
_HTTP2_REFUSED = (
    "trying to connect an http1.x server",
    "failed parsing http/2",
    "connection reset by peer",
    "socket closed",
    "missing selected alpn property",
)
# A connection that was not made at all: REST would not fare better.
_NOT_CONNECTED = ("connection refused", "errors resolving", "dns resolution failed", "name resolution")

Active = Literal["grpc", "rest"]


def grpc_refused(error: VisionError) -> bool:
    """Whether a gRPC attempt's mapped ``error`` says that the endpoint cannot carry gRPC (HTTP/2).

    Only a ``ConnectError`` qualifies (no request was delivered), and only when its cause is at the
    HTTP/2 level, not a refused connection, an unresolvable name or a timeout.
    """
    if not isinstance(error, ConnectError):
        return False
    text = error.message.lower()
    return any(phrase in text for phrase in _HTTP2_REFUSED) and not any(phrase in text for phrase in _NOT_CONNECTED)


def answered_over_http(method: MethodInfo, error: VisionError) -> bool:
    """Whether a REST attempt's ``error`` came from an HTTP response, i.e. HTTP/1.1 works on the endpoint.

    The REST transports raise an error built from the response without a cause, and raise the ones
    mapped from a failed connection (``ConnectError``, a connection lost mid-call, a timeout) ``from``
    the HTTP library's exception. A method without a REST binding sends nothing at all.
    """
    return (
        method.http_rule is not None
        and isinstance(error, ApiError)
        and not isinstance(error, ConnectError)
        and error.__cause__ is None
    )


class FallbackState:
    """Whether a client switched to REST: shared by the transports one client makes (one per event loop,
    a new one after a fork), so that the switch holds for the client's whole life."""

    __slots__ = ("_lock", "on_rest")

    def __init__(self) -> None:
        self.on_rest = False
        self._lock = threading.Lock()

    def switch(self) -> bool:
        """Record the switch; True only for the caller that made it (that one logs it)."""
        with self._lock:
            first = not self.on_rest
            self.on_rest = True
        return first


def _with_api_client(metadata: Metadata, value: str | None) -> Metadata:
    if value is None:
        return metadata
    return tuple((key, value) if key == _API_CLIENT else (key, item) for key, item in metadata)


class _AutoBase:
    """What both auto transports share: options per transport, headers, the state and the log line."""

    def __init__(
        self,
        options: ClientOptions,
        auth: AuthPlan,
        *,
        state: FallbackState | None,
        api_client: Mapping[str, str] | None,
    ) -> None:
        self._grpc_options = replace(options, transport="grpc")
        self._rest_options = replace(options, transport="rest")
        self._auth = auth
        self._state = state if state is not None else FallbackState()
        headers = api_client or {}
        self._grpc_header, self._rest_header = headers.get("grpc"), headers.get("rest")
        self._endpoint = options.resolved_endpoint
        self._in_flight = 0  # gRPC calls running; after the switch the last one closes the channel

    @property
    def active(self) -> Active:
        """The transport calls use now: ``"grpc"`` until the switch, ``"rest"`` after it."""
        return "rest" if self._state.on_rest else "grpc"

    def _switched(self, grpc_error: ConnectError) -> None:
        if self._state.switch():
            _log.info(
                "%s cannot carry gRPC (HTTP/2) but answers HTTP/1.1: this client uses REST from now on (%s)",
                self._endpoint,
                grpc_error.message,
            )

    @staticmethod
    def _remaining(timeout: float | None, started: float) -> float | None:
        return None if timeout is None else timeout - (time.monotonic() - started)


class AutoTransport(_AutoBase):
    """The blocking ``transport="auto"``: ``GrpcTransport`` until the endpoint refuses HTTP/2, then
    ``RestTransport`` for good. Thread-safe, like the transports it wraps."""

    def __init__(
        self,
        options: ClientOptions,
        auth: AuthPlan,
        *,
        state: FallbackState | None = None,
        api_client: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(options, auth, state=state, api_client=api_client)
        self._lock = threading.Lock()
        self._grpc: GrpcTransport | None = None
        self._rest: RestTransport | None = None
        if not self._state.on_rest:
            from vision_grpc.transports.grpc import GrpcTransport

            self._grpc = GrpcTransport(self._grpc_options, auth)

    def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        grpc = self._grpc_enter()
        if grpc is None:
            return self._rest_transport().call(
                method, request, timeout=timeout, metadata=_with_api_client(metadata, self._rest_header)
            )
        started = time.monotonic()
        try:
            return grpc.call(method, request, timeout=timeout, metadata=_with_api_client(metadata, self._grpc_header))
        except ConnectError as error:
            remaining = self._remaining(timeout, started)
            if not grpc_refused(error) or (remaining is not None and remaining <= 0):
                raise
            return self._fall_back(method, request, remaining, metadata, error)
        finally:
            self._grpc_exit()

    def _fall_back(
        self, method: MethodInfo, request: Message, timeout: float | None, metadata: Metadata, grpc_error: ConnectError
    ) -> Message:
        # Safe to re-send whatever the method (a submit too): grpc_refused means no request was delivered.
        try:
            response = self._rest_transport().call(
                method, request, timeout=timeout, metadata=_with_api_client(metadata, self._rest_header)
            )
        except ConnectError:
            # REST cannot connect either: nothing to switch to (yet); report the gRPC failure.
            raise grpc_error from grpc_error.__cause__
        except VisionError as error:
            if answered_over_http(method, error):
                self._switched(grpc_error)
            raise
        self._switched(grpc_error)
        return response

    def _grpc_enter(self) -> GrpcTransport | None:
        with self._lock:
            if self._state.on_rest or self._grpc is None:
                return None
            self._in_flight += 1
            return self._grpc

    def _grpc_exit(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if not (self._state.on_rest and self._in_flight == 0 and self._grpc is not None):
                return
            channel, self._grpc = self._grpc, None
        channel.close()  # no call runs on it: it would only keep reconnecting to an endpoint that refuses it

    def _rest_transport(self) -> RestTransport:
        with self._lock:
            if self._rest is None:
                from vision_grpc.transports.rest import RestTransport

                self._rest = RestTransport(self._rest_options, self._auth)
            return self._rest

    def close(self) -> None:
        with self._lock:
            grpc, rest, self._grpc, self._rest = self._grpc, self._rest, None, None
        if grpc is not None:
            grpc.close()
        if rest is not None:
            rest.close()


class AsyncAutoTransport(_AutoBase):
    """The asyncio ``transport="auto"``: ``AsyncGrpcTransport`` until the endpoint refuses HTTP/2, then
    ``AsyncRestTransport`` (the ``rest-async`` extra) for good. Create it inside the running event loop."""

    def __init__(
        self,
        options: ClientOptions,
        auth: AuthPlan,
        *,
        state: FallbackState | None = None,
        api_client: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(options, auth, state=state, api_client=api_client)
        self._grpc: AsyncGrpcTransport | None = None
        self._rest: AsyncRestTransport | None = None
        if not self._state.on_rest:
            from vision_grpc.transports.grpc_aio import AsyncGrpcTransport

            self._grpc = AsyncGrpcTransport(self._grpc_options, auth)

    async def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        grpc = self._grpc if not self._state.on_rest else None
        if grpc is None:
            await self._close_idle_grpc()
            return await self._rest_transport(None).call(
                method, request, timeout=timeout, metadata=_with_api_client(metadata, self._rest_header)
            )
        started = time.monotonic()
        self._in_flight += 1
        try:
            return await grpc.call(
                method, request, timeout=timeout, metadata=_with_api_client(metadata, self._grpc_header)
            )
        except ConnectError as error:
            remaining = self._remaining(timeout, started)
            if not grpc_refused(error) or (remaining is not None and remaining <= 0):
                raise
            return await self._fall_back(method, request, remaining, metadata, error)
        finally:
            self._in_flight -= 1
            await self._close_idle_grpc()

    async def _fall_back(
        self, method: MethodInfo, request: Message, timeout: float | None, metadata: Metadata, grpc_error: ConnectError
    ) -> Message:
        # Safe to re-send whatever the method (a submit too): grpc_refused means no request was delivered.
        rest = self._rest_transport(grpc_error)
        try:
            response = await rest.call(
                method, request, timeout=timeout, metadata=_with_api_client(metadata, self._rest_header)
            )
        except ConnectError:
            # REST cannot connect either: nothing to switch to (yet); report the gRPC failure.
            raise grpc_error from grpc_error.__cause__
        except VisionError as error:
            if answered_over_http(method, error):
                self._switched(grpc_error)
            raise
        self._switched(grpc_error)
        return response

    async def _close_idle_grpc(self) -> None:
        if self._state.on_rest and self._in_flight == 0 and self._grpc is not None:
            channel, self._grpc = self._grpc, None
            await channel.close()  # it would only keep reconnecting to an endpoint that refuses HTTP/2

    def _rest_transport(self, grpc_error: ConnectError | None) -> AsyncRestTransport:
        if self._rest is None:
            try:
                from vision_grpc.transports.rest_aio import AsyncRestTransport

                self._rest = AsyncRestTransport(self._rest_options, self._auth)
            except ImportError as missing:
                if grpc_error is None:
                    raise
                raise ConnectError(
                    f"{grpc_error.message} (transport='auto' would switch to REST here, but {missing})"
                ) from grpc_error
        return self._rest

    async def close(self) -> None:
        grpc, rest, self._grpc, self._rest = self._grpc, self._rest, None, None
        if grpc is not None:
            await grpc.close()
        if rest is not None:
            await rest.close()
