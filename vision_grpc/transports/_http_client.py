"""A lean blocking HTTP/1.1 client for the REST transport: a keep-alive connection pool to one origin.

Why not urllib3 (used before 0.2): on loopback, a urllib3 ``urlopen`` cost ~190 µs of client CPU per
call (header objects, the ``email`` parser for response headers, a second ``send`` for a POST body),
more than everything else a REST call of ours does; a REST call was 1.5-1.7x the bare urllib3 floor
in client CPU. A JSON API needs far less of HTTP: here a request goes out in one ``sendall`` and a
response is parsed for its status, headers and framing only (RFC 9112: ``content-length``,
``chunked``, or read to close). What this does not do, on purpose: proxies, redirects, cookies,
``Expect: 100-continue``, pipelining; the transport above it maps the exceptions below.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BadResponse",
    "ConnectFailed",
    "ConnectionLost",
    "ConnectionPool",
    "HttpError",
    "PoolTimeout",
    "Response",
    "ResponseTimeout",
    "ResponseTooLarge",
]

_MAX_HEAD = 64 * 1024  # status line and headers of one response
_MAX_HEADERS = 200
_RECV = 256 * 1024
_UNSAFE = re.compile(r"[\r\n\x00]")  # what would split or end a header line (request smuggling)
_NOT_TOKEN = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")  # a header name is an RFC 9110 token


class HttpError(Exception):
    """A failure below HTTP semantics; the transport maps each subclass to the error tree."""


class ConnectFailed(HttpError):
    """No connection was made (refused, unresolvable, nothing answering, TLS handshake): nothing was sent."""

    def __init__(self, message: str, *, tls: bool = False) -> None:
        super().__init__(message)
        self.tls = tls


class PoolTimeout(HttpError):
    """Every connection stayed busy (``maxsize`` in flight) for the whole timeout."""


class ResponseTimeout(HttpError):
    """The deadline passed while sending the request or waiting for (part of) the response."""


class ConnectionLost(HttpError):
    """The connection dropped or was reset after the request started: the server may have seen it."""


class BadResponse(HttpError):
    """What came back is not an HTTP/1.x response this client can frame (status line, headers, chunks)."""


class ResponseTooLarge(HttpError):
    """The body is larger than the pool's ``max_body`` (the same cap as gRPC's receive limit)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes


