"""The SQLite journal behind ``vision_grpc.bulk``: every input, every batch, every submission.

A bulk run must survive a crash at any instruction without losing an operation or annotating an
input twice by accident, so every state change is one SQLite transaction (WAL, ``synchronous=FULL``:
a committed change survives power loss) made *before* the runner moves on. The schema is
versioned with ``PRAGMA user_version``; one process at a time holds a journal (``<path>.lock``).

Batch states (``batches.state``); an input is ``new``, then ``batched``, then follows its batch::

        open (attempt 1)                      RPC returned: operation NAME
  new ─────────────────────► submitting ──────────────────────────────────► submitted ──ok──► done
  inputs                      ▲   │    ▲ crash found on resume: "ambiguous",     │
                     next run │   │    └ resubmitted (attempt n+1)               └──error──► failed
                (attempt n+1) │   │ ApiError / TransportError
                          submit_failed ────── attempts == max_attempts ─────────────────► failed

An operation that fails with a transient code (UNAVAILABLE, INTERNAL, ...) takes its batch from
``submitted`` to ``submit_failed`` (same attempt count, same output prefix) to be submitted again.
An operation that fails as a whole (say one missing file) does not fail its good inputs: the
batch becomes ``split``, the input its error names fails alone, and the others go into new
``queued`` batches (halves, when no input is named) that are submitted like any other, so a bad
file ends up alone and every good one is annotated.

``submitting`` is written before the submit RPC; found after a crash, the server may or may not
have seen the batch: it is resubmitted (to the same deterministic output prefix) and the decision
logged as ``ambiguous``. ``submitted`` carries the operation name: re-attached, never resubmitted.
``events`` is the append-only history; ``sigint_deferred`` keeps Ctrl-C out of the RPC-to-record gap.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import IO

from vision_grpc.errors import VisionError

__all__ = ["SCHEMA_VERSION", "Batch", "BatchState", "InputState", "Journal", "JournalError", "sigint_deferred"]


class BatchState(str, Enum):
    """Where a batch stands (the module docstring draws the transitions); stored as the value."""

    QUEUED = "queued"  # made by a split, not yet submitted
    SUBMITTING = "submitting"  # written before the submit RPC: ambiguous if found after a crash
    SUBMITTED = "submitted"  # its operation name is recorded
    SUBMIT_FAILED = "submit_failed"  # to be submitted again, while attempts remain
    DONE = "done"
    FAILED = "failed"
    SPLIT = "split"  # failed as a whole; its inputs went into new batches

    def __str__(self) -> str:
        return self.value


class InputState(str, Enum):
    """Where an input stands: ``new``, then ``batched`` (its batch says more), then done or failed."""

    NEW = "new"
    BATCHED = "batched"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


def _one_of(states: type[Enum]) -> str:
    return ", ".join(f"'{state.value}'" for state in states)


SCHEMA_VERSION = 1
_INGEST_CHUNK = 1000
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE batches (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ({_one_of(BatchState)})),
    operation TEXT NOT NULL DEFAULT '', output_prefix TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
    uncertain INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE inputs (seq INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ({_one_of(InputState)})),
    batch TEXT REFERENCES batches(id), pos INTEGER, reason TEXT NOT NULL DEFAULT '',
    output_uri TEXT NOT NULL DEFAULT '');
CREATE INDEX inputs_by_state ON inputs(state, seq); CREATE INDEX inputs_by_batch ON inputs(batch, pos);
CREATE TABLE events (seq INTEGER PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '')
"""


class JournalError(VisionError):
    """The journal cannot be used: newer schema, other settings, or another process holds it."""


@dataclass(frozen=True)
class Batch:
    """One batch: its inputs in request order and where it stands (``uncertain``: the last submit
    failed in a way the server may nevertheless have seen)."""

    id: str
    state: BatchState
    operation: str
    output_prefix: str
    attempts: int
    uncertain: bool
    reason: str
    uris: tuple[str, ...]


