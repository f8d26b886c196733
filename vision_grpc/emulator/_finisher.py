"""The background finisher: runs each operation's job at its due time, on a bounded pool of workers.

The real service writes an operation's outputs when the work is done, not when a client next
asks, and its operations API never waits for that work. ``Finisher`` keeps a heap of
``(done_at, seq, record)`` and ``workers`` threads (one per core, at most ``MAX_WORKERS``); each
worker sleeps on a shared condition until the earliest record is due, takes it and hands it to
``run`` (``Operations.finish``), so at most ``workers`` jobs run at once and the others wait in
the heap, in due-time order (the heap holds only records, and the store bounds how many there
are). The RPC threads only ``schedule`` and ``nudge``: reading an operation never runs its job nor
waits for one. The heap holds the records themselves, so an operation deleted before its due time
still has its job run, as on the service. Each sleep is at most ``MAX_SLEEP`` seconds, and
``nudge()`` wakes the workers early (the clock may be a test's settable one, which moves without
notifying anybody). ``wait_idle()`` waits until nothing due is queued or running (for tests that
drive such a clock). ``close()`` stops the workers between jobs and joins them (bounded by
``join_timeout``).
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable

from vision_grpc.emulator._store import OperationRecord

__all__ = ["MAX_SLEEP", "MAX_WORKERS", "Finisher", "default_workers"]

_log = logging.getLogger(__name__)

MAX_SLEEP = 1.0
MAX_WORKERS = 8


def default_workers() -> int:
    """One worker per core this process may use, at most ``MAX_WORKERS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


class Finisher:
    """``workers`` daemon threads running ``run(record)`` for each scheduled record once ``clock() >= done_at``."""

    def __init__(
        self,
        run: Callable[[OperationRecord], None],
        clock: Callable[[], float],
        *,
        workers: int | None = None,
        join_timeout: float = 30.0,
    ) -> None:
        self._run = run
        self._clock = clock
        self._join_timeout = join_timeout
        self._heap: list[tuple[float, int, OperationRecord]] = []
        self._ticket = 0  # ties on done_at: submission order
        self._busy = 0  # records handed to run() and not returned yet
        self._wake = threading.Condition()
        self._closed = False
        count = default_workers() if workers is None else workers
        if count < 1:
            raise ValueError("workers must be at least 1")
        self.workers = count
        self._threads = [
            threading.Thread(target=self._loop, name=f"vision-emulator-worker-{index}", daemon=True)
            for index in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def schedule(self, record: OperationRecord) -> None:
        """Run ``record`` 's job at its ``done_at``; ignored once closed (reads then finish it)."""
        with self._wake:
            if self._closed:
                return
            self._ticket += 1
            heapq.heappush(self._heap, (record.done_at, self._ticket, record))
            if self._heap[0][2] is record:
                self._wake.notify_all()

    def nudge(self) -> None:
        """Have idle workers look at the clock again now (it may have jumped past a due time)."""
        with self._wake:
            self._wake.notify_all()

    @property
    def running(self) -> bool:
        """True while a worker is alive (between ``start()`` and the end of ``close()``)."""
        return any(thread.is_alive() for thread in self._threads)

    def pending(self) -> int:
        """How many scheduled records have not been handed to ``run`` yet."""
        with self._wake:
            return len(self._heap)

    def busy(self) -> int:
        """How many jobs are running now."""
        with self._wake:
            return self._busy

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no record is due and none is running (False if ``timeout`` passed first)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            self._wake.notify_all()
            while self._busy or (self._heap and self._heap[0][0] <= self._clock() and not self._closed):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(timeout=min(remaining, 0.05))
            return True

    def close(self) -> None:
        """Stop after the jobs in progress (if any) and join the workers; idempotent."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify_all()
        deadline = time.monotonic() + self._join_timeout
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.running:
            _log.warning("the emulator's finisher is still running a job after %.0fs", self._join_timeout)

    def _next(self) -> OperationRecord | None:
        """Block (bounded sleeps) until something is due; take it, or None once closed."""
        with self._wake:
            while not self._closed:
                now = self._clock()
                if self._heap and self._heap[0][0] <= now:
                    self._busy += 1
                    return heapq.heappop(self._heap)[2]
                delay = MAX_SLEEP if not self._heap else min(MAX_SLEEP, self._heap[0][0] - now)
                self._wake.wait(timeout=max(0.001, delay))
            return None

    def _loop(self) -> None:
        while (record := self._next()) is not None:
            try:
                self._run(record)
            except Exception:  # Operations.finish already turns job failures into operation errors
                _log.exception("finishing operation %s failed", record.name)
            finally:
                with self._wake:
                    self._busy -= 1
                    self._wake.notify_all()  # wait_idle(), and a worker that may now take the next one
