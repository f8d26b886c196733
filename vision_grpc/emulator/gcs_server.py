"""The emulator's Cloud Storage front: the GCS JSON API over the emulator's storage directory.

With ``STORAGE_EMULATOR_HOST=http://HOST:PORT`` exported, google-cloud-storage (and ``GcsStorage``, and the
CLI) talks to it anonymously: create and get buckets, upload inputs, list and download the emulator's
output shards, delete. Objects are the files of the emulator's ``BucketDir`` (``gs://b/p`` is ``DIR/b/p``,
``_objects.ObjectStore``), the directory the emulator reads its inputs from and writes its outputs to, so
what one side writes the other sees at once, with nothing to index or copy.

Served (what google-cloud-storage sends for Google's samples; anything else gets ``501`` naming it):

- ``POST /storage/v1/b`` (create; ``409`` if it exists), ``GET /storage/v1/b`` (list),
  ``GET`` / ``DELETE /storage/v1/b/{bucket}`` (delete: ``409`` unless empty);
- ``GET /storage/v1/b/{bucket}/o``: ``prefix``, ``delimiter`` (rolled up into ``prefixes``),
  ``maxResults`` (at most 1000, items and prefixes together), ``pageToken``, ``startOffset``, ``endOffset``;
  a ``fields`` selection without ``crc32c``/``md5Hash`` spares hashing files not hashed before;
- ``GET /storage/v1/b/{bucket}/o/{name}`` (metadata; ``?alt=media`` the bytes), ``DELETE`` (``204``);
  ``GET /download/storage/v1/b/{bucket}/o/{name}?alt=media``: ``Range`` (``206``; ``416`` past the end),
  ``X-Goog-Hash: crc32c=...,md5=...`` and ``X-Goog-Generation`` on every download; ``generation=`` must be
  the live one (else ``404``); names may come ``%2F``-encoded or with raw slashes;
- ``POST /upload/storage/v1/b/{bucket}/o``: ``uploadType=multipart`` (JSON metadata and media, the
  client's choice up to 8 MiB), ``media`` (``?name=``), ``resumable`` (``200`` with a ``Location`` built
  from the request's ``Host``, then ``PUT`` chunks with ``Content-Range``: ``308`` with
  ``Range: bytes=0-N`` until the last, which answers the object; ``bytes */TOTAL`` asks where it stands;
  ``DELETE`` cancels, ``499``). Hashes the client declares (``crc32c``/``md5Hash`` in the metadata,
  ``X-Goog-Hash`` on the last chunk) are checked: a mismatch is ``400`` and nothing is stored.
- ``ifGenerationMatch``, ``ifGenerationNotMatch``, ``ifMetagenerationMatch``, ``ifMetagenerationNotMatch``
  on uploads, reads and deletes (``412``).

Errors are Cloud Storage's JSON: ``{"error": {"code": 404, "message": "...", "errors": [{"message",
"domain": "global", "reason": "notFound"}]}}``. Object resources carry ``mediaLink`` built from the
request's ``Host`` (so it is right for whoever asked, and after a restart on another port).

The server is the REST front's design (``rest_server``) on the same strict HTTP/1.1 framing (``_http1``,
RFC 9112): standard library sockets, one accept thread, a thread per connection, with the same bounds
(``GcsServer`` arguments): at most ``max_connections`` (256) served at a time, the next answered ``503``
with ``Retry-After: 1`` and closed; a kept-alive connection idle ``idle_timeout`` (60 s) is closed; a
request head not in within ``request_timeout`` (30 s), or a body that stalls that long, gets ``408`` and
the connection closed; a JSON or multipart body over ``max_body`` (64 MiB) gets ``413`` before it is read.
Uploads stream to disk, up to ``max_object_size`` (1 GiB) per object (a longer declared body: ``413``
before a byte of it is read), with at most ``max_upload_sessions`` (64) resumable uploads open. A body
whose length is ambiguous (``Content-Length`` with ``Transfer-Encoding``, lengths that differ, a coding
other than ``chunked``), a folded header, a missing ``Host``...: ``400`` and the connection closed, so no
byte after them runs as a second request. ``Expect: 100-continue`` is answered when the body is first
read, so a request refused before (no such bucket, a bad name) never has its body sent. Sockets are
``TCP_NODELAY`` (else each small answer waits ~40 ms for the client's delayed ACK).
"""

