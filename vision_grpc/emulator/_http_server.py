"""The HTTP/1.1 server under the emulator's two HTTP fronts: sockets, threads, bounds and keep-alive.

``rest_server`` (Vision's JSON API) and ``gcs_server`` (Cloud Storage's JSON API) each give an
``Http1Server`` three callables: ``respond`` (the answer to a request), ``refusal`` (the answer, in the
front's own JSON error shape, to a request that cannot be served: a framing error, 408, 413, 503...) and
``body_limit`` (the cap on a request's body). The server does everything else, on the strict framing of
``_http1`` (RFC 9112), which stays a parser without I/O:

- the standard library's sockets and threads: one accept thread, one thread per connection (as
  ``http.server`` had, which keeps a call on the thread that read it: no hand-over per request);
- ``max_connections`` served at a time; one more is answered 503 with ``Retry-After: 1`` and closed (at
  most 64 such answers at once; past that, closed unanswered). Out of file descriptors (``accept`` fails
  with EMFILE or ENFILE; any other failure too) the accept thread pauses ``_ACCEPT_PAUSE`` s, not spinning;
- ``idle_timeout`` between requests on a kept-alive connection, then it is closed without a word;
- ``request_timeout`` for a request's head once its first byte is in, and for its body: for all of it
  (``whole_request_timeout``) or for each wait for more of it; then 408 and close. It also bounds writing
  a response to a client that does not read;
- a body (``Body``) is read as ``respond`` consumes it; ``100 Continue`` goes out at its first read, so a
  request refused before then never has its body sent. Past the cap: 413 and close, before a byte of it is
  read when its length is declared. A declared rest that ``respond`` left unread (up to 1 MiB) is read and
  dropped to keep the connection; a longer one, or a chunked one, closes it;
- a request that breaks framing is answered and its connection closed, so that no byte after it can run
  as a second request; HTTP/1.0 and ``Connection: close`` close too. A connection closed after an answer is
  half-closed first and what the client still sends read and dropped (at most 1 s, 1 MiB), so that no
  reset overtakes the answer;
- ``SO_REUSEADDR`` (POSIX), so that a restarted emulator binds its port again at once; ``TCP_NODELAY``,
  and each response in one ``sendall`` (a file's bytes: ``sendfile`` after the head).
"""

from __future__ import annotations

import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO

from vision_grpc.emulator._http1 import (
    MAX_HEAD,
    MAX_HEADERS,
    Framing,
    HttpError,
    RequestHead,
    chunk_size,
    framing,
    header_line,
    request_line,
)

__all__ = ["JSON_TYPE", "MAX_BODY", "Body", "Http1Server", "Limits", "RequestTimeout", "Response", "json_response"]

_log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=UTF-8"
MAX_BODY = 64 * 1024 * 1024
_PIECE = 1 << 20  # the most bytes of a body read from the socket at a time
_LINE_READ = 65536  # bytes asked of the socket at a time while reading lines
_UNREAD = 1 << 20  # after an answer: at most this much unread declared body is dropped to keep the connection
_DRAIN_SECONDS = 1.0  # after an answer that closes: read and drop what the client still sends, this long
_DRAIN_BYTES = 1 << 20  # and at most this much
_MAX_REFUSING = 64  # connections being answered 503 at once; beyond that, closed without an answer
_STOP_SECONDS = 5.0
_ACCEPT_PAUSE = 0.5  # out of descriptors: seconds before accepting again
_BLANK_LINES = 4  # empty lines skipped before a request line (some clients send a CRLF after a body)


@dataclass(frozen=True)
class Limits:
    """The bounds of one front (see the module docstring), checked here."""

    max_connections: int = 256
    idle_timeout: float = 60.0
    request_timeout: float = 30.0
    max_body: int = MAX_BODY

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_body < 0:
            raise ValueError("max_connections must be >= 1, max_body >= 0")
        if not (self.idle_timeout > 0 and self.request_timeout > 0):
            raise ValueError("idle_timeout and request_timeout must be > 0")


