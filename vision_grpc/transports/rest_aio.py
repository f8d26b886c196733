"""asyncio REST transport over aiohttp (the ``rest-async`` extra), sharing ``RestCodec``.

aiohttp was chosen by measurement (docs/how-to/rest-fallback.md, "The HTTP libraries"): lowest
per-call overhead of the asyncio HTTP clients here, keep-alive pooling, TCP_NODELAY by default.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._auth import AuthPlan, token_request
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import MAX_RESPONSE_BYTES, ClientOptions
from vision_grpc.errors import ConnectError, TransportError, api_error
from vision_grpc.transports._error_map import ErrorMap
from vision_grpc.transports._http_client import ResponseTooLarge
from vision_grpc.transports._rest_common import PreparedRequest, RestCodec, enter_interceptors
from vision_grpc.transports.base import Metadata

__all__ = ["AsyncRestTransport", "aiohttp_error_map", "require_aiohttp"]

DEADLINE, UNAVAILABLE, EXHAUSTED = code_pb2.DEADLINE_EXCEEDED, code_pb2.UNAVAILABLE, code_pb2.RESOURCE_EXHAUSTED


def require_aiohttp() -> None:
    """Raise the install hint now if aiohttp (the ``rest-async`` extra) is missing."""
    _aiohttp()


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise ImportError("AsyncClient(transport='rest') needs aiohttp: pip install 'vision-grpc[rest-async]'") from exc
    return aiohttp


def aiohttp_error_map(origin: str) -> ErrorMap:
    """aiohttp's exceptions, most specific first (``ClientConnectorError`` is also a ``ClientOSError``)."""
    aiohttp = _aiohttp()
    return ErrorMap(
        [
            # No connection was made (refused, unresolvable, nothing answering, TLS handshake failed):
            # the request never left, so any call may be sent again.
            (aiohttp.ClientConnectorError, lambda exc, _: ConnectError(f"cannot connect to {origin}: {exc}")),
            (aiohttp.ConnectionTimeoutError, lambda exc, _: ConnectError(f"cannot connect to {origin}: {exc}")),
            # The connection dropped mid-call: transient, as over gRPC, but the server may have seen it.
            (
                aiohttp.ServerDisconnectedError,
                lambda exc, _: api_error(UNAVAILABLE, f"connection to {origin} lost: {exc}"),
            ),
            (aiohttp.ClientOSError, lambda exc, _: api_error(UNAVAILABLE, f"connection to {origin} lost: {exc}")),
            (asyncio.TimeoutError, lambda _, timeout: api_error(DEADLINE, f"no answer within {timeout}s")),
            (ResponseTooLarge, lambda exc, _: api_error(EXHAUSTED, f"answer from {origin} too large: {exc}")),
            (aiohttp.ClientError, lambda exc, _: TransportError(f"{type(exc).__name__} talking to {origin}: {exc}")),
        ]
    )


class AsyncRestTransport:
    """Calls over one aiohttp session (pooled keep-alive connections); create it in the event loop."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        self._aiohttp = _aiohttp()
        import yarl  # an aiohttp dependency

        self._yarl = yarl
        self._codec = RestCodec(options, auth)
        self._session: Any = None
        self._pool_size = options.max_connections
        self._token_request = token_request() if auth.credentials is not None else None
        self._errors = aiohttp_error_map(self._codec.origin)
        self._connect_deadline = options.retry.connect_deadline

    def _get_session(self) -> Any:
        if self._session is None:  # created lazily: aiohttp wants a running loop
            connector = self._aiohttp.TCPConnector(limit=self._pool_size)
            self._session = self._aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        prepared = self._codec.prepare(method, request, metadata)
        credentials = self._codec.credentials
        if credentials is not None:
            if not credentials.valid:  # token refresh is blocking google-auth I/O: keep it off the loop
                await asyncio.to_thread(credentials.refresh, self._token_request)
            credentials.apply(prepared.headers)
        # encoded=True: send the path exactly as the transcoder percent-encoded it (yarl would
        # otherwise re-encode it, and the two REST clients would put different bytes on the wire).
        url = self._yarl.URL(self._codec.origin + prepared.url, encoded=True)
        with self._errors.during(timeout):
            if self._codec.interceptors:
                with ExitStack() as interceptors:
                    enter_interceptors(interceptors, self._codec, method, prepared)
                    status, body, content_type = await self._send(url, prepared, timeout)
            else:
                status, body, content_type = await self._send(url, prepared, timeout)
        return self._codec.read(method, status, body, content_type)

    async def _send(self, url: Any, prepared: PreparedRequest, timeout: float | None) -> tuple[int, bytes, str]:
        async with self._get_session().request(
            prepared.method,
            url,
            data=prepared.body,
            headers=prepared.headers,
            # Connecting gets at most the connect deadline: a host that never answers is a ConnectError.
            timeout=self._aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_deadline),
            allow_redirects=False,
        ) as response:
            return response.status, await _read_capped(response), response.headers.get("content-type", "")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(response: Any) -> bytes:
    """The body, held to the same cap as every transport's answers (decompressed size included)."""
    limit = MAX_RESPONSE_BYTES
    length = response.content_length
    if length is not None and length > limit:
        raise ResponseTooLarge(f"a {length}-byte response body is over the {limit}-byte limit")
    if length is not None and "content-encoding" not in response.headers:
        body: bytes = await response.read()  # bounded by its content-length
        return body
    parts, total = [], 0
    async for chunk in response.content.iter_chunked(1 << 20):
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge(f"a response body over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)