from __future__ import annotations

import email.message
import json
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote, unquote

from vision_grpc.emulator._buckets import BucketDir
from vision_grpc.emulator._http1 import (
    MAX_HEAD,
    MAX_HEADERS,
    Framing,
    HttpError,
    RequestHead,
    check_hosts,
    chunk_size,
    framing,
    header_line,
    request_line,
)
from vision_grpc.emulator._objects import (
    DEFAULT_MAX_OBJECT_SIZE,
    MAX_PAGE,
    GcsError,
    ObjectStore,
    Preconditions,
)

__all__ = ["MAX_BODY", "GcsServer"]

_log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024  # JSON and multipart bodies (read into memory)
_MAX_JSON = 1024 * 1024  # a bucket or upload-session description
_PIECE = 1 << 20  # bytes read from the socket at a time
_DRAIN = 1 << 20  # after an error: at most this much unread body is read and dropped to keep the connection
_STOP_SECONDS = 5.0
_ACCEPT_PAUSE = 0.5  # out of descriptors: seconds before accepting again
_BLANK_LINES = 4  # empty lines skipped before a request line (some clients send a CRLF after a body)
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_JSON_TYPE = "application/json; charset=UTF-8"


class _Timeout(Exception):
    """The deadline of the current wait passed."""


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: BinaryIO | None = None  # sent after the head: ``length`` bytes from ``offset``
    offset: int = 0
    length: int = 0


def _json(status: int, payload: Mapping[str, Any], headers: list[tuple[str, str]] | None = None) -> _Response:
    return _Response(status, [("Content-Type", _JSON_TYPE), *(headers or [])], json.dumps(payload).encode())


def _error(status: int, reason: str, message: str) -> _Response:
    detail = {"message": message, "domain": "global", "reason": reason}
    return _json(status, {"error": {"code": status, "message": message, "errors": [detail]}})


def _head_bytes(response: _Response, length: int, *, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_phrase(response.status)}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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
            data = self.sock.recv(_PIECE)
        except TimeoutError:
            raise _Timeout from None
        if not data:
            raise EOFError
        self.buffer += data

    def wait_first(self, deadline: float) -> None:
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
            self._fill(deadline)
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)


class _Body:
    """A request's body, read on demand as the handler consumes it: ``Content-Length`` bytes or ``chunked``
    (at most ``limit`` bytes either way). ``100 Continue`` goes out when the handler first reads, so a
    request refused before that (a missing bucket, a bad name) never makes the client send its body.
    Every read waits at most ``stall`` seconds for the next bytes (``_Timeout``: 408)."""

    def __init__(self, conn: _Conn, head: RequestHead, frame: Framing, limit: int, stall: float) -> None:
        self._conn, self._head = conn, head
        self.chunked = frame.chunked
        self._left = frame.length  # Content-Length: bytes still to read
        self._chunk_left = 0  # chunked: bytes left in the current chunk
        self._limit, self._stall = limit, stall
        self._total = 0
        self.started = False
        self.finished = frame.length == 0

    def pieces(self) -> Iterator[bytes]:
        while not self.finished:
            piece = self._next_piece()
            if piece:
                yield piece

    def read_all(self, limit: int) -> bytes:
        """The whole body; ``GcsError(413)`` when it is (or is announced as) over ``limit`` bytes."""
        if self._left is not None and self._left > limit:
            raise GcsError(413, "requestTooLarge", f"The request body is over {limit} bytes.")
        data = bytearray()
        for piece in self.pieces():
            data += piece
            if len(data) > limit:
                raise GcsError(413, "requestTooLarge", f"The request body is over {limit} bytes.")
        return bytes(data)

    def _next_piece(self) -> bytes:
        if not self.started:
            self.started = True
            if self._head.expects_continue:
                self._conn.send(b"HTTP/1.1 100 Continue\r\n\r\n", self._stall)
        deadline = time.monotonic() + self._stall
        if not self.chunked:
            assert self._left is not None
            piece = self._conn.some(min(self._left, _PIECE), deadline)
            self._left -= len(piece)
            self.finished = self._left == 0
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
        if self._chunk_left == 0 and self._conn.line(deadline, 400, "a chunk's end") not in (b"\r\n", b"\n"):
            raise HttpError(400, "a chunk does not end with CRLF")
        return piece

    def drain(self, limit: int) -> bool:
        """Read and drop the rest of a declared body of at most ``limit`` bytes the client is sending;
        whether the body is now fully read (else the connection must close, or the rest would be read as a
        request)."""
        if self.finished:
            return True
        if self.chunked or self._left is None or self._left > limit:
            return False
        if not self.started and self._head.expects_continue:
            return False  # the client waits for our word before it sends: there is nothing to drop
        try:
            while not self.finished:
                self._next_piece()
        except (OSError, EOFError, HttpError, _Timeout):
            return False
        return True