@dataclass
class Response:
    """An answer: ``body``, or ``length`` bytes of ``file`` from ``offset`` (the server closes the file)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0


def json_response(status: int, payload: bytes, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", JSON_TYPE), *headers], payload)


class RequestTimeout(HttpError):
    """The request's head (``in_body`` False) or body did not arrive within ``request_timeout``: 408."""

    def __init__(self, *, in_body: bool) -> None:
        super().__init__(408, "the request did not arrive in time")
        self.in_body = in_body


class _Timeout(Exception):
    """The deadline of the current wait passed."""


class _Connection:
    """A client socket with an input buffer; every read waits at most until the deadline given."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self, deadline: float, size: int = _LINE_READ) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            raise _Timeout from None
        if not data:
            raise EOFError
        self.buffer += data

    def wait_first(self, deadline: float) -> None:
        """Until at least one byte is in (``EOFError`` if the client closes, ``_Timeout`` at the deadline)."""
        if not self.buffer:
            self._fill(deadline)

    def line(self, deadline: float, status: int, what: str) -> bytes:
        """One line, LF included; ``HttpError(status)`` past ``MAX_HEAD`` bytes without one."""
        searched = 0
        while (end := self.buffer.find(b"\n", searched)) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise HttpError(status, f"{what} is over {MAX_HEAD} bytes")
            searched = len(self.buffer)
            self._fill(deadline)
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def some(self, limit: int, deadline: float) -> bytes:
        """Between 1 and ``limit`` bytes."""
        if not self.buffer:
            self._fill(deadline, limit)
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def close(self, *, gently: bool) -> None:
        """Closed; ``gently``: our end of the stream first, then the client's rest read and dropped (bounded)."""
        try:
            if gently:
                self.sock.shutdown(socket.SHUT_WR)
                deadline, dropped = time.monotonic() + _DRAIN_SECONDS, 0
                while dropped < _DRAIN_BYTES and (remaining := deadline - time.monotonic()) > 0:
                    self.sock.settimeout(remaining)
                    data = self.sock.recv(_LINE_READ)
                    if not data:
                        break
                    dropped += len(data)
        except OSError:
            pass
        finally:
            self.sock.close()


def _read_head(conn: _Connection, deadline: float) -> RequestHead:
    """The request line and header fields, strictly (``_http1``), within ``deadline``."""
    line = conn.line(deadline, 414, "the request line")
    for _ in range(_BLANK_LINES):  # RFC 9112 section 2.2: ignore blank lines before a request line
        if line not in (b"\r\n", b"\n"):
            break
        line = conn.line(deadline, 414, "the request line")
    method, target, version = request_line(line)
    headers: list[tuple[str, str]] = []
    size = len(line)
    while (raw := conn.line(deadline, 431, "the request head")) not in (b"\r\n", b"\n"):
        size += len(raw)
        if size > MAX_HEAD or len(headers) >= MAX_HEADERS:
            raise HttpError(431, f"the request head is over {MAX_HEAD} bytes or {MAX_HEADERS} header lines")
        headers.append(header_line(raw))
    return RequestHead(method, target, version, tuple(headers))


