"""Bulk annotation runs that survive a crash: ``BulkRunner(client, journal, ...).run(uris) -> BulkReport``.

``runner`` submits batches and follows them, ``schedule`` decides when each operation is polled,
``journal`` is the SQLite record that makes a run resumable, ``report`` summarises a run.
"""

from vision_grpc.bulk.journal import JournalError
from vision_grpc.bulk.report import BulkReport, InputResult, load_report
from vision_grpc.bulk.runner import BulkRunner

__all__ = ["BulkReport", "BulkRunner", "InputResult", "JournalError", "load_report"]
