"""gRPC and REST on one port, as Google's endpoints serve them: a small TCP front for the emulator.

``SinglePortFront`` accepts connections on one port and reads the first bytes of each. The HTTP/2
client preface (``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``, RFC 9113 section 3.4: what a gRPC client sends
first on a plaintext connection) sends the connection to the emulator's gRPC server; anything else (an
HTTP/1.1 request line) to its REST server. From then on it relays bytes both ways, unchanged.

With ``http2=False`` it plays a proxy that does not pass HTTP/2: a preface is answered
``HTTP/1.1 400 Bad Request`` and the connection closed (``refusal="400"``), or the connection is reset
(``refusal="reset"``), while REST still passes. ``set_http2()`` changes this at run time; turning HTTP/2
off also drops the HTTP/2 connections being relayed, as a proxy put in front of a running service would.

One thread runs a selector loop over all the sockets, and everything is bounded: at most
``max_connections`` client connections at a time (more are closed as they are accepted); a connection
that has not shown its first bytes within ``sniff_timeout`` seconds, or has relayed nothing either way for
``idle_timeout`` seconds, is closed; each direction buffers at most ``_BUFFER_LIMIT`` bytes (beyond that its
sender is not read until the receiver catches up); ``stop()`` closes every socket and joins the thread.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from typing import Literal

__all__ = ["PREFACE", "Refusal", "SinglePortFront"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
Refusal = Literal["400", "reset"]

_BUFFER_LIMIT = 1024 * 1024  # bytes waiting per direction before the sending side is no longer read
_CHUNK = 65536
_ACCEPTS_PER_WAKE = 64
_DRAIN_SECONDS = 1.0  # after a refusal, read (and drop) what the client still sends, so that it gets our answer
_TICK = 0.25  # the loop's longest sleep: timeouts are checked at least this often
_COMMAND_TIMEOUT = 5.0
_REFUSAL_BODY = b"HTTP/2 is not supported by this proxy\n"
_REFUSAL_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
    % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def classify(first_bytes: bytes) -> Literal["grpc", "rest"] | None:
    """``"grpc"`` for the HTTP/2 preface, ``"rest"`` for anything else, None while the bytes so far could
    still become the preface."""
    head = first_bytes[: len(PREFACE)]
    if PREFACE.startswith(head):
        return "grpc" if len(head) == len(PREFACE) else None
    return "rest"


class _Sniff:
    """A new connection whose first bytes have not decided where it goes yet."""

    __slots__ = ("data", "since", "sock")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock, self.since, self.data = sock, now, bytearray()


class _Drain:
    """A refused connection: read and drop its bytes until it closes or ``until``, then close."""

    __slots__ = ("sock", "until")

    def __init__(self, sock: socket.socket, until: float) -> None:
        self.sock, self.until = sock, until


class _Link:
    """A relayed connection: ``socks[0]`` the client's, ``socks[1]`` the backend's; ``out[i]`` waits to be
    written to ``socks[i]``; ``eof[i]``: ``socks[i]`` sent its end; ``shut[i]``: we sent ours to it."""

    __slots__ = ("eof", "events", "kind", "last", "out", "shut", "socks")

    def __init__(self, kind: str, client: socket.socket, backend: socket.socket, first: bytes, now: float) -> None:
        self.kind = kind
        self.socks = (client, backend)
        self.out = [bytearray(), bytearray(first)]
        self.eof = [False, False]
        self.shut = [False, False]
        self.events = [0, 0]  # what each socket is registered for (0: not registered)
        self.last = now

    @property
    def finished(self) -> bool:
        return self.eof[0] and self.eof[1] and not self.out[0] and not self.out[1]


class SinglePortFront:
    """Serves ``grpc_backend`` and ``rest_backend`` (``(host, port)``) on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        grpc_backend: tuple[str, int],
        rest_backend: tuple[str, int],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        http2: bool = True,
        refusal: Refusal = "400",
        max_connections: int = 256,
        idle_timeout: float = 300.0,
        sniff_timeout: float = 10.0,
    ) -> None:
        if refusal not in ("400", "reset"):
            raise ValueError(f"refusal must be '400' or 'reset', got {refusal!r}")
        if max_connections < 1 or not idle_timeout > 0 or not sniff_timeout > 0:
            raise ValueError("max_connections must be >= 1, idle_timeout and sniff_timeout > 0")
        self._backends = {"grpc": grpc_backend, "rest": rest_backend}
        self._http2 = http2
        self._refusal = refusal
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._sniff_timeout = sniff_timeout
        self._listener = socket.create_server((host.strip("[]"), port), backlog=128)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._sniffs: dict[socket.socket, _Sniff] = {}
        self._drains: dict[socket.socket, _Drain] = {}
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._commands: list[threading.Event] = []  # set_http2 acknowledgements, handled by the loop
        self._counts = {"grpc": 0, "rest": 0, "refused_http2": 0, "rejected": 0, "timed_out": 0}
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vision-emulator-front", daemon=True)

    # -- public ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def endpoint(self) -> str:
        """``host:port`` to dial, for gRPC and REST alike (IPv6 hosts in brackets)."""
        host = str(self._listener.getsockname()[0])
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def http2(self) -> bool:
        return self._http2

    def counts(self) -> dict[str, int]:
        """Connections so far: relayed to ``grpc`` / ``rest``, ``refused_http2``, ``rejected`` (over the cap),
        ``timed_out`` (silent or idle too long)."""
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def set_http2(self, enabled: bool) -> None:
        """Pass (True) or refuse (False) HTTP/2 from now on; refusing also drops the HTTP/2 connections
        being relayed. Returns once the front has applied it (at most a few seconds)."""
        done = threading.Event()
        with self._lock:
            self._http2 = enabled
            self._commands.append(done)
        self._wake()
        if self._thread.is_alive() and not done.wait(_COMMAND_TIMEOUT):
            raise TimeoutError("the single-port front did not apply set_http2 in time")

    def stop(self) -> None:
        """Close the port and every connection, and join the thread. Idempotent."""
        self._stopping = True
        if self._thread.is_alive():
            self._wake()
            self._thread.join(timeout=_COMMAND_TIMEOUT)
        else:
            self._close_all()

    # -- the loop -------------------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # closed, or its buffer full of wake-ups already
            pass

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select(_TICK):
                    self._dispatch(key.data, key.fileobj, mask)
                self._expire(time.monotonic())
        finally:
            self._close_all()

    def _dispatch(self, tag: object, sock: object, mask: int) -> None:
        if tag == "listen":
            self._accept()
        elif tag == "wake":
            self._commanded()
        elif isinstance(tag, _Sniff):
            self._sniff(tag)
        elif isinstance(tag, _Drain):
            self._drain(tag)
        elif isinstance(tag, _Link) and tag in self._links:
            self._relay(tag, 0 if sock is tag.socks[0] else 1, mask)

    def _commanded(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, []
            http2 = self._http2
        if not http2:
            for link in [link for link in self._links if link.kind == "grpc"]:
                self._close_link(link)
        for done in commands:
            done.set()

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: leave the rest in the backlog for now
                return
            if len(self._sniffs) + len(self._drains) + len(self._links) >= self._max_connections:
                self._count("rejected")
                conn.close()
                continue
            conn.setblocking(False)
            sniff = _Sniff(conn, time.monotonic())
            self._sniffs[conn] = sniff
            self._selector.register(conn, selectors.EVENT_READ, sniff)

    def _sniff(self, sniff: _Sniff) -> None:
        try:
            data = sniff.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_sniff(sniff)
            return
        sniff.data += data
        kind = classify(bytes(sniff.data))
        if kind is None:
            return
        self._selector.unregister(sniff.sock)
        del self._sniffs[sniff.sock]
        if kind == "grpc" and not self._http2:
            self._refuse(sniff.sock)
            return
        try:
            backend = socket.create_connection(self._backends[kind], timeout=_COMMAND_TIMEOUT)
        except OSError:
            sniff.sock.close()
            return
        self._count(kind)
        for sock in (sniff.sock, backend):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(kind, sniff.sock, backend, bytes(sniff.data), time.monotonic())
        self._links.add(link)
        self._flush(link, 1)
        self._update(link)

    def _refuse(self, sock: socket.socket) -> None:
        self._count("refused_http2")
        if self._refusal == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return
        try:
            sock.send(_REFUSAL_400)  # a fresh socket's send buffer takes these few bytes at once
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        # Closing now, with the client's SETTINGS frame unread, would send a reset that can overtake
        # the answer; read until the client closes (it does once it has read the 400), briefly.
        drain = _Drain(sock, time.monotonic() + _DRAIN_SECONDS)
        self._drains[sock] = drain
        self._selector.register(sock, selectors.EVENT_READ, drain)

    def _drain(self, drain: _Drain) -> None:
        try:
            if drain.sock.recv(_CHUNK):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._drop_drain(drain)

    def _relay(self, link: _Link, i: int, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                data = link.socks[i].recv(_CHUNK)
                if data:
                    link.out[1 - i] += data
                    link.last = time.monotonic()
                else:
                    link.eof[i] = True
                self._flush(link, 1 - i)
            if mask & selectors.EVENT_WRITE:
                self._flush(link, i)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # reset or broken on either side: the relayed connection is over
            self._close_link(link)
            return
        if link.finished:
            self._close_link(link)
        else:
            self._update(link)

    def _flush(self, link: _Link, j: int) -> None:
        """Write what waits for ``socks[j]``; pass on the other side's end of stream once it is all out."""
        buffer = link.out[j]
        while buffer:
            try:
                sent = link.socks[j].send(buffer)
            except (BlockingIOError, InterruptedError):
                return
            del buffer[:sent]
            link.last = time.monotonic()
        if link.eof[1 - j] and not link.shut[j]:
            link.shut[j] = True
            try:
                link.socks[j].shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _update(self, link: _Link) -> None:
        for i, sock in enumerate(link.socks):
            wanted = 0
            if not link.eof[i] and len(link.out[1 - i]) < _BUFFER_LIMIT:
                wanted |= selectors.EVENT_READ
            if link.out[i]:
                wanted |= selectors.EVENT_WRITE
            if wanted == link.events[i]:
                continue
            if link.events[i] == 0:
                self._selector.register(sock, wanted, link)
            elif wanted == 0:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, wanted, link)
            link.events[i] = wanted

    def _expire(self, now: float) -> None:
        for sniff in [s for s in self._sniffs.values() if now - s.since > self._sniff_timeout]:
            self._count("timed_out")
            self._drop_sniff(sniff)
        for drain in [d for d in self._drains.values() if now > d.until]:
            self._drop_drain(drain)
        for link in [link for link in self._links if now - link.last > self._idle_timeout]:
            self._count("timed_out")
            self._close_link(link)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _drop_sniff(self, sniff: _Sniff) -> None:
        self._sniffs.pop(sniff.sock, None)
        self._forget(sniff.sock)

    def _drop_drain(self, drain: _Drain) -> None:
        self._drains.pop(drain.sock, None)
        self._forget(drain.sock)

    def _close_link(self, link: _Link) -> None:
        self._links.discard(link)
        for sock in link.socks:
            self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _close_all(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sniff in list(self._sniffs.values()):
            self._drop_sniff(sniff)
        for drain in list(self._drains.values()):
            self._drop_drain(drain)
        for link in list(self._links):
            self._close_link(link)
        for sock in (self._listener, self._wake_r, self._wake_w):
            self._forget(sock)
        self._selector.close()
        with self._lock:
            commands, self._commands = self._commands, []
        for done in commands:
            done.set()
