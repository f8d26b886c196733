"""``vision_grpc.bulk`` against the real emulator: whole runs, failures, interruptions and SIGKILLs.

Each test stages tiny PDFs (or images) in its own bucket of one shared ``Emulator(operation_seconds=0.2)``,
runs ``BulkRunner`` with a real ``Client`` and checks the journal against what the server saw
(``bed.check_consistent``): every input reported once, every journaled operation on the server with exactly
its batch's inputs, an input in several operations only after a logged ambiguous resubmission, every
submit RPC journaled before it was sent. Kill tests SIGKILL ``bulk_worker.py`` (a child, with a timeout).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from google.rpc import code_pb2

from tests.bulk.bed import FILES, Bed, check_consistent
from vision_grpc.bulk import load_report
from vision_grpc.bulk.journal import Journal, JournalError
from vision_grpc.errors import ValidationError

WORKER = Path(__file__).with_name("bulk_worker.py")
CHILD_TIMEOUT = 30.0


def stop_at(event: str, nth: int, action: Callable[[], None]) -> Callable[[str, str], None]:
    seen = Counter[str]()

    def on_event(name: str, batch_id: str) -> None:
        seen[name] += 1
        if name == event and seen[name] == nth:
            action()

    return on_event


def interrupt() -> None:
    raise KeyboardInterrupt


def test_files_run_annotates_every_input_once(bed: Bed) -> None:
    uris = bed.stage(20)
    in_flight, most = [0], [0]

    def track(event: str, batch_id: str) -> None:
        in_flight[0] += {"sent": 1, "done": -1, "failed": -1}.get(event, 0)
        most[0] = max(most[0], in_flight[0])

    report = bed.runner(on_event=track).run(uris + uris[:5])  # duplicates are annotated once
    assert report.counts == {"done": 20, "failed": 0, "pending": 0, "total": 20}
    assert len(report.operations) == 7 and most[0] == 2
    check_consistent(bed, uris)
    assert len(bed.emulator.list_objects(bed.out)) == 20  # one shard per one-page file
    assert {r.output_uri.rsplit("/", 2)[-2] for r in report.done} == {"0", "1", "2"}
    calls = len(bed.emulator.service.calls)
    assert bed.runner().run(uris).counts == report.counts
    assert len(bed.emulator.service.calls) == calls  # a finished journal sends nothing, polls nothing


def test_images_run(bed: Bed) -> None:
    uris = bed.stage(5, suffix=".png")
    report = bed.runner(kind="images", images_per_request=2, features=["LABEL_DETECTION"]).run(uris)
    assert report.counts["done"] == 5 and len(report.operations) == 3
    check_consistent(bed, uris, method="AsyncBatchAnnotateImages")
    assert {r.output_uri for r in report.done} == {f"{bed.out}batch-{r.batch}/" for r in report.done}


def test_a_missing_object_fails_alone_and_its_batch_mates_are_annotated(bed: Bed) -> None:
    uris = bed.stage(5)
    missing, unknown_type = f"{bed.bucket}in/missing.pdf", f"{bed.bucket}in/notes.txt"
    report = bed.runner().run([*uris[:2], missing, unknown_type, *uris[2:]])
    failed = {r.uri: r.reason for r in report.failed}
    assert set(failed) == {missing, unknown_type}
    assert failed[missing].startswith("NOT_FOUND: ") and missing in failed[missing]
    assert failed[unknown_type].startswith("INVALID_ARGUMENT: ")
    assert {r.uri for r in report.done} == set(uris)
    events = [event for event, _, _ in bed.history()]
    assert events.count("split") == 1  # the operation failed as a whole once, then the rest was resubmitted
    check_consistent(bed, [*uris, missing, unknown_type])


def test_a_failed_batch_without_a_named_input_is_bisected(bed: Bed) -> None:
    from google.rpc import status_pb2

    from vision_grpc.errors import OperationError

    uris = [f"{bed.bucket}in/{name}.pdf" for name in "abcde"]
    runner = bed.runner(files_per_request=5)
    with closing(Journal(bed.journal)) as journal:
        runner._journal = journal
        journal.add_inputs(uris, lambda uri: None)
        batch = journal.open_batch("b0", uris, f"{bed.out}batch-b0/")
        error = OperationError("operations/x", status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad input"))
        halves = runner._split(batch, error)
        assert [list(h.uris) for h in halves] == [uris[:2], uris[2:]]
        assert [b.state for b in journal.batches("queued")] == ["queued", "queued"]
        assert [row[1] for row in journal.input_rows()] == ["batched"] * 5  # nothing failed, nothing lost


def test_a_bad_file_in_a_batch_fails_alone(bed: Bed) -> None:
    uris = bed.stage(4)
    broken = f"{bed.bucket}in/broken.pdf"
    bed.emulator.put_object(broken, b"%PDF-1.4 this is not a readable document")
    report = bed.runner(files_per_request=5).run([*uris, broken])
    assert {r.uri for r in report.failed} == {broken}
    assert {r.uri for r in report.done} == set(uris)
    check_consistent(bed, [*uris, broken])


def test_failed_submit_is_retried_on_the_next_run(bed: Bed) -> None:
    uris = bed.stage(6)
    bed.emulator.service.faults.fail_next(FILES, code_pb2.UNAVAILABLE)
    first = bed.runner().run(uris)
    assert first.counts == {"done": 3, "failed": 0, "pending": 3, "total": 6}
    assert all("submit failed (UNAVAILABLE: injected fault" in r.reason for r in first.pending)
    second = bed.runner().run(uris)
    assert second.counts["done"] == 6 and len(second.operations) == 2
    assert ("submitting", first.pending[0].batch, "attempt 2") in bed.history()
    check_consistent(bed, uris)


def test_submit_gives_up_after_max_attempts(bed: Bed) -> None:
    uris = bed.stage(2)
    bed.emulator.service.faults.fail_next(FILES, code_pb2.PERMISSION_DENIED, times=5)
    assert bed.runner(max_attempts=2).run(uris).counts["pending"] == 2
    report = bed.runner(max_attempts=2).run(uris)
    assert report.counts["failed"] == 2
    assert report.failed[0].reason.startswith("gave up after 2 attempt(s); last: submit failed (PERMISSION_DENIED")
    bed.runner(max_attempts=2).run(uris)
    assert len([c for c in bed.emulator.service.calls if c.method == FILES]) == 2  # nothing more was sent


@pytest.mark.parametrize(("event", "nth"), [("submitting", 2), ("sent", 2), ("submitted", 1), ("done", 1)])
def test_interrupted_run_resumes(bed: Bed, event: str, nth: int) -> None:
    uris = bed.stage(8)
    with pytest.raises(KeyboardInterrupt):
        bed.runner(on_event=stop_at(event, nth, interrupt)).run(uris)
    assert bed.history()[-1][0] == "interrupted"
    report = bed.runner().run(uris)
    assert report.counts["done"] == 8
    check_consistent(bed, uris)
    ambiguous = [batch for name, batch, _ in bed.history() if name == "ambiguous"]
    assert len(ambiguous) == (1 if event in ("submitting", "sent") else 0)
    assert len(bed.server_ops()) == len(report.operations) + (1 if event == "sent" else 0)
    assert len(bed.emulator.list_objects(bed.out)) == 8  # the ambiguous resubmission rewrote the same shards


def test_ctrl_c_during_a_submit_waits_for_the_operation_name(bed: Bed) -> None:
    uris = bed.stage(3)
    ctrl_c = stop_at("sent", 1, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        bed.runner(on_event=ctrl_c).run(uris)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert [name for name, _, _ in bed.history()][-2:] == ["submitted", "interrupted"]
    assert bed.runner().run(uris).counts["done"] == 3
    assert "ambiguous" not in {name for name, _, _ in bed.history()}
    check_consistent(bed, uris)


def test_journal_refuses_other_settings_and_a_second_writer(bed: Bed) -> None:
    uris = bed.stage(1)
    bed.runner().run(uris)
    with pytest.raises(JournalError, match="output_prefix"):
        bed.runner(output_prefix=f"{bed.bucket}elsewhere/").run(uris)
    with closing(Journal(bed.journal)):  # a run holds the journal: a second one is refused, reading is fine
        with pytest.raises(JournalError, match="another process"):
            bed.runner().run(uris)
        assert load_report(bed.journal).counts["done"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "pages"},
        {"files_per_request": 0},
        {"features": ["NO_SUCH_FEATURE"]},
        {"output_prefix": "https://example.com/out/"},
        {"poll_timeout": 0},
    ],
)
def test_bad_settings_fail_before_anything_is_written(bed: Bed, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        bed.runner(**bad)
    assert not bed.journal.exists()


def test_operations_still_running_at_the_timeout_are_reattached_later(bed: Bed) -> None:
    uris = bed.stage(4)
    first = bed.runner(poll_timeout=0.05).run(uris)
    assert first.counts["pending"] == 4 and "still running; run again" in first.pending[0].reason
    second = bed.runner().run(uris)
    assert second.counts["done"] == 4 and second.operations == first.operations  # waited for, not resubmitted
    check_consistent(bed, uris)


def worker_command(bed: Bed, uris: list[str], kill_after: tuple[str, int]) -> list[str]:
    config = {"inputs": uris, "kill_after": list(kill_after), **bed.settings(files_per_request=2)}
    return [sys.executable, str(WORKER), bed.emulator.grpc_target, str(bed.journal), json.dumps(config)]


@pytest.mark.parametrize(("event", "nth"), [("submitting", 1), ("sent", 2), ("submitted", 3), ("done", 2)])
def test_killed_worker_resumes(bed: Bed, event: str, nth: int) -> None:
    uris = bed.stage(8)
    child = subprocess.run(worker_command(bed, uris, (event, nth)), capture_output=True, timeout=CHILD_TIMEOUT)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    report = bed.runner(files_per_request=2).run(uris)
    assert report.counts["done"] == 8
    check_consistent(bed, uris)
    ambiguous = [batch for name, batch, _ in bed.history() if name == "ambiguous"]
    assert len(ambiguous) == (1 if event in ("submitting", "sent") else 0)
    assert len(bed.server_ops()) == len(report.operations) + (1 if event == "sent" else 0)
    assert len(bed.emulator.list_objects(bed.out)) == 8


def test_killed_at_a_random_moment_then_resumed_by_another_process(bed: Bed) -> None:
    uris = bed.stage(10)
    delay = random.Random().uniform(0.0, 0.6)
    with subprocess.Popen(
        worker_command(bed, uris, ("", 0)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as child:
        started = time.monotonic()
        while not bed.journal.exists() and time.monotonic() - started < CHILD_TIMEOUT:
            time.sleep(0.01)
        time.sleep(delay)
        child.kill()
        child.wait(timeout=CHILD_TIMEOUT)
    resumed = subprocess.run(worker_command(bed, uris, ("", 0)), capture_output=True, timeout=CHILD_TIMEOUT)
    assert resumed.returncode == 0, f"delay {delay:.3f}s: {resumed.stderr.decode()}"
    assert json.loads(resumed.stdout)["done"] == 10
    check_consistent(bed, uris)
