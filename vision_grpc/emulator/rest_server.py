"""The emulator's HTTP/1.1 JSON front: the same ``EmulatorService`` behind gRPC transcoding.

Routes come from the same descriptors and ``google.api.http`` rules as the client's REST
transport (``_core.methods``), matched and decoded by the server half of the transcoding engine
(``_transcoding.Router``). Errors use the service's JSON shape
(``{"error": {"code", "message", "status", "details"}}``, ``http_error_body``); ``code`` is the HTTP
status and ``status`` the ``google.rpc.Code`` name. A path bound to other HTTP methods only is
answered 405 with an ``Allow`` header and ``"status": "UNIMPLEMENTED"`` (google.rpc has no code for
405; grpc-gateway says the same).

The server is the standard library's sockets and threads (one accept thread, one thread per
connection, as ``http.server`` had, which keeps a call on the thread that read it: no hand-over per
request), with strict framing (``_http1``, RFC 9112): a request whose body length is ambiguous
(``Content-Length`` with ``Transfer-Encoding``, lengths that are not digits or that differ, a coding
other than ``chunked``) is refused and its connection closed, so that no byte after it can run as a
second request. Everything is bounded (``RestServer`` arguments):

- ``max_connections`` (256) served at a time, a thread each; one more is answered 503 with
  ``Retry-After: 1`` and closed (at most 64 such answers at once; past that, closed unanswered);
- ``idle_timeout`` (60 s) between requests on a kept-alive connection, then it is closed;
- ``request_timeout`` (30 s) for a request's head and body once its first byte is in (then 408 and
  close), and for writing a response to a client that does not read;
- ``max_body`` (64 MiB): past it 413 and close, before a byte of the body is read when its length is
  declared, as soon as the total passes it when chunked.

Out of file descriptors (``accept`` fails with EMFILE or ENFILE; any other failure too), the accept
thread pauses for ``_ACCEPT_PAUSE`` seconds instead of spinning. The listening socket has ``SO_REUSEADDR`` (on POSIX),
so that a restarted emulator binds its port again at once. A connection closed after an error is
half-closed first and what the client still sends read and dropped (at most 1 s, 1 MiB), so that no
reset overtakes the answer. Each response goes out in one ``sendall`` on a TCP_NODELAY socket.
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qsl

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import Router, encode_response
from vision_grpc.emulator._http1 import (
    MAX_HEAD,
    MAX_HEADERS,
    HttpError,
    RequestHead,
    chunk_size,
    framing,
    header_line,
    request_line,
)
from vision_grpc.emulator._service import EmulatorService
from vision_grpc.errors import ApiError, api_error, code_for_http_status, code_name, http_status_for

__all__ = ["MAX_BODY", "RestServer", "build_router", "http_error_body"]

_log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024
_HEADERS_TO_METADATA = (
    "x-goog-api-key",
    "x-goog-user-project",
    "x-goog-request-params",
    "x-goog-api-client",
    "authorization",
)
_DRAIN_SECONDS = 1.0  # after an answer that closes: read and drop what the client still sends, this long
_DRAIN_BYTES = 1024 * 1024  # and at most this much
_MAX_REFUSING = 64  # connections being answered 503 at once; beyond that, closed without an answer
_STOP_SECONDS = 5.0
_ACCEPT_PAUSE = 0.5  # out of descriptors: seconds before accepting again
_CHUNK = 65536
_BLANK_LINES = 4  # empty lines skipped before a request line (some clients send a CRLF after a body)
# google.rpc codes of the framing errors, where errors.code_for_http_status has none or a vaguer one
_FRAMING_CODES = {
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.INVALID_ARGUMENT,
    414: code_pb2.INVALID_ARGUMENT,
    417: code_pb2.INVALID_ARGUMENT,
    431: code_pb2.INVALID_ARGUMENT,
    505: code_pb2.UNIMPLEMENTED,
}


def http_error_body(status: status_pb2.Status, http_status: int | None = None) -> tuple[int, bytes]:
    """The HTTP status (``http_status``, or the one ``status.code`` maps to) and the JSON error body."""
    details = [json_format.MessageToDict(d, descriptor_pool=JSON_TYPES) for d in status.details]
    code = http_status if http_status is not None else http_status_for(status.code)
    error = {"code": code, "message": status.message, "status": code_name(status.code)}
    if details:
        error["details"] = details
    return code, json.dumps({"error": error}).encode()


def build_router() -> Router[MethodInfo]:
    """Every ImageAnnotator route of both versions, plus the Operations routes Vision binds."""
    methods = [*METHODS.values(), *OPERATIONS.values()]
    return Router((m, m.request_type, m.http_rule) for m in methods if m.http_rule is not None)


def _response(
    status: int,
    payload: bytes,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    close: bool,
    body: bool = True,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        "Content-Type: application/json; charset=UTF-8",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (payload if body else b"")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _framing_error(error: HttpError) -> bytes:
    code = _FRAMING_CODES.get(error.status, code_for_http_status(error.status))
    body = {"error": {"code": error.status, "message": error.message, "status": code_name(code)}}
    return _response(error.status, json.dumps(body).encode(), close=True)


class _Timeout(Exception):
    """The deadline of the current wait passed."""


class _Conn:
    """A client socket with an input buffer; every read waits at most until the deadline given."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(_CHUNK)
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

    def exactly(self, size: int, deadline: float) -> bytes:
        if len(self.buffer) >= size:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
            return data
        into = bytearray(size)  # received straight into place, not grown chunk by chunk
        got = len(self.buffer)
        into[:got] = self.buffer
        self.buffer.clear()
        view = memoryview(into)
        while got < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            self.sock.settimeout(remaining)
            try:
                count = self.sock.recv_into(view[got:], min(size - got, 1 << 20))
            except TimeoutError:
                raise _Timeout from None
            if not count:
                raise EOFError
            got += count
        return bytes(into)

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def close_gently(self) -> None:
        """Our end of the stream after what is sent, then the client's rest read and dropped (bounded), close."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline, dropped = time.monotonic() + _DRAIN_SECONDS, 0
            while dropped < _DRAIN_BYTES and (remaining := deadline - time.monotonic()) > 0:
                self.sock.settimeout(remaining)
                data = self.sock.recv(_CHUNK)
                if not data:
                    break
                dropped += len(data)
        except OSError:
            pass
        finally:
            self.sock.close()


class RestServer:
    """Serves an ``EmulatorService`` over HTTP/1.1 JSON on ``host:port`` (0 picks a free port)."""

    def __init__(
        self,
        service: EmulatorService,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = 256,
        idle_timeout: float = 60.0,
        request_timeout: float = 30.0,
        max_body: int = MAX_BODY,
    ) -> None:
        if max_connections < 1 or max_body < 0:
            raise ValueError("max_connections must be >= 1, max_body >= 0")
        if not (idle_timeout > 0 and request_timeout > 0):
            raise ValueError("idle_timeout and request_timeout must be > 0")
        self.service = service
        self.router = build_router()
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._request_timeout = request_timeout
        self._max_body = max_body
        # Bound here, so that the port is known (and a busy one fails) before start(); create_server sets
        # SO_REUSEADDR on POSIX: a restarted server can bind while old connections sit in TIME_WAIT.
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._serving: set[socket.socket] = set()  # a thread each
        self._refusing = 0  # connections being answered 503
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="vision-emulator-rest", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

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
                        _log.warning("emulator REST front: cannot accept (%s); retrying every %ss", exc, _ACCEPT_PAUSE)
                    starved = True
                    self._stopping.wait(_ACCEPT_PAUSE)
                    continue
                starved = False
                self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        with self._lock:
            serve = len(self._serving) < self._max_connections and not self._stopping.is_set()
            refuse = not serve and self._refusing < _MAX_REFUSING
            if serve:
                self._serving.add(sock)
            elif refuse:
                self._refusing += 1
        if not (serve or refuse):
            sock.close()
            return
        target = self._serve if serve else self._refuse
        try:
            threading.Thread(target=target, args=(sock,), name="vision-emulator-rest-conn", daemon=True).start()
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
        conn = _Conn(sock)
        try:
            body = {"error": {"code": 503, "message": "too many connections", "status": "UNAVAILABLE"}}
            conn.send(_response(503, json.dumps(body).encode(), (("Retry-After", "1"),), close=True), _DRAIN_SECONDS)
        except OSError:
            pass
        finally:
            conn.close_gently()
            self._done(sock, False)

    # -- one connection (on its own thread) -------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        gently = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stopping.is_set():
                try:
                    conn.wait_first(time.monotonic() + self._idle_timeout)
                except _Timeout:
                    return  # idle: closed without a word, as HTTP/1.1 servers do
                try:
                    head, body = self._read_request(conn, time.monotonic() + self._request_timeout)
                except HttpError as error:
                    conn.send(_framing_error(error), self._request_timeout)
                    gently = True
                    return
                except _Timeout:
                    conn.send(_framing_error(HttpError(408, "the request did not arrive in time")), 1.0)
                    gently = True
                    return
                status, payload, headers = self._respond(head, body)
                keep = head.keep_alive
                conn.send(
                    _response(status, payload, headers, close=not keep, body=head.method != "HEAD"),
                    self._request_timeout,
                )
                if not keep:
                    gently = True
                    return
        except (OSError, EOFError):
            pass  # the client went away, or stopped reading our answer
        finally:
            if gently:
                conn.close_gently()
            else:
                sock.close()
            self._done(sock, True)

    def _read_request(self, conn: _Conn, deadline: float) -> tuple[RequestHead, bytes]:
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
        head = RequestHead(method, target, version, tuple(headers))
        frame = framing(head, self._max_body)
        if head.get("expect") is not None and version >= (1, 1):
            if not head.expects_continue:
                raise HttpError(417, "only Expect: 100-continue is understood")
            if frame.length != 0:
                conn.send(b"HTTP/1.1 100 Continue\r\n\r\n", max(0.001, deadline - time.monotonic()))
        if frame.length is None:
            return head, self._chunked(conn, deadline)
        return head, conn.exactly(frame.length, deadline) if frame.length else b""

    def _chunked(self, conn: _Conn, deadline: float) -> bytes:
        body = bytearray()
        while size := chunk_size(conn.line(deadline, 400, "a chunk-size line")):
            if len(body) + size > self._max_body:
                raise HttpError(413, f"the request body is over {self._max_body} bytes")
            body += conn.exactly(size, deadline)
            if conn.exactly(2, deadline) != b"\r\n":
                raise HttpError(400, "a chunk does not end with CRLF")
        for _ in range(MAX_HEADERS + 1):  # the trailer section: checked, then dropped
            raw = conn.line(deadline, 431, "the trailer section")
            if raw in (b"\r\n", b"\n"):
                return bytes(body)
            header_line(raw)
        raise HttpError(431, f"more than {MAX_HEADERS} trailer lines")

    # -- one call -----------------------------------------------------------------------------------

    def _respond(self, head: RequestHead, body: bytes) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        try:
            return 200, self._dispatch(head, body), ()
        except ApiError as error:
            if error.http_status == 405:  # from the router: the path is bound, to other methods
                status, payload = http_error_body(error.status, 405)
                raw_path = head.target.partition("?")[0]
                return status, payload, (("Allow", ", ".join(self.router.methods_for(raw_path))),)
            status, payload = http_error_body(error.status)
            return status, payload, ()
        except Exception as exc:  # a bug answers 500 for this call rather than killing the connection
            status, payload = http_error_body(api_error(code_pb2.INTERNAL, f"{type(exc).__name__}: {exc}").status)
            return status, payload, ()

    def _dispatch(self, head: RequestHead, body: bytes) -> bytes:
        raw_path, _, query = head.target.partition("?")
        metadata = {k: v for k in _HEADERS_TO_METADATA if (v := head.get(k)) is not None}
        if "x-goog-api-key" not in metadata:  # an API key may also come as the ?key= system parameter
            api_key = next((v for k, v in parse_qsl(query) if k == "key"), None)
            if api_key is not None:
                metadata["x-goog-api-key"] = api_key
        # The router ignores Google's system parameters ($alt, key, fields...) itself.
        method, request = self.router.route(head.method, raw_path, query, body)
        response = self.service.call(method, request, metadata)
        assert method.http_rule is not None
        return encode_response(method.http_rule, response)
