"""The I/O-free half of the REST transports: build the HTTP request, read the HTTP response.

URLs, query strings and bodies come from ``_transcoding.client`` and the method's ``google.api.http``
rule; nothing here is per method. Errors map through ``errors.from_http``. JSON uses
protobuf's json_format (JSON names out, both names accepted in).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._auth import AuthPlan
from vision_grpc._core.hooks import RestCall
from vision_grpc._core.methods import OPERATIONS_SERVICE, MethodInfo
from vision_grpc._core.options import ClientOptions, split_endpoint
from vision_grpc._flows.lro import operation_from_json
from vision_grpc._transcoding import decode_response, to_http
from vision_grpc.errors import ApiError, ValidationError, VisionError, api_error, describe, from_http
from vision_grpc.transports.base import Metadata

__all__ = ["PreparedRequest", "RestCodec", "enter_interceptors"]


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    method: str
    url: str  # path and query, relative to the codec's origin
    body: bytes | None
    headers: dict[str, str]


class RestCodec:
    """Per-client constants (origin, headers) and the request/response conversions."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        host, port = split_endpoint(options.resolved_endpoint)
        self.scheme = "http" if options.use_plaintext else "https"
        self.host, self.port = host, port
        self.origin = f"{self.scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        self.credentials = auth.credentials
        self.interceptors = tuple(options.rest_interceptors)

    def prepare(self, method: MethodInfo, request: Message, metadata: Metadata) -> PreparedRequest:
        rule = method.http_rule
        if rule is None:
            raise api_error(code_pb2.UNIMPLEMENTED, f"{method.name} has no REST binding; use the gRPC transport")
        try:
            http = to_http(rule, request)
        except ValidationError as error:
            if method.service != OPERATIONS_SERVICE:
                raise
            # e.g. CancelOperation of projects/.../operations/...: Vision's REST surface binds
            # cancel and delete only for operations/... names.
            raise api_error(
                code_pb2.UNIMPLEMENTED,
                f"{method.name} has no REST binding for this name ({error.rule}); use transport='grpc'",
            ) from error
        url = http.target
        headers = dict(metadata)
        headers["accept"] = "application/json"
        if http.body is not None:
            headers["content-type"] = "application/json"
        return PreparedRequest(http.method, url, http.body, headers)

    def read(self, method: MethodInfo, status: int, body: bytes, content_type: str) -> Message:
        """The response message; else a typed error carrying ``status``: ``from_http``'s for an error
        status, ``ApiError`` (UNKNOWN) for a 2xx body that is not the expected message. The body is
        the server's (or a proxy's): nothing it holds raises anything else."""
        if not 200 <= status < 300:
            raise from_http(status, body, content_type)
        try:
            return self._decode(method, body)
        except ApiError as error:  # decode_response's, which does not know the status
            raise ApiError(error.message, code=error.code, http_status=status) from None
        except VisionError:
            raise
        except Exception as exc:  # what the decoders' own checks did not foresee is still the answer's fault
            text = f"cannot decode the {method.response_type.DESCRIPTOR.full_name} response ({type(exc).__name__})"
            raise ApiError(text, code=code_pb2.UNKNOWN, http_status=status) from None

    @staticmethod
    def _decode(method: MethodInfo, body: bytes) -> Message:
        assert method.http_rule is not None
        if method.returns_operation and not method.http_rule.response_body:
            # Operations are polled over and over: decode them on the fast path.
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                data = None  # the generic decoder below reports what is wrong
            if isinstance(data, dict):
                try:
                    operation: Message = operation_from_json(data)
                except json_format.ParseError as exc:
                    text = f"cannot decode the google.longrunning.Operation response: {describe(str(exc), 300)}"
                    raise ApiError(text, code=code_pb2.UNKNOWN) from None
                return operation
        return decode_response(method.http_rule, body, method.response_type)


def enter_interceptors(stack: ExitStack, codec: RestCodec, method: MethodInfo, prepared: PreparedRequest) -> None:
    """Enter each REST interceptor (``ClientOptions.rest_interceptors``) for this attempt, in order."""
    call = RestCall(method.path, prepared.method, codec.origin + prepared.url, prepared.headers)
    for interceptor in codec.interceptors:
        stack.enter_context(interceptor(call))
