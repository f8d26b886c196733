"""Retry and wait flows, driven with real Operation protos, a fake clock and scripted answers."""

from __future__ import annotations

from typing import Any

import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from tests._support import Script, names
from vision_grpc._core.methods import METHODS, OPERATIONS
from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc._flows.lro import metadata_of, result_of
from vision_grpc._flows.retry import call_flow
from vision_grpc._flows.wait import WaitPlan, WaitSupport, wait_flow
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc.errors import (
    ApiError,
    ConnectError,
    InvalidArgument,
    OperationError,
    OperationTimeout,
    Unavailable,
    VisionError,
    api_error,
    from_status,
)

GET = OPERATIONS["GetOperation"]
SUBMIT = METHODS[("v1", "AsyncBatchAnnotateFiles")]
SYNC = METHODS[("v1", "BatchAnnotateImages")]
BETA_SYNC = METHODS[("v1p4beta1", "BatchAnnotateImages")]


def unavailable(sent: bool = True, retry_after: float | None = None) -> ApiError:
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="try later")
    if retry_after is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(retry_after)))
        status.details.add().Pack(info)
    if not sent:  # the transports' type for a request that never reached a server
        return ConnectError(status.message, status=status)
    return from_status(status)


def make_operation(
    name: str = "operations/1",
    *,
    done: bool = False,
    response: Any = None,
    error: status_pb2.Status | None = None,
    state: int = v1.OperationMetadata.RUNNING,
) -> Any:
    op = operations_pb2.Operation(name=name, done=done)
    op.metadata.Pack(v1.OperationMetadata(state=state))
    if response is not None:
        op.response.Pack(response)
    if error is not None:
        op.error.CopyFrom(error)
    return op


RESPONSE = v1.AsyncBatchAnnotateFilesResponse(responses=[v1.AsyncAnnotateFileResponse()])
DONE = make_operation(done=True, response=RESPONSE, state=v1.OperationMetadata.DONE)


@pytest.mark.parametrize(
    ("method", "answers", "calls", "raises"),
    [
        pytest.param(SYNC, [unavailable(), unavailable(), "ok"], 3, None, id="idempotent-retried"),
        pytest.param(GET, [api_error(code_pb2.DEADLINE_EXCEEDED, "slow"), "ok"], 2, None, id="deadline-retried"),
        pytest.param(SUBMIT, [unavailable()], 1, Unavailable, id="submit-not-retried-once-sent"),
        pytest.param(SUBMIT, [unavailable(sent=False), "ok"], 2, None, id="submit-retried-when-never-sent"),
        pytest.param(BETA_SYNC, [unavailable()], 1, Unavailable, id="v1p4beta1-retries-nothing"),
        pytest.param(SYNC, [api_error(code_pb2.INVALID_ARGUMENT, "no")], 1, InvalidArgument, id="not-transient"),
        pytest.param(SYNC, [unavailable()] * 3, 3, Unavailable, id="max-attempts"),
    ],
)
def test_call_flow_retry_rules(method: Any, answers: list[Any], calls: int, raises: type | None) -> None:
    script = Script(answers)
    flow = call_flow(
        method,
        v1.BatchAnnotateImagesRequest(),
        budget=60,
        retry=RetryPolicy(max_attempts=3),
        clock=script.clock,
        rng=lambda: 1.0,
    )
    if raises is None:
        assert script.run(flow) == "ok"
    else:
        with pytest.raises(raises):
            script.run(flow)
    assert len(script.calls) == calls


def test_backoff_grows_by_multiplier_and_honours_retry_info() -> None:
    script = Script([unavailable(), unavailable(), unavailable(retry_after=5), "ok"])
    policy = RetryPolicy(initial=0.1, multiplier=2.0, maximum=60, max_attempts=5)
    script.run(
        call_flow(SYNC, v1.BatchAnnotateImagesRequest(), budget=60, retry=policy, clock=script.clock, rng=lambda: 1.0)
    )
    assert script.sleeps == pytest.approx([0.1, 0.2, 5.0])


def test_retry_stops_at_the_overall_deadline() -> None:
    script = Script([unavailable()] * 50)
    policy = RetryPolicy(initial=1, multiplier=2, maximum=8, deadline=10, max_attempts=50)
    with pytest.raises(Unavailable):
        script.run(
            call_flow(
                SYNC, v1.BatchAnnotateImagesRequest(), budget=600, retry=policy, clock=script.clock, rng=lambda: 1.0
            )
        )
    assert script.clock.now <= 10
    assert all(c.timeout is not None and c.timeout <= 10 for c in script.calls)


