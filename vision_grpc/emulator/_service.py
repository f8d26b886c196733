"""The emulator's transport-agnostic core: one ``call`` per RPC, errors as ``ApiError``.

``EmulatorService.call(method, request, metadata)`` serves every ImageAnnotator RPC of both API
versions and every google.longrunning.Operations RPC. The gRPC front (``grpc_server``) and a
REST front are thin adapters: they decode the request, pass the call metadata (lower-case keys:
``x-goog-api-key``, ``authorization``, ...) and turn an ``ApiError`` (always carrying a full
``google.rpc.Status`` with rich details) into their wire format.

Each call is, in order: recorded (method and auth/routing metadata, bounded), checked against
injected faults, checked for an API key where the service refuses one, validated with the
client's own pre-flight rules (``vision_grpc._core.validate``; a ValidationError becomes
INVALID_ARGUMENT with a ``BadRequest`` detail), then dispatched. Unexpected exceptions become
INTERNAL, so a bug fails one call, not the server.

``call_async`` is the same for an asyncio server (the gRPC front): the call runs on a worker thread
of the executor given, except a WaitOperation's waiting, which is awaited on the event loop and holds
no thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._core import validate as _validate_module
from vision_grpc._core.methods import MethodInfo
from vision_grpc.emulator._annotate import AnnotatorRegistry
from vision_grpc.emulator._buckets import BucketDir
from vision_grpc.emulator._faults import FaultInjector
from vision_grpc.emulator._jobs import Jobs
from vision_grpc.emulator._operations import Operations
from vision_grpc.emulator._status import invalid_argument
from vision_grpc.emulator._store import OperationStore
from vision_grpc.errors import ApiError, ValidationError, api_error

__all__ = ["RECORDED_METADATA", "EmulatorService", "RecordedCall"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

# The call metadata that is recorded for tests to assert on (what a client sent).
RECORDED_METADATA = (
    "x-goog-api-key",
    "x-goog-user-project",
    "x-goog-request-params",
    "x-goog-api-client",
    "authorization",
)
_API_KEY_REFUSED = (
    "API keys are not accepted for AsyncBatchAnnotateFiles (files:asyncBatchAnnotate); "
    "call it with OAuth 2.0 credentials (a service account or user access token) instead"
)


@dataclass(frozen=True)
class RecordedCall:
    """One call as the emulator received it: RPC name, API version and recorded metadata."""

    method: str  # "AsyncBatchAnnotateFiles", "GetOperation", ...
    version: str | None  # "v1" / "v1p4beta1"; None for google.longrunning.Operations
    metadata: Mapping[str, str] = field(default_factory=dict)
    time: float = 0.0


class EmulatorService:
    """The emulated Vision service; thread-safe, one instance per emulator."""

    def __init__(
        self,
        storage_dir: str | os.PathLike[str],
        *,
        operation_seconds: float = 2.0,
        reject_api_keys_for_async_files: bool = True,
        max_operations: int = 1000,
        max_recorded_calls: int = 1000,
        annotators: AnnotatorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = BucketDir(storage_dir)
        self.annotators = annotators if annotators is not None else AnnotatorRegistry()
        self.faults = FaultInjector()
        self.reject_api_keys_for_async_files = reject_api_keys_for_async_files
        self._clock = clock
        self.store = OperationStore(max_operations, clock=clock)
        self.jobs = Jobs(self.storage, self.annotators)
        self.operations = Operations(
            self.store, self.jobs, operation_seconds=operation_seconds, clock=clock, faults=self.faults
        )  # starts the background finisher thread
        self._calls: collections.deque[RecordedCall] = collections.deque(maxlen=max_recorded_calls)
        self._calls_lock = threading.Lock()

    @property
    def operation_seconds(self) -> float:
        return self.operations.operation_seconds

    @property
    def calls(self) -> list[RecordedCall]:
        """The most recent calls (oldest first), at most ``max_recorded_calls``."""
        with self._calls_lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    def call(
        self, method: MethodInfo, request: Message, metadata: Mapping[str, str], *, timeout: float | None = None
    ) -> Message:
        """Serve one RPC; ``timeout`` is what is left of the caller's deadline (seconds), if any.

        Raises ``vision_grpc.errors.ApiError`` (with ``.status``, a ``google.rpc.Status``) on failure.
        """
        self._record(method, metadata)
        try:
            self.faults.check(method)
            if method.version is None:
                return self._operations_call(method, request, timeout)
            response: Message = self._annotator_call(method, request, metadata)
            return response
        except ApiError:
            raise
        except Exception as exc:
            raise _internal(method, exc) from exc

    async def call_async(
        self,
        method: MethodInfo,
        request: Message,
        metadata: Mapping[str, str],
        *,
        timeout: float | None = None,
        executor: Executor | None = None,
    ) -> Message:
        """``call`` for an asyncio server: the work runs on ``executor``'s threads, and a WaitOperation
        waits on the event loop (``Operations.wait_async``), holding none of them, so that however many
        callers wait, the other calls still find a free thread."""
        loop = asyncio.get_running_loop()

        def run(fn: Callable[[], T]) -> Awaitable[T]:
            return loop.run_in_executor(executor, fn)

        if method.version is not None or method.name != "WaitOperation":
            return await run(lambda: self.call(method, request, metadata, timeout=timeout))
        self._record(method, metadata)  # both quick, under locks that are only held briefly
        try:
            self.faults.check(method)
            operation: Message = await self.operations.wait_async(request, timeout, run)
            return operation
        except ApiError:
            raise
        except Exception as exc:
            raise _internal(method, exc) from exc

    def close(self) -> None:
        """Release waiters (``WaitOperation`` returns at once from now on), stop and join the finisher
        thread (operations are then finished only when read). Idempotent."""
        self.operations.close()

    def __enter__(self) -> EmulatorService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _record(self, method: MethodInfo, metadata: Mapping[str, str]) -> None:
        kept = {key: metadata[key] for key in RECORDED_METADATA if key in metadata}
        with self._calls_lock:
            self._calls.append(RecordedCall(method.name, method.version, kept, self._clock()))

    def _annotator_call(self, method: MethodInfo, request: Any, metadata: Mapping[str, str]) -> Any:
        if (
            self.reject_api_keys_for_async_files
            and method.name == "AsyncBatchAnnotateFiles"
            and metadata.get("x-goog-api-key")
        ):
            raise api_error(code_pb2.PERMISSION_DENIED, _API_KEY_REFUSED)
        _validate(method, request)
        if method.name == "BatchAnnotateImages":
            return self.jobs.batch_annotate_images(method, request)
        if method.name == "BatchAnnotateFiles":
            return self.jobs.batch_annotate_files(method, request)
        if method.name in ("AsyncBatchAnnotateImages", "AsyncBatchAnnotateFiles"):
            self.jobs.check_async(method, request)
            parent = request.parent if "parent" in request.DESCRIPTOR.fields_by_name else ""
            return self.operations.submit(method, request, parent)
        raise api_error(code_pb2.UNIMPLEMENTED, f"the emulator does not implement {method.path}")

    def _operations_call(self, method: MethodInfo, request: Any, timeout: float | None) -> Message:
        handlers: dict[str, Callable[[Any], Message]] = {
            "GetOperation": self.operations.get,
            "ListOperations": self.operations.list,
            "CancelOperation": self.operations.cancel,
            "DeleteOperation": self.operations.delete,
            "WaitOperation": lambda r: self.operations.wait(r, timeout),
        }
        handler = handlers.get(method.name)
        if handler is None:
            raise api_error(code_pb2.UNIMPLEMENTED, f"the emulator does not implement {method.path}")
        return handler(request)


def _internal(method: MethodInfo, exc: Exception) -> ApiError:
    _log.exception("emulator failure in %s", method.name)
    return api_error(code_pb2.INTERNAL, f"emulator failure in {method.name}: {exc!r}")


def _validate(method: MethodInfo, request: Message) -> None:
    """Run the client's own pre-flight rules (``vision_grpc._core.validate``) and map their error."""
    try:
        _validate_module.validate(method, request)
    except ValidationError as exc:
        raise invalid_argument(exc.field, exc.rule) from None
