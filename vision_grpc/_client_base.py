"""What ``Client`` and ``AsyncClient`` share: every step of a call except the I/O.

Preparing a call (pick the RPC from the request type, fill ``parent``, validate, build the
metadata), the retry and wait flows, and the operation handle's non-I/O parts live here once;
the two clients only drive the flows (``time.sleep`` vs ``await asyncio.sleep``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import quote

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._auth import plan_auth
from vision_grpc._core.methods import OPERATIONS, OPERATIONS_SERVICE, MethodInfo, method_for_call
from vision_grpc._core.options import ClientOptions
from vision_grpc._core.validate import validate
from vision_grpc._flows.lro import metadata_of, result_of
from vision_grpc._flows.planner import PlannedFlow
from vision_grpc._flows.retry import Call, Flow, call_flow
from vision_grpc._flows.wait import WaitPlan, WaitSupport, wait_flow
from vision_grpc._version import __version__
from vision_grpc.errors import ApiError, ValidationError, VisionError, from_status

if TYPE_CHECKING:
    from vision_grpc.types import AnyOperationMetadata

__all__ = [
    "INHERITED_TRANSPORTS",
    "ClientBase",
    "OperationBase",
    "ProcessId",
    "R",
    "api_client_header",
    "rpc_log",
]

R = TypeVar("R", bound=Message)  # an operation's response type
rpc_log = logging.getLogger("vision_grpc.rpc")  # one DEBUG line per RPC attempt


class ProcessId:
    """This process's id, refreshed in a forked child, so that a client notices a fork with an
    attribute read rather than a ``getpid()`` per call."""

    current = os.getpid()


def _after_fork_in_child() -> None:
    ProcessId.current = os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)

# Transports a forked child inherited from its parent: kept referenced and never closed in the child,
# because closing them there could shut connections (or TLS sessions) that the parent still uses.
INHERITED_TRANSPORTS: list[object] = []


def api_client_header(transport: str, is_async: bool = False) -> str:
    """``x-goog-api-client``: language, transport library and our version (gRPC imported only for gRPC)."""
    if transport == "grpc":
        import grpc

        library = f"grpc/{grpc.__version__}"
    elif is_async:
        # The REST transport imports aiohttp anyway; importlib.metadata would scan site-packages.
        try:
            version = getattr(importlib.import_module("aiohttp"), "__version__", "")
        except ImportError:
            version = ""
        library = f"rest/aiohttp-{version}" if version else "rest/aiohttp"
    else:
        library = f"rest/{__version__}"  # our own HTTP/1.1 client (transports._http_client), versioned with us
    return f"gl-python/{platform.python_version()} {library} vision-grpc/{__version__}"


_API_KEY_HINT = (
    "the service does not accept API keys for files:asyncBatchAnnotate; "
    "use OAuth credentials (ADC, credentials_file= or credentials=)"
)


class ClientBase:
    """Options, credentials, metadata and flows; no transport."""

    is_async = False

    def __init__(self, options: ClientOptions | None, settings: Mapping[str, Any]) -> None:
        if options is None:
            options = ClientOptions(**settings)
        elif settings:
            options = replace(options, **settings)
        self.options = options
        self._auth = plan_auth(options)
        api_client = api_client_header(options.transport, self.is_async)
        self._static_metadata = (("x-goog-api-client", api_client), *self._auth.headers)
        self._wait_support = WaitSupport()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"

    def log_attempt(self, call: Call, started: float, error: VisionError | None) -> None:
        """One DEBUG line per RPC attempt: method, endpoint, attempt, duration, status (never metadata)."""
        status = "OK" if error is None else getattr(error, "code_name", type(error).__name__)
        rpc_log.debug(
            "%s %s attempt %d: %s in %.1f ms",
            call.method.path,
            self.options.resolved_endpoint,
            call.attempt,
            status,
            (time.perf_counter() - started) * 1000,
        )

    # -- per call ---------------------------------------------------------------------------

    def call_metadata(self, method: MethodInfo, request: Message) -> tuple[tuple[str, str], ...]:
        """Static headers plus the ``x-goog-request-params`` routing header."""
        if method.service == OPERATIONS_SERVICE:
            key, value = "name", getattr(request, "name", "")
        else:
            key, value = "parent", getattr(request, "parent", "")
        if not value:
            return self._static_metadata
        return (*self._static_metadata, _routing_header(key, value))

    def prepare(self, request: Message, rpc: str, call: str) -> tuple[MethodInfo, Message]:
        """Check the request belongs to ``rpc``, fill ``parent`` from project/location, validate."""
        method = method_for_call(rpc, request, call)
        parent = self.options.parent
        if parent and hasattr(request, "parent") and not request.parent:
            filled = type(request)()
            filled.CopyFrom(request)  # never mutate the caller's message
            filled.parent = parent  # type: ignore[attr-defined]
            request = filled
        validate(method, request)
        return method, request

    def annotate_flow(self, request: Message, rpc: str, call: str, timeout: float | None) -> Flow[Message]:
        """The ``rpc`` call (made by the client method ``call``) with retries, within its time budget."""
        method, request = self.prepare(request, rpc, call)
        budget = self._budget(timeout)
        try:
            response = yield from call_flow(method, request, budget=budget, retry=self.options.retry)
        except ApiError as error:
            if (
                self._auth.mode == "api_key"
                and method.name == "AsyncBatchAnnotateFiles"
                and error.code in (code_pb2.PERMISSION_DENIED, code_pb2.UNAUTHENTICATED)
            ):
                raise from_status(error.status, hint=_API_KEY_HINT) from error
            raise
        return response

    def operations_flow(self, name: str, request: Message, timeout: float | None) -> Flow[Message]:
        return call_flow(OPERATIONS[name], request, budget=self._budget(timeout), retry=self.options.retry)

    def get_flow(self, name: str, timeout: float | None = None) -> Flow[Message]:
        return self.operations_flow("GetOperation", operations_pb2.GetOperationRequest(name=name), timeout)

    def list_flow(self, filter_: str, page_size: int, page_token: str) -> Flow[Message]:
        request = operations_pb2.ListOperationsRequest(
            name="operations", filter=filter_, page_size=page_size, page_token=page_token
        )
        return self.operations_flow("ListOperations", request, None)

    def wait_flow(
        self, handle: OperationBase[Any], timeout: float | None, on_update: Callable[[Any], None] | None
    ) -> PlannedFlow[operations_pb2.Operation]:
        """The wait; its polls (if it polls) planned by the driver's per-client ``PollPlanner``."""

        def update(proto: operations_pb2.Operation) -> None:
            handle._update(proto)
            if on_update is not None:
                on_update(handle)

        plan = WaitPlan(self.options.poll, self.options.retry, self.options.timeout, timeout=timeout, age=handle._age())
        return wait_flow(handle.proto, plan, self._wait_support, on_update=update, planned=True)

    def _budget(self, timeout: float | None) -> float:
        """A call's whole budget in seconds: its ``timeout=``, else the client's."""
        if timeout is None:
            return self.options.timeout
        if not timeout > 0:
            raise ValidationError("timeout", f"must be > 0 seconds, got {timeout!r}")
        return timeout


