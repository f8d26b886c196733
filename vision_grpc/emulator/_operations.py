"""google.longrunning.Operations over the operation store: submit, get, list, cancel, delete, wait.

An operation's state is derived from the clock whenever it is read: CREATED at submit, RUNNING
after a quarter of ``operation_seconds``, DONE once its job has run, which starts at
``operation_seconds``. The job (``Jobs.run_async``: reads inputs, annotates, writes the output
shards) runs exactly once, on a worker of the background ``Finisher`` (``finish``), whether or not
anyone polls, as the service writes outputs on its own; the operation is DONE only when its outputs
are all written. Reads never run a job nor wait for one (``observe`` only nudges the finisher),
and no lock a read takes is held while a job runs, so GetOperation, ListOperations, CancelOperation
and WaitOperation answer at once however busy the workers are; only after ``close()`` (no workers
left) does a read past the due time run the job itself. A cancelled job stops at its next page and
writes nothing. ``metadata`` always packs the API
version's ``OperationMetadata``; ``response`` packs ``AsyncBatchAnnotate{Files,Images}Response``.
Waiting is bounded by ``MAX_WAIT_SECONDS``, the request's ``timeout`` and the RPC deadline; ``wait``
blocks its thread on the store's condition, ``wait_async`` (for an asyncio server) awaits an event
that the store's notifications set, so that a waiting caller holds no thread.
An injected operation fault (``FaultInjector.fail_next_operation``) ends the next finishing
operation with that error instead of running its job.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._core.methods import MethodInfo
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc.emulator._faults import FaultInjector
from vision_grpc.emulator._finisher import Finisher
from vision_grpc.emulator._jobs import Jobs, JobStopped
from vision_grpc.emulator._status import invalid_argument, not_found, status
from vision_grpc.emulator._store import OperationRecord, OperationStore, StoreFull
from vision_grpc.errors import ApiError, api_error

__all__ = ["MAX_NAME_BYTES", "MAX_PARENT_BYTES", "MAX_WAIT_SECONDS", "Operations", "Runner"]

_log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 60.0
# Operation names: the service's are ~100 bytes (projects/{p}/locations/{l}/operations/{id}); longer ones
# are refused (INVALID_ARGUMENT naming the field, the name not echoed), and so is a parent that would
# make one.
MAX_NAME_BYTES = 1024
_ID_BYTES = 16  # secrets.token_hex(8)
MAX_PARENT_BYTES = MAX_NAME_BYTES - len("/operations/") - _ID_BYTES
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_STATE = v1.OperationMetadata.State  # same numbers in v1p4beta1
T = TypeVar("T")


class Runner(Protocol):
    """Runs a blocking function on a worker thread, for an asyncio caller (``loop.run_in_executor``)."""

    def __call__(self, fn: Callable[[], T]) -> Awaitable[T]: ...


class Operations:
    """The operation life cycle; thread-safe."""

    def __init__(
        self,
        store: OperationStore,
        jobs: Jobs,
        *,
        operation_seconds: float,
        clock: Callable[[], float],
        faults: FaultInjector | None = None,
    ):
        if not math.isfinite(operation_seconds) or operation_seconds < 0:
            raise ValueError("operation_seconds must be a finite number >= 0")
        self.store = store
        self.jobs = jobs
        self.operation_seconds = operation_seconds
        self.faults = faults if faults is not None else FaultInjector()
        self._clock = clock
        self.closing = threading.Event()
        self._claimed: set[str] = set()  # names of the operations whose job has started
        self._claim_lock = threading.Lock()
        self.finisher = Finisher(self.finish, clock)
        self.finisher.start()

    def submit(self, method: MethodInfo, request: Message, parent: str) -> operations_pb2.Operation:
        """A new CREATED operation named ``{parent}/operations/{id}`` (or ``operations/{id}``)."""
        if len(parent.encode("utf-8")) > MAX_PARENT_BYTES:
            raise invalid_argument("parent", f"is longer than {MAX_PARENT_BYTES} bytes")
        now = self._clock()
        op_id = secrets.token_hex(_ID_BYTES // 2)
        copy = type(request)()
        copy.CopyFrom(request)
        record = OperationRecord(
            name=f"{parent}/operations/{op_id}" if parent else f"operations/{op_id}",
            method=method,
            request=copy,
            created=now,
            running_at=now + self.operation_seconds / 4,
            done_at=now + self.operation_seconds,
        )
        try:
            self.store.add(record)
        except StoreFull:
            self.finish_due()  # past-due operations nobody read: a slot frees as soon as a worker ends one
            try:
                self.store.add(record)
            except StoreFull as exc:
                raise api_error(code_pb2.RESOURCE_EXHAUSTED, str(exc)) from None
        reply = self.to_proto(record, now=now)  # CREATED, even when operation_seconds is 0
        self.finisher.schedule(record)  # after the reply is built: it may finish at once
        return reply

    def finish_due(self) -> None:
        """Have every stored operation past its due time finished: by the workers (nudged; this does not
        wait for them), or here once they are closed."""
        for record in self.store.snapshot():
            self.observe(record)

    def observe(self, record: OperationRecord) -> None:
        """A read's look at an operation: never runs its job nor waits for it while the finisher runs. Past
        the due time, the finisher is nudged (a settable clock may have jumped); once it is closed, the
        job runs here."""
        if record.finished or self._clock() < record.done_at:
            return
        if self.finisher.running:
            self.finisher.nudge()
        else:
            self.finish(record)

    def finish(self, record: OperationRecord) -> None:
        """Run the job of an operation past its due time, once (or end it with an injected fault); on a
        finisher worker. No lock is held while the job runs: a cancel meanwhile stops it."""
        if record.finished or self._clock() < record.done_at:
            return
        with self._claim_lock:
            if record.finished or record.name in self._claimed:
                return
            self._claimed.add(record.name)
        try:
            outcome: dict[str, Any] = {}
            fault = self.faults.take_operation_fault(record.method)
            if fault is not None:
                outcome["error"] = fault
            else:
                try:
                    outcome["response"] = self.jobs.run_async(
                        record.method, record.request, stop=lambda: record.finished
                    )
                except JobStopped:  # cancelled while it ran: the CANCELLED outcome stands
                    return
                except ApiError as err:
                    outcome["error"] = err.status
                except Exception as exc:  # an emulator bug: fail the operation, keep serving
                    _log.exception("operation %s failed", record.name)
                    outcome["error"] = status(code_pb2.INTERNAL, f"emulator failure: {exc!r}")
            with record.lock:
                if not record.finished:
                    record.finish(self._clock(), **outcome)
        finally:
            with self._claim_lock:
                self._claimed.discard(record.name)
        self.store.notify()

    def to_proto(self, record: OperationRecord, *, now: float | None = None) -> operations_pb2.Operation:
        now = self._clock() if now is None else now
        metadata: Any = record.method.lro_metadata_type() if record.method.lro_metadata_type else v1.OperationMetadata()
        if record.finished_at is not None:
            metadata.state = _STATE.CANCELLED if record.cancelled else _STATE.DONE
            updated = record.finished_at
        elif now >= record.running_at and now > record.created:
            metadata.state, updated = _STATE.RUNNING, record.running_at
        else:
            metadata.state, updated = _STATE.CREATED, record.created
        metadata.create_time.FromNanoseconds(round(record.created * 1e9))
        metadata.update_time.FromNanoseconds(round(updated * 1e9))
        operation = operations_pb2.Operation(name=record.name, done=record.finished)
        operation.metadata.Pack(metadata)
        if record.error is not None:
            operation.error.CopyFrom(record.error)
        elif record.response is not None:
            operation.response.Pack(record.response)
        return operation

    def _record(self, name: str) -> OperationRecord:
        _check_name(name)
        record = self.store.get(name)
        if record is None:
            raise not_found(f"Operation {name} not found")
        self.observe(record)
        return record

    def get(self, request: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
        return self.to_proto(self._record(request.name))

    def delete(self, request: operations_pb2.DeleteOperationRequest) -> empty_pb2.Empty:
        _check_name(request.name)
        if not self.store.delete(request.name):
            raise not_found(f"Operation {request.name} not found")
        return empty_pb2.Empty()

    def cancel(self, request: operations_pb2.CancelOperationRequest) -> empty_pb2.Empty:
        """Finish a pending operation as CANCELLED; a done one is left as it is."""
        record = self._record(request.name)
        with record.lock:
            if not record.finished:
                record.finish(self._clock(), error=status(code_pb2.CANCELLED, "Operation cancelled"), cancelled=True)
        self.store.notify()
        return empty_pb2.Empty()

    def wait(self, request: operations_pb2.WaitOperationRequest, rpc_timeout: float | None) -> operations_pb2.Operation:
        """Block until done, ``request.timeout``, the RPC deadline or ``MAX_WAIT_SECONDS``; return the operation."""
        record = self._record(request.name)
        deadline = _wait_deadline(request, rpc_timeout)
        while (pause := self._pause(record, deadline)) is not None:
            with self.store.changed:
                if not record.finished and not self.closing.is_set():
                    self.store.changed.wait(timeout=pause)
            self.observe(record)
        return self.to_proto(record)

    async def wait_async(
        self,
        request: operations_pb2.WaitOperationRequest,
        rpc_timeout: float | None,
        run: Runner,
    ) -> operations_pb2.Operation:
        """``wait`` for an asyncio server, holding no thread while it waits.

        ``run(fn)`` runs the blocking steps (reading the operation, running its job once due) on a
        worker thread; between them the caller awaits an event set by the store's notifications (an
        operation finished, the service is closing) or the next due time, whichever comes first.
        """
        record = await run(lambda: self._record(request.name))
        deadline = _wait_deadline(request, rpc_timeout)
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:  # on the notifying thread
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        self.store.listen(wake)
        try:
            while True:
                woken.clear()  # then the checks: a notification after them sets it again (on this loop)
                pause = self._pause(record, deadline)
                if pause is None:
                    break
                try:
                    await asyncio.wait_for(woken.wait(), pause)
                except asyncio.TimeoutError:
                    pass
                if not record.finished and self._clock() >= record.done_at:
                    await run(lambda: self.observe(record))
        finally:
            self.store.unlisten(wake)
        return self.to_proto(record)

    def _pause(self, record: OperationRecord, deadline: float) -> float | None:
        """How long to wait before looking at ``record`` again (until its due time at most; once due, until
        its job's end notifies); None: done waiting."""
        if record.finished or self.closing.is_set():
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        until_due = record.done_at - self._clock()
        if until_due <= 0:
            return remaining  # a worker has it, or will: finishing notifies the store
        return max(0.001, min(remaining, until_due + 0.001))

    def list(self, request: operations_pb2.ListOperationsRequest) -> operations_pb2.ListOperationsResponse:
        """Operations in submission order; only ``done=true``/``done=false`` filters are understood."""
        if request.page_size < 0:
            raise invalid_argument("page_size", "must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _parse_token(request.page_token)
        wanted = {"done=true": True, "done=false": False}.get("".join(request.filter.split()).lower())
        page: list[OperationRecord] = []
        more = False
        for record in self.store.snapshot():
            if record.seq <= after:
                continue
            self.observe(record)
            if wanted is not None and record.finished != wanted:
                continue
            if len(page) == size:
                more = True
                break
            page.append(record)
        reply = operations_pb2.ListOperationsResponse(operations=[self.to_proto(r) for r in page])
        if more:
            reply.next_page_token = f"after-{page[-1].seq}"
        return reply

    def close(self) -> None:
        """Wake every waiter, make further waits return at once, stop and join the finisher."""
        self.closing.set()
        self.store.notify()
        self.finisher.close()


def _check_name(name: str) -> None:
    if not name:
        raise invalid_argument("name", "is required")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise invalid_argument("name", f"is longer than {MAX_NAME_BYTES} bytes: no operation has such a name")


def _wait_deadline(request: operations_pb2.WaitOperationRequest, rpc_timeout: float | None) -> float:
    """The ``time.monotonic()`` at which a wait ends: ``MAX_WAIT_SECONDS``, ``request.timeout`` or the RPC's."""
    limit = MAX_WAIT_SECONDS
    if request.HasField("timeout"):
        limit = min(limit, max(0.0, request.timeout.ToNanoseconds() / 1e9))
    if rpc_timeout is not None:
        limit = min(limit, max(0.0, rpc_timeout))
    return time.monotonic() + limit


def _parse_token(token: str) -> int:
    if not token:
        return 0
    prefix, _, number = token.partition("-")
    if prefix != "after" or not number.isdigit():
        raise invalid_argument("page_token", "is not a token returned by a previous ListOperations call")
    return int(number)
