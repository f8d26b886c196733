"""``vision_grpc.bulk``: images batches, transient operation failures, and how often a run polls.

Transient failures come from the emulator's operation fault hook (``faults.fail_next_operation``):
the submit succeeds, the operation ends with the injected error when due, and writes nothing.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from google.rpc import code_pb2

from tests._support import make_pdf
from tests.bulk.bed import FILES, Bed, check_consistent
from vision_grpc import Client
from vision_grpc.bulk import BulkRunner, load_report
from vision_grpc.bulk.journal import Journal
from vision_grpc.testing import Emulator


def test_an_images_batch_that_failed_as_a_whole_is_split(bed: Bed) -> None:
    uris = bed.stage(4, suffix=".png")
    bad = uris[2]
    bed.emulator.service.faults.fail_next_operation(
        "INVALID_ARGUMENT", method="AsyncBatchAnnotateImages", message=f"Bad image data: {bad}"
    )
    report = bed.runner(kind="images", images_per_request=4, features=["LABEL_DETECTION"]).run(uris)
    assert [r.uri for r in report.failed] == [bad] and report.failed[0].reason.startswith("INVALID_ARGUMENT: ")
    assert sorted(r.uri for r in report.done) == sorted(set(uris) - {bad})
    assert [event for event, _, _ in bed.history()].count("split") == 1
    check_consistent(bed, uris, method="AsyncBatchAnnotateImages")


def test_a_missing_image_is_done_with_its_error_in_the_shard(bed: Bed) -> None:
    from vision_grpc.outputs import read_image_results
    from vision_grpc.storage import LocalStorage

    uris = [*bed.stage(2, suffix=".png"), f"{bed.bucket}in/missing.png"]
    report = bed.runner(kind="images", features=["LABEL_DETECTION"]).run(uris)
    assert report.counts["done"] == 3  # "done": the operation succeeded; per-image errors are in the shards
    results = list(read_image_results(report.done[0].output_uri, storage=LocalStorage(bed.emulator.storage_dir)))
    assert [r.error.code for r in results] == [code_pb2.UNIMPLEMENTED] * 2 + [code_pb2.NOT_FOUND]
    assert results[2].error.message == f"Error opening file: {uris[2]}."


def test_a_transient_operation_failure_is_submitted_again_in_the_same_run(bed: Bed) -> None:
    uris = bed.stage(4)
    bed.emulator.service.faults.fail_next_operation("UNAVAILABLE", method=FILES)
    report = bed.runner(files_per_request=2).run(uris)
    assert report.counts == {"done": 4, "failed": 0, "pending": 0, "total": 4}
    history = bed.history()
    (retried,) = [batch for event, batch, _ in history if event == "submit_failed"]
    assert [detail for event, batch, detail in history if batch == retried and event == "submitting"] == [
        "attempt 1",
        "attempt 2",
    ]
    ops = [op for event, batch, op in history if event == "submitted" and batch == retried]
    assert len(ops) == 2 and ops[0] != ops[1]
    assert all(bed.emulator.list_objects(r.output_uri) for r in report.done)  # the same prefix, written this time


def test_a_transient_operation_failure_counts_toward_max_attempts(bed: Bed) -> None:
    uris = bed.stage(2)
    bed.emulator.service.faults.fail_next_operation("INTERNAL", method=FILES, times=5)
    report = bed.runner(max_attempts=2).run(uris)
    assert report.counts["failed"] == 2
    assert report.failed[0].reason.startswith("gave up after 2 attempt(s); last: operation ")
    assert "(INTERNAL: injected operation fault" in report.failed[0].reason
    assert len([c for c in bed.emulator.service.calls if c.method == FILES]) == 2
    bed.emulator.service.faults.clear()


def test_a_transient_failure_left_for_the_next_run_is_pending(bed: Bed) -> None:
    uris = bed.stage(2)
    bed.emulator.service.faults.fail_next_operation("UNAVAILABLE", method=FILES)
    runner = bed.runner()
    with closing(Journal(bed.journal)) as journal:  # one attempt in this "run": the retry is left for the next
        runner._journal = journal
        journal.settle_meta(runner._fixed_settings(), {})
        journal.add_inputs(uris, lambda uri: None)
        batch = journal.open_batch("b0", uris, f"{bed.out}batch-b0/")
        operation = bed.client.async_batch_annotate_files(runner._request(uris, batch.output_prefix))
        journal.submitted("b0", operation.name)
        operation.wait(timeout=10)
        assert [b.id for b in runner._complete("b0", operation)] == ["b0"]
    pending = load_report(bed.journal).pending
    assert len(pending) == 2 and "failed (UNAVAILABLE: injected operation fault" in pending[0].reason
    assert bed.runner().run(uris).counts["done"] == 2  # resubmitted on resume


def test_polling_over_rest_makes_few_get_operation_calls(tmp_path: Path) -> None:
    """Each operation is refreshed on its own schedule (0.5 s, then x1.5), not re-polled from scratch per round."""
    with (
        Emulator(operation_seconds=1.0) as emu,
        Client(endpoint=emu.rest_url.removeprefix("http://"), transport="rest") as rest_client,
    ):
        uris = [f"gs://rest-bulk/in/{n}.pdf" for n in range(6)]
        for uri in uris:
            emu.put_object(uri, make_pdf(1))
        runner = BulkRunner(
            rest_client,
            tmp_path / "j.db",
            output_prefix="gs://rest-bulk/out/",
            files_per_request=2,
            max_in_flight=3,
            poll_timeout=60,
        )
        report = runner.run(uris)
        assert report.counts["done"] == 6 and len(report.operations) == 3
        polls = [call for call in emu.service.calls if call.method == "GetOperation"]
        assert 3 <= len(polls) <= 4 * 3, len(polls)  # ~2 per 1 s operation; per-round waits made several times that


def test_poll_schedule_grows_per_operation_and_never_sleeps_past_the_deadline() -> None:
    from vision_grpc.bulk.schedule import PollSchedule

    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    schedule = PollSchedule(2.0, clock=lambda: now[0])
    schedule.add("new")
    schedule.add("reattached", now=True)  # its state is known: looked at at once
    assert schedule.due() == ["reattached"]
    schedule.remove("reattached")
    delays = []
    for _ in range(6):
        before = now[0]
        schedule.wait(deadline=1e9, sleep=sleep)
        assert schedule.due() == ["new"]
        delays.append(round(now[0] - before, 4))
        schedule.polled("new")
    assert delays == [0.5, 0.75, 1.125, 1.6875, 2.0, 2.0]  # x1.5 from 0.5 s, capped at poll_interval
    slept.clear()
    schedule.wait(deadline=now[0] + 0.1, sleep=sleep)  # due in 2 s, but the run ends in 0.1 s
    assert slept == [pytest.approx(0.1)]
    schedule.remove("new")
    schedule.wait(deadline=now[0] + 100, sleep=sleep)  # nothing scheduled: no sleep
    assert len(slept) == 1 and schedule.next_at() is None