class Journal:
    """One journal file; every method that changes state is one transaction."""

    def __init__(
        self, path: str | os.PathLike[str], *, on_event: Callable[[str, str], None] | None = None, reader: bool = False
    ) -> None:
        """``reader=True``: no lock and no schema writes, to read while a run writes (WAL readers never block)."""
        self.path = os.fspath(path)
        if reader and not os.path.exists(self.path):
            raise JournalError(f"{self.path}: no such journal")
        self._on_event = on_event or (lambda event, batch: None)
        self._events: list[tuple[str, str]] = []  # written in the open transaction, announced after COMMIT
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._lock: IO[str] | None = None
        try:
            self._lock = None if reader else _lock(self.path + ".lock")
            if str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() != "wal":
                raise JournalError(f"{self.path}: SQLite refused WAL mode")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate(reader)
        except BaseException:
            self.close()
            raise

    def _migrate(self, reader: bool) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not reader:  # only the lock holder gets here: no race
            with self._tx() as db:  # statement by statement: executescript() would COMMIT mid-transaction
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema {version}; this version reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction, rolled back on any exception (KeyboardInterrupt too); listeners after COMMIT."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._events.clear()
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        events, self._events = self._events, []
        for event, batch in events:
            self._on_event(event, batch)

    def _event(self, event: str, batch: str = "", detail: str = "") -> None:
        self._db.execute(
            "INSERT INTO events (at, event, batch, detail) VALUES (?, ?, ?, ?)", (time.time(), event, batch, detail)
        )
        self._events.append((event, batch))

    def settle_meta(self, fixed: dict[str, str], current: dict[str, str]) -> None:
        """Store ``fixed`` on first use and refuse a journal written with other values; save ``current``."""
        with self._tx() as db:
            known = dict(db.execute("SELECT key, value FROM meta").fetchall())
            for key, value in fixed.items():
                if known.get(key, value) != value:
                    raise JournalError(f"{self.path} was written with {key}={known[key]!r}, not {value!r}")
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", {**fixed, **current}.items())

    def note(self, event: str, batch_id: str = "", detail: str = "") -> None:
        """Log an event that changes no state (``ambiguous``, ``interrupted``)."""
        with self._tx():
            self._event(event, batch_id, detail)

    def add_inputs(self, uris: Iterable[str], problem: Callable[[str], str | None]) -> None:
        """Append unseen URIs (stripped; blank ones skipped), ``_INGEST_CHUNK`` per transaction; an
        invalid one (``problem`` gives the reason) is failed at once."""
        chunk: list[str] = []
        for raw in uris:
            if raw.strip():
                chunk.append(raw.strip())
            if len(chunk) >= _INGEST_CHUNK:
                self._add_chunk(chunk, problem)
                chunk = []
        self._add_chunk(chunk, problem)

    def _add_chunk(self, uris: list[str], problem: Callable[[str], str | None]) -> None:
        with self._tx() as db:
            before = db.total_changes
            for uri in dict.fromkeys(uris):
                reason = problem(uri)
                db.execute(
                    "INSERT OR IGNORE INTO inputs (uri, state, reason) VALUES (?, ?, ?)",
                    (uri, InputState.FAILED if reason else InputState.NEW, reason or ""),
                )
            if db.total_changes > before:
                self._event("ingested", detail=f"{db.total_changes - before} new input(s)")

    def new_inputs(self, limit: int) -> list[str]:
        rows = self._db.execute("SELECT uri FROM inputs WHERE state = ? ORDER BY seq LIMIT ?", (InputState.NEW, limit))
        return [row[0] for row in rows]

    def open_batch(self, batch_id: str, uris: Sequence[str], output_prefix: str) -> Batch:
        """new inputs -> batch ``submitting`` (attempt 1): "about to be submitted", before the RPC."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (id, state, output_prefix) VALUES (?, ?, ?)",
                (batch_id, BatchState.SUBMITTING, output_prefix),
            )
            for pos, uri in enumerate(uris):
                cursor = db.execute(
                    "UPDATE inputs SET state = ?, batch = ?, pos = ? WHERE uri = ? AND state = ?",
                    (InputState.BATCHED, batch_id, pos, uri, InputState.NEW),
                )
                if cursor.rowcount != 1:
                    raise JournalError(f"{uri} is not a new input of {self.path}")
            self._event("submitting", batch_id, "attempt 1")
        return Batch(batch_id, BatchState.SUBMITTING, "", output_prefix, 1, False, "", tuple(uris))

    def retry(self, batch_id: str, max_attempts: int) -> bool:
        """The next attempt (``submitting`` again); False, with the inputs failed, once attempts are spent."""
        with self._tx() as db:
            if self._spent(batch_id, max_attempts):
                return False
            db.execute(
                "UPDATE batches SET state = ?, attempts = attempts + 1 WHERE id = ?", (BatchState.SUBMITTING, batch_id)
            )
            (attempts,) = db.execute("SELECT attempts FROM batches WHERE id = ?", (batch_id,)).fetchone()
            self._event("submitting", batch_id, f"attempt {attempts}")
            return True

    def submitted(self, batch_id: str, operation: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET state = ?, operation = ?, reason = '', uncertain = 0 WHERE id = ?",
                (BatchState.SUBMITTED, operation, batch_id),
            )
            self._event("submitted", batch_id, operation)

    def submit_failed(self, batch_id: str, reason: str, *, uncertain: bool, max_attempts: int) -> bool:
        """The submit RPC failed, or its operation failed transiently: to be submitted again (next run,
        or this one), or failed for good once attempts are spent (then True)."""
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET state = ?, reason = ?, uncertain = ? WHERE id = ?",
                (BatchState.SUBMIT_FAILED, reason, int(uncertain), batch_id),
            )
            self._event("submit_failed", batch_id, reason)
            return self._spent(batch_id, max_attempts)

    def _spent(self, batch_id: str, max_attempts: int) -> bool:
        attempts, reason = self._db.execute("SELECT attempts, reason FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if attempts < max_attempts:
            return False
        self._fail(batch_id, f"gave up after {attempts} attempt(s); last: {reason or 'interrupted'}")
        self._event("gave_up", batch_id, reason)
        return True

    def finish(self, batch_id: str, *, error: str | None, outputs: dict[str, str]) -> None:
        """The operation ended: all the batch's inputs done (with their output URIs) or failed, at once."""
        with self._tx() as db:
            if error is not None:
                self._fail(batch_id, error)
                self._event("failed", batch_id, error)
                return
            db.execute("UPDATE batches SET state = ?, reason = '' WHERE id = ?", (BatchState.DONE, batch_id))
            db.executemany(
                "UPDATE inputs SET state = ?, output_uri = ? WHERE uri = ? AND batch = ?",
                [(InputState.DONE, out, uri, batch_id) for uri, out in outputs.items()],
            )
            self._event("done", batch_id)

    def split(
        self, batch_id: str, reason: str, *, culprit: str | None, groups: Sequence[tuple[str, Sequence[str], str]]
    ) -> list[Batch]:
        """The operation failed as a whole: ``culprit`` fails alone, ``groups`` become ``queued`` batches.

        ``groups`` are ``(batch id, uris, output prefix)``; all in one transaction.
        """
        with self._tx() as db:
            db.execute("UPDATE batches SET state = ?, reason = ? WHERE id = ?", (BatchState.SPLIT, reason, batch_id))
            if culprit is not None:
                db.execute(
                    "UPDATE inputs SET state = ?, reason = ? WHERE uri = ? AND batch = ?",
                    (InputState.FAILED, reason, culprit, batch_id),
                )
            for group_id, uris, prefix in groups:
                db.execute(
                    "INSERT INTO batches (id, state, output_prefix, attempts) VALUES (?, ?, ?, 0)",
                    (group_id, BatchState.QUEUED, prefix),
                )
                db.executemany(
                    "UPDATE inputs SET batch = ?, pos = ? WHERE uri = ? AND batch = ?",
                    [(group_id, pos, uri, batch_id) for pos, uri in enumerate(uris)],
                )
            self._event("split", batch_id, f"{reason} -> {', '.join(g[0] for g in groups) or 'nothing left'}")
        return [Batch(g[0], BatchState.QUEUED, "", g[2], 0, False, "", tuple(g[1])) for g in groups]

    def _fail(self, batch_id: str, reason: str) -> None:
        self._db.execute("UPDATE batches SET state = ?, reason = ? WHERE id = ?", (BatchState.FAILED, reason, batch_id))
        self._db.execute(
            "UPDATE inputs SET state = ?, reason = ? WHERE batch = ?", (InputState.FAILED, reason, batch_id)
        )

    def batches(self, *states: BatchState, batch_id: str = "") -> list[Batch]:
        """Batches in these states (all when none given), oldest first; or the one named ``batch_id``."""
        args: tuple[str, ...] = tuple(str(state) for state in states)
        where = f"state IN ({', '.join('?' * len(states))})" if states else "1"
        if batch_id:
            where, args = "id = ?", (batch_id,)
        rows = self._db.execute(
            "SELECT id, state, operation, output_prefix, attempts, uncertain, reason "
            f"FROM batches WHERE {where} ORDER BY seq",
            args,
        ).fetchall()
        return [Batch(r[0], BatchState(r[1]), r[2], r[3], r[4], bool(r[5]), r[6], self._uris(r[0])) for r in rows]

    def _uris(self, batch_id: str) -> tuple[str, ...]:
        rows = self._db.execute("SELECT uri FROM inputs WHERE batch = ? ORDER BY pos", (batch_id,))
        return tuple(row[0] for row in rows)

    def events(self) -> list[tuple[str, str, str]]:
        """The history: (event, batch, detail), oldest first."""
        return self._db.execute("SELECT event, batch, detail FROM events ORDER BY seq").fetchall()

    def input_rows(self) -> list[tuple[str, str, str, str, str, str, str, str]]:
        """Every input in order: (uri, state, reason, output_uri, batch, batch state, operation, batch reason)."""
        return self._db.execute(
            "SELECT i.uri, i.state, i.reason, i.output_uri, COALESCE(i.batch, ''), COALESCE(b.state, ''), "
            "COALESCE(b.operation, ''), COALESCE(b.reason, '') FROM inputs i LEFT JOIN batches b ON b.id = i.batch "
            "ORDER BY i.seq"
        ).fetchall()


def _lock(path: str) -> IO[str] | None:
    """An exclusive advisory lock, held while the journal is open (POSIX; released if the process dies)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process guard
        return None
    handle = open(path, "a")  # held until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JournalError(f"{path}: another process is using this journal") from None
    return handle


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a first Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``; a second
    one raises at once. Only in the main thread under Python's default handler; else a no-op."""
    held: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)

    usable = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if usable:
        signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        if usable:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt
