"""Fault injection: "fail the next N calls of method M with code C", to test retries and error paths.

Rules are checked at the start of every call (ImageAnnotator and google.longrunning.Operations
alike), before validation, first matching rule first; each match uses up one of its ``times``.
A rule may carry a ``RetryInfo`` delay, as the real service sends with RESOURCE_EXHAUSTED and
UNAVAILABLE. The number of rules and of failures per rule are bounded.

Operation faults (``fail_next_operation``) are a test hook for what calls cannot show: an
operation that was accepted and then failed on the server side (say UNAVAILABLE). The next
``times`` operations to finish (of ``method``, or any) end with that error instead of running
their job, so they write no output. They are kept apart from call rules (``pending_operations``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc.emulator._status import status
from vision_grpc.errors import api_error, code_name

__all__ = ["Fault", "FaultInjector"]

MAX_RULES = 100
MAX_TIMES = 10_000
_KNOWN_METHODS = {name for _, name in METHODS} | set(OPERATIONS) | {"*"}
_ASYNC_METHODS = {"AsyncBatchAnnotateFiles", "AsyncBatchAnnotateImages", "*"}


@dataclass
class Fault:
    """A pending rule: fail ``remaining`` more calls of ``method`` (``"*"``: any) with ``code``."""

    method: str
    code: int
    remaining: int
    message: str
    retry_delay: float | None = None
    version: str | None = None  # "v1" / "v1p4beta1" to match one API version only

    def matches(self, method: MethodInfo) -> bool:
        if self.method not in ("*", method.name):
            return False
        return self.version is None or self.version == method.version


class FaultInjector:
    """Pending fault rules; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._operation_rules: list[Fault] = []

    def fail_next(
        self,
        method: str,
        code: int | str,
        *,
        times: int = 1,
        message: str = "",
        retry_delay: float | None = None,
        version: str | None = None,
    ) -> Fault:
        """Fail the next ``times`` calls of ``method`` (RPC name such as ``"AsyncBatchAnnotateFiles"`` or
        ``"GetOperation"``, or ``"*"``) with ``code`` (a ``google.rpc.Code`` number or name)."""
        if method not in _KNOWN_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(_KNOWN_METHODS)}")
        number = _error_code(code, times)
        if retry_delay is not None and retry_delay < 0:
            raise ValueError("retry_delay must not be negative")
        fault = Fault(
            method, number, times, message or f"injected fault: {code_name(number)} on {method}", retry_delay, version
        )
        self._add(self._rules, fault)
        return fault

    def fail_next_operation(self, code: int | str, *, method: str = "*", times: int = 1, message: str = "") -> Fault:
        """End the next ``times`` operations to finish (of ``method``: ``"AsyncBatchAnnotateFiles"``,
        ``"AsyncBatchAnnotateImages"`` or ``"*"``) with ``code`` instead of running their job.

        A test hook: the call that submitted them succeeds; they fail when due (no output written).
        """
        if method not in _ASYNC_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(_ASYNC_METHODS)}")
        number = _error_code(code, times)
        fault = Fault(method, number, times, message or f"injected operation fault: {code_name(number)}")
        self._add(self._operation_rules, fault)
        return fault

    def _add(self, rules: list[Fault], fault: Fault) -> None:
        with self._lock:
            if len(self._rules) + len(self._operation_rules) >= MAX_RULES:
                raise ValueError(f"at most {MAX_RULES} pending fault rules")
            rules.append(fault)

    def take_operation_fault(self, method: MethodInfo) -> status_pb2.Status | None:
        """The error of the first operation rule matching ``method`` (using up one), or None."""
        with self._lock:
            fault = next((f for f in self._operation_rules if f.matches(method)), None)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._operation_rules.remove(fault)
        return status(fault.code, fault.message)

    def check(self, method: MethodInfo) -> None:
        """Raise the ``ApiError`` of the first rule matching ``method``, using up one of its failures."""
        with self._lock:
            fault = next((f for f in self._rules if f.matches(method)), None)
            if fault is None:
                return
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._rules.remove(fault)
        details: list[Message] = []
        if fault.retry_delay is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(round(fault.retry_delay * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        raise api_error(fault.code, fault.message, *details)

    def clear(self) -> None:
        """Drop every pending rule (operation rules too)."""
        with self._lock:
            self._rules.clear()
            self._operation_rules.clear()

    def pending(self) -> list[Fault]:
        """Copies of the pending rules, in the order they are checked."""
        with self._lock:
            return [Fault(f.method, f.code, f.remaining, f.message, f.retry_delay, f.version) for f in self._rules]

    def pending_operations(self) -> list[Fault]:
        """Copies of the pending operation rules (``fail_next_operation``), in the order they are used."""
        with self._lock:
            return [Fault(f.method, f.code, f.remaining, f.message) for f in self._operation_rules]


def _error_code(code: int | str, times: int) -> int:
    number = code_pb2.Code.Value(code) if isinstance(code, str) else int(code)
    if number == code_pb2.OK or code_name(number).startswith("CODE_"):
        raise ValueError(f"{code!r} is not an error code")
    if not 1 <= times <= MAX_TIMES:
        raise ValueError(f"times must be in [1, {MAX_TIMES}]")
    return number
