"""The emulator's HTTP/1.1 JSON front: the same ``EmulatorService`` behind gRPC transcoding.

Routes come from the same descriptors and ``google.api.http`` rules as the client's REST
transport (``_core.methods``), matched and decoded by the server half of the transcoding engine
(``_transcoding.Router``). Errors use the service's JSON shape
(``{"error": {"code", "message", "status", "details"}}``, ``http_error_body``); ``code`` is the HTTP
status and ``status`` the ``google.rpc.Code`` name. A path bound to other HTTP methods only is
answered 405 with an ``Allow`` header and ``"status": "UNIMPLEMENTED"`` (google.rpc has no code for
405; grpc-gateway says the same).

The connections are ``_http_server``'s (shared with the Cloud Storage front): standard library sockets and
threads, strict HTTP/1.1 framing (``_http1``, RFC 9112), keep-alive, and these bounds (``RestServer``
arguments): ``max_connections`` (256; one more is answered 503 with ``Retry-After: 1``), ``idle_timeout``
(60 s between requests), ``request_timeout`` (30 s for a request's head and whole body once its first byte
is in, then 408 and close; also for writing an answer), ``max_body`` (64 MiB: past it 413 and close, before
a byte of the body is read when its length is declared, as soon as the total passes it when chunked). A
request whose body length is ambiguous is refused and its connection closed, so that no byte after it can
run as a second request. Here: an ``Expect`` other than ``100-continue`` is 417; the body is read whole
before the call; the framing errors' JSON is the shape above, with the ``google.rpc`` code that fits
(``_FRAMING_CODES``).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import Router, encode_response
from vision_grpc.emulator._http1 import HttpError, RequestHead
from vision_grpc.emulator._http_server import MAX_BODY, Body, Http1Server, Limits, Response, json_response
from vision_grpc.emulator._service import EmulatorService
from vision_grpc.errors import ApiError, api_error, code_for_http_status, code_name, http_status_for

__all__ = ["MAX_BODY", "RestServer", "build_router", "http_error_body"]

_HEADERS_TO_METADATA = (
    "x-goog-api-key",
    "x-goog-user-project",
    "x-goog-request-params",
    "x-goog-api-client",
    "authorization",
)
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


def _refusal(error: HttpError) -> Response:
    """A request the connection cannot serve (framing, 408, 413, 503...), in the service's error shape."""
    code = _FRAMING_CODES.get(error.status, code_for_http_status(error.status))
    body = {"error": {"code": error.status, "message": error.message, "status": code_name(code)}}
    return json_response(error.status, json.dumps(body).encode())


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
        limits = Limits(max_connections, idle_timeout, request_timeout, max_body)
        self.service = service
        self.router = build_router()
        self._http = Http1Server(
            host, port, limits, name="REST", respond=self._respond, refusal=_refusal, whole_request_timeout=True
        )

    @property
    def url(self) -> str:
        host, port = self._http.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def open_connections(self) -> int:
        """Connections being served now (those answered 503 not counted)."""
        return self._http.open_connections()

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        """Close the port and every connection, and join the accept thread. Idempotent."""
        self._http.stop()

    # -- one call -----------------------------------------------------------------------------------

    def _respond(self, head: RequestHead, body: Body) -> Response:
        if head.get("expect") is not None and not head.expects_continue and head.version >= (1, 1):
            raise HttpError(417, "only Expect: 100-continue is understood")
        data = body.read()  # whole, before the call (HttpError: the connection answers and closes)
        try:
            return json_response(200, self._dispatch(head, data))
        except ApiError as error:
            if error.http_status == 405:  # from the router: the path is bound, to other methods
                status, payload = http_error_body(error.status, 405)
                raw_path = head.target.partition("?")[0]
                return json_response(status, payload, [("Allow", ", ".join(self.router.methods_for(raw_path)))])
            return json_response(*http_error_body(error.status))
        except Exception as exc:  # a bug answers 500 for this call rather than killing the connection
            return json_response(*http_error_body(api_error(code_pb2.INTERNAL, f"{type(exc).__name__}: {exc}").status))

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
