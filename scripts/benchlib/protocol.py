"""The commands the orchestrator sends a worker, one JSON object per line (``{"cmd": ..., **fields}``).

A worker answers each with one JSON line: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.
Shared by both sides so that a field has one name; stdlib only, because the worker imports it
before any client library.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Setup:
    """The server's targets and fixtures (canned request bytes, base64)."""

    name: ClassVar[str] = "setup"
    grpc: str
    http: str
    fixtures: dict[str, Any]


@dataclass(frozen=True)
class Latency:
    """At most ``n`` calls, one at a time, for at most ``max_s``; replies a ``Batch``."""

    name: ClassVar[str] = "latency"
    client: str
    call: str
    n: int
    max_s: float
    warmup: int = 5


@dataclass(frozen=True)
class Throughput:
    """``total`` calls with ``concurrency`` in flight (asyncio workers), at most ``max_s``; replies a ``Batch``."""

    name: ClassVar[str] = "throughput"
    client: str
    call: str
    total: int
    concurrency: int
    max_s: float
    warmup: int = 5


@dataclass(frozen=True)
class Lag:
    """Submit and wait for operations done T s later, one thread per (client, T); sync ours/official.

    ``cases`` are ``[T, reps]`` pairs; replies ``records`` (one per operation: ``client``, ``T``,
    ``name``, ``lag_s``) and ``errors``.
    """

    name: ClassVar[str] = "lag"
    clients: list[str]
    cases: list[list[float]]
    max_s: float


@dataclass(frozen=True)
class Polling:
    """Submit ``ops`` operations done T s later on one client (``budget`` polls/s, ``burst``), then wait
    for all of them at once: a thread each (sync worker) or a task each (async worker).

    Replies ``records`` (``name``, ``lag_s``), ``errors``, ``cpu_s`` and ``wall_s`` of the waiting,
    ``starts`` (when the planner let each poll start, ``time.time()``) and (async) ``loop_lag_ms``: how
    late a 10 ms ticker woke, p50 / p99 / max.
    """

    name: ClassVar[str] = "polling"
    client: str
    ops: int
    done_after_s: float
    budget: float
    burst: int
    max_s: float


@dataclass(frozen=True)
class Profile:
    """cProfile ``n`` calls; replies ``text`` (pstats), ``by_package`` (self time), ``wall_s``, ``n``."""

    name: ClassVar[str] = "profile"
    client: str
    call: str
    n: int
    top: int = 30


Command = Setup | Latency | Throughput | Lag | Polling | Profile
_COMMANDS: dict[str, type[Command]] = {c.name: c for c in (Setup, Latency, Throughput, Lag, Polling, Profile)}


def to_message(command: Command) -> dict[str, Any]:
    return {"cmd": command.name, **asdict(command)}


def describe(command: Command) -> str:
    """The command and, if any, its client and call: for error messages."""
    return " ".join(str(getattr(command, key)) for key in ("name", "client", "call") if hasattr(command, key))


def from_message(message: dict[str, Any]) -> Command:
    fields = dict(message)
    return _COMMANDS[fields.pop("cmd")](**fields)


@dataclass(frozen=True)
class Batch:
    """A worker's reply to ``Latency`` and ``Throughput``."""

    calls: int
    wall_s: float
    cpu_s: float  # the worker process's CPU time, all threads
    samples_ns: list[int] = field(default_factory=list)  # per-call wall times (latency only)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Batch:
        return cls(reply["calls"], reply["wall_s"], reply["cpu_s"], reply["samples_ns"])
