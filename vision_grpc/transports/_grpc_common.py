"""What the sync and asyncio gRPC transports share: channel settings, credentials, stubs, errors."""

from __future__ import annotations

from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from vision_grpc._auth import AuthPlan, token_request
from vision_grpc._core.methods import OPERATIONS_SERVICE
from vision_grpc._core.options import MAX_RESPONSE_BYTES, ClientOptions
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2_grpc as v1p4beta1_grpc
from vision_grpc.errors import ApiError, ConnectError, ValidationError, from_status

__all__ = ["channel_credentials", "channel_options", "compression", "error_from_rpc", "open_channel", "stub_callables"]

_MiB = 1024 * 1024
_STUBS: dict[str, Any] = {"v1": v1_grpc.ImageAnnotatorStub, "v1p4beta1": v1p4beta1_grpc.ImageAnnotatorStub}


# How gRPC words a connection that could not be made (refused, nothing listening, TLS handshake,
# connect timeout: "failed to connect to all addresses") or a name that did not resolve.
_CONNECT_FAILURES = ("failed to connect", "errors resolving", "dns resolution failed", "name resolution")


def channel_options(options: ClientOptions) -> list[tuple[str, Any]]:
    return [
        # gRPC's own connect attempt timeout (20 s by default): an endpoint that never answers is a
        # ConnectError within the retry policy's connect deadline, like a refused one.
        ("grpc.min_reconnect_backoff_ms", int(options.retry.connect_deadline * 1000)),
        ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
        ("grpc.max_send_message_length", 64 * _MiB),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),  # retries are ours, with the API's policy
    ]


def compression(options: ClientOptions) -> grpc.Compression | None:
    return grpc.Compression.Gzip if options.compression == "gzip" else None


def channel_credentials(options: ClientOptions, auth: AuthPlan) -> grpc.ChannelCredentials | None:
    """None means an insecure (plaintext) channel without call credentials.

    ``plan_auth`` has already refused plaintext credentials to a non-loopback host.
    """
    if auth.credentials is None:
        return None if options.use_plaintext else grpc.ssl_channel_credentials()
    from google.auth.transport.grpc import AuthMetadataPlugin

    call_credentials = grpc.metadata_call_credentials(AuthMetadataPlugin(auth.credentials, token_request()))  # type: ignore[no-untyped-call]
    if options.use_plaintext:
        # gRPC only attaches call credentials to secure channels; a local one counts as secure.
        local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        return grpc.composite_channel_credentials(local, call_credentials)
    return grpc.composite_channel_credentials(grpc.ssl_channel_credentials(), call_credentials)


def open_channel(channels: Any, options: ClientOptions, auth: AuthPlan) -> Any:
    """One channel from ``grpc`` or ``grpc.aio`` (same factory signatures), insecure or secure,
    with the user's interceptors (``grpc.aio`` takes them at creation, ``grpc`` wraps the channel)."""
    target = options.resolved_endpoint
    credentials = channel_credentials(options, auth)
    extra: dict[str, Any] = {}
    is_aio = channels is not grpc
    if is_aio and options.interceptors:
        extra["interceptors"] = list(options.interceptors)
    if credentials is None:
        channel = channels.insecure_channel(target, options=channel_options(options), **extra)
    else:
        channel = channels.secure_channel(target, credentials, options=channel_options(options), **extra)
    if not is_aio:
        for interceptor in options.interceptors:
            channel = _intercepted(channel, interceptor)
    return channel


_GRPC_INTERCEPTORS = (
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
)


def _intercepted(channel: Any, interceptor: Any) -> Any:
    """``channel`` wrapped by a grpc client interceptor, or by OpenTelemetry's ``client_interceptor()``
    (which implements OpenTelemetry's own interceptor interface, applied with its ``grpcext``)."""
    if isinstance(interceptor, _GRPC_INTERCEPTORS):
        return grpc.intercept_channel(channel, interceptor)
    if type(interceptor).__module__.startswith("opentelemetry.instrumentation.grpc"):
        from opentelemetry.instrumentation.grpc import grpcext

        return grpcext.intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
    raise ValidationError(
        "interceptors", f"{type(interceptor).__name__} is not a grpc client interceptor (grpc.*ClientInterceptor)"
    )


def stub_callables(channel: Any) -> dict[str, Any]:
    """Method path -> the generated stubs' multi-callables, for both versions and Operations."""
    out: dict[str, Any] = {}
    for version, stub_class in _STUBS.items():
        stub = stub_class(channel)
        for name in (
            "BatchAnnotateImages",
            "BatchAnnotateFiles",
            "AsyncBatchAnnotateImages",
            "AsyncBatchAnnotateFiles",
        ):
            out[f"/google.cloud.vision.{version}.ImageAnnotator/{name}"] = getattr(stub, name)
    operations = operations_pb2_grpc.OperationsStub(channel)
    for name in ("GetOperation", "ListOperations", "CancelOperation", "DeleteOperation", "WaitOperation"):
        out[f"/{OPERATIONS_SERVICE}/{name}"] = getattr(operations, name)
    return out


def error_from_rpc(error: grpc.RpcError, target: str) -> ApiError:
    """Map a gRPC failure, decoding ``grpc-status-details-bin`` rich details via grpcio-status.

    gRPC reports a connection that could not be made as UNAVAILABLE "failed to connect ..." (or a
    name resolution error): that one becomes a ``ConnectError`` naming ``target`` (the request
    never left).
    """
    call: Any = error
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # details whose code disagrees with the call's: trust the call
        status = None
    code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    if status is None:
        status = status_pb2.Status(code=code.value[0], message=call.details() or "")
    details = (call.details() or "").lower()
    if status.code == code_pb2.UNAVAILABLE and any(phrase in details for phrase in _CONNECT_FAILURES):
        return ConnectError(f"cannot connect to {target}: {status.message}", status=status)
    return from_status(status)
