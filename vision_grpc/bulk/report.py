"""A bulk run's report, read from its journal: ``BulkReport`` of ``InputResult`` s (see ``vision_grpc.bulk``).

"done" means the input's operation succeeded: per-page (per-image) errors, if any, are in its
output shards (``vision_grpc.outputs`` results carry them as ``.error``).
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from enum import Enum

from vision_grpc.bulk.journal import BatchState, InputState, Journal

__all__ = ["BulkReport", "InputResult", "Outcome", "load_report", "report_of"]


class Outcome(str, Enum):
    """An input's outcome in a report: final (``DONE``, ``FAILED``) or ``PENDING`` (run again)."""

    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"

    def __str__(self) -> str:
        return self.value


# Why an input is pending, by its batch's state (as stored).
_PENDING = {
    BatchState.SUBMITTED.value: "operation {op} still running; run again to wait for it",
    BatchState.QUEUED.value: "resubmission after its batch failed as a whole; run again to submit",
    BatchState.SUBMIT_FAILED.value: "{reason}; run again to retry",
    BatchState.SUBMITTING.value: "interrupted while submitting; run again to resubmit",
}


@dataclass(frozen=True)
class InputResult:
    """One input's outcome: ``state`` is ``Outcome.DONE``, ``FAILED`` (final) or ``PENDING`` (run again)."""

    uri: str
    state: Outcome
    reason: str = ""  # failed: "NOT_FOUND: No such object: gs://..."; pending: why it is not finished
    output_uri: str = ""  # done: the prefix of its JSON shards
    operation: str = ""
    batch: str = ""


@dataclass(frozen=True)
class BulkReport:
    """A journal's contents: every input once (in input order) and every operation ever submitted."""

    done: list[InputResult] = field(default_factory=list)
    failed: list[InputResult] = field(default_factory=list)
    pending: list[InputResult] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        done, failed, pending = len(self.done), len(self.failed), len(self.pending)
        return {"done": done, "failed": failed, "pending": pending, "total": done + failed + pending}

    @property
    def complete(self) -> bool:
        """True when nothing is left to do: every input is done or failed for good."""
        return not self.pending


def report_of(journal: Journal) -> BulkReport:
    """The ``BulkReport`` of an open journal."""
    report = BulkReport(operations=[detail for event, _, detail in journal.events() if event == "submitted"])
    for uri, state, reason, output, batch, batch_state, op, batch_reason in journal.input_rows():
        if state == InputState.DONE:
            report.done.append(InputResult(uri, Outcome.DONE, reason, output, op, batch))
        elif state == InputState.FAILED:
            report.failed.append(InputResult(uri, Outcome.FAILED, reason, output, op, batch))
        else:
            why = _PENDING.get(batch_state, "not submitted yet; run again").format(op=op, reason=batch_reason)
            report.pending.append(InputResult(uri, Outcome.PENDING, why, "", op, batch))
    return report


def load_report(journal_path: str | os.PathLike[str]) -> BulkReport:
    """The report of a journal, without running anything; safe while a run is writing it."""
    with closing(Journal(journal_path, reader=True)) as journal:
        return report_of(journal)
