"""The blocking client: ``Client`` and its operation handle ``Operation``.

Example::

    from vision_grpc import Client, types

    with Client(project="my-project", location="eu") as client:
        operation = client.async_batch_annotate_files(
            types.async_files_request("gs://bucket/doc.pdf", output_uri="gs://bucket/out/")
        )
        response = operation.result(timeout=600)  # AsyncBatchAnnotateFilesResponse
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf.message import Message

from vision_grpc._client_base import INHERITED_TRANSPORTS, ClientBase, OperationBase, ProcessId, R, rpc_log
from vision_grpc._core.methods import method_for_call
from vision_grpc._core.options import ClientOptions
from vision_grpc._core.policies import PollPolicy
from vision_grpc._flows.planner import POLL, TIMEOUT, PlannedFlow, Polled, PollPlanner, PollTurn, Ticket
from vision_grpc._flows.retry import Sleep
from vision_grpc.errors import ClientClosedError, VisionError
from vision_grpc.transports.base import Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from vision_grpc._core.options import ClientSettings
    from vision_grpc._gen.v1 import image_annotator_pb2 as v1
    from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
    from vision_grpc.types import AsyncResponse

__all__ = ["Client", "Operation"]

T = TypeVar("T")
_log = logging.getLogger(__name__)
_rpc_log = rpc_log


class Client(ClientBase):
    """A blocking Vision client over gRPC (default) or REST (``transport="rest"``).

    Settings are those of ``ClientOptions`` (``endpoint``, ``project``, ``location``,
    ``api_key``, ``credentials``, ``credentials_file``, ``quota_project``, ``anonymous``,
    ``timeout``, ``retry``, ``poll``, ``compression``, ...), given as keywords or as ``options``.
    The channel is created once and reused; close the client (or use ``with``) when done.
    """

    def __init__(self, options: ClientOptions | None = None, **settings: Unpack[ClientSettings]) -> None:
        super().__init__(options, settings)
        self._lock = threading.Lock()
        self._closed = False
        self._transport = self._make_transport()
        self._transport_pid = ProcessId.current
        self._poll_gate = _PollGate(self.options.poll)  # all the waits that poll share its budget

    def _make_transport(self) -> Transport:
        if self.options.transport == "auto":
            from vision_grpc._client_base import api_client_header
            from vision_grpc.transports.auto import AutoTransport, FallbackState

            # One decision per client: a transport made after a fork stays on REST if the parent switched.
            state: FallbackState = self.__dict__.setdefault("_fallback_state", FallbackState())
            headers = {name: api_client_header(name, self.is_async) for name in ("grpc", "rest")}
            return AutoTransport(self.options, self._auth, state=state, api_client=headers)
        if self.options.transport == "rest":
            from vision_grpc.transports.rest import RestTransport

            return RestTransport(self.options, self._auth)
        from vision_grpc.transports.grpc import GrpcTransport

        return GrpcTransport(self.options, self._auth)

    def _live_transport(self) -> Transport:
        """The transport of this process: a forked child makes its own on first use (its parent's
        channel and keep-alive connections are the parent's), and leaves the inherited one alone."""
        if self._closed:
            raise ClientClosedError("this Client is closed; create a new one")
        if self._transport_pid == ProcessId.current:
            return self._transport
        with self._lock:
            if self._transport_pid != ProcessId.current:
                INHERITED_TRANSPORTS.append(self._transport)
                self._transport = self._make_transport()
                self._transport_pid = ProcessId.current
                _log.debug("new transport after fork (pid %d)", ProcessId.current)
        return self._transport

    def run(self, flow: PlannedFlow[T]) -> T:
        """Drive a sans-IO flow: make its calls and sleeps, feed back results and errors; a wait's
        turns to poll come from the client's poll gate (left however the flow ends)."""
        transport = self._live_transport()
        debug = _rpc_log.isEnabledFor(logging.DEBUG)
        gate: _PollGate | None = None
        ticket: Ticket | None = None
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    action = flow.send(None)
                    continue
                if isinstance(action, PollTurn | Polled):
                    gate = gate or self._gate()
                    ticket = action.ticket
                    if isinstance(action, PollTurn):
                        action = flow.send(gate.turn(ticket))
                    else:
                        gate.record(ticket, action.operation)
                        action = flow.send(None)
                    continue
                started = time.perf_counter() if debug else 0.0
                try:
                    metadata = self.call_metadata(action.method, action.request)
                    response = transport.call(action.method, action.request, timeout=action.timeout, metadata=metadata)
                except VisionError as error:
                    if debug:
                        self.log_attempt(action, started, error)
                    action = flow.throw(error)
                else:
                    if debug:
                        self.log_attempt(action, started, None)
                    action = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            if gate is not None and ticket is not None:
                gate.leave(ticket)

    def _gate(self) -> _PollGate:
        """This process's poll gate: a forked child plans its own polls (its parent's timekeeper is not there)."""
        gate = self._poll_gate
        if gate.pid != ProcessId.current:
            gate = self._poll_gate = _PollGate(self.options.poll)
        return gate

    # -- ImageAnnotator ----------------------------------------------------------------------
    # Each method takes the request of its own RPC only (v1 or v1p4beta1, which decides the
    # version); any other request raises TypeError before anything is sent.

    @overload
    def batch_annotate_images(
        self, request: v1.BatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> v1.BatchAnnotateImagesResponse: ...
    @overload
    def batch_annotate_images(
        self, request: v1p4beta1.BatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> v1p4beta1.BatchAnnotateImagesResponse: ...
    def batch_annotate_images(self, request: Message, *, timeout: float | None = None) -> Message:
        """images:annotate, up to 16 images; returns ``BatchAnnotateImagesResponse``."""
        return self.run(self.annotate_flow(request, "BatchAnnotateImages", "batch_annotate_images", timeout))

    @overload
    def batch_annotate_files(
        self, request: v1.BatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> v1.BatchAnnotateFilesResponse: ...
    @overload
    def batch_annotate_files(
        self, request: v1p4beta1.BatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> v1p4beta1.BatchAnnotateFilesResponse: ...
    def batch_annotate_files(self, request: Message, *, timeout: float | None = None) -> Message:
        """files:annotate, one file, up to 5 pages, inline content allowed; ``BatchAnnotateFilesResponse``."""
        return self.run(self.annotate_flow(request, "BatchAnnotateFiles", "batch_annotate_files", timeout))

    @overload
    def async_batch_annotate_files(
        self, request: v1.AsyncBatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> Operation[v1.AsyncBatchAnnotateFilesResponse]: ...
    @overload
    def async_batch_annotate_files(
        self, request: v1p4beta1.AsyncBatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> Operation[v1p4beta1.AsyncBatchAnnotateFilesResponse]: ...
    def async_batch_annotate_files(self, request: Message, *, timeout: float | None = None) -> Operation[Any]:
        """files:asyncBatchAnnotate; returns the ``Operation`` (result: ``AsyncBatchAnnotateFilesResponse``)."""
        return self._submit(request, "AsyncBatchAnnotateFiles", "async_batch_annotate_files", timeout)

    @overload
    def async_batch_annotate_images(
        self, request: v1.AsyncBatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> Operation[v1.AsyncBatchAnnotateImagesResponse]: ...
    @overload
    def async_batch_annotate_images(
        self, request: v1p4beta1.AsyncBatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> Operation[v1p4beta1.AsyncBatchAnnotateImagesResponse]: ...
    def async_batch_annotate_images(self, request: Message, *, timeout: float | None = None) -> Operation[Any]:
        """images:asyncBatchAnnotate; returns the ``Operation`` (result: ``AsyncBatchAnnotateImagesResponse``)."""
        return self._submit(request, "AsyncBatchAnnotateImages", "async_batch_annotate_images", timeout)

    def _submit(self, request: Message, rpc: str, call: str, timeout: float | None) -> Operation[Any]:
        expected = method_for_call(rpc, request, call).lro_response_type
        proto: Any = self.run(self.annotate_flow(request, rpc, call, timeout))
        return Operation(proto, self, expected)

    # -- google.longrunning.Operations --------------------------------------------------------

    @overload
    def get_operation(self, name: str, *, timeout: float | None = None) -> Operation[AsyncResponse]: ...
    @overload
    def get_operation(self, name: str, *, response_type: type[R], timeout: float | None = None) -> Operation[R]: ...
    def get_operation(
        self, name: str, *, response_type: type[Message] | None = None, timeout: float | None = None
    ) -> Operation[Any]:
        """Fetch an operation by name, e.g. to resume waiting from another process.

        ``response_type`` (e.g. ``types.AsyncBatchAnnotateFilesResponse``) types and checks the result.
        """
        proto: Any = self.run(self.get_flow(name, timeout))
        return Operation(proto, self, response_type)

    def list_operations(self, *, filter: str = "", page_size: int = 100) -> Iterator[Operation[AsyncResponse]]:
        """Operations the server still knows, page by page."""
        token = ""
        while True:
            page: Any = self.run(self.list_flow(filter, page_size, token))
            yield from (Operation(op, self) for op in page.operations)
            token = page.next_page_token
            if not token:
                return

    def cancel_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Ask the server to cancel; the operation then ends with a CANCELLED error."""
        self.run(self.operations_flow("CancelOperation", operations_pb2.CancelOperationRequest(name=name), timeout))

    def delete_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Forget a finished operation on the server."""
        self.run(self.operations_flow("DeleteOperation", operations_pb2.DeleteOperationRequest(name=name), timeout))

    def close(self) -> None:
        """Close the channel (or connection pool); the client cannot be used afterwards."""
        self._closed = True
        if self._transport_pid == ProcessId.current:  # a forked child leaves its parent's alone
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Operation(OperationBase[R]):
    """A long-running operation resolving to ``R``: ``wait()``, ``result()``, ``refresh()``, ``cancel()``..."""

    _client: Client

    def refresh(self, *, timeout: float | None = None) -> Operation[R]:
        """Fetch the current state from the server."""
        self._update(self._client.run(self._client.get_flow(self.name, timeout)))
        return self

    def wait(
        self, timeout: float | None = None, *, on_update: Callable[[Operation[R]], None] | None = None
    ) -> Operation[R]:
        """Block until done; ``OperationTimeout`` (carrying the name) after ``timeout`` seconds.

        ``on_update(operation)`` is called after every state received, e.g. to show progress.
        """
        if not self.done:
            self._update(self._client.run(self._client.wait_flow(self, timeout, on_update)))
        return self

    def result(self, timeout: float | None = None, *, on_update: Callable[[Operation[R]], None] | None = None) -> R:
        """Wait, then return the typed response; ``OperationError`` if the operation failed."""
        return self.wait(timeout, on_update=on_update)._result()

    def cancel(self) -> None:
        """Ask the server to cancel this operation."""
        self._client.cancel_operation(self.name)

    def delete(self) -> None:
        """Forget this (finished) operation on the server."""
        self._client.delete_operation(self.name)


class _PollGate:
    """One client's ``PollPlanner`` for threads, under one lock.

    A waiting thread sleeps on a condition of its own until its operation's turn, a state shared
    by another waiter of the same operation, or its deadline. A timekeeper thread, alive while any
    wait is registered, sleeps until the planner's next grant (or a change) and wakes the threads
    granted; it ends when the last wait leaves.
    """

    def __init__(self, policy: PollPolicy) -> None:
        self.pid = ProcessId.current
        self._lock = threading.Lock()
        self._planner = PollPlanner(policy)
        self._tick = threading.Condition(self._lock)  # the timekeeper's: the plan changed
        self._keeper: threading.Thread | None = None

    def turn(self, ticket: Ticket) -> object:
        """POLL, a newer shared state, or TIMEOUT once the ticket's deadline has passed."""
        with self._lock:
            planner = self._planner
            if ticket.entry is None:
                planner.join(ticket, time.monotonic())
                ticket.wake = threading.Condition(self._lock)
                self._changed()
            while True:  # ends at the turn, or at the deadline (none: waits as long as the caller asked)
                answer = planner.turn(ticket, time.monotonic())
                if answer is not None:
                    if answer is POLL:
                        self._changed()  # its token is spent: the bucket refills from now
                    return answer
                now = time.monotonic()
                if ticket.deadline is not None and now >= ticket.deadline:
                    _notify(planner.due(now))  # one last poll at the deadline, if the budget allows
                    answer = planner.turn(ticket, time.monotonic())
                    return TIMEOUT if answer is None else answer
                ticket.wake.wait(None if ticket.deadline is None else ticket.deadline - now)

    def record(self, ticket: Ticket, operation: operations_pb2.Operation | None) -> None:
        with self._lock:
            _notify(self._planner.record(ticket, operation, time.monotonic()))
            self._changed()

    def leave(self, ticket: Ticket) -> None:
        with self._lock:
            self._planner.leave(ticket, time.monotonic())
            self._changed()

    def _changed(self) -> None:
        """The plan changed: the timekeeper recomputes its wake-up (started if there is none)."""
        if self._keeper is not None:
            self._tick.notify()
        elif self._planner.waiting:
            self._keeper = threading.Thread(target=self._keep_time, name="vision-grpc-poll-planner", daemon=True)
            self._keeper.start()

    def _keep_time(self) -> None:
        with self._lock:
            try:
                while self._planner.waiting:  # ends when the last wait leaves
                    now = time.monotonic()
                    _notify(self._planner.due(now))
                    at = self._planner.next_at()
                    self._tick.wait(None if at is None else max(0.0, at - now))
            finally:
                self._keeper = None


def _notify(tickets: list[Ticket]) -> None:
    for ticket in tickets:
        ticket.wake.notify()