class GcsServer:
    """The GCS JSON API over ``storage`` on ``host:port`` (0 picks a free port); ``start()``, ``stop()``."""

    def __init__(
        self,
        storage: BucketDir,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = 256,
        idle_timeout: float = 60.0,
        request_timeout: float = 30.0,
        max_body: int = MAX_BODY,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        max_upload_sessions: int = 64,
    ) -> None:
        if max_connections < 1 or max_body < 0:
            raise ValueError("max_connections must be >= 1, max_body >= 0")
        if not (idle_timeout > 0 and request_timeout > 0):
            raise ValueError("idle_timeout and request_timeout must be > 0")
        self.objects = ObjectStore(storage, max_object_size=max_object_size, max_sessions=max_upload_sessions)
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._max_connections = max_connections
        self._max_body = max_body
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._serving: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="vision-emulator-gcs", daemon=True)

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the value for ``STORAGE_EMULATOR_HOST`` (a dialable host for 0.0.0.0 / ::)."""
        host, port = self._listener.getsockname()[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(str(host), str(host))
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def open_connections(self) -> int:
        with self._lock:
            return len(self._serving)

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the port and every connection, join the accept thread, drop unfinished uploads. Idempotent."""
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
        self.objects.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            starved = False
            while not self._stopping.is_set():
                selector.select()
                if self._stopping.is_set():
                    return
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:  # EMFILE and the like: wait rather than spin
                    if not starved:
                        _log.warning("emulator GCS front: cannot accept (%s); retrying every %ss", exc, _ACCEPT_PAUSE)
                    starved = True
                    self._stopping.wait(_ACCEPT_PAUSE)
                    continue
                starved = False
                self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        with self._lock:
            serve = len(self._serving) < self._max_connections and not self._stopping.is_set()
            if serve:
                self._serving.add(sock)
        if not serve:
            _refuse(sock)
            return
        try:
            threading.Thread(target=self._serve, args=(sock,), name="vision-emulator-gcs-conn", daemon=True).start()
        except RuntimeError:  # no thread to be had
            self._done(sock)
            sock.close()

    def _done(self, sock: socket.socket) -> None:
        with self._lock:
            self._serving.discard(sock)

    def _serve(self, sock: socket.socket) -> None:
        """One connection, on its own thread: requests until the client closes, idles or breaks framing."""
        conn = _Conn(sock)
        gently = False
        try:
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stopping.is_set():
                try:
                    conn.wait_first(time.monotonic() + self.idle_timeout)
                except _Timeout:
                    return  # idle: closed without a word
                close = False
                try:
                    head = _read_head(conn, time.monotonic() + self.request_timeout)
                    upload = head.target.partition("?")[0].startswith("/upload/")
                    limit = self.objects.max_object_size if upload else self._max_body
                    body = _Body(conn, head, framing(head, limit), limit, self.request_timeout)
                except HttpError as refused:
                    self._send(conn, _framing_error(refused), None, close=True)
                    gently = True
                    return
                except _Timeout:
                    self._send(
                        conn, _error(408, "requestTimeout", "The request did not arrive in time."), None, close=True
                    )
                    gently = True
                    return
                try:
                    response = self.respond(head.method, head.target, head, body)
                except HttpError as broken:  # the body, as it was read
                    response, close = _framing_error(broken), True
                except _Timeout:
                    response, close = _error(408, "requestTimeout", "The request body did not arrive in time."), True
                if not close and (response.status == 413 or not body.drain(_DRAIN)):
                    close = True  # the unread rest of the body would be read as the next request
                close = close or not head.keep_alive
                self._send(conn, response, head, close=close)
                if close:
                    gently = True
                    return
        except (OSError, EOFError):
            pass  # the client went away (or stop() shut the socket)
        except Exception:  # a bug: this connection ends, the server goes on
            _log.exception("emulator GCS front: connection failed")
        finally:
            if gently and not self._stopping.is_set():
                _close_gently(sock)
            self._done(sock)
            sock.close()

    def _send(self, conn: _Conn, response: _Response, head: RequestHead | None, *, close: bool) -> None:
        length = response.length if response.file is not None else len(response.body)
        with_body = head is None or head.method != "HEAD"
        try:
            if response.file is None:
                conn.send(
                    _head_bytes(response, length, close=close) + (response.body if with_body else b""),
                    self.request_timeout,
                )
            else:
                conn.send(_head_bytes(response, length, close=close), self.request_timeout)
                if with_body and length:
                    conn.sock.sendfile(response.file, response.offset, length)
        finally:
            if response.file is not None:
                response.file.close()
        if head is not None:
            _log.debug("emulator GCS front: %s %s -> %s", head.method, head.target, response.status)

    # -- one request ------------------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: RequestHead, body: _Body) -> _Response:
        """The response to one request (errors included, as Cloud Storage's JSON)."""
        try:
            return self._route(method, target, headers, body)
        except GcsError as error:
            return _error(error.status, error.reason, error.message)
        except (HttpError, _Timeout, EOFError, ConnectionError):
            raise  # the request's own framing or connection: _serve answers or ends it
        except OSError as exc:
            _log.warning("emulator GCS front: %s %s failed: %s", method, target, exc)
            return _error(500, "backendError", f"The emulator could not do it: {type(exc).__name__}: {exc.strerror}")
        except Exception as exc:  # a bug answers 500 for this request rather than killing the connection
            _log.exception("emulator GCS front: %s %s failed", method, target)
            return _error(500, "backendError", f"{type(exc).__name__}: {exc}")

    def _route(self, method: str, target: str, headers: RequestHead, body: _Body) -> _Response:
        if not target.startswith("/"):  # absolute-form: http://host/path
            target = "/" + target.split("://", 1)[-1].partition("/")[2]
        raw_path, _, query_text = target.partition("?")
        try:
            query = dict(parse_qsl(query_text, keep_blank_values=True, errors="strict", max_num_fields=100))
        except ValueError:  # UnicodeDecodeError included
            raise GcsError(400, "invalid", "The query string is not valid.") from None
        base = self._media_base(headers.get("host"))
        for root, kind in (("/upload/storage/v1/b/", "upload"), ("/download/storage/v1/b/", "download")):
            if raw_path.startswith(root):
                bucket, tail = _bucket_and_tail(raw_path[len(root) :])
                if kind == "upload" and tail == "/o":
                    return self._upload(method, bucket, query, headers, body, base)
                if kind == "download" and tail.startswith("/o/") and method in ("GET", "HEAD"):
                    return self._download(bucket, _name(tail[3:]), query, headers)
                return _not_served(method, raw_path)
        if raw_path.rstrip("/") == "/storage/v1/b":
            if method == "POST":
                return self._create_bucket(query, body)
            if method == "GET":
                items = self.objects.list_buckets(query.get("prefix", ""))
                return _json(200, {"kind": "storage#buckets", **({"items": items} if items else {})})
            return _not_served(method, raw_path)
        if not raw_path.startswith("/storage/v1/b/"):
            return _error(404, "notFound", f"Not Found: {raw_path} is not a Cloud Storage JSON API path.")
        bucket, tail = _bucket_and_tail(raw_path[len("/storage/v1/b/") :])
        if tail in ("", "/"):
            if method == "GET":
                return _json(200, self.objects.bucket(bucket))
            if method == "DELETE":
                self.objects.delete_bucket(bucket)
                return _Response(204)
        elif tail == "/o":
            if method == "GET":
                return self._list(bucket, query, base)
        elif tail.startswith("/o/"):
            name = _name(tail[3:])
            if method in ("GET", "HEAD"):
                if query.get("alt") == "media":
                    return self._download(bucket, name, query, headers)
                info = self.objects.stat(bucket, name, generation=_generation(query))
                Preconditions.from_query(query).check(info.generation)
                return _json(200, info.resource(base))
            if method == "DELETE":
                self.objects.delete(
                    bucket, name, generation=_generation(query), preconditions=Preconditions.from_query(query)
                )
                return _Response(204)
        return _not_served(method, raw_path)

    def _media_base(self, host: str | None) -> str:
        """``http://`` + the ``Host`` the client used (so links work through any address of ours), or our own."""
        if host and _HOST.fullmatch(host.strip()):
            return f"http://{host.strip()}"
        return self.url

    # -- buckets and listings ---------------------------------------------------------------------

    def _create_bucket(self, query: Mapping[str, str], body: _Body) -> _Response:
        described = _json_body(body)
        name = described.get("name")
        if not isinstance(name, str):
            raise GcsError(400, "required", "Required: the bucket's name.")
        return _json(200, self.objects.create_bucket(name))

    def _list(self, bucket: str, query: Mapping[str, str], base: str) -> _Response:
        if "matchGlob" in query:
            raise GcsError(501, "notImplemented", "The emulator does not implement matchGlob.")
        if query.get("includeTrailingDelimiter", "false").lower() == "true":
            raise GcsError(501, "notImplemented", "The emulator does not implement includeTrailingDelimiter.")
        size_text = query.get("maxResults", str(MAX_PAGE))
        if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 9:
            raise GcsError(400, "invalid", f"Invalid value for maxResults: {size_text!r}")
        fields = query.get("fields")
        hashes = (
            fields is None
            or any(key in fields for key in ("crc32c", "md5Hash"))
            or bool(re.search(r"items(?!\s*\()", fields))
        )
        page = self.objects.list(
            bucket,
            prefix=query.get("prefix", ""),
            delimiter=query.get("delimiter") or None,
            max_results=int(size_text) or MAX_PAGE,
            page_token=query.get("pageToken") or None,
            start_offset=query.get("startOffset") or None,
            end_offset=query.get("endOffset") or None,
            hashes=hashes,
        )
        listing: dict[str, Any] = {"kind": "storage#objects"}
        if page.items:
            listing["items"] = [info.resource(base) for info in page.items]
        if page.prefixes:
            listing["prefixes"] = page.prefixes
        if page.next_page_token:
            listing["nextPageToken"] = page.next_page_token
        return _json(200, listing)

    # -- downloads --------------------------------------------------------------------------------

    def _download(self, bucket: str, name: str, query: Mapping[str, str], headers: RequestHead) -> _Response:
        preconditions = Preconditions.from_query(query)
        handle, info = self.objects.open(bucket, name, generation=_generation(query))
        try:
            preconditions.check(info.generation)
            assert info.hashes is not None
            common = [
                ("Content-Type", info.content_type),
                ("X-Goog-Generation", str(info.generation)),
                ("X-Goog-Metageneration", "1"),
                ("X-Goog-Stored-Content-Length", str(info.size)),
                ("X-Goog-Stored-Content-Encoding", "identity"),
                ("X-Goog-Storage-Class", "STANDARD"),
                ("X-Goog-Hash", f"crc32c={info.hashes.crc32c},md5={info.hashes.md5}"),
                ("ETag", f'"{info.hashes.md5}"'),
                ("Accept-Ranges", "bytes"),
            ]
            span = _range(headers.get("range"), info.size)
            if span is None:
                return _Response(200, common, file=handle, length=info.size)
            first, last = span
            if first >= info.size:
                handle.close()
                response = _error(416, "requestedRangeNotSatisfiable", "The requested range cannot be satisfied.")
                response.headers.append(("Content-Range", f"bytes */{info.size}"))
                return response
            ranged = [*common, ("Content-Range", f"bytes {first}-{last}/{info.size}")]
            return _Response(206, ranged, file=handle, offset=first, length=last - first + 1)
        except BaseException:
            handle.close()
            raise

    # -- uploads ----------------------------------------------------------------------------------

    def _upload(
        self, method: str, bucket: str, query: Mapping[str, str], headers: RequestHead, body: _Body, base: str
    ) -> _Response:
        kind = query.get("uploadType")
        upload_id = query.get("upload_id")
        if upload_id is not None:
            if method == "PUT" or (method == "POST" and kind == "resumable"):
                return self._chunk(upload_id, headers, body, base)
            if method == "DELETE":
                self.objects.cancel_upload(upload_id)
                return _Response(499)
            return _not_served(method, "/upload/storage/v1/b/{bucket}/o?upload_id=...")
        if method != "POST":
            return _not_served(method, "/upload/storage/v1/b/{bucket}/o")
        preconditions = Preconditions.from_query(query)
        if kind == "multipart":
            metadata, media_type, media = _multipart(headers.get("content-type"), body.read_all(self._max_body))
            name = _object_name(metadata, query)
            info = self.objects.write(
                bucket,
                name,
                [media],
                content_type=_text(metadata, "contentType") or media_type,
                metadata=_custom(metadata),
                declared=_declared(metadata),
                preconditions=preconditions,
            )
            return _json(200, info.resource(base))
        if kind == "media":
            media_name = query.get("name")
            if not media_name:
                raise GcsError(400, "required", "Required: the object's name (?name=).")
            info = self.objects.write(
                bucket, media_name, body.pieces(), content_type=headers.get("content-type"), preconditions=preconditions
            )
            return _json(200, info.resource(base))
        if kind == "resumable":
            metadata = _json_body(body)
            total_text = headers.get("x-upload-content-length")
            if total_text is not None and (
                not total_text.isascii() or not total_text.isdigit() or len(total_text) > 18
            ):
                raise GcsError(400, "invalid", "X-Upload-Content-Length must be a number.")
            upload_id = self.objects.start_upload(
                bucket,
                _object_name(metadata, query),
                content_type=_text(metadata, "contentType") or headers.get("x-upload-content-type"),
                metadata=_custom(metadata),
                declared=_declared(metadata),
                total=int(total_text) if total_text is not None else None,
                preconditions=preconditions,
            )
            location = (
                f"{base}/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=resumable&upload_id={upload_id}"
            )
            return _Response(200, [("Location", location), ("X-GUploader-UploadID", upload_id)])
        raise GcsError(400, "invalid", f"Unknown uploadType {kind!r}: multipart, media or resumable.")

    def _chunk(self, upload_id: str, headers: RequestHead, body: _Body, base: str) -> _Response:
        state = self.objects.upload_chunk(
            upload_id, headers.get("content-range"), body.pieces(), declared=_hash_header(headers.get("x-goog-hash"))
        )
        if state.done is not None:
            return _json(200, state.done.resource(base), [("X-GUploader-UploadID", upload_id)])
        progress = [("Range", f"bytes=0-{state.size - 1}")] if state.size else []
        return _Response(308, [*progress, ("X-GUploader-UploadID", upload_id)])