class Body:
    """A request's body, read as the handler consumes it: ``Content-Length`` bytes or ``chunked`` (at most
    ``limit`` bytes). ``100 Continue`` goes out at the first read. A read raises ``RequestTimeout`` past
    ``deadline`` or after ``stall`` seconds without bytes, ``HttpError`` when the body breaks framing."""

    def __init__(
        self, conn: _Connection, head: RequestHead, frame: Framing, limit: int, stall: float, deadline: float
    ) -> None:
        self._conn, self._head = conn, head
        self.chunked = frame.chunked
        self.remaining = frame.length  # Content-Length: bytes still to read (None: chunked)
        self._chunk_left = 0  # chunked: bytes left in the current chunk
        self._limit, self._stall, self._deadline = limit, stall, deadline
        self._total = 0
        self.started = False
        self.finished = frame.length == 0

    def pieces(self) -> Iterator[bytes]:
        while not self.finished:
            try:
                piece = self._next_piece()
            except _Timeout:
                raise RequestTimeout(in_body=True) from None
            if piece:
                yield piece

    def read(self) -> bytes:
        return b"".join(self.pieces())

    def _next_piece(self) -> bytes:
        deadline = min(self._deadline, time.monotonic() + self._stall)
        if not self.started:
            self.started = True
            if self._head.expects_continue:
                self._conn.send(b"HTTP/1.1 100 Continue\r\n\r\n", max(0.001, deadline - time.monotonic()))
        if not self.chunked:
            assert self.remaining is not None
            piece = self._conn.some(min(self.remaining, _PIECE), deadline)
            self.remaining -= len(piece)
            self.finished = self.remaining == 0
            return piece
        if self._chunk_left == 0:
            self._chunk_left = chunk_size(self._conn.line(deadline, 400, "a chunk-size line"))
            if self._chunk_left == 0:
                for _ in range(MAX_HEADERS + 1):  # the trailer section: checked, then dropped
                    raw = self._conn.line(deadline, 431, "the trailer section")
                    if raw in (b"\r\n", b"\n"):
                        self.finished = True
                        return b""
                    header_line(raw)
                raise HttpError(431, f"more than {MAX_HEADERS} trailer lines")
            if self._total + self._chunk_left > self._limit:
                raise HttpError(413, f"the request body is over {self._limit} bytes")
            self._total += self._chunk_left
        piece = self._conn.some(min(self._chunk_left, _PIECE), deadline)
        self._chunk_left -= len(piece)
        if self._chunk_left == 0:
            end = self._conn.some(2, deadline)
            if end == b"\r":
                end += self._conn.some(1, deadline)
            if end != b"\r\n":  # exactly CRLF (RFC 9112 section 7.1): a bare LF here is refused, not guessed at
                raise HttpError(400, "a chunk does not end with CRLF")
        return piece

    def drain(self, limit: int) -> bool:
        """Read and drop the rest of a declared body of at most ``limit`` bytes the client is sending;
        whether the body is now fully read (else the connection must close, or the rest would be read as a
        request)."""
        if self.finished:
            return True
        if self.chunked or self.remaining is None or self.remaining > limit:
            return False
        if not self.started and self._head.expects_continue:
            return False  # the client waits for our word before it sends: there is nothing to drop
        try:
            while not self.finished:
                self._next_piece()
        except (OSError, EOFError, HttpError, _Timeout):
            return False
        return True


def _head_bytes(response: Response, length: int, *, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_phrase(response.status)}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else ""