@functools.lru_cache(maxsize=1024)
def _routing_header(key: str, value: str) -> tuple[str, str]:
    # Cached: the same operation name is polled many times.
    return "x-goog-request-params", f"{key}={quote(value, safe='/')}"


class OperationBase(Generic[R]):
    """The non-I/O half of an operation handle: state, typed metadata, typed result ``R``."""

    def __init__(self, proto: operations_pb2.Operation, client: Any, expected: type[R] | None = None) -> None:
        self._proto = proto
        self._client = client
        self._expected = expected
        self._seen_at = time.monotonic()
        self._age_at_seen: float | None = None  # computed on the first wait(), not per call

    @property
    def name(self) -> str:
        return str(self._proto.name)

    @property
    def done(self) -> bool:
        """True once the operation finished (successfully or not) as of the last refresh."""
        return bool(self._proto.done)

    @property
    def proto(self) -> operations_pb2.Operation:
        """The last ``google.longrunning.Operation`` received."""
        return self._proto

    @property
    def metadata(self) -> AnyOperationMetadata | None:
        """Typed ``OperationMetadata`` (``state``, ``create_time``, ``update_time``), or None."""
        return cast("AnyOperationMetadata | None", metadata_of(self._proto))

    def _result(self) -> R:
        return cast(R, result_of(self._proto, self._expected))

    def _age(self) -> float:
        """Seconds since the server created the operation (for the poll delay bound)."""
        if self._age_at_seen is None:
            self._age_at_seen = _age_of(self._proto) - (time.monotonic() - self._seen_at)
        return self._age_at_seen + (time.monotonic() - self._seen_at)

    def _update(self, proto: operations_pb2.Operation) -> None:
        self._proto = proto

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<{type(self).__name__} {self.name} {state}>"


def _age_of(proto: operations_pb2.Operation) -> float:
    """Seconds since the server created the operation, from its metadata when present."""
    try:
        meta: Any = metadata_of(proto)
    except Exception:  # an unknown metadata type must not break the handle
        return 0.0
    if meta is None or not meta.HasField("create_time"):
        return 0.0
    return max(0.0, time.time() - float(meta.create_time.ToNanoseconds()) / 1e9)
