"""When a bulk run polls each operation, and how much it may have in flight: sans-IO scheduling.

``PollSchedule``: each operation has its own next-poll time and delay. Until some operation has
finished, the first poll comes ``initial`` (0.5 s) after it is added, then 0.75 s, 1.125 s, ...
(x ``multiplier``) after each poll, up to ``maximum`` (the runner's ``poll_interval``). Once
operations have finished, their durations (``observe``) set the pace: the first poll comes at
``FIRST_POLL_FRACTION`` (0.8) of the median of the last ``DURATION_WINDOW`` durations, and the polls
after it start at a tenth of that median (between ``MIN_DELAY`` and ``initial``) and grow x1.5 up to
``maximum``. So an operation that takes 40 s costs about three GetOperation calls instead of twenty,
and one that takes 0.2 s is seen done within ~0.05 s of finishing. A round refreshes only the
operations that are due; between rounds the runner sleeps until the earliest next-poll time.

``InFlightBudget``: a worker's share of the project's quotas. The service queues work beyond 10,000
pages (files) or 8,000 images in processing per project and allows 1,800 requests per minute, so a
worker holds at most ``max_units`` pages (or images) in processing, at most ``max_operations``
operations, and sends at most ``requests_per_minute`` requests in any 60-second window (submits and
polls alike). An operation larger than ``max_units`` on its own is admitted when nothing else is in
flight, so every batch runs eventually.

``PageEstimate``: a file's page count is unknown until the service has read it, so a files batch is
charged ``estimate`` pages per file: ``pages_per_file`` until files have been counted (from their
output shards), then the mean of the counted files.

No I/O here: the clock is injectable.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vision_grpc._core.policies import backoff

__all__ = [
    "PROJECT_IMAGES_IN_PROCESSING",
    "PROJECT_PAGES_IN_PROCESSING",
    "PROJECT_REQUESTS_PER_MINUTE",
    "InFlightBudget",
    "PageEstimate",
    "PollSchedule",
]

# Cloud Vision's per-project limits: work beyond these is queued (units) or refused (requests).
PROJECT_PAGES_IN_PROCESSING = 10_000
PROJECT_IMAGES_IN_PROCESSING = 8_000
PROJECT_REQUESTS_PER_MINUTE = 1_800

FIRST_POLL_FRACTION = 0.8  # first poll at this fraction of the median observed duration
FOLLOW_UP_FRACTION = 0.1  # then polls from this fraction of it (clamped to [MIN_DELAY, initial]), x multiplier
MIN_DELAY = 0.05  # seconds: no poll comes sooner than this after the last one
DURATION_WINDOW = 32  # the durations remembered: the median follows the service's current pace
WINDOW_SECONDS = 60.0  # the request quota's window


@dataclass
class _Slot:
    next_at: float
    delays: Iterator[float]  # the same backoff every schedule in the library draws from


class PollSchedule:
    """Next-poll times of keyed operations (batch ids); not thread-safe (one runner drives it)."""

    def __init__(
        self,
        maximum: float,
        *,
        initial: float = 0.5,
        multiplier: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (maximum > 0 and initial > 0 and multiplier >= 1):
            raise ValueError("maximum and initial must be > 0, multiplier >= 1")
        self.maximum, self.initial, self.multiplier = maximum, min(initial, maximum), multiplier
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._durations: deque[float] = deque(maxlen=DURATION_WINDOW)

    def observe(self, seconds: float) -> None:
        """An operation finished after ``seconds``: later operations' first polls follow the median."""
        if math.isfinite(seconds) and seconds > 0:
            self._durations.append(seconds)

    @property
    def typical(self) -> float | None:
        """The median of the recent durations (seconds), or None before any was observed."""
        return statistics.median(self._durations) if self._durations else None

    def first_delay(self) -> float:
        """How long after submit a new operation is first polled."""
        typical = self.typical
        return self.initial if typical is None else max(MIN_DELAY, FIRST_POLL_FRACTION * typical)

    def add(self, key: str, *, now: bool = False) -> None:
        """Start polling ``key``: first poll after ``first_delay()``, or at once with ``now=True``."""
        at, typical = self._clock(), self.typical
        if typical is None:
            delays = backoff(self.initial, self.multiplier, self.maximum)
            first = next(delays)
        else:
            start = min(max(FOLLOW_UP_FRACTION * typical, MIN_DELAY), self.initial)
            delays = backoff(start, self.multiplier, self.maximum)
            first = self.first_delay()
        self._slots[key] = _Slot(at if now else at + first, delays)

    def remove(self, key: str) -> None:
        self._slots.pop(key, None)

    def due(self) -> list[str]:
        """Keys whose next-poll time has come, earliest first."""
        at = self._clock()
        return [
            key for key, slot in sorted(self._slots.items(), key=lambda item: item[1].next_at) if slot.next_at <= at
        ]

    def polled(self, key: str) -> None:
        """``key`` was just polled (successfully or not): next poll after the grown delay."""
        slot = self._slots[key]
        slot.next_at = self._clock() + next(slot.delays)

    def next_at(self) -> float | None:
        """The earliest next-poll time (``clock`` seconds), or None when nothing is scheduled."""
        return min((slot.next_at for slot in self._slots.values()), default=None)

    def wait(self, deadline: float, sleep: Callable[[float], None] = time.sleep) -> None:
        """Sleep until the earliest next-poll time, never past ``deadline``; at once if none is scheduled."""
        earliest = self.next_at()
        if earliest is None:
            return
        pause = min(earliest, deadline) - self._clock()
        if pause > 0:
            sleep(pause)

    def __len__(self) -> int:
        return len(self._slots)


