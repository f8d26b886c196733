"""Sans-IO wait for a long-running operation: WaitOperation when served, else polling.

``wait_flow`` is a generator in the style of ``_flow.call_flow``; ``Operation.wait()`` and
``AsyncOperation.wait()`` drive it. One deadline covers the whole wait. Poll delays grow
exponentially with jitter but never beyond ``lag_ratio`` of the operation's age, which bounds
the time between the server finishing and the caller noticing (see ``PollPolicy``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.rpc import code_pb2

from vision_grpc._flow import Flow, Sleep, backoff, call_flow
from vision_grpc._methods import OPERATIONS
from vision_grpc._options import NO_RETRY, PollPolicy, RetryPolicy
from vision_grpc.errors import ApiError, OperationTimeout

__all__ = ["WaitSupport", "wait_flow"]

_GET = OPERATIONS["GetOperation"]
_WAIT = OPERATIONS["WaitOperation"]


@dataclass
class WaitSupport:
    """Per-client memory of whether the server implements WaitOperation (asked once)."""

    available: bool = True


def _wait_request(name: str, seconds: float) -> operations_pb2.WaitOperationRequest:
    request = operations_pb2.WaitOperationRequest(name=name)
    request.timeout.FromNanoseconds(int(seconds * 1e9))
    return request


def wait_flow(
    operation: operations_pb2.Operation,
    *,
    policy: PollPolicy,
    timeout: float | None,
    support: WaitSupport,
    retry: RetryPolicy,
    rpc_timeout: float,
    age: float = 0.0,
    on_update: Callable[[operations_pb2.Operation], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> Flow[operations_pb2.Operation]:
    """Return the operation once done; ``OperationTimeout`` after ``timeout`` seconds.

    ``age`` is how old the operation already was when the wait started (seconds);
    ``on_update`` sees every state received (e.g. to show progress).
    """
    start = clock()
    delays = backoff(policy.initial, policy.multiplier, policy.maximum)
    while not operation.done:
        waited = clock() - start
        remaining = None if timeout is None else timeout - waited
        if remaining is not None and remaining <= 0:
            raise OperationTimeout(operation.name, waited)
        if policy.use_wait_operation and support.available:
            chunk = policy.wait_chunk if remaining is None else min(policy.wait_chunk, remaining)
            try:
                operation = yield from call_flow(_WAIT, _wait_request(operation.name, chunk),
                                                 timeout=chunk * 1.1 + 0.05, retry=NO_RETRY)
                if on_update is not None:
                    on_update(operation)
                continue
            except ApiError as error:
                if error.code == code_pb2.UNIMPLEMENTED:
                    support.available = False  # e.g. the REST transport, or a server without it
                elif error.code != code_pb2.DEADLINE_EXCEEDED:
                    raise
                else:
                    continue
        cap = max(policy.initial, policy.lag_ratio * (age + waited))
        delay = min(next(delays), cap) * (1 - policy.jitter * rng())
        if remaining is not None:
            delay = min(delay, remaining)
        yield Sleep(delay)
        operation = yield from call_flow(_GET, operations_pb2.GetOperationRequest(name=operation.name),
                                         timeout=rpc_timeout, retry=retry)
        if on_update is not None:
            on_update(operation)
    return operation
