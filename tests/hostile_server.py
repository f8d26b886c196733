"""``HostileServer``: a tiny threaded HTTP server on 127.0.0.1 that answers what a test tells it to.

It answers requests from a list of ``Answer``s (a status, a content type and a body; or raw bytes written to
the socket as they are, for broken framing), one per request, in order. With ``upstream`` (``host:port``)
it is a proxy instead: requests that ``hostile(method, path)`` picks get the next answer while answers
remain, and every other request is forwarded upstream and its answer relayed. ``seen`` records each
request's method, path and headers; ``served`` counts the answers given. Used by tests/live and tests/bulk.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Answer:
    """An answer: ``body`` may be a function of the request path (to name the operation asked for)."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes | Callable[[str], bytes] = b""
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None  # written to the socket as it is (then the connection is closed)
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.label or f"{self.status} {self.content_type}"


class HostileServer:
    def __init__(
        self,
        answers: Sequence[Answer],
        *,
        upstream: str | None = None,
        hostile: Callable[[str, str], bool] = lambda method, path: True,
    ) -> None:
        self.answers, self.upstream, self.hostile = list(answers), upstream, hostile
        self.served = 0
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def next_answer(self, method: str, path: str) -> Answer | None:
        with self._lock:
            if self.served < len(self.answers) and (self.upstream is None or self.hostile(method, path)):
                self.served += 1
                return self.answers[self.served - 1]
        return None

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            server.seen.append((self.command, self.path, dict(self.headers.items())))
            answer = server.next_answer(self.command, self.path)
            if answer is None:
                if server.upstream is None:
                    answer = Answer(599, "text/plain", b"no answer left")
                else:
                    self._forward(body)
                    return
            if answer.raw is not None:
                self.wfile.write(answer.raw)
                self.wfile.flush()
                self.close_connection = True
                return
            data = answer.body(self.path) if callable(answer.body) else answer.body
            self.send_response(answer.status)
            self.send_header("content-type", answer.content_type)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forward(self, body: bytes) -> None:
            assert server.upstream is not None
            host, port = server.upstream.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                self.send_header("content-type", response.getheader("content-type") or "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                connection.close()

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
