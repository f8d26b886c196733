"""Polling at scale: 1, 64 and 512 operations waited at once on one client, within its poll budget.

For each ``PollCase`` the ``ours`` sync worker (a thread per wait) and the ``ours`` async worker (a
task per wait) run the same case at the same time, each with its own client over REST (no
WaitOperation: every wait polls). The server times each GetOperation of the lag operations; from
its record come the polls per operation, the busiest second it saw, and the pace; from the workers
the busiest second of polls started (the planner instrumented: what the budget bounds), the notice
lag (server done -> the wait returning), the CPU time per operation and the event loop's lag.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from .lag import LagRecord
from .plan import PollCase
from .processes import BenchError, Rig
from .protocol import Polling, to_message
from .results import PollRow
from .series import OURS_ASYNC, OURS_SYNC
from .stats import median

_RUNTIMES = {"sync": OURS_SYNC, "async": OURS_ASYNC}
_LABELS = {"sync": "vision_grpc.Client REST, a thread per wait", "async": "vision_grpc.AsyncClient REST, a task each"}
_CLIENT = "rest"


def max_s(case: PollCase) -> float:
    """A bound on one case: a round of the budget over all operations after they are done, twice over."""
    return case.done_after_s + 2 * (case.ops + case.burst) / case.budget + 20


def measure_polling(rig: Rig, cases: tuple[PollCase, ...]) -> list[PollRow]:
    rows: list[PollRow] = []
    for case in cases:
        rig.say(f"polling: {case} (done {case.done_after_s:g} s after the submit), sync and asyncio at once")
        command = Polling(_CLIENT, case.ops, case.done_after_s, case.budget, case.burst, max_s(case))
        started = time.monotonic()
        sent = []
        for runtime, worker in _RUNTIMES.items():
            try:
                rig.workers[worker].send(to_message(command))
                sent.append(runtime)
            except BenchError as exc:
                rig.errors.append(f"polling {case} {runtime}: {exc}")
        replies: dict[str, dict[str, Any]] = {}
        for runtime in sent:
            process = rig.workers[_RUNTIMES[runtime]]
            try:
                reply = process.recv(max(5.0, command.max_s + 60 - (time.monotonic() - started)))
            except BenchError as exc:
                rig.errors.append(f"polling {case} {runtime}: {exc}")
                continue
            if reply.get("ok") is False:
                rig.errors.append(f"polling {case} {runtime}: {reply.get('error')}")
                continue
            rig.errors.extend(f"polling {case} {runtime}: {error}" for error in reply.get("errors", []))
            replies[runtime] = reply
        polls = rig.server.polls()
        rows.extend(_row(runtime, case, reply, polls) for runtime, reply in replies.items())
    return rows


def _row(runtime: str, case: PollCase, reply: dict[str, Any], polls: dict[str, dict[str, Any]]) -> PollRow:
    records = [LagRecord.from_reply("ours", record) for record in reply.get("records", [])]
    times = sorted(t / 1e9 for record in records for t in polls.get(record.operation, {}).get("times", []))
    lags = sorted(record.lag_s * 1e3 for record in records)
    loop_lag = reply.get("loop_lag_ms") or []
    wall = float(reply.get("wall_s", float("nan")))
    return PollRow(
        runtime=runtime,
        label=_LABELS[runtime],
        ops=case.ops,
        T=case.done_after_s,
        budget=case.budget,
        burst=case.burst,
        completed=len(records),
        wall_s=wall,
        polls_per_op=len(times) / case.ops,
        peak_started_1s=busiest(sorted(reply.get("starts", [])), 1.0),
        peak_polls_1s=busiest(times, 1.0),
        polls_per_s=len(times) / wall if wall > 0 else float("nan"),
        lag_p50_ms=median(lags),
        lag_max_ms=lags[-1] if lags else float("nan"),
        limit_ms=max(50.0, 0.05 * case.done_after_s * 1e3),  # the lag phase's target
        cpu_per_op_ms=reply.get("cpu_s", float("nan")) * 1e3 / case.ops,
        loop_lag_p99_ms=loop_lag[1] if len(loop_lag) == 3 else None,
        loop_lag_max_ms=loop_lag[2] if len(loop_lag) == 3 else None,
    )


def busiest(times: list[float], seconds: float) -> int:
    """The most of the (sorted) ``times`` in any window [t, t + seconds)."""
    return max((bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)
