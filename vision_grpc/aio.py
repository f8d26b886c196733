"""The asyncio client: ``AsyncClient`` and ``AsyncOperation``, same names as the blocking ones.

It drives the same sans-IO flows as ``Client`` (validation, retries, polling are shared);
only the I/O differs. Create it anywhere (at import time, in a sync factory, in another thread):
its channel or HTTP session is made on first use, inside the running loop, and each event loop
that uses it gets its own. ``await client.aclose()`` (or ``async with``) when done.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf.message import Message

from vision_grpc._client_base import INHERITED_TRANSPORTS, ClientBase, OperationBase, ProcessId, R, rpc_log
from vision_grpc._core.methods import method_for_call
from vision_grpc._core.options import ClientOptions
from vision_grpc._core.policies import PollPolicy
from vision_grpc._flows.planner import TIMEOUT, PlannedFlow, Polled, PollPlanner, PollTurn, Ticket
from vision_grpc._flows.retry import Sleep
from vision_grpc.errors import ClientClosedError, VisionError
from vision_grpc.transports.base import AsyncTransport

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from vision_grpc._core.options import ClientSettings
    from vision_grpc._gen.v1 import image_annotator_pb2 as v1
    from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
    from vision_grpc.types import AsyncResponse

__all__ = ["AsyncClient", "AsyncOperation"]

T = TypeVar("T")
_log = logging.getLogger(__name__)


class AsyncClient(ClientBase):
    """An asyncio Vision client over gRPC (default) or REST (``transport="rest"``, needs the ``rest-async`` extra).

    The twin of ``Client``: the same settings (``ClientOptions`` fields as keywords, or ``options``)
    and method names, awaited. Close it with ``await client.aclose()`` or ``async with``.
    """

    is_async = True

    def __init__(self, options: ClientOptions | None = None, **settings: Unpack[ClientSettings]) -> None:
        super().__init__(options, settings)
        if self.options.transport == "rest":
            from vision_grpc.transports.rest_aio import require_aiohttp

            require_aiohttp()  # a missing extra is reported here, not on the first call
        # One transport per event loop, made on first use inside it: the client may be created
        # anywhere (import time, another thread) and used from any loop. Closed loops drop theirs.
        self._transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncTransport] = (
            weakref.WeakKeyDictionary()
        )
        self._guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary()
        )
        self._transports_pid = ProcessId.current
        self._closed = False
        # The waits that poll share one planner per event loop (each loop wakes its own waiters).
        self._poll_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPollGate] = (
            weakref.WeakKeyDictionary()
        )
        self._poll_gates_pid = ProcessId.current

    def _make_transport(self) -> AsyncTransport:
        if self.options.transport == "auto":
            from vision_grpc._client_base import api_client_header
            from vision_grpc.transports.auto import AsyncAutoTransport, FallbackState

            # One decision per client, shared by the transports of its event loops (and a forked child's).
            state: FallbackState = self.__dict__.setdefault("_fallback_state", FallbackState())
            headers = {name: api_client_header(name, self.is_async) for name in ("grpc", "rest")}
            return AsyncAutoTransport(self.options, self._auth, state=state, api_client=headers)
        if self.options.transport == "rest":
            from vision_grpc.transports.rest_aio import AsyncRestTransport

            return AsyncRestTransport(self.options, self._auth)
        from vision_grpc.transports.grpc_aio import AsyncGrpcTransport

        return AsyncGrpcTransport(self.options, self._auth)

    def _live_transport(self) -> AsyncTransport:
        """The running loop's transport, made on first use in it (and afresh in a forked child)."""
        if self._closed:
            raise ClientClosedError("this AsyncClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._transports_pid != ProcessId.current:
            INHERITED_TRANSPORTS.extend(self._transports.values())
            INHERITED_TRANSPORTS.extend(self._guards.values())
            self._transports, self._guards = weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary()
            self._transports_pid = ProcessId.current
        transport = self._transports.get(loop)
        if transport is None:
            transport = self._transports[loop] = self._make_transport()
            # Closed with its loop: asyncio.run() (and loop.shutdown_asyncgens()) finalizes open async
            # generators before closing the loop, so a client used from a short-lived loop leaks nothing.
            guard = self._guards[loop] = _close_at_loop_shutdown(transport)
            loop.create_task(_start(guard))
            if len(self._transports) > 1:
                _log.debug("AsyncClient used from another event loop: a transport of its own for it")
        return transport

    async def run(self, flow: PlannedFlow[T]) -> T:
        """Drive a sans-IO flow with awaited calls and ``asyncio.sleep``; a wait's turns to poll come
        from the running loop's poll gate (left however the flow ends, cancellation included)."""
        transport = self._live_transport()
        debug = rpc_log.isEnabledFor(logging.DEBUG)
        gate: _LoopPollGate | None = None
        ticket: Ticket | None = None
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    action = flow.send(None)
                    continue
                if isinstance(action, PollTurn | Polled):
                    gate = gate or self._gate()
                    ticket = action.ticket
                    if isinstance(action, PollTurn):
                        action = flow.send(await gate.turn(ticket))
                    else:
                        gate.record(ticket, action.operation)
                        action = flow.send(None)
                    continue
                started = time.perf_counter() if debug else 0.0
                try:
                    metadata = self.call_metadata(action.method, action.request)
                    response = await transport.call(
                        action.method, action.request, timeout=action.timeout, metadata=metadata
                    )
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

    def _gate(self) -> _LoopPollGate:
        """The running loop's poll gate, made on first use (afresh in a forked child)."""
        if self._poll_gates_pid != ProcessId.current:
            self._poll_gates, self._poll_gates_pid = weakref.WeakKeyDictionary(), ProcessId.current
        loop = asyncio.get_running_loop()
        gate = self._poll_gates.get(loop)
        if gate is None:
            gate = self._poll_gates[loop] = _LoopPollGate(self.options.poll, loop)
        return gate

    # Each method takes the request of its own RPC only (v1 or v1p4beta1, which decides the
    # version); any other request raises TypeError before anything is sent.

    @overload
    async def batch_annotate_images(
        self, request: v1.BatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> v1.BatchAnnotateImagesResponse: ...
    @overload
    async def batch_annotate_images(
        self, request: v1p4beta1.BatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> v1p4beta1.BatchAnnotateImagesResponse: ...
    async def batch_annotate_images(self, request: Message, *, timeout: float | None = None) -> Message:
        """images:annotate, up to 16 images; returns ``BatchAnnotateImagesResponse``."""
        return await self.run(self.annotate_flow(request, "BatchAnnotateImages", "batch_annotate_images", timeout))

    @overload
    async def batch_annotate_files(
        self, request: v1.BatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> v1.BatchAnnotateFilesResponse: ...
    @overload
    async def batch_annotate_files(
        self, request: v1p4beta1.BatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> v1p4beta1.BatchAnnotateFilesResponse: ...
    async def batch_annotate_files(self, request: Message, *, timeout: float | None = None) -> Message:
        """files:annotate, one file, up to 5 pages, inline content allowed; ``BatchAnnotateFilesResponse``."""
        return await self.run(self.annotate_flow(request, "BatchAnnotateFiles", "batch_annotate_files", timeout))

    @overload
    async def async_batch_annotate_files(
        self, request: v1.AsyncBatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> AsyncOperation[v1.AsyncBatchAnnotateFilesResponse]: ...
    @overload
    async def async_batch_annotate_files(
        self, request: v1p4beta1.AsyncBatchAnnotateFilesRequest, *, timeout: float | None = None
    ) -> AsyncOperation[v1p4beta1.AsyncBatchAnnotateFilesResponse]: ...
    async def async_batch_annotate_files(
        self, request: Message, *, timeout: float | None = None
    ) -> AsyncOperation[Any]:
        """files:asyncBatchAnnotate; the ``AsyncOperation`` (result: ``AsyncBatchAnnotateFilesResponse``)."""
        return await self._submit(request, "AsyncBatchAnnotateFiles", "async_batch_annotate_files", timeout)

    @overload
    async def async_batch_annotate_images(
        self, request: v1.AsyncBatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> AsyncOperation[v1.AsyncBatchAnnotateImagesResponse]: ...
    @overload
    async def async_batch_annotate_images(
        self, request: v1p4beta1.AsyncBatchAnnotateImagesRequest, *, timeout: float | None = None
    ) -> AsyncOperation[v1p4beta1.AsyncBatchAnnotateImagesResponse]: ...
    async def async_batch_annotate_images(
        self, request: Message, *, timeout: float | None = None
    ) -> AsyncOperation[Any]:
        """images:asyncBatchAnnotate; the ``AsyncOperation`` (result: ``AsyncBatchAnnotateImagesResponse``)."""
        return await self._submit(request, "AsyncBatchAnnotateImages", "async_batch_annotate_images", timeout)

    async def _submit(self, request: Message, rpc: str, call: str, timeout: float | None) -> AsyncOperation[Any]:
        expected = method_for_call(rpc, request, call).lro_response_type
        proto: Any = await self.run(self.annotate_flow(request, rpc, call, timeout))
        return AsyncOperation(proto, self, expected)

    @overload
    async def get_operation(self, name: str, *, timeout: float | None = None) -> AsyncOperation[AsyncResponse]: ...
    @overload
    async def get_operation(
        self, name: str, *, response_type: type[R], timeout: float | None = None
    ) -> AsyncOperation[R]: ...
    async def get_operation(
        self, name: str, *, response_type: type[Message] | None = None, timeout: float | None = None
    ) -> AsyncOperation[Any]:
        """Fetch an operation by name, e.g. to resume waiting from another process.

        ``response_type`` (e.g. ``types.AsyncBatchAnnotateFilesResponse``) types and checks the result.
        """
        proto: Any = await self.run(self.get_flow(name, timeout))
        return AsyncOperation(proto, self, response_type)

    async def list_operations(
        self, *, filter: str = "", page_size: int = 100
    ) -> AsyncIterator[AsyncOperation[AsyncResponse]]:
        """Operations the server still knows, page by page."""
        token = ""
        while True:
            page: Any = await self.run(self.list_flow(filter, page_size, token))
            for op in page.operations:
                yield AsyncOperation(op, self)
            token = page.next_page_token
            if not token:
                return

    async def cancel_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Ask the server to cancel; the operation then ends with a CANCELLED error."""
        request = operations_pb2.CancelOperationRequest(name=name)
        await self.run(self.operations_flow("CancelOperation", request, timeout))

    async def delete_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Forget a finished operation on the server."""
        request = operations_pb2.DeleteOperationRequest(name=name)
        await self.run(self.operations_flow("DeleteOperation", request, timeout))

    async def aclose(self) -> None:
        """Close the client: no new calls; the running loop's channel (or HTTP session) is closed now.

        A client used from several loops has one per loop: calls in flight in another loop finish,
        and that loop's shutdown (``asyncio.run`` finalizing async generators) closes its own.
        """
        if self._transports_pid != ProcessId.current:
            return  # a forked child leaves its parent's transports alone
        loop = asyncio.get_running_loop()
        self._closed = True  # no new calls; other loops' calls in flight finish, their loops close theirs
        transport = self._transports.pop(loop, None)
        guard = self._guards.pop(loop, None)
        if transport is not None:
            await transport.close()
        if guard is not None:
            await guard.aclose()  # nothing left to close at loop shutdown

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncOperation(OperationBase[R]):
    """A long-running operation resolving to ``R``, awaited: ``wait()``, ``result()``, ``refresh()``..."""

    _client: AsyncClient

    async def refresh(self, *, timeout: float | None = None) -> AsyncOperation[R]:
        """Fetch the current state from the server."""
        self._update(await self._client.run(self._client.get_flow(self.name, timeout)))
        return self

    async def wait(
        self, timeout: float | None = None, *, on_update: Callable[[AsyncOperation[R]], None] | None = None
    ) -> AsyncOperation[R]:
        """Wait until done; ``OperationTimeout`` (carrying the name) after ``timeout`` seconds.

        ``on_update(operation)`` is called after every state received, e.g. to show progress.
        """
        if not self.done:
            self._update(await self._client.run(self._client.wait_flow(self, timeout, on_update)))
        return self

    async def result(
        self, timeout: float | None = None, *, on_update: Callable[[AsyncOperation[R]], None] | None = None
    ) -> R:
        """Wait, then return the typed response; ``OperationError`` if the operation failed."""
        return (await self.wait(timeout, on_update=on_update))._result()

    async def cancel(self) -> None:
        """Ask the server to cancel this operation."""
        await self._client.cancel_operation(self.name)

    async def delete(self) -> None:
        """Forget this (finished) operation on the server."""
        await self._client.delete_operation(self.name)


class _LoopPollGate:
    """One client's ``PollPlanner`` in one event loop: a future per waiting ticket, one timer for the
    planner's next grant. Everything runs in the loop's thread: no lock."""

    def __init__(self, policy: PollPolicy, loop: asyncio.AbstractEventLoop) -> None:
        self._planner = PollPlanner(policy)
        self._loop = weakref.ref(loop)  # weak: the client's gates are keyed by their loops, weakly
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def turn(self, ticket: Ticket) -> object:
        """POLL, a newer shared state, or TIMEOUT once the ticket's deadline has passed."""
        planner = self._planner
        if ticket.entry is None:
            planner.join(ticket, time.monotonic())
        loop = asyncio.get_running_loop()
        while True:  # ends at the turn, or at the deadline (none: waits as long as the caller asked)
            answer = planner.turn(ticket, time.monotonic())
            if answer is not None:
                self._arm()
                return answer
            now = time.monotonic()
            if ticket.deadline is not None and now >= ticket.deadline:
                _resolve_all(planner.due(now))  # one last poll at the deadline, if the budget allows
                answer = planner.turn(ticket, time.monotonic())
                self._arm()
                return TIMEOUT if answer is None else answer
            self._arm()
            waker: asyncio.Future[None] = loop.create_future()
            ticket.wake = waker
            alarm = None if ticket.deadline is None else loop.call_later(ticket.deadline - now, _resolve, waker)
            try:
                await waker
            finally:
                ticket.wake = None
                if alarm is not None:
                    alarm.cancel()

    def record(self, ticket: Ticket, operation: operations_pb2.Operation | None) -> None:
        _resolve_all(self._planner.record(ticket, operation, time.monotonic()))
        self._arm()

    def leave(self, ticket: Ticket) -> None:
        self._planner.leave(ticket, time.monotonic())
        self._arm()

    def _arm(self) -> None:
        """Keep one timer, at the planner's next grant (none when nothing waits for one)."""
        at = self._planner.next_at()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        loop = self._loop()
        if at is not None and loop is not None and not loop.is_closed():
            self._timer = loop.call_later(max(0.0, at - time.monotonic()), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        _resolve_all(self._planner.due(time.monotonic()))
        self._arm()


def _resolve(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)


def _resolve_all(tickets: list[Ticket]) -> None:
    for ticket in tickets:
        if ticket.wake is not None:
            _resolve(ticket.wake)


async def _close_at_loop_shutdown(transport: AsyncTransport) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await transport.close()


async def _start(guard: AsyncGenerator[None, None]) -> None:
    await guard.__anext__()  # first iteration registers it with the running loop
