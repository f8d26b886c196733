"""WaitOperation under load: waiting callers never hold the threads that serve everyone else's calls.

The gRPC front once ran every RPC on one of 16 worker threads and a WaitOperation kept its thread for
as long as it waited (up to 60 s): 16 waiters stopped every other client's GetOperation for 19-24 s.
Here 64 callers wait (long timeouts) on operations that take a minute; then another client's
GetOperation calls must each come back quickly, and cancelling the operations must release every waiter.
Everything is bounded: RPC deadlines on every call, joins with timeouts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from vision_grpc._core.methods import METHODS, OPERATIONS
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc.emulator import EmulatorService
from vision_grpc.testing import Emulator

WAITERS = 64
READS = 20
WAIT_SECONDS = 8.0  # the waiters' own timeout: before the fix, what bounds this test's failure
READ_BOUND = 0.5  # seconds one GetOperation may take while the waiters wait


@pytest.fixture
def slow() -> Iterator[Emulator]:
    with Emulator(operation_seconds=60) as emulator:
        emulator.put_object("gs://load/in.png", b"\x89PNG\r\n\x1a\n")
        yield emulator


def _request(k: int) -> v1.AsyncBatchAnnotateImagesRequest:
    return v1.AsyncBatchAnnotateImagesRequest(
        requests=[
            v1.AnnotateImageRequest(
                image=v1.Image(source=v1.ImageSource(image_uri="gs://load/in.png")),
                features=[v1.Feature(type=v1.Feature.LABEL_DETECTION)],
            )
        ],
        output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=f"gs://load/out/{k}/")),
    )


def _submit(stub: Any, k: int) -> str:
    return str(stub.AsyncBatchAnnotateImages(_request(k), timeout=5).name)


def test_64_waiters_do_not_starve_other_clients(slow: Emulator) -> None:
    with grpc.insecure_channel(slow.grpc_target) as waiting, grpc.insecure_channel(slow.grpc_target) as other:
        names = [_submit(v1_grpc.ImageAnnotatorStub(other), k) for k in range(WAITERS)]  # type: ignore[no-untyped-call]
        waits = operations_pb2_grpc.OperationsStub(waiting)
        outcomes: list[Any] = [None] * WAITERS
        released_at: list[float] = [0.0] * WAITERS

        def wait(k: int) -> None:
            request = operations_pb2.WaitOperationRequest(
                name=names[k], timeout=duration_pb2.Duration(seconds=int(WAIT_SECONDS))
            )
            try:
                outcomes[k] = waits.WaitOperation(request, timeout=WAIT_SECONDS + 5)
            except grpc.RpcError as error:  # collected and asserted below
                outcomes[k] = error
            released_at[k] = time.monotonic()

        threads = [threading.Thread(target=wait, args=(k,), daemon=True) for k in range(WAITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while sum(c.method == "WaitOperation" for c in slow.service.calls) < WAITERS and time.monotonic() < deadline:
            time.sleep(0.01)  # every waiter is in (as far as the server goes) before the reads start

        ops = operations_pb2_grpc.OperationsStub(other)
        took = []
        for k in range(READS):
            start = time.monotonic()
            try:
                reply = ops.GetOperation(operations_pb2.GetOperationRequest(name=names[k]), timeout=2.0)
            except grpc.RpcError as error:
                pytest.fail(f"GetOperation {k} failed behind the waiters: {error.code()}")
            took.append(time.monotonic() - start)
            assert not reply.done
        assert max(took) < READ_BOUND, f"GetOperation took up to {max(took):.3f}s while {WAITERS} callers waited"

        cancelled_at = time.monotonic()
        for name in names:
            ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=2.0)
        for thread in threads:
            thread.join(timeout=WAIT_SECONDS + 10)
        assert not any(thread.is_alive() for thread in threads)
        failures = [o for o in outcomes if not isinstance(o, operations_pb2.Operation)]
        assert failures == []
        assert all(o.done and o.error.code == 1 for o in outcomes)  # CANCELLED: released by the cancel
        assert max(released_at) - cancelled_at < 2.0  # woken by the cancels, not by their timeout


def test_async_waits_hold_no_worker_and_end_at_completion_or_close(
    new_service: Callable[..., EmulatorService],
) -> None:
    """``EmulatorService.call_async`` with a pool of 2 threads: 32 waits, and still other calls get through."""
    submit, get, wait = (
        METHODS[("v1", "AsyncBatchAnnotateImages")],
        OPERATIONS["GetOperation"],
        OPERATIONS["WaitOperation"],
    )
    slow, quick = new_service(operation_seconds=60), new_service(operation_seconds=0.3)
    for service in (slow, quick):
        service.storage.write("gs://load/in.png", b"\x89PNG\r\n\x1a\n")

    async def scenario(pool: ThreadPoolExecutor) -> None:
        names = [str(slow.call(submit, _request(k), {}).name) for k in range(32)]  # type: ignore[attr-defined]
        waits = [
            asyncio.ensure_future(
                slow.call_async(wait, operations_pb2.WaitOperationRequest(name=n), {}, timeout=30, executor=pool)
            )
            for n in names
        ]
        await asyncio.sleep(0.2)
        start = time.monotonic()
        read: Any = await slow.call_async(get, operations_pb2.GetOperationRequest(name=names[0]), {}, executor=pool)
        assert not read.done and time.monotonic() - start < 0.5  # the 2 threads are free
        start = time.monotonic()
        slow.close()  # releases the waiters, undone
        released: list[Any] = await asyncio.wait_for(asyncio.gather(*waits), 5)
        assert time.monotonic() - start < 1.0 and not any(op.done for op in released)

        names = [str(quick.call(submit, _request(k), {}).name) for k in range(32)]  # type: ignore[attr-defined]
        done = await asyncio.wait_for(
            asyncio.gather(
                *(
                    quick.call_async(wait, operations_pb2.WaitOperationRequest(name=n), {}, timeout=30, executor=pool)
                    for n in names
                )
            ),
            10,
        )
        assert all(op.done and op.HasField("response") for op in done)  # type: ignore[attr-defined]

    with ThreadPoolExecutor(max_workers=2) as pool:
        asyncio.run(scenario(pool))
