"""Sans-IO poll planning for one client: which waiting operations may be polled now, within one budget.

Every wait in polling mode (REST, or a server without WaitOperation) of one client registers a
``Ticket`` with the client's ``PollPlanner``. The planner keeps one entry per operation name
(several waiters on the same operation share its polls) and two times for its next poll, both
from its age:

* ``ready``: when a lone waiter would poll (``PollPolicy``: exponential backoff with jitter, never
  more than the lag bound max(initial, lag_ratio x age) after the last poll). No poll before it.
* ``due``: the last poll plus the lag bound. A poll later than that may notice the operation's end
  later than the bound allows.

Polls are granted from a token bucket (``max_polls_per_second`` on average, ``burst`` at once),
earliest ``due`` first among the ready operations (the older operation on a tie); a grant holds its
token until the poll starts, which spends it, so the bound holds on the polls as sent however late a
granted waiter gets to run: in any W seconds, at most ``burst + max_polls_per_second x W``. While the budget
allows, every operation is polled when ready, exactly as a lone waiter would be. When it binds,
ready operations queue by ``due``: the ones about to break their bound go first, so operations
with slack (an old operation polled every 20 s whose bound is minutes) yield to the others, and
when every bound cannot be kept, every operation runs late by about the same time. None starves:
an operation due at t is polled before any that falls due after t, and at most one poll per
operation is ever queued.

No I/O, no locks and no clock of its own: the caller passes ``now`` and serializes the calls.
``Client`` drives it from threads (a condition variable per waiter, a timekeeper thread that
sleeps until ``next_at()``), ``AsyncClient`` from its event loop (a future per waiter, one timer);
``wait_flow`` without a shared planner drives a private one with ``Sleep``.

The driver's side of a wait: ``join`` on the first turn; ``turn`` says POLL (this waiter polls
now), hands over a newer state another waiter of the same operation received, or None (sleep on
``ticket.wake`` until woken or ``next_at()``, when ``due`` grants the next polls and names the
tickets to wake); ``record`` after each poll (whatever its outcome); ``leave`` when the wait ends.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc

from vision_grpc._core.policies import PollPolicy
from vision_grpc._flows.retry import Call, Sleep

__all__ = ["POLL", "TIMEOUT", "PlannedFlow", "PollPlanner", "PollTurn", "Polled", "Ticket"]

T = TypeVar("T")


class _Signal:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


POLL: Final = _Signal("POLL")  # a turn's answer: poll this operation now
TIMEOUT: Final = _Signal("TIMEOUT")  # a driver's answer to PollTurn: the ticket's deadline passed first

_EPSILON = 1e-9  # tokens and times within this are equal (float sums of refills)


@dataclass(eq=False)
class Ticket:
    """One waiter on one operation. ``born`` is when the operation was created, in the planner's clock
    (now - age); ``deadline`` the wait's end in that clock (None: none). ``wake`` belongs to the driver
    (a condition, a future); ``seen`` is the last shared state this waiter was handed."""

    name: str
    born: float
    deadline: float | None = None
    wake: Any = None
    seen: int = 0
    entry: _Entry | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PollTurn:
    """Flow action: wait for this ticket's turn. The driver answers POLL, a newer Operation received by
    another waiter of the same operation, or TIMEOUT once the ticket's deadline has passed."""

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Polled:
    """Flow action: the poll granted to this ticket is over (``operation`` None: it failed); answer None."""

    ticket: Ticket
    operation: operations_pb2.Operation | None


PlannedFlow = Generator["Call | Sleep | PollTurn | Polled", Any, T]  # a flow that may also ask for turns


class _Entry:
    """One operation's plan: its backoff, next poll times and the waiters sharing its polls."""

    __slots__ = (
        "born",
        "deadline",
        "due",
        "granted",
        "key",
        "last",
        "name",
        "poller",
        "queue",
        "ready",
        "steps",
        "tickets",
        "version",
    )

    def __init__(self, name: str, born: float, policy: PollPolicy) -> None:
        self.name = name
        self.born = born
        self.steps = policy.delays()
        self.tickets: list[Ticket] = []
        self.deadline: float | None = None  # the earliest deadline among the tickets
        self.ready = 0.0  # no poll before (the lone schedule)
        self.due = 0.0  # a poll after this may break the lag bound
        self.key = -1  # the sequence number of its queue item; -1: in no queue
        self.queue = _NONE
        self.granted = False  # a poll was granted and not yet recorded
        self.poller: Ticket | None = None  # the ticket making the granted poll
        self.version = 0  # states recorded so far
        self.last: operations_pb2.Operation | None = None


