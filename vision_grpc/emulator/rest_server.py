"""The emulator's HTTP/1.1 JSON front: the same ``EmulatorService`` behind gRPC transcoding.

Routes come from the same descriptors and ``google.api.http`` rules as the client's REST
transport (``_core.methods``), matched and decoded by the server half of the transcoding engine
(``_transcoding.Router``). Errors use the service's JSON shape
(``{"error": {"code", "message", "status", "details"}}``, ``http_error_body``).

Each response (status line, headers and body) goes out in one ``send`` on a TCP_NODELAY
socket: split small writes meet delayed ACKs and cost ~40 ms per call on loopback.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import Router, encode_response
from vision_grpc.emulator._service import EmulatorService
from vision_grpc.errors import ApiError, api_error, code_name, http_status_for

__all__ = ["RestServer", "build_router", "http_error_body"]

_MAX_BODY = 64 * 1024 * 1024
_HEADERS_TO_METADATA = (
    "x-goog-api-key",
    "x-goog-user-project",
    "x-goog-request-params",
    "x-goog-api-client",
    "authorization",
)


def http_error_body(status: status_pb2.Status) -> tuple[int, bytes]:
    """The HTTP status and the service's JSON error body for ``status``."""
    details = [json_format.MessageToDict(d, descriptor_pool=JSON_TYPES) for d in status.details]
    error = {"code": http_status_for(status.code), "message": status.message, "status": code_name(status.code)}
    if details:
        error["details"] = details
    return http_status_for(status.code), json.dumps({"error": error}).encode()


def build_router() -> Router[MethodInfo]:
    """Every ImageAnnotator route of both versions, plus the Operations routes Vision binds."""
    methods = [*METHODS.values(), *OPERATIONS.values()]
    return Router((m, m.request_type, m.http_rule) for m in methods if m.http_rule is not None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self._handle()

    do_POST = do_DELETE = do_PATCH = do_PUT = do_GET

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_BODY:
                raise api_error(code_pb2.INVALID_ARGUMENT, f"request body over {_MAX_BODY} bytes")
            body = self.rfile.read(length) if length else b""
            status, payload = 200, self._dispatch(body)
        except ApiError as error:
            status, payload = http_error_body(error.status)
        except Exception as exc:  # a bug answers 500 for this call rather than killing the thread
            status, payload = http_error_body(api_error(code_pb2.INTERNAL, f"{type(exc).__name__}: {exc}").status)
        self._send(status, payload)

    def _dispatch(self, body: bytes) -> bytes:
        raw_path, _, query = self.path.partition("?")
        metadata = {k: v for k in _HEADERS_TO_METADATA if (v := self.headers.get(k)) is not None}
        if "x-goog-api-key" not in metadata:  # an API key may also come as the ?key= system parameter
            api_key = next((v for k, v in parse_qsl(query) if k == "key"), None)
            if api_key is not None:
                metadata["x-goog-api-key"] = api_key
        # The router ignores Google's system parameters ($alt, key, fields...) itself.
        method, request = self.server.router.route(self.command, raw_path, query, body)
        response = self.server.service.call(method, request, metadata)
        assert method.http_rule is not None
        return encode_response(method.http_rule, response)

    def _send(self, status: int, payload: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json; charset=UTF-8\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + payload)
        self.log_request(status)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # quiet: tests and the demo read their own output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], service: EmulatorService) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.router = build_router()


class RestServer:
    """Serves an ``EmulatorService`` over HTTP/1.1 JSON on ``host:port`` (0 picks a free port)."""

    def __init__(self, service: EmulatorService, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), service)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="vision-emulator-rest", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
