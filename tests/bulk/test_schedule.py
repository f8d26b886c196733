"""The bulk package's sans-IO scheduling: adaptive first polls, the in-flight budget, the page estimate."""

from __future__ import annotations

import pytest

from vision_grpc.bulk.schedule import (
    FIRST_POLL_FRACTION,
    MIN_DELAY,
    InFlightBudget,
    PageEstimate,
    PollSchedule,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def delays_of(schedule: PollSchedule, clock: Clock, key: str, polls: int) -> list[float]:
    """The gaps between ``key``'s polls, its first one counted from now (when it was added)."""
    delays = []
    for _ in range(polls):
        before = clock.now
        schedule.wait(deadline=1e9, sleep=clock.sleep)
        assert schedule.due() == [key]
        delays.append(round(clock.now - before, 4))
        schedule.polled(key)
    return delays


def test_first_poll_follows_the_median_observed_duration() -> None:
    clock = Clock()
    schedule = PollSchedule(2.0, clock=clock)
    assert schedule.first_delay() == 0.5 and schedule.typical is None  # nothing seen yet: 0.5 s
    for seconds in (40.0, 38.0, 45.0, 0.0, float("nan")):  # nonsense durations are ignored
        schedule.observe(seconds)
    assert schedule.typical == 40.0
    schedule.add("slow")
    # 0.8 x 40 s, then from min(4 s, initial 0.5 s) growing x1.5 up to poll_interval
    assert delays_of(schedule, clock, "slow", 5) == [32.0, 0.5, 0.75, 1.125, 1.6875]


def test_fast_operations_are_polled_soon_after_they_finish() -> None:
    clock = Clock()
    schedule = PollSchedule(2.0, clock=clock)
    for _ in range(5):
        schedule.observe(0.2)
    schedule.add("fast")
    assert delays_of(schedule, clock, "fast", 3) == [round(FIRST_POLL_FRACTION * 0.2, 4), MIN_DELAY, 0.075]


def test_the_median_follows_the_recent_pace() -> None:
    schedule = PollSchedule(2.0)
    for _ in range(100):
        schedule.observe(60.0)
    for _ in range(32):  # the window forgets the slow period
        schedule.observe(1.0)
    assert schedule.typical == 1.0 and schedule.first_delay() == pytest.approx(0.8)


def test_budget_counts_units_and_operations() -> None:
    budget = InFlightBudget(max_units=100, max_operations=3)
    assert budget.admits(500)  # nothing in flight: even an oversize operation runs (alone)
    budget.hold("big", 500)
    assert not budget.admits(1)
    budget.release("big")
    budget.hold("a", 60)
    assert budget.admits(40) and not budget.admits(41)
    budget.hold("b", 20)
    budget.hold("c", 10)
    assert budget.units == 90 and budget.operations == 3 and not budget.admits(1)  # three operations at most
    budget.release("c")
    budget.release("unknown")
    assert budget.admits(20) and budget.units == 80


def test_requests_per_minute_is_a_sliding_window() -> None:
    clock = Clock()
    budget = InFlightBudget(max_units=1, max_operations=1, requests_per_minute=3, clock=clock)
    for _ in range(3):
        assert budget.may_request()
        budget.spend()
        clock.now += 1
    assert not budget.may_request() and budget.request_at() == pytest.approx(160.0)  # the first leaves the window
    clock.now = 160.0
    assert budget.may_request()
    budget.spend()
    assert budget.request_at() == pytest.approx(161.0)
    sent = [100.0, 101.0, 102.0, 160.0]
    for start in range(len(sent)):  # never more than 3 in any 60-second window
        assert sum(1 for t in sent if sent[start] <= t < sent[start] + 60) <= 3


def test_budget_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        InFlightBudget(max_units=0, max_operations=1)
    with pytest.raises(ValueError):
        PageEstimate(0)


def test_page_estimate_is_the_default_until_files_are_counted() -> None:
    estimate = PageEstimate(10)
    assert estimate.per_file == 10 and estimate.counted == 0
    for pages in (1, 2, 4, 0):  # an uncounted file (0) changes nothing
        estimate.count(pages)
    assert estimate.per_file == 3 and estimate.counted == 3  # ceil(7 / 3)
