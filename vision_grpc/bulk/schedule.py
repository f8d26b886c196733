"""When a bulk run asks about each in-flight operation: a per-operation polling schedule.

Each operation has its own next-poll time and delay: first ``initial`` (0.5 s) after it is
added, then 0.75 s, 1.125 s, ... (x ``multiplier``) after each poll, up to ``maximum`` (the
runner's ``poll_interval``). A round refreshes only the operations that are due; between rounds
the runner sleeps until the earliest next-poll time. So an operation costs a handful of
GetOperation calls in its first seconds and then one per ``maximum`` seconds, however many
rounds other operations cause. No I/O here: the clock is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vision_grpc._core.policies import backoff

__all__ = ["PollSchedule"]


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

    def add(self, key: str, *, now: bool = False) -> None:
        """Start polling ``key``: first poll after ``initial`` seconds, or at once with ``now=True``."""
        at = self._clock()
        delays = backoff(self.initial, self.multiplier, self.maximum)
        first = next(delays)
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
