"""BulkRunner's quota-aware scheduling against the emulator: pages in flight, requests per minute, first polls.

What the emulator saw is the evidence: its operation records (created, finished) give how many
operations were in processing at once, its recorded calls (with their times) the request rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests._support import make_pdf
from tests.bulk.bed import Bed
from vision_grpc import Client
from vision_grpc.bulk import BulkRunner
from vision_grpc.bulk import schedule as schedule_module
from vision_grpc.errors import ValidationError
from vision_grpc.storage import LocalStorage
from vision_grpc.testing import Emulator


def stage(bed: Bed, count: int, pages: int) -> list[str]:
    uris = [f"{bed.bucket}in/doc{i:03d}.pdf" for i in range(count)]
    for uri in uris:
        bed.emulator.put_object(uri, make_pdf(pages))
    return uris


def intervals(emulator: Emulator, bucket: str) -> list[tuple[float, float]]:
    """(created, finished) of this test's operations, in submission order."""
    spans = []
    for record in emulator.service.store.snapshot():
        request: Any = record.request
        if request.requests[0].input_config.gcs_source.uri.startswith(bucket):
            assert record.finished_at is not None
            spans.append((record.created, record.finished_at))
    return sorted(spans)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_pages_in_processing_stay_within_the_budget(bed: Bed) -> None:
    uris = stage(bed, 12, pages=3)
    runner = bed.runner(files_per_request=1, max_in_flight=16, pages_per_file=3, max_pages_in_flight=9)
    assert runner.run(uris).counts["done"] == 12
    spans = intervals(bed.emulator, bed.bucket)
    assert len(spans) == 12
    assert most_at_once(spans) == 3  # 9 pages / 3 per file; max_in_flight alone would allow 12


def test_pages_per_file_is_learned_from_the_shards(bed: Bed) -> None:
    uris = stage(bed, 12, pages=4)
    runner = bed.runner(
        files_per_request=2,
        max_in_flight=16,
        pages_per_file=1,  # an underestimate: 4 batches of "2 pages" fit at first
        max_pages_in_flight=8,
        storage=LocalStorage(bed.emulator.storage_dir),
    )
    assert runner.pages_per_file == 1
    assert runner.run(uris).counts["done"] == 12
    assert runner.pages_per_file == 4  # counted from output-1-to-4.json
    spans = intervals(bed.emulator, bed.bucket)
    first_done = min(end for _, end in spans)
    later = [span for span in spans if span[0] >= first_done]
    assert later, spans
    for start, end in later:  # once counted, a batch is 8 pages: the whole budget, so it runs alone
        assert all(e <= start or s >= end for s, e in spans if (s, e) != (start, end))


def test_requests_per_minute_hold_in_every_window(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule_module, "WINDOW_SECONDS", 1.0)  # "per minute" becomes per second: a fast test
    uris = stage(bed, 6, pages=1)
    runner = bed.runner(files_per_request=1, max_in_flight=6, max_requests_per_minute=4, poll_interval=0.1)
    assert runner.run(uris).counts["done"] == 6
    sent = sorted(
        call.time for call in bed.emulator.service.calls if call.method in ("AsyncBatchAnnotateFiles", "GetOperation")
    )
    assert len(sent) >= 12  # 6 submits and at least one poll each: at 4 a second, at least 2 s
    assert sent[-1] - sent[0] >= 2.0
    for start in sent:  # 0.9 s, not 1 s: what the runner sent a second apart may arrive a little closer
        assert sum(1 for t in sent if start <= t < start + 0.9) <= 4


def test_first_poll_follows_how_long_operations_took(tmp_path: Path) -> None:
    """With 1.5 s operations, polls come at 0.8 x 1.5 s after submit, not 0.5 s, and see them done promptly."""
    with Emulator(operation_seconds=1.5) as emu, Client(endpoint=emu.grpc_target) as client:
        uris = [f"gs://first-poll/in/{n}.pdf" for n in range(3)]
        for uri in uris:
            emu.put_object(uri, make_pdf(1))
        runner = BulkRunner(
            client, tmp_path / "j.db", output_prefix="gs://first-poll/out/", files_per_request=1, max_in_flight=1
        )
        assert runner.run(uris).counts["done"] == 3
        records = sorted(emu.service.store.snapshot(), key=lambda record: record.created)
        polls = [call.time for call in emu.service.calls if call.method == "GetOperation"]
    assert len(records) == 3
    first = [t for t in polls if records[0].created <= t < records[1].created]
    assert 0.45 <= first[0] - records[0].created < 0.8  # nothing observed yet: 0.5 s
    for record, following in zip(records[1:], [*records[2:], None], strict=True):
        assert record.finished_at is not None
        mine = [t for t in polls if t >= record.created and (following is None or t < following.created)]
        assert mine[0] - record.created >= 1.1, mine  # 0.8 x 1.5 s = 1.2 s
        assert mine[-1] - record.finished_at < 0.5, mine  # the 0.5 s schedule would see it 0.875 s late


@pytest.mark.parametrize(
    "bad",
    [{"max_pages_in_flight": 0}, {"max_images_in_flight": -1}, {"max_requests_per_minute": 0}, {"pages_per_file": 0}],
)
def test_bad_budgets_are_refused(bed: Bed, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        bed.runner(**bad)
    assert caught.value.field == next(iter(bad))


def test_an_images_batch_fits_the_images_budget(bed: Bed) -> None:
    runner = bed.runner(kind="images", max_images_in_flight=500)
    assert runner.per_request == 500
    assert bed.runner(kind="images", images_per_request=100, max_images_in_flight=500).per_request == 100
