"""A progress line while an operation (or a bulk run) runs, only on a terminal.

rich draws it on stderr and is imported only when there is a terminal to draw on, so scripts
and ``--json`` runs pay nothing for it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["BulkProgress", "OperationProgress", "state_name"]


def state_name(operation: Any) -> str:
    """``RUNNING`` etc. from the typed OperationMetadata, or ``DONE``/``UNKNOWN``."""
    try:
        meta = operation.metadata
    except Exception:  # an unknown metadata type must not break the display
        meta = None
    if meta is None:
        return "DONE" if operation.done else "UNKNOWN"
    return str(type(meta).State.Name(meta.state))


Line = TypeVar("Line", bound="_Line")


class _Line:
    """One transient line on stderr (spinner, text, elapsed time) when stderr is a terminal and
    rich is installed; otherwise nothing, and every method is a no-op."""

    def __init__(self, enabled: bool, first: str) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()
        self._first = first
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self: Line) -> Line:
        if self.enabled:
            try:
                from rich.console import Console
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            except ImportError:  # the cli extra is missing: no display, everything else works
                self.enabled = False
                return self
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,  # stdout is the command's result, maybe piped: never drawn into
            )
            self._bar.start()
            self._task = self._bar.add_task(self._first, total=None)
        return self

    def show(self, description: str, *, now: bool = False) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=description, refresh=now)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class OperationProgress(_Line):
    """``with OperationProgress(enabled) as progress: op.wait(on_update=progress.update)``."""

    def __init__(self, enabled: bool, label: str = "operation") -> None:
        super().__init__(enabled, f"{label}: submitting")
        self.label = label

    def update(self, operation: Any) -> None:
        self.show(f"{self.label} {operation.name}: {state_name(operation)}")


class BulkProgress(_Line):
    """``BulkRunner(..., on_event=progress.event)``, then ``with progress: runner.run(...)``: batches
    submitted, running, done and failed in this run (re-attached batches run uncounted)."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled, "bulk: starting")
        self.submitted = self.done = self.failed = 0
        self.running: set[str] = set()

    def event(self, event: str, batch_id: str) -> None:
        """``BulkRunner``'s ``on_event(event, batch_id)``, called after each journal write."""
        if event == "submitted":
            self.submitted += 1
            self.running.add(batch_id)
        elif event in ("done", "failed", "gave_up", "split"):
            self.running.discard(batch_id)
            self.done += event == "done"
            self.failed += event in ("failed", "gave_up")
        elif event == "submit_failed":  # to be submitted again
            self.running.discard(batch_id)
        else:
            return
        self.show(self.description, now=True)

    @property
    def description(self) -> str:
        return (
            f"bulk: {self.submitted} batch(es) submitted, {len(self.running)} running, "
            f"{self.done} done, {self.failed} failed"
        )
