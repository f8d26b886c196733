"""No blocking: reading an operation never runs or waits for annotation work, which runs on a bounded pool.

Before, a GetOperation of a due operation ran its job itself, or waited on the operation's lock while the
single finisher thread ran it (polls took up to seconds). Now jobs run only on the finisher's workers (one
per core, at most 8), and no lock a read takes is held while a job runs. The first test blocks a job on
purpose, for as long as the test wants: every read still answers at once (with the old code the first
GetOperation would hit its deadline). The second measures reads while real OCR runs.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2

from tests._support import FakeClock, make_pdf, wait_done
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc.emulator import AnnotatorRegistry, ImageInput, _ocr
from vision_grpc.emulator._finisher import Finisher
from vision_grpc.emulator._store import OperationRecord
from vision_grpc.testing import Emulator

READ_TIMEOUT = 2.0  # an RPC deadline far above an answer's cost, far below the blocked job's time
State = v1.OperationMetadata.State


def _files(uri: str, out: str, feature: Any = v1.Feature.DOCUMENT_TEXT_DETECTION) -> v1.AsyncBatchAnnotateFilesRequest:
    return v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            v1.AsyncAnnotateFileRequest(
                input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri=uri), mime_type="application/pdf"),
                features=[v1.Feature(type=feature)],
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=out)),
            )
        ]
    )


class Gate:
    """An annotator that blocks until released (bounded), counting the pages it started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.pages = 0

    def __call__(self, image: ImageInput, feature: Any, response: Any) -> None:
        self.pages += 1
        self.started.set()
        self.release.wait(timeout=30)


@pytest.fixture
def gated() -> Iterator[tuple[Emulator, Gate, Any, Any]]:
    gate = Gate()
    registry = AnnotatorRegistry({"DOCUMENT_TEXT_DETECTION": gate})
    with (
        Emulator(operation_seconds=0, annotators=registry) as emulator,
        grpc.insecure_channel(emulator.grpc_target) as ch,
    ):
        try:
            yield emulator, gate, v1_grpc.ImageAnnotatorStub(ch), operations_pb2_grpc.OperationsStub(ch)
        finally:
            gate.release.set()


def _timed(call: Any, request: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = call(request, timeout=READ_TIMEOUT, **kwargs)
    return answer, time.perf_counter() - started


def test_reads_answer_while_a_job_is_stuck(gated: tuple[Emulator, Gate, Any, Any]) -> None:
    emulator, gate, stub, ops = gated
    emulator.put_object("gs://nb/in.pdf", make_pdf(3))
    name = stub.AsyncBatchAnnotateFiles(_files("gs://nb/in.pdf", "gs://nb/out/"), timeout=READ_TIMEOUT).name
    assert gate.started.wait(timeout=10)  # its job runs on a worker, and is stuck in its first page

    operation, took = _timed(ops.GetOperation, operations_pb2.GetOperationRequest(name=name))
    metadata = v1.OperationMetadata()
    assert operation.metadata.Unpack(metadata)
    assert (operation.done, metadata.state) == (False, State.RUNNING) and took < 1.0  # past due, not done
    listed, took = _timed(ops.ListOperations, operations_pb2.ListOperationsRequest(name="operations"))
    assert [(o.name, o.done) for o in listed.operations] == [(name, False)] and took < 1.0
    waited, took = _timed(
        ops.WaitOperation,
        operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(nanos=300_000_000)),
    )
    assert not waited.done and 0.25 < took < 1.5  # its own timeout, not the job's

    if emulator.service.operations.finisher.workers >= 2:  # another operation runs beside the stuck one
        emulator.put_object("gs://nb/label.pdf", make_pdf(1))
        other = stub.AsyncBatchAnnotateFiles(
            _files("gs://nb/label.pdf", "gs://nb/label-out/", v1.Feature.LABEL_DETECTION), timeout=READ_TIMEOUT
        ).name
        assert wait_done(ops, other, timeout=10).HasField("response")

    _, took = _timed(ops.CancelOperation, operations_pb2.CancelOperationRequest(name=name))
    assert took < 1.0
    cancelled = ops.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=READ_TIMEOUT)
    assert cancelled.done and cancelled.error.code == code_pb2.CANCELLED
    gate.release.set()
    assert emulator.service.operations.finisher.wait_idle(timeout=10)
    assert gate.pages == 1  # the cancelled job stopped before its next page
    assert emulator.list_objects("gs://nb/out/") == []  # and wrote nothing
    assert ops.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=READ_TIMEOUT) == cancelled


def test_jobs_run_on_a_bounded_pool_in_due_order() -> None:
    clock = FakeClock(100.0)
    release = threading.Event()
    started: list[str] = []
    running = threading.Semaphore(0)

    def run(record: OperationRecord) -> None:
        started.append(record.name)
        running.release()
        release.wait(timeout=30)

    finisher = Finisher(run, clock, workers=2)
    finisher.start()
    try:
        for index in range(5):
            record: Any = OperationRecord(f"op{index}", None, None, 0, 0, 100.0 + index)  # type: ignore[arg-type]
            finisher.schedule(record)
        clock.advance(10)
        finisher.nudge()
        assert running.acquire(timeout=10) and running.acquire(timeout=10)
        time.sleep(0.1)  # a third worker, if there were one, would have started by now
        assert (finisher.busy(), finisher.pending()) == (2, 3)
        release.set()
        assert finisher.wait_idle(timeout=10)
        assert sorted(started[:2]) == ["op0", "op1"] and sorted(started) == [f"op{i}" for i in range(5)]  # each once
    finally:
        release.set()
        finisher.close()
    assert not finisher.running


@pytest.mark.skipif(not _ocr.available(), reason="the ocr extra is not installed")
def test_get_operation_stays_fast_while_ocr_runs() -> None:
    pytest.importorskip("PIL.Image")
    from vision_grpc.demo import scan_pdf

    with (
        Emulator(operation_seconds=0.05, annotators=AnnotatorRegistry(ocr=True)) as emulator,
        grpc.insecure_channel(emulator.grpc_target) as channel,
    ):
        stub, ops = v1_grpc.ImageAnnotatorStub(channel), operations_pb2_grpc.OperationsStub(channel)
        prefix = f"gs://nb/{uuid.uuid4().hex}/"
        emulator.put_object(f"{prefix}scan.pdf", scan_pdf())
        emulator.put_object(f"{prefix}blank.pdf", make_pdf(1))
        others = [
            stub.AsyncBatchAnnotateFiles(_files(f"{prefix}blank.pdf", f"{prefix}o{i}/"), timeout=READ_TIMEOUT).name
            for i in range(2)
        ]
        for other in others:
            wait_done(ops, other, timeout=30)
        big = v1.AsyncBatchAnnotateFilesRequest()
        for index in range(3):  # three scanned pages: ~1.5 s of OCR each
            big.requests.extend(_files(f"{prefix}scan.pdf", f"{prefix}big{index}/").requests)
        name = stub.AsyncBatchAnnotateFiles(big, timeout=READ_TIMEOUT).name
        times: list[float] = []
        polls_while_running = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for other in others:
                _, took = _timed(ops.GetOperation, operations_pb2.GetOperationRequest(name=other))
                times.append(took)
            operation, took = _timed(ops.GetOperation, operations_pb2.GetOperationRequest(name=name))
            times.append(took)
            if operation.done:
                break
            polls_while_running += 1
            time.sleep(0.02)
        assert operation.done and operation.HasField("response"), operation.error
        # DONE only once every output is written.
        assert all(emulator.list_objects(f"{prefix}big{index}/") for index in range(3))
    times.sort()
    assert polls_while_running >= 20
    # Reads cost about a millisecond; on a loaded machine the scheduler adds some, never a job's seconds.
    assert statistics.median(times) < 0.025 and times[int(len(times) * 0.9)] < 0.1 and times[-1] < 1.0, times[-5:]
