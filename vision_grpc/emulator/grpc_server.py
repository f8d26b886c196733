"""The emulator's gRPC front: ImageAnnotator (v1 and v1p4beta1) and google.longrunning.Operations.

The servicers are the generated base classes with each method a thin adapter into
``EmulatorService.call``: the call metadata and remaining deadline go in, the response comes
out, and an ``ApiError`` is sent with ``abort_with_status`` so that its ``google.rpc.Status``,
rich details included, travels in ``grpc-status-details-bin``. ``GrpcServer`` binds to
127.0.0.1 by default (port 0 picks a free port), with 64 MiB message limits and SO_REUSEPORT
off so that two emulators never share a port by accident.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2_grpc as v1p4beta1_grpc
from vision_grpc.emulator._service import EmulatorService
from vision_grpc.errors import ApiError

__all__ = ["MAX_MESSAGE_BYTES", "GrpcServer", "add_servicers"]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _invoke(service: EmulatorService, method: MethodInfo, request: Message, context: grpc.ServicerContext) -> Any:
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata():
        if isinstance(value, str):  # "-bin" keys carry bytes; none of them matters here
            metadata[key] = f"{metadata[key]}, {value}" if key in metadata else value
    try:
        return service.call(method, request, metadata, timeout=context.time_remaining())
    except ApiError as err:
        context.abort_with_status(rpc_status.to_status(err.status))


class _ImageAnnotatorAdapter:
    """The four ImageAnnotator methods for one API version (mixed into its generated servicer)."""

    def __init__(self, service: EmulatorService, version: str) -> None:
        self._service = service
        self._version = version

    def _call(self, name: str, request: Message, context: grpc.ServicerContext) -> Any:
        return _invoke(self._service, METHODS[(self._version, name)], request, context)

    def BatchAnnotateImages(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("BatchAnnotateImages", request, context)

    def BatchAnnotateFiles(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("BatchAnnotateFiles", request, context)

    def AsyncBatchAnnotateImages(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("AsyncBatchAnnotateImages", request, context)

    def AsyncBatchAnnotateFiles(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("AsyncBatchAnnotateFiles", request, context)


class ImageAnnotatorV1Servicer(_ImageAnnotatorAdapter, v1_grpc.ImageAnnotatorServicer):
    def __init__(self, service: EmulatorService) -> None:
        super().__init__(service, "v1")


class ImageAnnotatorV1p4beta1Servicer(_ImageAnnotatorAdapter, v1p4beta1_grpc.ImageAnnotatorServicer):
    def __init__(self, service: EmulatorService) -> None:
        super().__init__(service, "v1p4beta1")


class OperationsServicer(operations_pb2_grpc.OperationsServicer):  # type: ignore[misc]
    """google.longrunning.Operations, every method an adapter into the service."""

    def __init__(self, service: EmulatorService) -> None:
        self._service = service

    def _call(self, name: str, request: Message, context: grpc.ServicerContext) -> Any:
        return _invoke(self._service, OPERATIONS[name], request, context)

    def GetOperation(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("GetOperation", request, context)

    def ListOperations(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("ListOperations", request, context)

    def CancelOperation(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("CancelOperation", request, context)

    def DeleteOperation(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("DeleteOperation", request, context)

    def WaitOperation(self, request: Message, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._call("WaitOperation", request, context)


def add_servicers(server: grpc.Server, service: EmulatorService) -> None:
    """Register the three services of the emulator on ``server``."""
    v1_grpc.add_ImageAnnotatorServicer_to_server(ImageAnnotatorV1Servicer(service), server)  # type: ignore[no-untyped-call]
    v1p4beta1_grpc.add_ImageAnnotatorServicer_to_server(  # type: ignore[no-untyped-call]
        ImageAnnotatorV1p4beta1Servicer(service), server
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(OperationsServicer(service), server)


class GrpcServer:
    """A gRPC server for ``service`` on ``host:port`` (port 0: any free port; see ``port`` after start)."""

    def __init__(self, service: EmulatorService, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 16):
        self.service = service
        self.host = host
        self._requested_port = port
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.port = 0

    @property
    def target(self) -> str:
        """``host:port`` to dial (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Bind and start serving; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the gRPC server is already started")
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
        executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="vision-emulator")
        server = grpc.server(executor, options=options)
        add_servicers(server, self.service)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self._requested_port}")
        except RuntimeError as exc:
            executor.shutdown(wait=False)
            raise OSError(f"cannot bind the emulator to {host}:{self._requested_port}: {exc}") from None
        if port == 0:
            executor.shutdown(wait=False)
            raise OSError(f"cannot bind the emulator to {host}:{self._requested_port}")
        server.start()
        self._server, self._executor, self.port = server, executor, port
        return port

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting calls, give running ones ``grace`` seconds, then cancel them. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self.service.close()
        server.stop(grace).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