# -- helpers ----------------------------------------------------------------------------------------


def _refuse(sock: socket.socket) -> None:
    """Over ``max_connections``: a 503 if the socket takes it at once, then close."""
    payload = json.dumps(
        {"error": {"code": 503, "message": "too many connections", "errors": [{"reason": "backendError"}]}}
    ).encode()
    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {_JSON_TYPE}\r\nContent-Length: {len(payload)}\r\n"
    try:
        sock.setblocking(False)
        sock.send((head + "Retry-After: 1\r\nConnection: close\r\n\r\n").encode("latin-1") + payload)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()


def _read_head(conn: _Conn, deadline: float) -> RequestHead:
    """The request line and header fields, strictly (``_http1``), within ``deadline``."""
    line = conn.line(deadline, 414, "the request line")
    for _ in range(_BLANK_LINES):  # RFC 9112 section 2.2: blank lines before a request line are ignored
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
    check_hosts(head)
    return head


def _framing_error(error: HttpError) -> _Response:
    reason = {408: "requestTimeout", 413: "requestTooLarge"}.get(error.status, "invalid")
    return _error(error.status, reason, error.message)


def _close_gently(sock: socket.socket) -> None:
    """Our side closed after the answer; what the client still sends is read and dropped (at most 1 s and
    1 MiB), so that the close does not reset the connection before the client reads the answer."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline, dropped = time.monotonic() + 1.0, 0
        while dropped < _DRAIN and (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)
    except OSError:
        pass


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else ""


def _not_served(method: str, path: str) -> _Response:
    return _error(501, "notImplemented", f"The emulator does not implement {method} {path}.")


def _bucket_and_tail(rest: str) -> tuple[str, str]:
    raw_bucket, slash, tail = rest.partition("/")
    return _unquote(raw_bucket), slash + tail


def _unquote(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise GcsError(400, "invalid", "The path is not valid UTF-8 once decoded.") from None


def _name(raw: str) -> str:
    """An object name from the path: ``%2F``-encoded or with raw slashes alike; ``+`` is a plus."""
    return _unquote(raw)


def _generation(query: Mapping[str, str]) -> int | None:
    text = query.get("generation")
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise GcsError(400, "invalid", f"Invalid generation: {text!r}")
    return int(text)


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``bytes=`` range; None to send everything (no header, several ranges,
    a malformed one, or an empty object), as HTTP servers do. ``first >= size`` is unsatisfiable."""
    if not header or size == 0:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not first_text:  # the last N bytes
        count = int(last_text)
        return (max(0, size - count), size - 1) if count else None
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text.isdigit() else size - 1
    if last_text and last_text.isdigit() and int(last_text) < first:
        return None
    return first, last


