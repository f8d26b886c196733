"""Translating an I/O library's exceptions into the error tree, at one boundary per library.

Each transport declares one ``ErrorMap``: a table of (library exception class, maker) rows, most
specific first, as httpx's ``map_httpcore_exceptions`` does. ``with error_map.during(timeout):``
around the library call is the only place that library's failures are caught; the first row whose
class matches builds our error, raised ``from`` the original so the cause stays visible. Any other
exception becomes a ``TransportError`` naming only its type: its text could quote a header value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from vision_grpc.errors import TransportError, VisionError

__all__ = ["ErrorMap", "Maker"]

# Builds our error from the library's exception and the call's timeout (for messages).
Maker = Callable[[BaseException, "float | None"], VisionError]


class ErrorMap:
    """A most-specific-first table from a library's exception classes to our errors."""

    __slots__ = ("_classes", "_rows")

    def __init__(self, rows: Sequence[tuple[type[BaseException], Maker]]) -> None:
        self._rows = tuple(rows)
        self._classes = tuple(cls for cls, _ in self._rows)

    def during(self, timeout: float | None) -> _Guard:
        """A context manager mapping what the block raises; ``timeout`` only feeds messages."""
        return _Guard(self, timeout)

    def translate(self, exc: BaseException, timeout: float | None) -> VisionError | None:
        """Our error for ``exc``, or None when no row matches (then it propagates unchanged)."""
        if isinstance(exc, VisionError) or not isinstance(exc, self._classes):
            return None
        return next(make(exc, timeout) for cls, make in self._rows if isinstance(exc, cls))


class _Guard:
    __slots__ = ("_map", "_timeout")

    def __init__(self, error_map: ErrorMap, timeout: float | None) -> None:
        self._map, self._timeout = error_map, timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            return
        mapped = self._map.translate(exc, self._timeout)
        if mapped is not None:
            raise mapped from exc
        if isinstance(exc, Exception) and not isinstance(exc, VisionError):
            # Anything else the library raises (http.client's ValueError for a header value, ...)
            # may quote what was sent, a credential included: its type only, and no chained cause.
            raise TransportError(f"{type(exc).__name__} raised by the transport (details withheld)") from None
