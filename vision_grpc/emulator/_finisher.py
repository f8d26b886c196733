"""The background finisher: runs each operation's job at its due time, whether or not anyone polls.

The real service writes an operation's outputs when the work is done, not when a client next
asks. ``Finisher`` is one thread that sleeps on a condition until the earliest due time (a heap
of ``(done_at, seq, record)``) and then hands every due record to ``run`` (``Operations.observe``:
idempotent, under the record's lock, so a concurrent read finishing the same operation is
harmless). The heap holds the records themselves, so an operation deleted before its due time
still has its job run, as on the service. Each sleep is at most ``MAX_SLEEP`` seconds (the clock
may be a test's settable one, which moves without notifying anybody); ``close()`` stops the
thread between jobs and joins it (bounded by ``join_timeout``).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable

from vision_grpc.emulator._store import OperationRecord

__all__ = ["MAX_SLEEP", "Finisher"]

_log = logging.getLogger(__name__)

MAX_SLEEP = 1.0


class Finisher:
    """One daemon thread running ``run(record)`` for each scheduled record once ``clock() >= done_at``."""

    def __init__(
        self, run: Callable[[OperationRecord], None], clock: Callable[[], float], *, join_timeout: float = 30.0
    ) -> None:
        self._run = run
        self._clock = clock
        self._join_timeout = join_timeout
        self._heap: list[tuple[float, int, OperationRecord]] = []
        self._ticket = 0  # ties on done_at: submission order
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="vision-emulator-finisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, record: OperationRecord) -> None:
        """Run ``record`` 's job at its ``done_at``; ignored once closed (reads still finish it)."""
        with self._wake:
            if self._closed:
                return
            self._ticket += 1
            heapq.heappush(self._heap, (record.done_at, self._ticket, record))
            if self._heap[0][2] is record:
                self._wake.notify()

    @property
    def running(self) -> bool:
        """True while the thread is alive (between ``start()`` and the end of ``close()``)."""
        return self._thread.is_alive()

    def pending(self) -> int:
        """How many scheduled records have not been handed to ``run`` yet."""
        with self._wake:
            return len(self._heap)

    def close(self) -> None:
        """Stop after the job in progress (if any) and join the thread; idempotent."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._join_timeout)
            if self._thread.is_alive():
                _log.warning("the emulator's finisher is still running a job after %.0fs", self._join_timeout)

    def _due(self) -> list[OperationRecord] | None:
        """Block (bounded sleeps) until something is due; the due records, or None once closed."""
        with self._wake:
            while not self._closed:
                now = self._clock()
                due: list[OperationRecord] = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if due:
                    return due
                delay = MAX_SLEEP if not self._heap else min(MAX_SLEEP, self._heap[0][0] - now)
                self._wake.wait(timeout=max(0.001, delay))
            return None

    def _loop(self) -> None:
        while (due := self._due()) is not None:
            for record in due:
                if self._closed:
                    return
                try:
                    self._run(record)
                except Exception:  # observe() already turns job failures into operation errors
                    _log.exception("finishing operation %s failed", record.name)
