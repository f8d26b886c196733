"""Retry and polling policies: immutable values that also make the retry decisions.

``RetryPolicy.is_retryable(method, error)`` is the one place that decides whether a failed call is
sent again (urllib3's ``Retry`` and api-core's ``if_transient_error`` hold the same job), from one
table of transient codes and the method's own ``retry_transient`` flag. ``backoff`` is the delay
generator every schedule draws from: calls, operation polling and bulk runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.rpc import code_pb2

from vision_grpc.errors import ApiError, ConnectError, ValidationError

if TYPE_CHECKING:
    from vision_grpc._core.methods import MethodInfo

__all__ = ["NO_RETRY", "TRANSIENT_CODES", "PollPolicy", "RetryPolicy", "backoff", "positive"]

# Codes after which the same call may succeed if sent again (google/rpc/code.proto), and why.
TRANSIENT_CODES: dict[int, str] = {
    code_pb2.UNAVAILABLE: "the service (or the connection to it) is briefly down: code.proto says retry with backoff",
    code_pb2.DEADLINE_EXCEEDED: "the attempt ran out of time; the official v1 retry settings retry it",
}


def positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValidationError(name, f"must be > 0, got {value!r}")


def backoff(initial: float, multiplier: float, maximum: float) -> Iterator[float]:
    """initial, initial*m, initial*m^2, ... capped at maximum (before jitter)."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay *= multiplier


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for idempotent calls on UNAVAILABLE / DEADLINE_EXCEEDED (official v1 defaults).

    A call's ``timeout`` is its whole budget, retries and backoff included; ``deadline`` caps how
    long any call goes on retrying, whatever its timeout. A server's ``RetryInfo`` delay is honoured
    when it is longer than the backoff. An endpoint that cannot be reached at all (``ConnectError``)
    is retried for ``connect_deadline`` seconds only: enough to ride out a server restarting or a
    refused connection or two (gRPC's own reconnect backoff starts at 1 s), short enough that a
    wrong or dead endpoint is reported in seconds, not after the retry deadline.
    """

    initial: float = 0.1
    multiplier: float = 1.3
    maximum: float = 60.0
    deadline: float = 600.0
    max_attempts: int | None = None  # None: the deadline alone bounds the retries
    connect_deadline: float = 3.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "deadline", "connect_deadline"):
            positive(f"retry.{name}", getattr(self, name))
        if self.multiplier < 1:
            raise ValidationError("retry.multiplier", f"must be >= 1, got {self.multiplier!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValidationError("retry.max_attempts", f"must be None or >= 1, got {self.max_attempts!r}")

    def is_retryable(self, method: MethodInfo, error: ApiError, elapsed: float = 0.0) -> bool:
        """Whether ``error`` from ``method`` may be retried ``elapsed`` seconds after the call started
        (the attempt count and the call's budget aside).

        A connection that was never made is safe to retry for any call, a submit included, within
        ``connect_deadline``; a transient code from the server only for methods whose retries are
        safe (``retry_transient``).
        """
        if isinstance(error, ConnectError):
            return elapsed < self.connect_deadline
        return error.code in TRANSIENT_CODES and method.retry_transient

    def delays(self) -> Iterator[float]:
        """This policy's backoff steps (before jitter)."""
        return backoff(self.initial, self.multiplier, self.maximum)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class PollPolicy:
    """How ``Operation.wait()`` polls when the server has no WaitOperation.

    Delays grow from ``initial`` by ``multiplier`` up to ``maximum``, with ``jitter`` (a fraction
    taken off at random), and never exceed ``lag_ratio`` of the operation's age, so that a
    finished operation is noticed within max(initial, lag_ratio x age).

    All the waits of one client share one poll budget (``_flows.planner``): ``max_polls_per_second``
    on average, with bursts of up to ``burst`` polls (a token bucket), so that in any W seconds a
    client makes at most ``burst + max_polls_per_second x W`` polls. The default, 10/s (600/min),
    is a third of the service's 1800 requests/min per project, leaving room for submits and for
    other clients; the burst of 20 lets a single young operation keep its 50 ms schedule. When
    the budget binds, polls go earliest lag-bound deadline first: none starves, and operations
    that cannot all keep their bound run late alike.
    """

    initial: float = 0.05
    multiplier: float = 1.5
    maximum: float = 20.0
    lag_ratio: float = 0.05
    jitter: float = 0.2
    use_wait_operation: bool = True
    wait_chunk: float = 30.0  # longest single WaitOperation call
    max_polls_per_second: float = 10.0  # one client's GetOperation polls, all its waits together
    burst: int = 20  # polls that may go out at once above that rate (the token bucket's size)

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "wait_chunk", "lag_ratio", "max_polls_per_second"):
            positive(f"poll.{name}", getattr(self, name))
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValidationError("poll.burst", f"must be an int >= 1, got {self.burst!r}")
        if self.multiplier < 1:
            raise ValidationError("poll.multiplier", f"must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter < 1:
            raise ValidationError("poll.jitter", f"must be in [0, 1), got {self.jitter!r}")

    def delays(self) -> Iterator[float]:
        """This policy's backoff steps (before jitter and the lag bound)."""
        return backoff(self.initial, self.multiplier, self.maximum)