_NONE, _WAITING, _READY = 0, 1, 2  # which queue an entry is in


class PollPlanner:
    """One client's polls: per-operation schedules, earliest-due first among the ready, within a token bucket.

    Not thread-safe: the driver serializes every call (a lock, or one event loop).
    """

    def __init__(self, policy: PollPolicy, *, rng: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._rng = rng
        self._rate = policy.max_polls_per_second
        self._burst = float(policy.burst)
        self._tokens = self._burst
        self._reserved = 0  # tokens held for polls granted and not yet started
        self._refilled: float | None = None
        self._entries: dict[str, _Entry] = {}
        self._waiting: list[tuple[float, int, _Entry]] = []  # (ready, sequence, entry): not ready yet
        self._ready: list[tuple[float, float, int, _Entry]] = []  # (due, born, sequence, entry): waiting for a token
        self._sequence = 0
        self._tickets = 0

    # -- what the driver asks -----------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Tickets registered (waiters, over all operations)."""
        return self._tickets

    def __len__(self) -> int:
        """Operations planned."""
        return len(self._entries)

    def join(self, ticket: Ticket, now: float) -> None:
        """Register a waiter; its operation's first poll is planned now (or shared if already planned)."""
        if ticket.entry is not None:
            return
        entry = self._entries.get(ticket.name)
        if entry is None:
            entry = self._entries[ticket.name] = _Entry(ticket.name, ticket.born, self.policy)
            self._add(entry, ticket)
            self._plan(entry, now)
            return
        self._add(entry, ticket)
        ticket.seen = entry.version  # only states received from now on are handed over
        entry.born = min(entry.born, ticket.born)
        deadline = ticket.deadline
        if deadline is not None and now < deadline and entry.queue != _NONE and deadline < entry.due:
            # a final poll at this waiter's deadline, as a lone waiter makes
            self._queue(entry, min(entry.ready, deadline), deadline, now)

    def turn(self, ticket: Ticket, now: float) -> _Signal | operations_pb2.Operation | None:
        """POLL (this ticket makes the granted poll, now: its token is spent now), a newer shared state,
        or None (keep waiting)."""
        entry = ticket.entry
        if entry is None:
            raise ValueError(f"{ticket.name}: ticket not joined")
        if entry.version > ticket.seen and entry.last is not None:
            ticket.seen = entry.version
            return entry.last
        if entry.granted and entry.poller is None:
            entry.poller = ticket
            self._refill(now)
            self._tokens -= 1  # at the poll, not at the grant: a waiter that wakes late still paces the sends
            self._reserved -= 1
            return POLL
        return None

    def due(self, now: float) -> list[Ticket]:
        """Grant the polls the budget allows by ``now``, earliest due first; the tickets to wake.

        A grant holds a token until its poll starts (``turn``), which spends it: so the budget bounds
        the polls as sent, however late a granted waiter gets to run (a busy event loop, a thread
        waiting for the CPU), and a burst of late waiters cannot exceed it either.
        """
        self._refill(now)
        waiting, ready = self._waiting, self._ready
        while waiting and waiting[0][0] <= now + _EPSILON:
            _at, key, entry = heapq.heappop(waiting)
            if key == entry.key:
                self._push_ready(entry)
        woken: list[Ticket] = []
        while ready and self._tokens - self._reserved >= 1 - _EPSILON:
            _due, _born, key, entry = heapq.heappop(ready)
            if key != entry.key:  # stale: requeued or gone
                continue
            entry.key, entry.queue = -1, _NONE
            entry.granted = True
            self._reserved += 1
            woken.extend(entry.tickets)
        return woken

    def next_at(self) -> float | None:
        """When ``due`` may next grant a poll (None: nothing is waiting for a grant, or every token is
        held by a granted poll not started yet: its ``turn`` changes that)."""
        _drop_stale(self._ready, 2)
        _drop_stale(self._waiting, 1)
        if self._ready:
            at = self._refilled if self._refilled is not None else 0.0
        elif self._waiting:
            at = self._waiting[0][0]
        else:
            return None
        free = self._tokens - self._reserved
        if free < 1 - _EPSILON and self._refilled is not None:
            if self._tokens >= self._burst - _EPSILON:
                return None  # a full bucket, all of it held: nothing to grant before a poll starts
            at = max(at, self._refilled + (1 - free) / self._rate)
        return at

    def record(self, ticket: Ticket, operation: operations_pb2.Operation | None, now: float) -> list[Ticket]:
        """The poll granted to ``ticket`` is over (``operation`` None: it failed); plan the next one.

        Returns the other waiters to wake: they are handed the new state by ``turn``.
        """
        entry = ticket.entry
        if entry is None:
            return []
        if entry.poller is ticket:
            entry.poller = None
            entry.granted = False
        if operation is None:
            self._plan(entry, now)
            return []
        entry.version += 1
        entry.last = operation
        ticket.seen = entry.version
        if not operation.done:  # done: every waiter leaves with this state, no more polls
            self._plan(entry, now)
        return [other for other in entry.tickets if other is not ticket]

    def leave(self, ticket: Ticket, now: float) -> None:
        """The ticket's wait is over (done, timed out, failed or abandoned)."""
        entry = ticket.entry
        if entry is None:
            return
        ticket.entry = None
        entry.tickets.remove(ticket)
        self._tickets -= 1
        if not entry.tickets:
            del self._entries[entry.name]
            entry.key, entry.queue = -1, _NONE
            if entry.granted and entry.poller is None:  # granted, never started: its token is free again
                self._reserved -= 1
            return
        entry.deadline = min((t.deadline for t in entry.tickets if t.deadline is not None), default=None)
        if entry.poller is ticket:  # it left in the middle of its poll: the others are planned afresh
            entry.poller = None
            entry.granted = False
            if entry.last is None or not entry.last.done:
                self._plan(entry, now)

    # -- the plan -------------------------------------------------------------------------------

    def bound(self, age: float) -> float:
        """The notice-lag bound at this age: max(initial, lag_ratio x age)."""
        return max(self.policy.initial, self.policy.lag_ratio * age)

    def delay(self, step: float, age: float) -> float:
        """A lone waiter's next delay: the backoff ``step``, capped by the lag bound, with jitter."""
        return min(step, self.bound(age)) * (1 - self.policy.jitter * self._rng())

    def _add(self, entry: _Entry, ticket: Ticket) -> None:
        entry.tickets.append(ticket)
        ticket.entry = entry
        self._tickets += 1
        if ticket.deadline is not None and (entry.deadline is None or ticket.deadline < entry.deadline):
            entry.deadline = ticket.deadline

    def _plan(self, entry: _Entry, now: float) -> None:
        """The next poll after one made (or planned) at ``now``."""
        age = now - entry.born
        ready = now + self.delay(next(entry.steps), age)
        due = now + self.bound(age)
        deadline = entry.deadline
        if deadline is not None and now < deadline:
            ready = min(ready, deadline)  # as a lone waiter does: one last poll when its wait ends
            due = min(due, deadline)
        self._queue(entry, ready, max(due, ready), now)

    def _queue(self, entry: _Entry, ready: float, due: float, now: float) -> None:
        entry.ready, entry.due = ready, due
        if ready <= now:
            self._push_ready(entry)
            return
        self._sequence += 1
        entry.key, entry.queue = self._sequence, _WAITING
        heapq.heappush(self._waiting, (ready, self._sequence, entry))

    def _push_ready(self, entry: _Entry) -> None:
        self._sequence += 1
        entry.key, entry.queue = self._sequence, _READY
        heapq.heappush(self._ready, (entry.due, entry.born, self._sequence, entry))

    def _refill(self, now: float) -> None:
        if self._refilled is not None and now > self._refilled:
            self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        if self._refilled is None or now > self._refilled:
            self._refilled = now


def _drop_stale(heap: list[Any], key_at: int) -> None:
    while heap and heap[0][key_at] != heap[0][-1].key:
        heapq.heappop(heap)
