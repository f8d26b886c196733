"""Sans-IO wait for a long-running operation: WaitOperation when served, else polling.

``wait_flow`` is a generator in the style of ``_flows.retry.call_flow``; ``Operation.wait()`` and
``AsyncOperation.wait()`` drive it. One deadline covers the whole wait. Poll delays grow
exponentially with jitter but never beyond ``lag_ratio`` of the operation's age, which bounds
the time between the server finishing and the caller noticing (see ``PollPolicy``).

When polling, the flow asks for its turns: with ``planned=True`` (the clients) it yields
``PollTurn`` and ``Polled`` to its driver, which plans all the waits of its client with one
``PollPlanner`` (one budget, shared polls per operation); otherwise it plans its own turns with a
private planner and ``Sleep`` (the same schedule as a lone waiter of a client).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.rpc import code_pb2

from vision_grpc._core.methods import OPERATIONS
from vision_grpc._core.policies import NO_RETRY, TRANSIENT_CODES, PollPolicy, RetryPolicy
from vision_grpc._flows.planner import POLL, TIMEOUT, PlannedFlow, Polled, PollPlanner, PollTurn, Ticket
from vision_grpc._flows.retry import Flow, Sleep, call_flow
from vision_grpc.errors import ApiError, OperationTimeout

__all__ = ["WaitPlan", "WaitSupport", "wait_flow"]

_log = logging.getLogger(__name__)
_GET = OPERATIONS["GetOperation"]
_WAIT = OPERATIONS["WaitOperation"]


@dataclass
class WaitSupport:
    """Per-client memory of whether the server implements WaitOperation (asked once)."""

    available: bool = True


@dataclass(frozen=True, slots=True)
class WaitPlan:
    """Everything one wait needs to know, fixed when it starts.

    ``timeout`` bounds the whole wait (None: no bound); ``rpc_timeout`` and ``retry`` govern each
    GetOperation; ``age`` is how old the operation already was when the wait started (seconds),
    which caps the poll delay through ``policy.lag_ratio``.
    """

    policy: PollPolicy
    retry: RetryPolicy
    rpc_timeout: float
    timeout: float | None = None
    age: float = 0.0


def _wait_request(name: str, seconds: float) -> operations_pb2.WaitOperationRequest:
    request = operations_pb2.WaitOperationRequest(name=name)
    request.timeout.FromNanoseconds(int(seconds * 1e9))
    return request


def wait_flow(
    operation: operations_pb2.Operation,
    plan: WaitPlan,
    support: WaitSupport,
    *,
    on_update: Callable[[operations_pb2.Operation], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
    planned: bool = False,
) -> PlannedFlow[operations_pb2.Operation]:
    """Return the operation once done; ``OperationTimeout`` after ``plan.timeout`` seconds.

    ``support`` remembers, per client, whether the server implements WaitOperation;
    ``on_update`` sees every state received (e.g. to show progress). No RPC, retry or sleep
    outlives the deadline: an RPC failure at the deadline is reported as the timeout.
    ``planned``: the driver answers ``PollTurn`` and ``Polled`` with its client's planner.
    """
    policy, timeout, age = plan.policy, plan.timeout, plan.age
    start = clock()
    delays = policy.delays()  # WaitOperation's backoff; polls are planned per operation
    ticket = Ticket(operation.name, born=start - age, deadline=None if timeout is None else start + timeout)
    private = None if planned else PollPlanner(policy, rng=rng)
    while not operation.done:
        waited = clock() - start
        remaining = None if timeout is None else timeout - waited
        if remaining is not None and remaining <= 0:
            raise OperationTimeout(operation.name, waited)
        if not (policy.use_wait_operation and support.available):
            turn = yield from _turn(ticket, private, clock)
            if turn is TIMEOUT:
                raise OperationTimeout(operation.name, clock() - start)
            if turn is not POLL:  # the state another waiter of this operation just received
                operation = cast(operations_pb2.Operation, turn)
                _report(on_update, operation)
                continue
            try:
                operation = yield from _get_once(operation.name, plan, start, clock, rng)
            except ApiError as error:
                yield from _polled(ticket, None, private, clock)
                waited = clock() - start
                if timeout is not None and waited >= timeout:
                    raise OperationTimeout(operation.name, waited) from error
                if error.code not in TRANSIENT_CODES:
                    raise
                continue  # asked again at the operation's next turn
            yield from _polled(ticket, operation, private, clock)
            _report(on_update, operation)
            continue
        try:
            chunk = policy.wait_chunk if remaining is None else min(policy.wait_chunk, remaining)
            asked = clock()
            try:
                operation = yield from _wait_once(operation.name, chunk, remaining, clock)
            except ApiError as error:
                if error.code != code_pb2.UNIMPLEMENTED:
                    raise
                # No WaitOperation here (the REST transport, or a server without it). Every
                # waiter that sees this falls back, also those whose call was in flight when
                # another waiter flipped the shared flag.
                if support.available:
                    _log.info("WaitOperation is not available (%s): polling GetOperation instead", error.message)
                support.available = False
                continue
            _report(on_update, operation)
            if operation.done or clock() - asked >= chunk / 2:
                continue
            # answered early and not done: back off below
        except ApiError as error:
            waited = clock() - start
            if timeout is not None and waited >= timeout:
                raise OperationTimeout(operation.name, waited) from error
            if error.code not in TRANSIENT_CODES:
                raise
        # WaitOperation answered early, or a transient failure: back off before asking again.
        waited = clock() - start
        remaining = None if timeout is None else timeout - waited
        yield Sleep(_poll_delay(policy, next(delays), age + waited, remaining, rng))
    return operation


def _turn(ticket: Ticket, private: PollPlanner | None, clock: Callable[[], float]) -> PlannedFlow[object]:
    """This ticket's next turn: POLL, a state shared by another waiter, or TIMEOUT.

    From the driver (``PollTurn``), or from a private planner, sleeping until its next grant.
    """
    if private is None:
        answer = yield PollTurn(ticket)
        return answer
    now = clock()
    private.join(ticket, now)
    for _ in range(_PRIVATE_TURN_STEPS):  # each step sleeps until the next grant or the deadline
        private.due(now)
        answer = private.turn(ticket, now)
        if answer is not None:
            return answer
        if ticket.deadline is not None and now >= ticket.deadline:
            return TIMEOUT
        at = private.next_at()
        if at is None:  # cannot happen for a lone ticket not yet granted; bounded anyway
            at = now + private.policy.initial
        if ticket.deadline is not None:
            at = min(at, ticket.deadline)
        yield Sleep(max(0.0, at - now))
        now = max(clock(), at)  # having slept until ``at``, it is ``at`` at least
    raise AssertionError("a lone waiter's turn never came")  # pragma: no cover


_PRIVATE_TURN_STEPS = 1000  # a lone turn takes 1 or 2 steps (its due time, then at most a token's wait)


def _polled(
    ticket: Ticket, operation: operations_pb2.Operation | None, private: PollPlanner | None, clock: Callable[[], float]
) -> PlannedFlow[None]:
    if private is None:
        yield Polled(ticket, operation)
    else:
        private.record(ticket, operation, clock())


def _wait_once(
    name: str, chunk: float, remaining: float | None, clock: Callable[[], float]
) -> Flow[operations_pb2.Operation]:
    deadline = chunk * 1.1 + 0.05  # the server answers at ``chunk``; a little slack for the network
    if remaining is not None:
        deadline = min(deadline, remaining)
    operation: operations_pb2.Operation = yield from call_flow(
        _WAIT, _wait_request(name, chunk), budget=deadline, retry=NO_RETRY, clock=clock
    )
    return operation


def _get_once(
    name: str, plan: WaitPlan, start: float, clock: Callable[[], float], rng: Callable[[], float]
) -> Flow[operations_pb2.Operation]:
    budget = plan.rpc_timeout
    if plan.timeout is not None:  # neither the attempt nor its retries may outlive the wait
        budget = min(budget, max(plan.timeout - (clock() - start), 0.001))
    request = operations_pb2.GetOperationRequest(name=name)
    operation: operations_pb2.Operation = yield from call_flow(
        _GET, request, budget=budget, retry=plan.retry, clock=clock, rng=rng
    )
    return operation


def _poll_delay(
    policy: PollPolicy, step: float, age: float, remaining: float | None, rng: Callable[[], float]
) -> float:
    """The next backoff step, capped by the lag bound (``lag_ratio`` of the age) and the deadline."""
    delay = min(step, max(policy.initial, policy.lag_ratio * age)) * (1 - policy.jitter * rng())
    return delay if remaining is None else max(0.0, min(delay, remaining))


def _report(on_update: Callable[[operations_pb2.Operation], None] | None, operation: operations_pb2.Operation) -> None:
    if on_update is not None:
        on_update(operation)
