"""A progress line while an operation runs (state, elapsed), only on a terminal.

rich draws it on stderr and is imported only when there is a terminal to draw on, so scripts
and ``--json`` runs pay nothing for it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["OperationProgress", "state_name"]


def state_name(operation: Any) -> str:
    """``RUNNING`` etc. from the typed OperationMetadata, or ``DONE``/``UNKNOWN``."""
    try:
        meta = operation.metadata
    except Exception:  # an unknown metadata type must not break the display
        meta = None
    if meta is None:
        return "DONE" if operation.done else "UNKNOWN"
    return str(type(meta).State.Name(meta.state))


class OperationProgress:
    """``with OperationProgress(enabled) as progress: op.wait(on_update=progress.update)``."""

    def __init__(self, enabled: bool, label: str = "operation") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> OperationProgress:
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
            )
            self._bar.start()
            self._task = self._bar.add_task(f"{self.label}: submitting", total=None)
        return self

    def update(self, operation: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.label} {operation.name}: {state_name(operation)}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
