"""The bulk tests' bed (a fresh bucket and journal on the shared emulator) and ``check_consistent``.

``check_consistent`` checks a finished run's journal against what the server saw: every input reported
once, every journaled operation on the server with exactly its batch's inputs, an input in several
operations only after a logged ambiguous resubmission, every submit RPC journaled before it was sent.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests._support import make_pdf
from vision_grpc import Client
from vision_grpc.bulk import BulkReport, BulkRunner, load_report
from vision_grpc.bulk.journal import Journal
from vision_grpc.testing import Emulator

FILES = "AsyncBatchAnnotateFiles"


@dataclass
class Bed:
    emulator: Emulator
    client: Client
    bucket: str
    journal: Path
    out: str  # the output prefix

    def stage(self, count: int, *, suffix: str = ".pdf") -> list[str]:
        uris = [f"{self.bucket}in/doc{i:03d}{suffix}" for i in range(count)]
        for uri in uris:
            self.emulator.put_object(uri, make_pdf(1) if suffix == ".pdf" else b"\x89PNG\r\n\x1a\n")
        return uris

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "output_prefix": self.out,
            "files_per_request": 3,
            "max_in_flight": 2,
            "poll_interval": 0.1,
            "poll_timeout": 15.0,
            **overrides,
        }

    def runner(self, **overrides: Any) -> BulkRunner:
        return BulkRunner(self.client, self.journal, **self.settings(**overrides))

    def server_ops(self) -> dict[str, tuple[list[str], list[str]]]:
        """This test's operations as the emulator holds them: name -> (input URIs, output URIs)."""
        ops: dict[str, tuple[list[str], list[str]]] = {}
        for record in self.emulator.service.store.snapshot():
            request: Any = record.request
            if record.method.name == FILES:
                inputs = [r.input_config.gcs_source.uri for r in request.requests]
                outputs = [r.output_config.gcs_destination.uri for r in request.requests]
            else:
                inputs = [r.image.source.image_uri for r in request.requests]
                outputs = [request.output_config.gcs_destination.uri]
            if inputs and inputs[0].startswith(self.bucket):
                ops[record.name] = (inputs, outputs)
        return ops

    def history(self) -> list[tuple[str, str, str]]:
        with closing(Journal(self.journal, reader=True)) as journal:
            return journal.events()


def check_consistent(bed: Bed, uris: list[str], *, method: str = FILES) -> BulkReport:
    """The invariants of a finished run (see the module docstring); returns the report."""
    report = load_report(bed.journal)
    assert report.complete, report.pending
    assert sorted(r.uri for r in report.done + report.failed) == sorted(set(uris))
    with closing(Journal(bed.journal, reader=True)) as journal:
        batches = {batch.id: batch for batch in journal.batches()}
        events = journal.events()
    batch_of = {uri: batch.id for batch in batches.values() for uri in batch.uris}
    assert sum(len(batch.uris) for batch in batches.values()) == len(batch_of)  # one batch per input
    submitted = [(batch, op) for event, batch, op in events if event == "submitted"]
    ambiguous = Counter(batch for event, batch, _ in events if event == "ambiguous")
    assert all(n == 1 for n in Counter(batch for batch, _ in submitted).values())
    server = bed.server_ops()
    # A batch whose operation failed as a whole was split: its inputs moved to new batches (or one
    # failed alone), so its operation is checked by name only.
    split_ops = {batch.operation for batch in batches.values() if batch.state == "split"}
    for batch_id, op in submitted:  # no journaled operation is lost
        assert op in split_ops or server[op][0] == list(batches[batch_id].uris)
        assert op in server
    per_input: Counter[str] = Counter()
    for name, (inputs, outputs) in server.items():
        per_input.update(inputs)
        if name in split_ops:
            continue
        batch = batches[batch_of[inputs[0]]]
        assert inputs == list(batch.uris) and all(out.startswith(batch.output_prefix) for out in outputs)
        assert name in dict(submitted).values() or ambiguous[batch.id] >= 1, f"{name}: unjournaled, not ambiguous"
    in_split: Counter[str] = Counter(uri for name in split_ops for uri in server[name][0])
    assert all(n <= 1 + ambiguous[batch_of[uri]] + in_split[uri] for uri, n in per_input.items())
    for result in report.done:
        assert result.operation == batches[result.batch].operation
        assert bed.emulator.list_objects(result.output_uri), result
    calls = [call for call in bed.emulator.service.calls if call.method == method]
    assert len(server) <= len(calls) <= sum(1 for event, _, _ in events if event == "submitting")
    return report
