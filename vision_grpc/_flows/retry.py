"""Sans-IO call flows: the retry policy as a generator that asks its driver to do the I/O.

A flow yields ``Call`` (make this RPC) or ``Sleep`` (wait this long) and receives the RPC's
response, or has the mapped ``ApiError`` thrown in. ``Client`` and ``AsyncClient`` each drive
flows with a loop of a dozen lines (``time.sleep`` vs ``asyncio.sleep``, a blocking vs an
awaited transport call), so retry and polling logic exist once (as httpx does for auth flows).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.policies import RetryPolicy
from vision_grpc.errors import ApiError

__all__ = ["Call", "Sleep", "Flow", "call_flow"]

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """Make one RPC with this per-attempt timeout (seconds); ``attempt`` counts from 1."""

    method: MethodInfo
    request: Message
    timeout: float | None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Flow = Generator["Call | Sleep", Any, T]


def call_flow(
    method: MethodInfo,
    request: Message,
    *,
    budget: float,
    retry: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> Flow[Message]:
    """One RPC with retries, all within ``budget`` seconds (attempts, backoff and sleeps alike).

    Each attempt may use what is left of the budget; returns the response or raises the last
    ``ApiError``. ``retry.deadline`` caps the budget; ``retry.is_retryable`` decides each retry.
    """
    start = clock()
    limit = min(budget, retry.deadline)
    delays = retry.delays()
    attempt = 0
    while True:
        attempt += 1
        remaining = limit - (clock() - start)
        try:
            response: Message = yield Call(method, request, max(remaining, 0.001), attempt)
            return response
        except ApiError as error:
            elapsed = clock() - start
            out_of_attempts = retry.max_attempts is not None and attempt >= retry.max_attempts
            if out_of_attempts or not retry.is_retryable(method, error, elapsed):
                raise
            delay = next(delays) * (0.5 + rng() / 2)  # jitter keeps clients from retrying in step
            server_says = error.retry_delay
            if server_says is not None:
                delay = max(delay, server_says)
            if elapsed + delay >= limit or not retry.is_retryable(method, error, elapsed + delay):
                raise
            _log.info("%s: %s on attempt %d; retrying in %.3f s", method.name, error.code_name, attempt, delay)
        yield Sleep(delay)
