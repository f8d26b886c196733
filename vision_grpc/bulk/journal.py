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

A journal is the main file *and* its write-ahead log (``<path>-wal``), which holds every change since
the last checkpoint; copied alone, the main file of a journal whose last run did not close is an older
state, and resuming from it would submit batches again. So the main file itself says whether a run
is open: the one-row ``journal`` table (an id, the creation time, ``opened`` and ``closed`` run
counters) is created with the tables in one transaction before WAL mode is on, each writer increments
``opened`` and checkpoints that into the main file before it changes anything, and a clean ``close()``
sets ``closed = opened``. A writer or a reader that finds ``opened != closed`` without a non-empty
``-wal`` next to the file refuses it (``JournalError`` naming the missing file) rather than resume.
Readers open the file read-only, so they never checkpoint and remove the log of a crashed run. If the
log is really gone because another SQLite program merged it into the file after a crash (nothing
lost), ``UPDATE journal SET closed = opened`` accepts the file. A main file in WAL mode without
tables (a journal whose log held everything) is refused too, as is any other SQLite database.

Schema versions (``PRAGMA user_version``): 1 had no ``journal`` table; a writer upgrades it to 2 in
place (adding the row, counters at 0). A version-1 file opens as before: a lost log cannot be told
from it until it has been opened by a version-2 writer once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
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


SCHEMA_VERSION = 2
_INGEST_CHUNK = 1000
# Version 2: which journal this is, and whether its last writer closed it (see the module docstring).
_IDENTITY = """
CREATE TABLE journal (id TEXT NOT NULL, created REAL NOT NULL, opened INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0)
"""
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
    """The journal cannot be used: newer schema, other settings, another process holds it, or it lost
    its write-ahead log (or is no journal at all)."""


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
        """``reader=True``: read-only, no lock and no writes, to read while a run writes (WAL readers never block)."""
        self.path = os.fspath(path)
        if reader and not os.path.exists(self.path):
            raise JournalError(f"{self.path}: no such journal")
        self._on_event = on_event or (lambda event, batch: None)
        self._events: list[tuple[str, str]] = []  # written in the open transaction, announced after COMMIT
        self._run = 0  # this writer's number in ``journal.opened``, once it has one
        self._lock: IO[str] | None = None if reader else _lock(self.path + ".lock")
        try:
            wal = _wal_size(self.path)  # before connecting: SQLite creates an empty one
            # A reader opens the file read-only: it never checkpoints, nor removes the log of a crashed run.
            target = f"{Path(self.path).absolute().as_uri()}?mode=ro" if reader else self.path
            self._db = sqlite3.connect(target, uri=reader, isolation_level=None, timeout=30.0)
        except BaseException:
            if self._lock is not None:
                self._lock.close()
            raise
        try:
            if reader:
                self._check_reader(wal)
            else:
                self._open_writer(wal)
            self._db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self.close()
            raise

    def _open_writer(self, wal: int) -> None:
        """Create, upgrade or check the file (under the lock: no race), then record this run in the main file."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise JournalError(f"{self.path}: not a vision-grpc journal (an SQLite database with other tables)")
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal" and wal <= 0:
                raise JournalError(
                    f"{self.path}: no journal tables, yet in WAL mode: the write-ahead log {self.path}-wal, "
                    "which held the whole journal, is missing; copy the journal together with its -wal file"
                )
            with self._tx():  # tables and identity in one transaction, before WAL mode: all or nothing
                for statement in (*_SCHEMA.split(";"), _IDENTITY):  # not executescript(): it would COMMIT
                    db.execute(statement)
                db.execute("INSERT INTO journal (id, created) VALUES (?, ?)", (uuid.uuid4().hex, time.time()))
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version == 1:
            with self._tx():
                db.execute(_IDENTITY)
                db.execute("INSERT INTO journal (id, created) VALUES (?, ?)", (uuid.uuid4().hex, time.time()))
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema {version}; this version reads {SCHEMA_VERSION}")
        else:
            self._check_log(wal)
        if str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() != "wal":
            raise JournalError(f"{self.path}: SQLite refused WAL mode")
        db.execute("PRAGMA synchronous=FULL")
        with self._tx():
            db.execute("UPDATE journal SET opened = opened + 1")
            self._run = db.execute("SELECT opened FROM journal").fetchone()[0]
        # The main file must say "a run is open" before anything else changes: checkpoint it there.
        busy, frames, copied = db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        if busy or frames != copied:
            raise JournalError(f"{self.path}: could not checkpoint the journal (readers kept it busy); try again")

    def _check_reader(self, wal: int) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (1, SCHEMA_VERSION):
            raise JournalError(f"{self.path}: journal schema {version}; this version reads {SCHEMA_VERSION}")
        if version == SCHEMA_VERSION:
            # Measured again after reading: a writer that started meanwhile has its log by the time its run shows.
            self._check_log(wal if wal > 0 else _wal_size(self.path))

    def _clean(self) -> bool:
        """Whether the last writer closed the journal (``closed == opened`` as the file says)."""
        row = self._db.execute("SELECT opened, closed FROM journal").fetchone()
        if row is None:
            raise JournalError(f"{self.path}: its journal table is empty: damaged, or not written by vision-grpc")
        return bool(row[0] == row[1])

    def _check_log(self, wal: int) -> None:
        """Refuse a journal whose last run did not close when its write-ahead log is missing or empty."""
        if wal > 0 or self._clean():
            return
        name = os.path.basename(self.path)
        raise JournalError(
            f"{self.path}: its last run did not close, and its write-ahead log {self.path}-wal is "
            f"{'empty' if wal == 0 else 'missing'}: what that run recorded since its last checkpoint is lost, "
            f"and resuming would submit batches again. Copy {name} together with {name}-wal; or, if another "
            f"SQLite program merged the log into the file after the crash, accept it with "
            f"`sqlite3 {name} 'UPDATE journal SET closed = opened'`"
        )

    def close(self) -> None:
        """Record a clean close (a writer), then release the file and the lock."""
        try:
            if self._run:
                run, self._run = self._run, 0
                try:
                    with self._tx() as db:
                        db.execute("UPDATE journal SET closed = ? WHERE opened = ?", (run, run))
                    db.execute("PRAGMA wal_checkpoint(FULL)")  # best effort: else the log still holds it
                except sqlite3.Error:
                    pass  # the file then says "not closed": a copy of it alone is refused, in place it opens
        finally:
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


def _wal_size(path: str) -> int:
    """The size of the journal's write-ahead log, -1 when there is none."""
    try:
        return os.path.getsize(path + "-wal")
    except OSError:
        return -1


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
