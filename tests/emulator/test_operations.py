"""google.longrunning.Operations: life cycle, wait, cancel, delete, list, errors, bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2

from tests._support import RPC_TIMEOUT, FakeClock, make_pdf, wait_done
from vision_grpc._core.methods import METHODS, OPERATIONS
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc.emulator import EmulatorService
from vision_grpc.errors import ApiError
from vision_grpc.testing import Emulator

State = v1.OperationMetadata.State


def _files_request(uri: str, out: str) -> v1.AsyncBatchAnnotateFilesRequest:
    return v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            v1.AsyncAnnotateFileRequest(
                input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri=uri), mime_type="application/pdf"),
                features=[v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)],
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=out)),
            )
        ]
    )


def _metadata(operation: operations_pb2.Operation) -> v1.OperationMetadata:
    metadata = v1.OperationMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


@pytest.fixture(scope="module")
def slow() -> Iterator[tuple[Emulator, Any, Any]]:
    """An emulator whose operations take a minute: for pending-state tests. Yields (emulator, files stub, ops)."""
    with Emulator(operation_seconds=60) as emulator, grpc.insecure_channel(emulator.grpc_target) as channel:
        emulator.put_object("gs://slow/in.pdf", make_pdf(2))
        yield emulator, v1_grpc.ImageAnnotatorStub(channel), operations_pb2_grpc.OperationsStub(channel)


def _submit_slow(slow: tuple[Emulator, Any, Any]) -> str:
    _, stub, _ = slow
    request = _files_request("gs://slow/in.pdf", "gs://slow/out/")
    return str(stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name)


def test_life_cycle_follows_the_clock(new_service: Callable[..., EmulatorService]) -> None:
    clock = FakeClock(1_700_000_000.0)
    service = new_service(operation_seconds=2.0, clock=clock)
    service.storage.write("gs://b/in.pdf", make_pdf(3))
    method, get = METHODS[("v1", "AsyncBatchAnnotateFiles")], OPERATIONS["GetOperation"]
    submitted: Any = service.call(method, _files_request("gs://b/in.pdf", "gs://b/out/"), {})
    start = _metadata(submitted)
    assert (start.state, submitted.done) == (State.CREATED, False)
    assert start.create_time == start.update_time and start.create_time.ToSeconds() == 1_700_000_000

    def read() -> Any:
        return service.call(get, operations_pb2.GetOperationRequest(name=submitted.name), {})

    clock.advance(0.6)
    running = read()
    assert (_metadata(running).state, running.done) == (State.RUNNING, False)
    assert _metadata(running).update_time.ToMilliseconds() == 1_700_000_000_500  # RUNNING from a quarter in
    assert service.storage.list("gs://b/out/") == []  # nothing is written before the due time
    clock.advance(1.5)
    assert service.operations.finisher.wait_idle()  # the job runs on a worker, never in a read
    done = read()
    assert (_metadata(done).state, done.done, done.HasField("response")) == (State.DONE, True, True)
    assert service.storage.list("gs://b/out/") == ["gs://b/out/output-1-to-3.json"]
    service.storage.write("gs://b/out/output-1-to-3.json", b"replaced")
    clock.advance(10)
    assert read() == done  # computed exactly once; later reads change nothing
    assert service.storage.read("gs://b/out/output-1-to-3.json") == b"replaced"


def test_zero_second_operations_are_created_then_done(new_service: Callable[..., EmulatorService]) -> None:
    clock = FakeClock()
    service = new_service(operation_seconds=0, clock=clock)
    service.storage.write("gs://b/in.pdf", make_pdf(1))
    request = _files_request("gs://b/in.pdf", "gs://b/o/")
    submitted: Any = service.call(METHODS[("v1", "AsyncBatchAnnotateFiles")], request, {})
    assert _metadata(submitted).state == State.CREATED and not submitted.done
    assert service.operations.finisher.wait_idle()
    done: Any = service.call(OPERATIONS["GetOperation"], operations_pb2.GetOperationRequest(name=submitted.name), {})
    assert _metadata(done).state == State.DONE and done.done


def test_states_over_grpc_end_done(stub_v1: Any, ops: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}in.pdf", make_pdf(1))
    submitted = stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}in.pdf", f"{prefix}o/"), timeout=RPC_TIMEOUT)
    states = [_metadata(submitted).state]
    deadline = time.monotonic() + 5
    while states[-1] != State.DONE and time.monotonic() < deadline:
        states.append(_metadata(ops.GetOperation(operations_pb2.GetOperationRequest(name=submitted.name))).state)
        time.sleep(0.01)
    assert states[0] == State.CREATED and states[-1] == State.DONE
    assert states == sorted(states)


@pytest.fixture
def stub_v1(channel: grpc.Channel) -> Any:
    return v1_grpc.ImageAnnotatorStub(channel)


def test_wait_operation_returns_when_done(stub_v1: Any, ops: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}in.pdf", make_pdf(2))
    name = stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}in.pdf", f"{prefix}o/"), timeout=RPC_TIMEOUT).name
    started = time.monotonic()
    operation = ops.WaitOperation(operations_pb2.WaitOperationRequest(name=name), timeout=RPC_TIMEOUT)
    assert operation.done and operation.HasField("response")
    assert time.monotonic() - started < 2


def test_wait_operation_honours_its_timeout(slow: tuple[Emulator, Any, Any]) -> None:
    name, ops = _submit_slow(slow), slow[2]
    started = time.monotonic()
    request = operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(nanos=200_000_000))
    operation = ops.WaitOperation(request, timeout=RPC_TIMEOUT)
    assert not operation.done and 0.15 < time.monotonic() - started < 3


def test_wait_operation_is_released_by_close(new_service: Callable[..., EmulatorService]) -> None:
    service = new_service(operation_seconds=60)
    service.storage.write("gs://b/in.pdf", make_pdf(1))
    op: Any = service.call(METHODS[("v1", "AsyncBatchAnnotateFiles")], _files_request("gs://b/in.pdf", "gs://b/o/"), {})
    results: list[Any] = []
    waiter = threading.Thread(
        target=lambda: results.append(
            service.call(OPERATIONS["WaitOperation"], operations_pb2.WaitOperationRequest(name=op.name), {}, timeout=30)
        )
    )
    waiter.start()
    time.sleep(0.1)
    service.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive() and not results[0].done


def test_cancel_pending_operation(slow: tuple[Emulator, Any, Any]) -> None:
    name, ops = _submit_slow(slow), slow[2]
    ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=RPC_TIMEOUT)
    operation = ops.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_TIMEOUT)
    assert operation.done and operation.error.code == code_pb2.CANCELLED
    assert _metadata(operation).state == State.CANCELLED
    waited = ops.WaitOperation(operations_pb2.WaitOperationRequest(name=name), timeout=RPC_TIMEOUT)
    assert waited.error.code == code_pb2.CANCELLED


def test_cancel_done_operation_is_a_no_op(stub_v1: Any, ops: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}in.pdf", make_pdf(1))
    name = stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}in.pdf", f"{prefix}o/"), timeout=RPC_TIMEOUT).name
    done = wait_done(ops, name)
    ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=RPC_TIMEOUT)
    assert ops.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_TIMEOUT) == done


def test_delete_then_not_found(slow: tuple[Emulator, Any, Any]) -> None:
    name, ops = _submit_slow(slow), slow[2]
    ops.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name), timeout=RPC_TIMEOUT)
    for call, request in [
        (ops.GetOperation, operations_pb2.GetOperationRequest(name=name)),
        (ops.DeleteOperation, operations_pb2.DeleteOperationRequest(name=name)),
        (ops.CancelOperation, operations_pb2.CancelOperationRequest(name=name)),
        (ops.WaitOperation, operations_pb2.WaitOperationRequest(name=name)),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert name in info.value.details()


def test_list_pages_and_done_filter(slow: tuple[Emulator, Any, Any]) -> None:
    names = {_submit_slow(slow) for _ in range(3)}
    ops = slow[2]
    seen: list[str] = []
    token = ""
    for _ in range(20):
        reply = ops.ListOperations(
            operations_pb2.ListOperationsRequest(name="operations", page_size=2, page_token=token), timeout=RPC_TIMEOUT
        )
        assert len(reply.operations) <= 2
        seen += [op.name for op in reply.operations]
        token = reply.next_page_token
        if not token:
            break
    assert names <= set(seen) and len(seen) == len(set(seen))
    pending = ops.ListOperations(operations_pb2.ListOperationsRequest(filter="done = false"), timeout=RPC_TIMEOUT)
    assert names <= {op.name for op in pending.operations}
    finished = ops.ListOperations(operations_pb2.ListOperationsRequest(filter="done=true"), timeout=RPC_TIMEOUT)
    assert not names & {op.name for op in finished.operations}


def test_list_rejects_foreign_page_token(ops: Any) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ops.ListOperations(operations_pb2.ListOperationsRequest(page_token="bogus"), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_missing_input_fails_the_operation(stub_v1: Any, ops: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}there.pdf", make_pdf(1))
    request = _files_request(f"{prefix}there.pdf", f"{prefix}o1/")
    request.requests.extend(_files_request(f"{prefix}absent.pdf", f"{prefix}o2/").requests)
    operation = wait_done(ops, stub_v1.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name)
    assert operation.error.code == code_pb2.NOT_FOUND
    assert f"{prefix}absent.pdf" in operation.error.message
    assert not operation.HasField("response")
    assert emulator.list_objects(f"{prefix}o") == []  # nothing written: inputs are read first


def test_unreadable_document_fails_the_operation(stub_v1: Any, ops: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}fake.pdf", b"not a pdf at all")
    operation = wait_done(ops, stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}fake.pdf", f"{prefix}o/")).name)
    assert operation.error.code == code_pb2.INVALID_ARGUMENT and "fake.pdf" in operation.error.message


def test_store_evicts_oldest_done_and_refuses_when_all_pending(new_service: Callable[..., EmulatorService]) -> None:
    clock = FakeClock()
    service = new_service(operation_seconds=1.0, max_operations=2, clock=clock)
    service.storage.write("gs://b/in.pdf", make_pdf(1))
    submit = METHODS[("v1", "AsyncBatchAnnotateFiles")]
    first: Any = service.call(submit, _files_request("gs://b/in.pdf", "gs://b/1/"), {})
    service.call(submit, _files_request("gs://b/in.pdf", "gs://b/2/"), {})
    with pytest.raises(ApiError) as info:
        service.call(submit, _files_request("gs://b/in.pdf", "gs://b/3/"), {})
    assert info.value.code == code_pb2.RESOURCE_EXHAUSTED
    clock.advance(5)  # both are past due, and nobody read them
    assert service.operations.finisher.wait_idle()  # the workers finish them (a submit never runs a job)
    service.call(submit, _files_request("gs://b/in.pdf", "gs://b/3/"), {})
    assert len(service.store) == 2 and service.store.get(first.name) is None
    # Evicted only after its job ran: its outputs are written (and the other past-due one's too).
    assert service.storage.list("gs://b/1/") == ["gs://b/1/output-1-to-1.json"]
    assert service.storage.list("gs://b/2/") == ["gs://b/2/output-1-to-1.json"]


def test_outputs_are_written_though_nobody_polls(tmp_path: Any) -> None:
    """The finisher thread runs a job at its due time; no GetOperation/WaitOperation/ListOperations needed."""
    with (
        Emulator(storage_dir=tmp_path, operation_seconds=0.3) as emulator,
        grpc.insecure_channel(emulator.grpc_target) as channel,
    ):
        emulator.put_object("gs://b/in.pdf", make_pdf(2))
        stub = v1_grpc.ImageAnnotatorStub(channel)
        stub.AsyncBatchAnnotateFiles(_files_request("gs://b/in.pdf", "gs://b/out/"), timeout=RPC_TIMEOUT)
        deadline = time.monotonic() + 20  # bounded; the outputs normally appear after 0.3 s
        while not emulator.list_objects("gs://b/out/") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emulator.list_objects("gs://b/out/") == ["gs://b/out/output-1-to-2.json"]
        assert [call.method for call in emulator.service.calls] == ["AsyncBatchAnnotateFiles"]
        finisher = emulator.service.operations.finisher
        assert finisher.running and finisher.pending() == 0
    assert not finisher.running  # Emulator.stop() joined it


def test_close_stops_the_finisher_and_reads_still_finish(new_service: Callable[..., EmulatorService]) -> None:
    clock = FakeClock()
    service = new_service(operation_seconds=1.0, clock=clock)
    service.storage.write("gs://b/in.pdf", make_pdf(1))
    submitted: Any = service.call(
        METHODS[("v1", "AsyncBatchAnnotateFiles")], _files_request("gs://b/in.pdf", "gs://b/o/"), {}
    )
    service.close()
    service.close()  # idempotent
    assert not service.operations.finisher.running
    clock.advance(2)
    done: Any = service.call(OPERATIONS["GetOperation"], operations_pb2.GetOperationRequest(name=submitted.name), {})
    assert done.done and service.storage.list("gs://b/o/") == ["gs://b/o/output-1-to-1.json"]


def test_injected_operation_fault_fails_the_next_operation(
    stub_v1: Any, ops: Any, emulator: Emulator, prefix: str
) -> None:
    emulator.put_object(f"{prefix}in.pdf", make_pdf(1))
    emulator.service.faults.fail_next_operation("UNAVAILABLE", method="AsyncBatchAnnotateFiles")
    assert [f.code for f in emulator.service.faults.pending_operations()] == [code_pb2.UNAVAILABLE]
    first = stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}in.pdf", f"{prefix}o1/"), timeout=RPC_TIMEOUT)
    failed = wait_done(ops, first.name)  # the submit call itself succeeded
    assert failed.error.code == code_pb2.UNAVAILABLE and "injected operation fault" in failed.error.message
    assert emulator.list_objects(f"{prefix}o1/") == []  # its job never ran
    second = stub_v1.AsyncBatchAnnotateFiles(_files_request(f"{prefix}in.pdf", f"{prefix}o2/"), timeout=RPC_TIMEOUT)
    assert wait_done(ops, second.name).HasField("response")  # used up: the next one succeeds
    assert emulator.service.faults.pending_operations() == []
    with pytest.raises(ValueError):
        emulator.service.faults.fail_next_operation("UNAVAILABLE", method="GetOperation")
    with pytest.raises(ValueError):
        emulator.service.faults.fail_next_operation("OK")


def test_unknown_operation_is_not_found(ops: Any) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ops.GetOperation(operations_pb2.GetOperationRequest(name="operations/0123456789abcdef"), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "operations/0123456789abcdef" in info.value.details()