def _json_body(body: _Body) -> dict[str, Any]:
    raw = body.read_all(_MAX_JSON)
    if not raw.strip():
        return {}
    try:
        described = json.loads(raw)
    except ValueError:
        raise GcsError(400, "parseError", "The request body is not valid JSON.") from None
    if not isinstance(described, dict):
        raise GcsError(400, "parseError", "The request body must be a JSON object.")
    return described


def _text(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GcsError(400, "invalid", f"Invalid value for {key}: a string is expected.")
    return value


def _object_name(metadata: Mapping[str, Any], query: Mapping[str, str]) -> str:
    name = _text(metadata, "name") or query.get("name")
    if not name:
        raise GcsError(400, "required", "Required: the object's name.")
    return name


def _custom(metadata: Mapping[str, Any]) -> dict[str, str]:
    custom = metadata.get("metadata") or {}
    if not isinstance(custom, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in custom.items()):
        raise GcsError(400, "invalid", "Invalid value for metadata: an object of strings is expected.")
    return dict(custom)


def _declared(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {key: value for key in ("crc32c", "md5Hash") if (value := _text(metadata, key)) is not None}


def _hash_header(value: str | None) -> dict[str, str]:
    """``X-Goog-Hash: crc32c=...,md5=...`` -> ``{"crc32c": ..., "md5Hash": ...}``."""
    declared = {}
    for member in (value or "").split(","):
        kind, equals, digest = member.strip().partition("=")
        if equals and kind in ("crc32c", "md5"):
            declared["crc32c" if kind == "crc32c" else "md5Hash"] = digest.strip()
    return declared


def _multipart(content_type: str | None, body: bytes) -> tuple[dict[str, Any], str | None, bytes]:
    """The metadata (JSON) and the media of a ``multipart/related`` upload, and the media part's type."""
    message = email.message.Message()
    message["Content-Type"] = content_type or ""
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/related" or not isinstance(boundary, str) or not boundary:
        raise GcsError(400, "invalid", "A multipart upload needs Content-Type: multipart/related; boundary=...")
    dash = b"--" + boundary.encode("latin-1")
    position = body.find(dash)
    parts: list[bytes] = []
    while position >= 0:
        after = position + len(dash)
        if body[after : after + 2] == b"--":
            break  # the closing delimiter
        line_end = body.find(b"\n", after)
        following = body.find(b"\r\n" + dash, line_end)
        if line_end < 0 or following < 0:
            raise GcsError(400, "invalid", "The multipart body is not closed by its boundary.")
        parts.append(body[line_end + 1 : following])
        position = following + 2
    else:
        raise GcsError(400, "invalid", "The multipart body is not closed by its boundary.")
    if len(parts) != 2:
        raise GcsError(400, "invalid", f"A multipart upload has two parts (metadata, media), not {len(parts)}.")
    (_, meta), (media_headers, media) = (_part(part) for part in parts)
    try:
        metadata = json.loads(meta) if meta.strip() else {}
    except ValueError:
        raise GcsError(400, "parseError", "The metadata part is not valid JSON.") from None
    if not isinstance(metadata, dict):
        raise GcsError(400, "parseError", "The metadata part must be a JSON object.")
    return metadata, media_headers.get("content-type"), media


def _part(part: bytes) -> tuple[dict[str, str], bytes]:
    head, separator, content = part.partition(b"\r\n\r\n")
    if not separator:
        if part.startswith(b"\r\n"):  # no header lines
            return {}, part[2:]
        raise GcsError(400, "invalid", "A multipart part has no blank line after its headers.")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("content-transfer-encoding", "binary").lower() not in ("binary", "8bit", "7bit"):
        raise GcsError(400, "invalid", "Only binary multipart parts are implemented.")
    return headers, content
