"""The emulator's operation records, and the bounded, thread-safe store that holds them.

An ``OperationRecord`` holds what ``_operations`` derives an operation's state from (``created``,
``running_at``, ``done_at``, against its clock) and the outcome: ``finish()`` records the response, the
error or the cancellation once, under the record's ``lock``, and sets ``finished_at`` last, so that
lock-free readers that see it set also see the outcome. When and where a job runs is ``_operations``'
and ``_finisher``'s business; nothing here runs one.

``OperationStore`` maps names to records in submission order, numbering each as it is added (``seq``:
the order of ``ListOperations`` and its page tokens). It holds at most ``max_operations``: when full,
``add`` evicts the oldest finished record (done or cancelled), never one whose job has not run (its
outputs would never be written); with none finished it raises ``StoreFull`` (``Operations.submit`` then
nudges the finisher to end the past-due ones and tries once more, else answers RESOURCE_EXHAUSTED).
``notify()``, which its owner calls when an operation finishes or is cancelled and at close, wakes the
threads waiting on the ``changed`` condition (``WaitOperation``) and calls the ``listen`` callbacks (an
asyncio server's waiters, which hold no thread to wait on the condition with).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import Message
from google.rpc import status_pb2

from vision_grpc._core.methods import MethodInfo

__all__ = ["OperationRecord", "OperationStore", "StoreFull"]


class StoreFull(Exception):
    """Every slot holds an operation that is not done yet."""


@dataclass
class OperationRecord:
    """One operation; ``response``/``error`` are set once, when it finishes or is cancelled."""

    name: str
    method: MethodInfo
    request: Message
    created: float
    running_at: float
    done_at: float
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    finished_at: float | None = None
    response: Message | None = None
    error: status_pb2.Status | None = None
    cancelled: bool = False

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def finish(
        self,
        now: float,
        *,
        response: Message | None = None,
        error: status_pb2.Status | None = None,
        cancelled: bool = False,
    ) -> None:
        """Record the outcome; call with ``lock`` held, once. ``finished_at`` is set last: lock-free
        readers that see it set also see the outcome."""
        self.response, self.error, self.cancelled = response, error, cancelled
        self.finished_at = now


class OperationStore:
    """Thread-safe, bounded map name -> ``OperationRecord``, in submission order."""

    def __init__(self, max_operations: int = 1000, *, clock: Callable[[], float]) -> None:
        if max_operations < 1:
            raise ValueError("max_operations must be at least 1")
        self.max_operations = max_operations
        self._clock = clock
        self._records: dict[str, OperationRecord] = {}
        self._seq = 0
        self.changed = threading.Condition()  # notified when an operation finishes or the store closes
        self._listeners: set[Callable[[], None]] = set()

    def add(self, record: OperationRecord) -> None:
        """Insert ``record`` (its ``seq`` is assigned); ``StoreFull`` when nothing can be evicted."""
        with self.changed:
            if len(self._records) >= self.max_operations:
                self._evict_one()
            self._seq += 1
            record.seq = self._seq
            self._records[record.name] = record

    def _evict_one(self) -> None:
        for name, record in self._records.items():  # oldest first
            if record.finished:  # never one whose job has not run: its outputs would never be written
                del self._records[name]
                return
        raise StoreFull(f"{len(self._records)} operations are pending; the emulator keeps at most that many")

    def get(self, name: str) -> OperationRecord | None:
        with self.changed:
            return self._records.get(name)

    def delete(self, name: str) -> bool:
        with self.changed:
            return self._records.pop(name, None) is not None

    def snapshot(self) -> list[OperationRecord]:
        """Every record, in submission order (``seq`` ascending)."""
        with self.changed:
            return list(self._records.values())

    def __len__(self) -> int:
        with self.changed:
            return len(self._records)

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` at each ``notify`` until ``unlisten``; it must be quick and must not block
        (e.g. ``loop.call_soon_threadsafe(event.set)``): it runs on the notifying thread."""
        with self.changed:
            self._listeners.add(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        with self.changed:
            self._listeners.discard(callback)

    def notify(self) -> None:
        """Wake every waiter (an operation finished, or the emulator is closing)."""
        with self.changed:
            self.changed.notify_all()
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
