"""Bulk annotation runs that survive a crash: ``BulkRunner(client, journal, ...).run(uris) -> BulkReport``.

Many gs:// inputs are split into ``files:asyncBatchAnnotate`` requests (one ``AsyncAnnotateFileRequest``
per file, ``files_per_request`` files each) or ``images:asyncBatchAnnotate`` requests (at most 2000
images each), within a budget (``bulk.schedule.InFlightBudget``): at most ``max_in_flight`` operations,
``max_pages_in_flight`` pages (``max_images_in_flight`` images) in processing and
``max_requests_per_minute`` requests (submits and polls) in any 60 s. An operation succeeds or fails as a
whole; when one fails with NOT_FOUND or INVALID_ARGUMENT (a missing or unreadable file), the
input its error names fails alone and the others are resubmitted in new batches (halves when no
input is named), so one bad file never fails the good ones. One that fails with a transient code
(UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED) is submitted again, to the
same prefix, like a failed submit (``max_attempts`` in all; within the run while attempts remain).
"Done" means the operation succeeded: per-page (per-image) errors are in the output shards.
A local SQLite journal (``vision_grpc.bulk.journal``, whose docstring draws the state machine) records
each batch *before* its submit RPC, its operation name right after, and each finished batch; running
again with the same journal (after a crash, a kill or Ctrl-C) resumes where it stopped:

* inputs already done or failed are never sent again; duplicate URIs are annotated once;
* a batch with an operation name is re-attached (``client.get_operation``), never resubmitted;
* a batch recorded as "about to be submitted" without an operation name is ambiguous (the server
  may have seen it): it is resubmitted and the decision logged. Each batch writes under its own
  deterministic prefix ``{output_prefix}batch-{id}/`` (the k-th file of a files batch under
  ``.../batch-{id}/{k}/``), ``id`` hashing the batch's inputs and settings, so a resubmission
  rewrites the same shards rather than adding new ones;
* a failed submit (``ApiError``, ``TransportError``, or an answer that names no operation) is retried
  on the next run, up to ``max_attempts`` attempts in all (counted in the journal); then its inputs fail;
* a Ctrl-C during a submit RPC is held until the operation name is written (a second one
  interrupts at once); the journal is consistent at every instruction anyway.

A file's page count is unknown until the service has read it, so each file of a batch is charged
``pages_per_file`` pages (default 10); with ``storage=`` the runner counts the pages of every finished
file from its shard names (one listing per batch) and charges the mean of the counted files instead.

Waiting follows a per-operation schedule (``bulk.schedule.PollSchedule``): until an operation of the
run has finished, each in-flight operation is refreshed 0.5 s after its submit; after that, at 0.8 of
the median duration of the run's recent operations (the service's create and update times), then at
delays from a tenth of that median growing x1.5 up to ``poll_interval``. A round refreshes only the
operations that are due, then sleeps until the next one is (or until the request budget has room).
``poll_timeout`` bounds a run's waiting, after which the report lists what is still pending (run again later).
Each refresh asks for the journaled operation by name; an answer that fails (any ``VisionError`` but
``NotFound``, which means the operation is lost), names another operation, or is done without a result
of the expected type is a failed poll: asked again when due, never a reason to complete, fail or
resubmit a batch, so a hostile proxy or a flaky gateway costs time, not inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any, Literal

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc._core.builders import async_files_request, async_images_request
from vision_grpc._core.methods import METHODS, method_for_request
from vision_grpc._core.validate import MAX_REQUESTS, validate
from vision_grpc.bulk.journal import Batch, BatchState, Journal, JournalError, sigint_deferred
from vision_grpc.bulk.report import BulkReport, InputResult, load_report, report_of
from vision_grpc.bulk.schedule import (
    PROJECT_IMAGES_IN_PROCESSING,
    PROJECT_PAGES_IN_PROCESSING,
    PROJECT_REQUESTS_PER_MINUTE,
    InFlightBudget,
    PageEstimate,
    PollSchedule,
)
from vision_grpc.errors import (
    ApiError,
    ConnectError,
    NotFound,
    OperationError,
    ValidationError,
    VisionError,
)
from vision_grpc.outputs import SHARD_NAME

if TYPE_CHECKING:
    from vision_grpc.client import Client, Operation
    from vision_grpc.storage import Storage

__all__ = ["BulkReport", "BulkRunner", "InputResult", "JournalError", "load_report"]

MAX_PER_REQUEST = MAX_REQUESTS["AsyncBatchAnnotateImages"]  # 2000; also our cap on files per request
MAX_PAGES_PER_FILE = 2000  # the service's limit: a shard name claiming more counts as this many
MAX_SUBMIT_FAILURES_IN_A_ROW = 3  # then a run submits nothing more: the service is likely down
# Submit errors after which the server may nevertheless have created the operation.
_MAYBE_SEEN = {
    code_pb2.DEADLINE_EXCEEDED,
    code_pb2.UNAVAILABLE,
    code_pb2.UNKNOWN,
    code_pb2.CANCELLED,
    code_pb2.INTERNAL,
}
# Operation errors that may come from one input of a batch: worth isolating it.
_INPUT_ERRORS = {code_pb2.NOT_FOUND, code_pb2.INVALID_ARGUMENT}
# Operation errors of the service, not of the inputs: the batch is submitted again (same prefix).
_TRANSIENT = {
    code_pb2.UNAVAILABLE,
    code_pb2.INTERNAL,
    code_pb2.DEADLINE_EXCEEDED,
    code_pb2.RESOURCE_EXHAUSTED,
    code_pb2.ABORTED,
}


class BulkRunner:
    """Annotates many gs:// inputs through a crash-safe journal; see the module docstring.

    ``on_event(event, batch_id)`` is called after each journal write (``submitting``, ``submitted``,
    ``done``, ...) and with ``"sent"`` when a submit RPC returned, just before its operation name is
    recorded: for progress display, and for tests that stop a run at a chosen point.

    Quotas: the defaults of ``max_pages_in_flight`` (10,000), ``max_images_in_flight`` (8,000) and
    ``max_requests_per_minute`` (1,800) are the whole project's; with several runners (or other
    clients) in one project, give each its share. An images batch is never larger than
    ``max_images_in_flight``; a files batch charged more pages than ``max_pages_in_flight`` runs alone.
    """

    def __init__(
        self,
        client: Client,
        journal_path: str | os.PathLike[str],
        *,
        output_prefix: str,
        features: Sequence[str] = ("DOCUMENT_TEXT_DETECTION",),
        kind: Literal["files", "images"] = "files",
        files_per_request: int = 8,
        images_per_request: int = MAX_PER_REQUEST,
        max_in_flight: int = 4,
        poll_interval: float = 2.0,
        poll_timeout: float = 3600.0,
        max_attempts: int = 3,
        shard_size: int | None = None,
        version: str = "v1",
        on_event: Callable[[str, str], None] | None = None,
        max_pages_in_flight: int = PROJECT_PAGES_IN_PROCESSING,
        max_images_in_flight: int = PROJECT_IMAGES_IN_PROCESSING,
        max_requests_per_minute: int = PROJECT_REQUESTS_PER_MINUTE,
        pages_per_file: int = 10,
        storage: Storage | None = None,
    ) -> None:
        if kind not in ("files", "images"):
            raise ValidationError("kind", f"must be 'files' or 'images', got {kind!r}")
        self.client, self.journal_path, self.kind, self.version = client, os.fspath(journal_path), kind, version
        self.output_prefix = output_prefix if output_prefix.endswith("/") else output_prefix + "/"
        self.features, self.shard_size = tuple(features), shard_size
        self.per_request = files_per_request if kind == "files" else min(images_per_request, max_images_in_flight)
        self.max_units = max_pages_in_flight if kind == "files" else max_images_in_flight
        self.max_requests_per_minute, self.storage = max_requests_per_minute, storage
        self.max_in_flight, self.max_attempts, self.on_event = max_in_flight, max_attempts, on_event
        self.poll_interval, self.poll_timeout = poll_interval, poll_timeout
        # The quotas first: an images run's per_request is capped by max_images_in_flight, and a bad
        # quota is to be named as itself.
        for name, value in (
            ("max_pages_in_flight", max_pages_in_flight),
            ("max_images_in_flight", max_images_in_flight),
            ("max_requests_per_minute", max_requests_per_minute),
            ("pages_per_file", pages_per_file),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(name, f"must be an int >= 1, got {value!r}")
        for name, value in (
            ("per_request", self.per_request),
            ("max_in_flight", max_in_flight),
            ("max_attempts", max_attempts),
        ):
            if not 1 <= value <= MAX_PER_REQUEST:
                raise ValidationError(name, f"must be in [1, {MAX_PER_REQUEST}], got {value}")
        self._pages = PageEstimate(pages_per_file)  # learned across the runs of this runner
        if not (poll_interval > 0 and poll_timeout > 0):
            raise ValidationError("poll_interval", "poll_interval and poll_timeout must be > 0")
        problem = self._problem(f"{self.output_prefix}probe.pdf")  # bad features, version or prefix: fail now
        if problem:
            raise ValidationError("BulkRunner", problem)
        rpc = "AsyncBatchAnnotateFiles" if kind == "files" else "AsyncBatchAnnotateImages"
        response_type = METHODS[(version, rpc)].lro_response_type  # what a done operation must hold
        assert response_type is not None
        self._response_type: type[Message] = response_type

    @property
    def pages_per_file(self) -> int:
        """Pages charged per file of a files batch now: the ``pages_per_file`` given, or the mean of the
        files counted so far (with ``storage=``)."""
        return self._pages.per_file

    def run(self, inputs: Iterable[str]) -> BulkReport:
        """Journal ``inputs``, submit and wait (at most ``poll_timeout``); resumes an earlier run."""
        with closing(Journal(self.journal_path, on_event=self._notify)) as journal:
            self._journal, self._failures_in_a_row = journal, 0
            try:
                journal.settle_meta(self._fixed_settings(), {"max_attempts": str(self.max_attempts)})
                journal.add_inputs(inputs, self._problem)
                queue = self._recover()
                self._drive(self._reattach(), queue)
            except KeyboardInterrupt:
                journal.note("interrupted")
                raise
            return report_of(journal)

    def _drive(self, in_flight: dict[str, str], queue: list[Batch]) -> None:
        """Submit and poll until nothing is in flight or ``poll_timeout``; ``in_flight``: batch id -> operation name."""
        deadline = time.monotonic() + self.poll_timeout
        self._schedule = PollSchedule(self.poll_interval)
        self._budget = InFlightBudget(
            max_units=self.max_units,
            max_operations=self.max_in_flight,
            requests_per_minute=self.max_requests_per_minute,
        )
        self._submitted_at: dict[str, float] = {}
        self._waiting_for_slot = False
        for batch_id in in_flight:
            self._schedule.add(batch_id, now=True)  # re-attached: polled at once
        for batch in self._journal.batches(BatchState.SUBMITTED):
            self._budget.hold(batch.id, self._units(batch.uris))
        self._fill(in_flight, queue)
        # Every pass sleeps until a poll is due or a request slot opens: bounded by the deadline.
        while (in_flight or self._waiting_for_slot) and time.monotonic() < deadline:
            self._poll_round(in_flight, queue)
            self._fill(in_flight, queue)
            self._pause(deadline)

    def _pause(self, deadline: float) -> None:
        """Sleep until something can be sent: the next poll that is due (once a request slot is free), or
        the slot a waiting submit needs; never past ``deadline``."""
        slot = self._budget.request_at()
        poll = self._schedule.next_at()
        wake = [max(poll, slot)] if poll is not None else []
        if self._waiting_for_slot:
            wake.append(slot)
        if wake:
            pause = min(min(wake), deadline) - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def _units(self, uris: Sequence[str]) -> int:
        """What a batch holds of the budget: its images, or its files times the pages estimated per file."""
        return len(uris) * (self._pages.per_file if self.kind == "files" else 1)

    def _recover(self) -> list[Batch]:
        """Batches to submit again: interrupted mid-submit (ambiguous), or failed to submit last time."""
        queue = self._journal.batches(BatchState.QUEUED, BatchState.SUBMITTING, BatchState.SUBMIT_FAILED)
        for batch in queue:
            if batch.state == BatchState.SUBMITTING:
                self._journal.note("ambiguous", batch.id, "no operation recorded after 'submitting': resubmit")
            elif batch.uncertain:
                self._journal.note(
                    "ambiguous", batch.id, f"the failed submit may have reached the server: {batch.reason}; resubmit"
                )
        return queue

    def _reattach(self) -> dict[str, str]:
        """Batches with an operation name, to be polled at once (the first poll re-attaches them)."""
        return {batch.id: batch.operation for batch in self._journal.batches(BatchState.SUBMITTED)}

    def _fill(self, in_flight: dict[str, str], queue: list[Batch]) -> None:
        """Submit while the budget has room: retries first, then new batches; every pass uses up one batch."""
        self._waiting_for_slot = False
        while self._failures_in_a_row < MAX_SUBMIT_FAILURES_IN_A_ROW:
            uris = list(queue[0].uris) if queue else self._journal.new_inputs(self.per_request)
            if not uris or not self._budget.admits(self._units(uris)):
                return
            if not self._budget.may_request():
                self._waiting_for_slot = True
                return
            if queue:
                batch = queue.pop(0)
                if not self._journal.retry(batch.id, self.max_attempts):
                    continue
            else:
                batch_id = self._batch_id(uris)
                batch = self._journal.open_batch(batch_id, uris, f"{self.output_prefix}batch-{batch_id}/")
            self._submit(batch, in_flight)

    def _submit(self, batch: Batch, in_flight: dict[str, str]) -> None:
        try:
            request = self._request(batch.uris, batch.output_prefix)
        except ValidationError as error:  # inputs were checked one by one: a batch-level rule broke
            self._journal.finish(batch.id, error=f"INVALID_ARGUMENT: {error}", outputs={})
            return
        with sigint_deferred():  # no Ctrl-C between the RPC's return and recording its operation
            try:
                send = (
                    self.client.async_batch_annotate_files
                    if self.kind == "files"
                    else self.client.async_batch_annotate_images
                )
                self._budget.spend()
                operation = send(request)
                if not operation.name:  # nothing to wait for, yet the server may have started an operation
                    raise ApiError("the submit's answer names no operation", code=code_pb2.UNKNOWN)
            except ValidationError as error:  # a rule the client checks on the whole request: nothing was sent
                self._journal.finish(batch.id, error=f"INVALID_ARGUMENT: {error}", outputs={})
                return
            except VisionError as error:  # ApiError, TransportError: the server may or may not have seen it
                self._failures_in_a_row += 1
                uncertain = not isinstance(error, ApiError) or (
                    not isinstance(error, ConnectError) and error.code in _MAYBE_SEEN
                )
                self._journal.submit_failed(
                    batch.id, f"submit failed ({_reason(error)})", uncertain=uncertain, max_attempts=self.max_attempts
                )
                return
            self._notify("sent", batch.id)
            self._journal.submitted(batch.id, operation.name)
        self._failures_in_a_row = 0
        in_flight[batch.id] = operation.name
        self._schedule.add(batch.id)
        self._budget.hold(batch.id, self._units(batch.uris))
        self._submitted_at[batch.id] = time.monotonic()

    def _poll_round(self, in_flight: dict[str, str], queue: list[Batch]) -> None:
        """Ask for the operations that are due (one GetOperation each); complete those that are done."""
        for batch_id in self._schedule.due():
            if not self._budget.may_request():
                return  # the rest stay due: polled once the request budget has room
            name = in_flight[batch_id]
            self._budget.spend()
            try:
                operation = self._poll(name)
            except NotFound as error:
                self._journal.finish(batch_id, error=f"operation {name} lost: {_reason(error)}", outputs={})
                self._forget(batch_id, in_flight)
                continue
            if operation is not None and operation.done:
                self._observe(batch_id, operation)
                queue.extend(self._complete(batch_id, operation))
                self._forget(batch_id, in_flight)
            else:
                self._schedule.polled(batch_id)  # running, or no usable answer: asked again when due

    def _poll(self, name: str) -> Operation[Any] | None:
        """The operation ``name`` as the server says now; None when the answer is no usable answer about it:
        a failure (transient, or a body that is no Operation), another operation, or done without a result
        of the expected type. ``NotFound`` propagates: the operation is lost."""
        try:
            operation = self.client.get_operation(name, response_type=self._response_type)
        except NotFound:
            raise
        except VisionError:
            return None
        if operation.name != name:
            return None
        if operation.done:
            try:
                operation.result(timeout=0)
            except OperationError:
                pass  # a failure the operation reports: _complete decides
            except VisionError:  # neither response nor error, or a response of another type
                return None
        return operation

    def _forget(self, batch_id: str, in_flight: dict[str, str]) -> None:
        del in_flight[batch_id]
        self._schedule.remove(batch_id)
        self._budget.release(batch_id)
        self._submitted_at.pop(batch_id, None)

    def _observe(self, batch_id: str, operation: Operation[Any]) -> None:
        """Learn from a done operation how long operations take (for the first polls of later ones)."""
        seconds = _service_seconds(operation)
        if seconds is None and batch_id in self._submitted_at:  # no usable times: as seen from here
            seconds = time.monotonic() - self._submitted_at[batch_id]
        if seconds is not None:
            self._schedule.observe(seconds)

    def _count_pages(self, batch: Batch) -> None:
        """Count each file's pages from the names of its shards (``{prefix}{k}/output-1-to-N.json``)."""
        if self.storage is None or self.kind != "files":
            return
        try:
            listed = self.storage.list(batch.output_prefix)
        except Exception:  # an estimate only: a failed listing must not fail the run
            return
        pages: dict[str, int] = {}
        for uri in listed:
            k, _, name = uri[len(batch.output_prefix) :].partition("/")
            match = SHARD_NAME.fullmatch(name)
            if match and k.isdigit():
                pages[k] = max(pages.get(k, 0), min(int(match[2]), MAX_PAGES_PER_FILE))
        for count in pages.values():
            self._pages.count(count)

    def _complete(self, batch_id: str, operation: Operation[Any]) -> list[Batch]:
        """Record a finished operation; returns the batches to submit again (split, or a transient failure)."""
        (batch,) = self._journal.batches(batch_id=batch_id)
        try:
            response = operation.result(timeout=0)
        except OperationError as error:
            if error.code in _TRANSIENT:  # the service's failure, not the inputs': the same batch again
                reason = f"operation {operation.name} failed ({_reason(error.error)})"
                spent = self._journal.submit_failed(batch_id, reason, uncertain=False, max_attempts=self.max_attempts)
                return [] if spent else [batch]
            if len(batch.uris) > 1 and error.code in _INPUT_ERRORS:
                return self._split(batch, error)
            self._journal.finish(batch_id, error=_reason(error.error), outputs={})
            return []
        outputs = {uri: _output_uri(response, self.kind, k, batch.output_prefix) for k, uri in enumerate(batch.uris)}
        self._journal.finish(batch_id, error=None, outputs=outputs)
        self._count_pages(batch)
        return []

    def _split(self, batch: Batch, error: OperationError) -> list[Batch]:
        """Fail the input the error names (if one) and requeue the rest; else requeue both halves."""
        named = [uri for uri in batch.uris if uri in error.error.message]
        culprit = named[0] if len(named) == 1 else None
        rest = [uri for uri in batch.uris if uri != culprit]
        parts = [rest] if culprit is not None else [rest[: len(rest) // 2], rest[len(rest) // 2 :]]
        groups = []
        for uris in (p for p in parts if p):
            group_id = self._batch_id(uris)
            groups.append((group_id, uris, f"{self.output_prefix}batch-{group_id}/"))
        return self._journal.split(batch.id, _reason(error.error), culprit=culprit, groups=groups)

    def _request(self, uris: Sequence[str], prefix: str) -> Any:
        """One batch's request: files get ``{prefix}{k}/`` each, images share ``prefix``."""
        common: dict[str, Any] = {"features": self.features, "batch_size": self.shard_size, "version": self.version}
        if self.kind == "images":
            return async_images_request(list(uris), output_uri=prefix, **common)
        parts = [async_files_request(uri, output_uri=f"{prefix}{k}/", **common) for k, uri in enumerate(uris)]
        for part in parts[1:]:
            parts[0].requests.extend(part.requests)
        return parts[0]

    def _problem(self, uri: str) -> str | None:
        """Why this input cannot be sent (it fails at once, in no batch), or None."""
        try:
            request = self._request((uri,), self.output_prefix)
            validate(method_for_request(request), request)
        except ValidationError as error:
            return f"INVALID_ARGUMENT: {error}"
        return None

    def _fixed_settings(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "output_prefix": self.output_prefix,
            "version": self.version,
            "features": ",".join(self.features),
        }

    def _batch_id(self, uris: Sequence[str]) -> str:
        """16 hex digits of SHA-256 over the settings and the inputs: same batch, same output prefix."""
        text = json.dumps([self._fixed_settings(), self.shard_size, list(uris)], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _notify(self, event: str, batch_id: str) -> None:
        if self.on_event is not None:
            self.on_event(event, batch_id)


def _reason(error: VisionError) -> str:
    return f"{error.code_name}: {error.message}" if isinstance(error, ApiError) else f"TRANSPORT: {error}"


def _service_seconds(operation: Operation[Any]) -> float | None:
    """How long the service says a done operation took (update_time - create_time), or None."""
    try:
        metadata = operation.metadata
    except VisionError:  # metadata of an unknown type: no times
        return None
    if metadata is None or not (metadata.create_time.seconds and metadata.update_time.seconds):
        return None
    seconds = (metadata.update_time.ToNanoseconds() - metadata.create_time.ToNanoseconds()) / 1e9
    return seconds if seconds > 0 else None


def _output_uri(response: Any, kind: str, k: int, prefix: str) -> str:
    """Where input ``k`` of a batch was written, as the operation's response says."""
    if kind == "images":
        return str(response.output_config.gcs_destination.uri or prefix)
    if k < len(response.responses):
        return str(response.responses[k].output_config.gcs_destination.uri)
    return f"{prefix}{k}/"
