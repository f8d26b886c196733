"""The emulator's gRPC front: ImageAnnotator (v1 and v1p4beta1) and google.longrunning.Operations.

The servicers are the generated base classes with each method a thin adapter into
``EmulatorService.call_async``: the call metadata and remaining deadline go in, the response comes
out, and an ``ApiError`` is sent with ``abort_with_status`` so that its ``google.rpc.Status``,
rich details included, travels in ``grpc-status-details-bin``. ``GrpcServer`` binds to
127.0.0.1 by default (port 0 picks a free port), with 64 MiB message limits and SO_REUSEPORT
off so that two emulators never share a port by accident.

The server is ``grpc.aio`` on an event loop of its own thread. The service is synchronous, so each
call runs on one of ``max_workers`` (16) threads, except a WaitOperation's waiting, which is an
awaited event on the loop (``Operations.wait_async``): any number of callers can wait (each up to
60 s) while the threads keep serving everyone else. With the threaded ``grpc.server`` a waiter held
its thread, and 16 of them stopped every other client's calls for as long as they waited.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
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
_START_SECONDS = 10.0  # bound on starting, and on stopping beyond the grace period


async def _invoke(
    service: EmulatorService,
    executor: Executor,
    method: MethodInfo,
    request: Message,
    context: grpc.aio.ServicerContext[Any, Any],
) -> Any:
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):  # "-bin" keys carry bytes; none of them matters here
            metadata[key] = f"{metadata[key]}, {value}" if key in metadata else value
    try:
        return await service.call_async(method, request, metadata, timeout=context.time_remaining(), executor=executor)
    except ApiError as err:
        await context.abort_with_status(rpc_status.to_status(err.status))


class _ImageAnnotatorAdapter:
    """The four ImageAnnotator methods for one API version (mixed into its generated servicer)."""

    def __init__(self, service: EmulatorService, executor: Executor, version: str) -> None:
        self._service = service
        self._executor = executor
        self._version = version

    async def _call(self, name: str, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await _invoke(self._service, self._executor, METHODS[(self._version, name)], request, context)

    async def BatchAnnotateImages(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("BatchAnnotateImages", request, context)

    async def BatchAnnotateFiles(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("BatchAnnotateFiles", request, context)

    async def AsyncBatchAnnotateImages(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("AsyncBatchAnnotateImages", request, context)

    async def AsyncBatchAnnotateFiles(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("AsyncBatchAnnotateFiles", request, context)


class ImageAnnotatorV1Servicer(_ImageAnnotatorAdapter, v1_grpc.ImageAnnotatorServicer):
    def __init__(self, service: EmulatorService, executor: Executor) -> None:
        super().__init__(service, executor, "v1")


class ImageAnnotatorV1p4beta1Servicer(_ImageAnnotatorAdapter, v1p4beta1_grpc.ImageAnnotatorServicer):
    def __init__(self, service: EmulatorService, executor: Executor) -> None:
        super().__init__(service, executor, "v1p4beta1")


class OperationsServicer(operations_pb2_grpc.OperationsServicer):  # type: ignore[misc]
    """google.longrunning.Operations, every method an adapter into the service."""

    def __init__(self, service: EmulatorService, executor: Executor) -> None:
        self._service = service
        self._executor = executor

    async def _call(self, name: str, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await _invoke(self._service, self._executor, OPERATIONS[name], request, context)

    async def GetOperation(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("GetOperation", request, context)

    async def ListOperations(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("ListOperations", request, context)

    async def CancelOperation(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("CancelOperation", request, context)

    async def DeleteOperation(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("DeleteOperation", request, context)

    async def WaitOperation(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await self._call("WaitOperation", request, context)


def add_servicers(server: grpc.aio.Server, service: EmulatorService, executor: Executor) -> None:
    """Register the three services of the emulator on the asyncio ``server``; calls run on ``executor``."""
    v1_grpc.add_ImageAnnotatorServicer_to_server(ImageAnnotatorV1Servicer(service, executor), server)  # type: ignore[no-untyped-call]
    v1p4beta1_grpc.add_ImageAnnotatorServicer_to_server(  # type: ignore[no-untyped-call]
        ImageAnnotatorV1p4beta1Servicer(service, executor), server
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(OperationsServicer(service, executor), server)


class GrpcServer:
    """A gRPC server for ``service`` on ``host:port`` (port 0: any free port; see ``port`` after start)."""

    def __init__(self, service: EmulatorService, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 16):
        self.service = service
        self.host = host
        self._requested_port = port
        self._max_workers = max_workers
        self._server: grpc.aio.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
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
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="vision-emulator-grpc", daemon=True)
        thread.start()
        executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="vision-emulator")
        try:
            server, port = asyncio.run_coroutine_threadsafe(self._serve(executor), loop).result(_START_SECONDS)
        except BaseException:
            _close_loop(loop, thread)
            executor.shutdown(wait=False)
            raise
        self._server, self._executor, self._loop, self._thread, self.port = server, executor, loop, thread, port
        return port

    async def _serve(self, executor: Executor) -> tuple[grpc.aio.Server, int]:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.aio.server(options=options)
        add_servicers(server, self.service, executor)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self._requested_port}")
        except RuntimeError as exc:
            raise OSError(f"cannot bind the emulator to {host}:{self._requested_port}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot bind the emulator to {host}:{self._requested_port}")
        await server.start()
        return server, port

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting calls, give running ones ``grace`` seconds, then cancel them. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self.service.close()  # waiters return at once from now on
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None
        try:
            asyncio.run_coroutine_threadsafe(server.stop(grace), loop).result((grace or 0) + _START_SECONDS)
        finally:
            _close_loop(loop, thread)
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            self._loop = self._thread = None


def _close_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop, join its thread (bounded) and close it once it has stopped."""
    loop.call_soon_threadsafe(loop.stop)
    thread.join(_START_SECONDS)
    if not loop.is_running():
        loop.close()
