"""One time budget per call, fail-fast connection errors, and waiters that all fall back to polling.

Sans-IO: the flows are driven with a fake clock and scripted answers (see ``tests._support.Script``).
"""

from __future__ import annotations

from typing import Any

import pytest
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from tests._support import Script
from vision_grpc._core.methods import METHODS, OPERATIONS, method_for_call
from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc._flows.retry import Call, call_flow
from vision_grpc._flows.wait import WaitPlan, WaitSupport, wait_flow
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc.errors import ConnectError, Unavailable, api_error

GET = OPERATIONS["GetOperation"]
SUBMIT = METHODS[("v1", "AsyncBatchAnnotateFiles")]


def refused() -> ConnectError:
    return ConnectError("cannot connect to 127.0.0.1:1: Connection refused")


def test_the_timeout_is_the_budget_of_the_whole_call() -> None:
    script = Script([api_error(code_pb2.UNAVAILABLE, "busy")] * 1000)
    with pytest.raises(Unavailable):
        script.run(
            call_flow(
                GET,
                operations_pb2.GetOperationRequest(name="operations/x"),
                budget=2.0,
                retry=RetryPolicy(),
                clock=script.clock,
                rng=lambda: 1.0,
            )
        )
    assert script.clock.now <= 2.0
    assert len(script.calls) > 3  # it did retry, within the budget
    assert all(call.timeout is not None and call.timeout <= 2.0 for call in script.calls)
    assert script.calls[-1].timeout < script.calls[0].timeout  # each attempt gets what is left


@pytest.mark.parametrize("method", [GET, SUBMIT], ids=["get", "submit"])
def test_an_unreachable_endpoint_fails_within_the_connect_deadline(method: Any) -> None:
    script = Script([refused()] * 1000)
    request = operations_pb2.GetOperationRequest(name="operations/x")
    with pytest.raises(ConnectError, match="127.0.0.1:1"):
        script.run(call_flow(method, request, budget=600.0, retry=RetryPolicy(), clock=script.clock, rng=lambda: 1.0))
    assert script.clock.now <= RetryPolicy().connect_deadline
    assert len(script.calls) >= 2  # a refused connection or two is ridden out


def test_a_refused_connection_then_success_is_retried_even_for_a_submit() -> None:
    script = Script([refused(), refused(), "ok"])
    assert (
        script.run(
            call_flow(
                SUBMIT,
                v1.AsyncBatchAnnotateFilesRequest(),
                budget=60.0,
                retry=RetryPolicy(),
                clock=script.clock,
                rng=lambda: 1.0,
            )
        )
        == "ok"
    )


def test_a_service_sent_unavailable_is_still_retried_for_the_whole_budget() -> None:
    script = Script([api_error(code_pb2.UNAVAILABLE, "busy")] * 30 + ["ok"])
    assert (
        script.run(
            call_flow(
                GET,
                operations_pb2.GetOperationRequest(),
                budget=600.0,
                retry=RetryPolicy(),
                clock=script.clock,
                rng=lambda: 1.0,
            )
        )
        == "ok"
    )
    assert script.clock.now > RetryPolicy().connect_deadline


def test_every_concurrent_waiter_falls_back_when_wait_operation_is_unimplemented() -> None:
    """Two waiters share one client's WaitSupport; both WaitOperation calls are in flight when the
    first UNIMPLEMENTED arrives. The second must fall back too, not raise."""
    support = WaitSupport()
    plan = WaitPlan(PollPolicy(jitter=0.0), RetryPolicy(), rpc_timeout=5.0, timeout=60.0)
    running = operations_pb2.Operation(name="operations/a")
    waiters = [wait_flow(operations_pb2.Operation(name=f"operations/{k}"), plan, support) for k in "ab"]
    first = [next(w) for w in waiters]
    assert all(isinstance(a, Call) and a.method.name == "WaitOperation" for a in first)
    unimplemented = api_error(code_pb2.UNIMPLEMENTED, "WaitOperation is not implemented")
    results = []
    for waiter in waiters:  # both answers arrive after both calls went out
        action = waiter.throw(unimplemented)
        while not isinstance(action, Call):
            action = waiter.send(None)  # a Sleep before the first poll
        assert action.method.name == "GetOperation"
        done = operations_pb2.Operation(name=running.name, done=True)
        try:
            waiter.send(done)
        except StopIteration as stop:
            results.append(stop.value)
    assert [r.done for r in results] == [True, True]
    assert support.available is False


def test_a_request_of_another_method_is_refused_naming_the_expected_types() -> None:
    with pytest.raises(TypeError) as caught:
        method_for_call("AsyncBatchAnnotateFiles", v1.BatchAnnotateImagesRequest(), "async_batch_annotate_files")
    message = str(caught.value)
    assert "v1.AsyncBatchAnnotateFilesRequest or v1p4beta1.AsyncBatchAnnotateFilesRequest" in message
    assert "batch_annotate_images()" in message
    assert method_for_call("AsyncBatchAnnotateFiles", v1p4beta1.AsyncBatchAnnotateFilesRequest(), "x").version == (
        "v1p4beta1"
    )
    with pytest.raises(TypeError, match="got dict"):
        method_for_call("BatchAnnotateImages", {}, "batch_annotate_images")