def _wait(
    script: Script,
    op: Any,
    *,
    timeout: float | None = 100.0,
    support: WaitSupport | None = None,
    policy: PollPolicy | None = None,
) -> Any:
    plan = WaitPlan(policy or PollPolicy(), RetryPolicy(), rpc_timeout=5, timeout=timeout)
    flow = wait_flow(op, plan, support or WaitSupport(), clock=script.clock, rng=lambda: 0.0)
    return script.run(flow)


def _holds(script: Script, answer: Any) -> Any:
    """A WaitOperation answer that arrives when the requested wait has passed, as a server does."""

    def respond(call: Any) -> Any:
        script.clock.now += call.request.timeout.ToNanoseconds() / 1e9
        return answer

    return respond


def test_wait_uses_wait_operation_when_served() -> None:
    script = Script([])
    script.answers = [_holds(script, make_operation()), DONE]
    assert _wait(script, make_operation()) is DONE
    assert names(script.calls) == ["WaitOperation", "WaitOperation"]
    assert script.sleeps == []


def test_wait_operation_answering_early_backs_off_instead_of_spinning() -> None:
    script = Script([make_operation()] * 30 + [DONE])
    _wait(script, make_operation(), timeout=None)
    assert len(script.sleeps) == 30 and script.sleeps[-1] > script.sleeps[0]


def test_transient_wait_operation_failure_does_not_end_the_wait() -> None:
    script = Script([unavailable(), DONE])
    assert _wait(script, make_operation()) is DONE
    assert names(script.calls) == ["WaitOperation", "WaitOperation"]


def test_rpcs_never_outlive_the_wait_deadline() -> None:
    def hang(call: Any) -> Any:
        script.clock.now += call.timeout
        return api_error(code_pb2.DEADLINE_EXCEEDED, "no answer")

    script = Script([hang] * 100)
    with pytest.raises(OperationTimeout):
        _wait(script, make_operation("operations/h"), timeout=1.0, support=WaitSupport(False))
    assert script.clock.now <= 1.0 + 0.05
    assert all(c.timeout is not None and c.timeout <= 1.0 for c in script.calls)


def test_wait_falls_back_to_polling_on_unimplemented_and_remembers() -> None:
    support = WaitSupport()
    script = Script([api_error(code_pb2.UNIMPLEMENTED, "no wait"), make_operation(), DONE])
    assert _wait(script, make_operation(), support=support) is DONE
    assert names(script.calls) == ["WaitOperation", "GetOperation", "GetOperation"]
    assert support.available is False
    again = Script([DONE])
    _wait(again, make_operation(), support=support)
    assert names(again.calls) == ["GetOperation"]


def test_poll_delays_grow_but_stay_within_the_lag_bound() -> None:
    policy = PollPolicy(initial=0.05, multiplier=1.5, maximum=20, lag_ratio=0.05, jitter=0.0, use_wait_operation=False)
    script = Script([make_operation()] * 200 + [DONE], call_cost=0.0)
    _wait(script, make_operation(), policy=policy, timeout=None)
    age = 0.0
    for delay in script.sleeps:
        assert delay <= max(0.05, 0.05 * age) + 1e-9
        age += delay
    assert script.sleeps[0] == pytest.approx(0.05)
    assert script.sleeps[-1] > script.sleeps[0]


def test_wait_times_out_with_the_operation_name() -> None:
    script = Script([make_operation("operations/slow")] * 1000)
    with pytest.raises(OperationTimeout) as caught:
        _wait(script, make_operation("operations/slow"), timeout=3.0, support=WaitSupport(False))
    assert caught.value.name == "operations/slow"
    assert isinstance(caught.value, TimeoutError)
    assert script.clock.now == pytest.approx(3.0, abs=0.05)


def test_result_of_done_operation_is_typed_and_checked() -> None:
    assert result_of(DONE, v1.AsyncBatchAnnotateFilesResponse) == RESPONSE
    with pytest.raises(VisionError, match="expected google.cloud.vision.v1.AsyncBatchAnnotateImagesResponse"):
        result_of(DONE, v1.AsyncBatchAnnotateImagesResponse)
    meta = metadata_of(DONE)
    assert isinstance(meta, v1.OperationMetadata) and meta.state == v1.OperationMetadata.DONE


def test_failed_operation_raises_operation_error_with_status() -> None:
    failed = make_operation(
        "operations/bad", done=True, error=status_pb2.Status(code=code_pb2.NOT_FOUND, message="gs://b/x.pdf not found")
    )
    with pytest.raises(OperationError) as caught:
        result_of(failed)
    assert caught.value.name == "operations/bad"
    assert caught.value.status.code == code_pb2.NOT_FOUND
    assert caught.value.error.http_status == 404