class ConnectionPool:
    """Up to ``maxsize`` keep-alive connections to ``host:port``; a call beyond waits for a free one.

    Thread-safe: a connection serves one call at a time, idle ones wait in a LIFO (the most recently
    used is the least likely to have been closed by the server)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        maxsize: int,
        max_body: int,
    ) -> None:
        self._address = (host, port)
        self._tls = tls
        default_port = 443 if tls is not None else 80
        shown = f"[{host}]" if ":" in host else host
        self._host_line = f"host: {shown}" if port == default_port else f"host: {shown}:{port}"
        self._slots = threading.BoundedSemaphore(maxsize)
        self._idle: deque[_Connection] = deque()
        self._max_body = max_body
        self._closed = False

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        timeout: float | None,
        connect_timeout: float,
    ) -> Response:
        """Send one request and read its whole response. ``timeout`` bounds the whole of it: the
        wait for a free connection, connecting, sending and reading; ``connect_timeout`` the
        connecting."""
        head = self._head(method, target, headers, body)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise PoolTimeout(f"no free connection within {timeout}s")
        try:
            connection = self._take()
            if connection is None:
                connection = _Connection.open(self._address, self._tls, connect_timeout, deadline)
            try:
                response, reusable = connection.exchange(head, body, deadline, self._max_body, method == "HEAD")
            except BaseException:
                connection.close()
                raise
            if reusable and not self._closed:
                self._idle.append(connection)
                if self._closed:  # close() ran meanwhile and may have missed it
                    self.close()
            else:
                connection.close()
            return response
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections; one in use is closed when its call ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _take(self) -> _Connection | None:
        while self._idle:
            try:
                connection = self._idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if connection.usable():
                return connection
            connection.close()
        return None

    def _head(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", self._host_line]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {0 if body is None else len(body)}")
        names = "".join(headers)
        if " " in target or _UNSAFE.search(target + "".join(headers.values())) or _NOT_TOKEN.search(names):
            # The text is withheld: a header value may be a credential.
            raise ValueError(
                "a request header or the target holds a line break, NUL or space, or a name is not a token"
            )
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")


class _Connection:
    """One socket with its read buffer; framing per RFC 9112 section 6."""

    __slots__ = ("_buffer", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    @classmethod
    def open(
        cls, address: tuple[str, int], tls: ssl.SSLContext | None, connect_timeout: float, deadline: float | None
    ) -> _Connection:
        limit = connect_timeout if deadline is None else min(connect_timeout, deadline - time.monotonic())
        if limit <= 0:
            raise ResponseTimeout("the call's time ran out waiting for a free connection")
        host = address[0]
        try:
            sock = socket.create_connection(address, timeout=limit)
        except OSError as exc:  # refused, unresolvable, unreachable, timed out
            reason = exc.strerror or type(exc).__name__
            raise ConnectFailed(f"timed out (after {limit:.3g}s)" if isinstance(exc, TimeoutError) else reason) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests leave at once
            if tls is not None:
                try:
                    sock = tls.wrap_socket(sock, server_hostname=host)
                except OSError as exc:  # ssl.SSLError (a failed handshake or certificate) is one
                    raise ConnectFailed(f"{type(exc).__name__}: {exc}", tls=True) from exc
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def usable(self) -> bool:
        """False if the server closed (or wrote to) this idle connection: readable means EOF or junk."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable  # (a reusable connection's buffer is empty: bytes left over end reuse)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def exchange(
        self, head: bytes, body: bytes | None, deadline: float | None, max_body: int, head_request: bool = False
    ) -> tuple[Response, bool]:
        """Send the request, read the response; and whether the connection may carry another call."""
        try:
            self._set_deadline(deadline)
            # One send: head and a small body together (two sends cost a syscall and, without
            # TCP_NODELAY on the far side's ACKs, a delayed-ACK wait).
            self._sock.sendall(head + body if body is not None and len(body) < 65536 else head)
            if body is not None and len(body) >= 65536:
                self._sock.sendall(body)
            while True:
                status, version, headers = self._read_head(deadline)
                if status >= 200 or status == 101:
                    break  # 1xx (100 Continue, 103 Early Hints) are followed by the real response
            return self._read_body(status, version, headers, deadline, max_body, head_request)
        except TimeoutError as exc:
            raise ResponseTimeout("timed out") from exc
        except ssl.SSLError as exc:
            raise ConnectionLost(f"TLS: {exc.reason or type(exc).__name__}") from exc
        except OSError as exc:  # reset, broken pipe, ...
            raise ConnectionLost(exc.strerror or type(exc).__name__) from exc

    # -- reading -------------------------------------------------------------------------------

    def _set_deadline(self, deadline: float | None) -> None:
        if deadline is None:
            self._sock.settimeout(None)
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)

    def _fill(self, deadline: float | None) -> None:
        """Append what the socket has (at least one byte); EOF is ``ConnectionLost``."""
        if deadline is not None:
            self._set_deadline(deadline)
        data = self._sock.recv(_RECV)
        if not data:
            raise ConnectionLost("closed by the server before the response was complete")
        self._buffer += data

    def _read_head(self, deadline: float | None) -> tuple[int, str, dict[str, str]]:
        start = 0
        while True:
            end = self._buffer.find(b"\r\n\r\n", start, _MAX_HEAD + 4)
            if end >= 0:
                break
            if len(self._buffer) > _MAX_HEAD:
                raise BadResponse(f"response head longer than {_MAX_HEAD} bytes")
            start = max(len(self._buffer) - 3, 0)
            self._fill(deadline)
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        well_formed = len(code) == 3 and code.isdigit() and rest[3:4] in ("", " ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or not well_formed:
            raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
        if len(lines) > _MAX_HEADERS + 1:
            raise BadResponse(f"more than {_MAX_HEADERS} response headers")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or line[0] in " \t":
                raise BadResponse("a malformed response header line")
            name, value = name.lower(), value.strip(" \t")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return int(code), version, headers

    def _read_body(
        self,
        status: int,
        version: str,
        headers: dict[str, str],
        deadline: float | None,
        max_body: int,
        head_request: bool,
    ) -> tuple[Response, bool]:
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        coding = headers.get("transfer-encoding")
        if head_request or status in (101, 204, 304) or 100 <= status < 200:
            body = b""
        elif coding is not None:
            if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
                body, keep_alive = self._read_to_close(deadline, max_body), False
            else:
                body = self._read_chunked(deadline, max_body)
        elif "content-length" in headers:
            length = _content_length(headers["content-length"])
            if length > max_body:
                raise ResponseTooLarge(f"a {length}-byte response body is over the {max_body}-byte limit")
            body = self._read_exact(length, deadline)
        else:
            body, keep_alive = self._read_to_close(deadline, max_body), False
        if self._buffer or status == 101:  # bytes after the response: nothing was pipelined, so the stream is off
            keep_alive = False
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            body = _decode_content(encoding, body, max_body)
        return Response(status, headers, body), keep_alive

    def _read_exact(self, length: int, deadline: float | None) -> bytes:
        if len(self._buffer) >= length:  # the common case: it came with the head
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
            return body
        out = bytearray(length)
        view = memoryview(out)
        have = len(self._buffer)
        view[:have] = self._buffer
        self._buffer.clear()
        while have < length:
            if deadline is not None:
                self._set_deadline(deadline)
            got = self._sock.recv_into(view[have:], min(length - have, 1 << 20))
            if not got:
                raise ConnectionLost(f"closed by the server after {have} of {length} body bytes")
            have += got
        return bytes(out)

    def _read_line(self, deadline: float | None) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > 8192:
                raise BadResponse("a chunk-size or trailer line longer than 8192 bytes")
            self._fill(deadline)

    def _read_chunked(self, deadline: float | None, max_body: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._read_line(deadline).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"a bad chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise BadResponse("a negative chunk size")
            if size == 0:
                while self._read_line(deadline):  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > max_body:
                raise ResponseTooLarge(f"a chunked response body over the {max_body}-byte limit")
            parts.append(self._read_exact(size, deadline))
            if self._read_exact(2, deadline) != b"\r\n":
                raise BadResponse("a chunk not followed by CRLF")

    def _read_to_close(self, deadline: float | None, max_body: int) -> bytes:
        while True:
            if len(self._buffer) > max_body:
                raise ResponseTooLarge(f"a response body over the {max_body}-byte limit")
            try:
                self._fill(deadline)
            except ConnectionLost:
                break
        body = bytes(self._buffer)
        self._buffer.clear()
        return body


def _content_length(text: str) -> int:
    values = {v.strip() for v in text.split(",")}  # repeated identical fields are allowed (RFC 9110 8.6)
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise BadResponse(f"a bad content-length {text[:40]!r}")
    return int(value)


def _decode_content(encoding: str, body: bytes, max_body: int) -> bytes:
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadResponse(f"an unsupported content-encoding {encoding[:40]!r}")
    # wbits 47: zlib or gzip header detected; raw deflate (as some servers send "deflate") as a fallback.
    for wbits in (47, -15):
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, max_body + 1)
        except zlib.error:
            continue
        if len(out) > max_body:
            raise ResponseTooLarge(f"a decompressed response body over the {max_body}-byte limit")
        return out
    raise BadResponse(f"a body that is not valid {encoding}")
