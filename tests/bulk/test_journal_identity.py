"""A journal that lost its write-ahead log is refused, never resumed from an older state.

A bulk run is SIGKILLed partway (``bulk_worker.py``), so its recent changes live in ``journal.db-wal``; the
main file copied alone is then an older state, from which a resume would submit batches again. Opening
that copy, to write or to read, raises ``JournalError`` naming the missing log; the copy with its log, the
journal in place, and a journal closed cleanly then copied alone all resume without a second submit.
Older journals (schema 1, no ``journal`` table) open and are upgraded; other SQLite files are refused.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.bulk.bed import FILES, Bed, check_consistent
from tests.bulk.test_bulk import CHILD_TIMEOUT, worker_command
from vision_grpc.bulk import BulkRunner, load_report
from vision_grpc.bulk.journal import SCHEMA_VERSION, Journal, JournalError


def killed_partway(bed: Bed, count: int = 20, at: int = 6) -> list[str]:
    """Stage ``count`` inputs and SIGKILL a run right after its ``at``-th submitted batch (2 files each)."""
    uris = bed.stage(count)
    command = worker_command(bed, uris, ("submitted", at))
    child = subprocess.run(command, capture_output=True, timeout=CHILD_TIMEOUT)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert Path(f"{bed.journal}-wal").stat().st_size > 0
    return uris


def submits(bed: Bed) -> int:
    return sum(1 for call in bed.emulator.service.calls if call.method == FILES)


def copy_of(bed: Bed, tmp_path: Path, *suffixes: str) -> Path:
    target = tmp_path / "copy" / "run.sqlite"
    target.parent.mkdir()
    for suffix in ("", *suffixes):
        shutil.copy(f"{bed.journal}{suffix}", f"{target}{suffix}")
    return target


def test_a_killed_run_copied_without_its_wal_is_refused(bed: Bed, tmp_path: Path) -> None:
    uris = killed_partway(bed)
    copy, before = copy_of(bed, tmp_path), submits(bed)
    state = copy.read_bytes()
    for open_it in (lambda: Journal(copy), lambda: Journal(copy, reader=True), lambda: load_report(copy)):
        with pytest.raises(JournalError, match=r"write-ahead log .*run\.sqlite-wal is (missing|empty)") as caught:
            open_it()
        assert "Copy run.sqlite together with run.sqlite-wal" in str(caught.value)
    with pytest.raises(JournalError, match="did not close"):
        BulkRunner(bed.client, copy, **bed.settings(files_per_request=2)).run(uris)
    assert submits(bed) == before  # nothing was submitted again
    assert copy.read_bytes() == state  # and the copy was left as it was
    # The journal in place (reading it first must not remove its log) resumes without resubmitting.
    assert load_report(bed.journal).counts["pending"] > 0
    report = bed.runner(files_per_request=2).run(uris)
    assert report.counts["done"] == 20 and submits(bed) == 10
    check_consistent(bed, uris)


def test_a_copy_with_its_wal_resumes(bed: Bed, tmp_path: Path) -> None:
    uris = killed_partway(bed)
    copy = copy_of(bed, tmp_path, "-wal")
    report = BulkRunner(bed.client, copy, **bed.settings(files_per_request=2)).run(uris)
    assert report.counts["done"] == 20 and submits(bed) == 10  # 6 re-attached, 4 new: none twice


def test_a_journal_closed_cleanly_copies_alone(bed: Bed, tmp_path: Path) -> None:
    uris = bed.stage(4)
    assert bed.runner().run(uris).counts["done"] == 4
    assert not Path(f"{bed.journal}-wal").exists()  # checkpointed into the main file at close
    copy = copy_of(bed, tmp_path)
    assert load_report(copy).counts["done"] == 4
    assert BulkRunner(bed.client, copy, **bed.settings()).run(uris).counts["done"] == 4
    assert submits(bed) == 2


def test_a_log_merged_by_another_program_is_accepted_once_marked(bed: Bed, tmp_path: Path) -> None:
    uris = killed_partway(bed, 8, 3)
    with closing(sqlite3.connect(bed.journal)) as db:  # an SQLite shell: recovers the log, merges it, removes it
        db.execute("SELECT count(*) FROM inputs").fetchone()
    assert not Path(f"{bed.journal}-wal").exists()
    with pytest.raises(JournalError, match="UPDATE journal SET closed = opened"):
        Journal(bed.journal)
    with closing(sqlite3.connect(bed.journal)) as db:
        db.execute("UPDATE journal SET closed = opened")
        db.commit()
    assert bed.runner(files_per_request=2).run(uris).counts["done"] == 8
    check_consistent(bed, uris)


def test_a_journal_whose_tables_were_only_in_its_wal_is_refused(tmp_path: Path) -> None:
    """An older journal copied alone before any checkpoint: a main file in WAL mode without tables."""
    original, copy = tmp_path / "old.db", tmp_path / "copy.db"
    with closing(sqlite3.connect(original, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        shutil.copy(original, copy)
    with pytest.raises(JournalError, match=r"no journal tables, yet in WAL mode: the write-ahead log .*copy\.db-wal"):
        Journal(copy)


def test_other_sqlite_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE things (x)")
        db.commit()
    with pytest.raises(JournalError, match="not a vision-grpc journal"):
        Journal(path)


def test_a_schema_1_journal_opens_and_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with closing(Journal(path)) as journal:
        journal.settle_meta({"kind": "files"}, {})
    with closing(sqlite3.connect(path)) as db:  # as schema 1 wrote it: no journal table
        db.execute("DROP TABLE journal")
        db.execute("PRAGMA user_version=1")
        db.commit()
    with closing(Journal(path, reader=True)) as journal:  # read as it is
        assert journal.events() == []
    with closing(Journal(path)):
        pass
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert db.execute("SELECT opened, closed FROM journal").fetchone() == (1, 1)
        assert dict(db.execute("SELECT key, value FROM meta").fetchall()) == {"kind": "files"}


def test_creation_is_all_or_nothing_and_each_run_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.touch()  # an empty file (a creation that died before its first commit) is a new journal
    with closing(Journal(path)):
        shutil.copy(path, tmp_path / "main-only.db")  # what the main file alone says while the run is open
        with closing(sqlite3.connect(tmp_path / "main-only.db")) as db:
            assert db.execute("SELECT opened, closed FROM journal").fetchone() == (1, 0)
    with closing(Journal(path)), closing(Journal(path, reader=True)) as reader:  # a reader while a run is open
        assert reader.batches() == []
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT opened, closed FROM journal").fetchone() == (2, 2)
