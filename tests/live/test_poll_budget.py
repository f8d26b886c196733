"""Polling at scale against the emulator: many waits on one client stay within its poll budget.

The emulator answers WaitOperation with UNIMPLEMENTED (gRPC) or the REST transport has none, so every
wait polls GetOperation. 64 waits on one client (64 threads, or 64 asyncio tasks) all complete, and
the GetOperation calls the emulator records never exceed the budget in any sliding window:
``burst + max_polls_per_second x seconds`` (the planner's token bucket). The planner keeps that bound
exactly on the polls as they start (tests/unit/test_poll_planner.py); the emulator, in this process,
records a call when its handler gets to run, behind 64 client threads on the GIL, so its windows are
allowed ``TRANSIT`` seconds more at the rate: usually the busiest window meets the bound itself (44
of 44 in 1 s, 13-14 of 14 in 0.25 s), and a budget that did not hold would be far off (64 fresh
waits alone poll ~1,300 times a second). Waits on the same operation share its polls. About 2 s each.
"""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left
from typing import Any

import pytest
from google.rpc import code_pb2

from tests.live.harness import PDF_URI, TRANSPORTS
from vision_grpc import AsyncClient, Client, PollPolicy, types
from vision_grpc.testing import Emulator

WAITS = 64
BUDGET = PollPolicy(max_polls_per_second=40.0, burst=4)  # binds: 64 fresh waits would poll ~1300/s alone
WAIT_TIMEOUT = 30.0
TRANSIT = 0.2  # seconds: how much later than its start a poll may be recorded by the emulator


def _settings(emulator: Emulator, transport: str) -> dict[str, Any]:
    if transport == "grpc":
        emulator.service.faults.fail_next("WaitOperation", code_pb2.UNIMPLEMENTED, times=10_000)
        return {"endpoint": emulator.grpc_target, "transport": "grpc", "poll": BUDGET}
    assert emulator.rest_url is not None
    return {"endpoint": emulator.rest_url.removeprefix("http://"), "transport": "rest", "poll": BUDGET}


def _request(tag: str, k: int) -> Any:
    return types.async_files_request(PDF_URI, output_uri=f"gs://bucket/poll-budget/{tag}/{k}/", batch_size=2)


def _poll_times(emulator: Emulator) -> list[float]:
    return sorted(call.time for call in emulator.service.calls if call.method == "GetOperation")


def _most_in_window(times: list[float], seconds: float) -> int:
    return max((bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)


def _assert_within_budget(times: list[float]) -> None:
    assert len(times) >= WAITS  # every operation was polled (none told by WaitOperation)
    sustained = (len(times) - BUDGET.burst) / (times[-1] - times[0] + TRANSIT)
    assert sustained <= BUDGET.max_polls_per_second
    for seconds in (0.25, 1.0):
        limit = BUDGET.burst + BUDGET.max_polls_per_second * (seconds + TRANSIT)
        assert _most_in_window(times, seconds) <= limit, (seconds, _most_in_window(times, seconds))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_64_threads_waiting_on_one_client_stay_within_its_poll_budget(emulator: Emulator, transport: str) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []
    with Client(**_settings(emulator, transport)) as client:

        def submit_and_wait(k: int) -> None:
            try:
                operation = client.async_batch_annotate_files(_request(f"sync-{transport}", k))
                results.append(operation.result(timeout=WAIT_TIMEOUT))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=submit_and_wait, args=(k,)) for k in range(WAITS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_TIMEOUT + 10)
    assert not errors, errors[:3]
    assert len(results) == WAITS
    _assert_within_budget(_poll_times(emulator))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_64_asyncio_waits_on_one_client_stay_within_its_poll_budget(emulator: Emulator, transport: str) -> None:
    async def main() -> list[Any]:
        async with AsyncClient(**_settings(emulator, transport)) as client:

            async def submit_and_wait(k: int) -> Any:
                operation = await client.async_batch_annotate_files(_request(f"async-{transport}", k))
                return await operation.result(timeout=WAIT_TIMEOUT)

            return await asyncio.wait_for(
                asyncio.gather(*(submit_and_wait(k) for k in range(WAITS))), WAIT_TIMEOUT + 10
            )

    results = asyncio.run(main())
    assert len(results) == WAITS
    _assert_within_budget(_poll_times(emulator))


@pytest.mark.timeout(60)
def test_threads_waiting_on_the_same_operation_share_its_polls(emulator: Emulator) -> None:
    with Client(**_settings(emulator, "rest")) as client:
        alone = client.async_batch_annotate_files(_request("alone", 0))
        alone.result(timeout=WAIT_TIMEOUT)
        polls_alone = len(_poll_times(emulator))
        emulator.service.clear_calls()

        shared = client.async_batch_annotate_files(_request("shared", 0))
        handles = [client.get_operation(shared.name) for _ in range(16)]
        emulator.service.clear_calls()  # the 16 get_operation calls above are not polls
        done: list[bool] = []
        threads = [threading.Thread(target=lambda h=h: done.append(h.wait(WAIT_TIMEOUT).done)) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_TIMEOUT + 10)
    assert done == [True] * 16
    # one schedule for all 16 (give or take the timing of a loaded machine), not 16 schedules
    assert len(_poll_times(emulator)) <= 2 * polls_alone + 2 < 16 * polls_alone