class InFlightBudget:
    """Units (pages or images) and operations in processing, and requests per minute, of one worker.

    ``admits(units)`` says whether an operation of ``units`` may start now; ``hold``/``release``
    track it; ``request_at()`` is when the next request may be sent and ``spend()`` records one.
    Not thread-safe (one runner, or one DoFn instance, drives it).
    """

    def __init__(
        self,
        *,
        max_units: int,
        max_operations: int,
        requests_per_minute: int = PROJECT_REQUESTS_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_units < 1 or max_operations < 1 or requests_per_minute < 1:
            raise ValueError("max_units, max_operations and requests_per_minute must be >= 1")
        self.max_units, self.max_operations, self.requests_per_minute = max_units, max_operations, requests_per_minute
        self._clock = clock
        self._held: dict[str, int] = {}
        self._sent: deque[float] = deque()  # send times within the last window, oldest first

    @property
    def units(self) -> int:
        """Units held by the operations in flight."""
        return sum(self._held.values())

    @property
    def operations(self) -> int:
        return len(self._held)

    def admits(self, units: int) -> bool:
        """Room for one more operation of ``units``? An oversize one only when nothing is in flight."""
        if not self._held:
            return True
        return len(self._held) < self.max_operations and self.units + units <= self.max_units

    def hold(self, key: str, units: int) -> None:
        self._held[key] = units

    def release(self, key: str) -> None:
        self._held.pop(key, None)

    def request_at(self) -> float:
        """The clock time from which one more request keeps the last 60 s within the quota (now or later)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) < self.requests_per_minute:
            return now
        return self._sent[len(self._sent) - self.requests_per_minute] + WINDOW_SECONDS

    def may_request(self) -> bool:
        return self.request_at() <= self._clock()

    def spend(self) -> None:
        """One request was sent now."""
        self._sent.append(self._clock())


class PageEstimate:
    """Pages charged per file of a files batch: ``pages_per_file`` until files are counted, then their mean."""

    def __init__(self, pages_per_file: int) -> None:
        if pages_per_file < 1:
            raise ValueError("pages_per_file must be >= 1")
        self.default = pages_per_file
        self._files = self._pages = 0

    def count(self, pages: int) -> None:
        """A file turned out to have ``pages`` pages."""
        if pages > 0:
            self._files += 1
            self._pages += pages

    @property
    def per_file(self) -> int:
        return math.ceil(self._pages / self._files) if self._files else self.default

    @property
    def counted(self) -> int:
        """How many files have been counted."""
        return self._files