class Http1Server:
    """Serves ``respond`` over HTTP/1.1 on ``host:port`` (0 picks a free port), within ``limits``.

    ``name`` names the front in logs and thread names. The port is bound here, so that it is known (and a
    busy one fails) before ``start()``."""

    def __init__(
        self,
        host: str,
        port: int,
        limits: Limits,
        *,
        name: str,
        respond: Callable[[RequestHead, Body], Response],
        refusal: Callable[[HttpError], Response],
        body_limit: Callable[[RequestHead], int] | None = None,
        whole_request_timeout: bool = False,
    ) -> None:
        self._limits, self._name = limits, name
        self._respond, self._refusal = respond, refusal
        self._body_limit = body_limit or (lambda head: limits.max_body)
        self._whole_request_timeout = whole_request_timeout
        # create_server sets SO_REUSEADDR on POSIX: a restarted server can bind while old connections sit
        # in TIME_WAIT.
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._serving: set[socket.socket] = set()  # a thread each
        self._refusing = 0  # connections being answered 503
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"vision-emulator-{name.lower()}", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def open_connections(self) -> int:
        """Connections being served now (those answered 503 not counted)."""
        with self._lock:
            return len(self._serving)

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the port and every connection, and join the accept thread. Idempotent."""
        self._stopping.set()
        if self._thread.is_alive():
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
            self._thread.join(_STOP_SECONDS)
        with self._lock:
            serving = list(self._serving)
        for sock in serving:  # wakes their threads, which then close them
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            starved = False  # out of descriptors (logged once until an accept succeeds again)
            while not self._stopping.is_set():
                selector.select()
                if self._stopping.is_set():
                    return
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:  # EMFILE and the like: what cannot be accepted waits in the backlog,
                    if not starved:  # and retrying at once would spin
                        _log.warning(
                            "emulator %s front: cannot accept (%s); retrying every %ss", self._name, exc, _ACCEPT_PAUSE
                        )
                    starved = True
                    self._stopping.wait(_ACCEPT_PAUSE)
                    continue
                starved = False
                self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        with self._lock:
            serve = len(self._serving) < self._limits.max_connections and not self._stopping.is_set()
            refuse = not serve and self._refusing < _MAX_REFUSING
            if serve:
                self._serving.add(sock)
            elif refuse:
                self._refusing += 1
        if not (serve or refuse):
            sock.close()
            return
        target = self._serve if serve else self._refuse
        name = f"vision-emulator-{self._name.lower()}-conn"
        try:
            threading.Thread(target=target, args=(sock,), name=name, daemon=True).start()
        except RuntimeError:  # no thread to be had: drop the connection
            self._done(sock, serve)
            sock.close()

    def _done(self, sock: socket.socket, served: bool) -> None:
        with self._lock:
            if served:
                self._serving.discard(sock)
            else:
                self._refusing -= 1

    def _refuse(self, sock: socket.socket) -> None:
        conn = _Connection(sock)
        try:
            busy = self._refusal(HttpError(503, "too many connections"))
            busy.headers.append(("Retry-After", "1"))
            self._send(conn, busy, None, close=True, timeout=_DRAIN_SECONDS)
        except OSError:
            pass
        finally:
            conn.close(gently=True)
            self._done(sock, False)

    # -- one connection (on its own thread) -------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock)
        gently = False
        try:
            sock.setblocking(True)
            # else each small answer waits ~40 ms for the client's delayed ACK of the previous one
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stopping.is_set():
                try:
                    conn.wait_first(time.monotonic() + self._limits.idle_timeout)
                except _Timeout:
                    return  # idle: closed without a word, as HTTP/1.1 servers do
                if not self._exchange(conn):
                    gently = True
                    return
        except (OSError, EOFError):
            pass  # the client went away, stopped reading our answer, or stop() shut the socket
        except Exception:  # a bug: this connection ends, the server goes on
            _log.exception("emulator %s front: connection failed", self._name)
        finally:
            conn.close(gently=gently and not self._stopping.is_set())
            self._done(sock, True)

    def _exchange(self, conn: _Connection) -> bool:
        """One request and its answer; whether the connection stays open."""
        started = time.monotonic()
        try:
            head = _read_head(conn, started + self._limits.request_timeout)
            limit = self._body_limit(head)
            whole = started + self._limits.request_timeout if self._whole_request_timeout else math.inf
            body = Body(conn, head, framing(head, limit), limit, self._limits.request_timeout, whole)
        except _Timeout:
            self._send(conn, self._refusal(RequestTimeout(in_body=False)), None, close=True)
            return False
        except HttpError as refused:
            self._send(conn, self._refusal(refused), None, close=True)
            return False
        close = False
        try:
            response = self._respond(head, body)
        except HttpError as broken:  # the body, as it was read (RequestTimeout included)
            response, close = self._refusal(broken), True
        if not close and (response.status == 413 or not body.drain(_UNREAD)):
            close = True  # the unread rest of the body would be read as the next request
        close = close or not head.keep_alive
        self._send(conn, response, head, close=close)
        # The path only: a query may hold an API key (?key=).
        _log.debug(
            "emulator %s front: %s %s -> %s", self._name, head.method, head.target.partition("?")[0], response.status
        )
        return not close

    def _send(
        self,
        conn: _Connection,
        response: Response,
        head: RequestHead | None,
        *,
        close: bool,
        timeout: float | None = None,
    ) -> None:
        """``response``, its body left out for HEAD; ``timeout`` (default ``request_timeout``) per write."""
        timeout = self._limits.request_timeout if timeout is None else timeout
        length = response.length if response.file is not None else len(response.body)
        with_body = head is None or head.method != "HEAD"
        try:
            if response.file is None:
                conn.send(_head_bytes(response, length, close=close) + (response.body if with_body else b""), timeout)
            else:
                conn.send(_head_bytes(response, length, close=close), timeout)
                if with_body and length:
                    conn.sock.sendfile(response.file, response.offset, length)
        finally:
            if response.file is not None:
                response.file.close()
