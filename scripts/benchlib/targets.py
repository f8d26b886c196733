"""The goals, checked against the results: printed as met or missed, never asserted."""

from __future__ import annotations

import math

from .plan import THROUGHPUT_CONCURRENCY
from .report import fmt, fmt_ratio
from .results import ColdRow, LagRow, LatencyRow, PollRow, ReadingRow, Result, Target, ThroughputRow
from .series import LATENCY_CALLS


def evaluate(result: Result) -> list[Target]:
    targets: list[Target] = []
    for call in LATENCY_CALLS:
        targets.append(_latency(result, "gRPC sync", call, "floor", f"sync gRPC {call} vs bare grpcio", 1.1))
    for call in LATENCY_CALLS:
        targets.append(_latency(result, "REST sync", call, "floor", f"sync REST {call} vs bare urllib3", 1.3))
        targets.append(_latency(result, "REST sync", call, "official", f"sync REST {call} vs official REST", 0.4))
    ours_throughput = next((r for r in result.throughput if r.group == "gRPC asyncio" and r.role == "ours"), None)
    targets.extend(_throughput(ours_throughput))
    ours_cold = next((r for r in result.cold if r.variant == "ours_grpc"), None)
    targets.extend(_cold(ours_cold))
    targets.extend(_lag(row) for row in result.lag if row.role == "ours")
    for row in result.polling:
        targets.extend(_polling(row))
    targets.extend(_reading(row) for row in result.reading if row.way != "official" and row.pages >= 100)
    return targets


def _reading(row: ReadingRow) -> Target:
    """read_file_results >= 5x the official path per page, read_file_text >= 20x (CPU time)."""
    limit, what = (20.0, "read_file_text") if row.way == "ours_text" else (5.0, "read_file_results")
    official = "official CPU per page" if row.speedup_vs_official is not None else "no official run at this size"
    return Target(
        f"reading {row.pages} pages: {what} speedup vs official",
        _number(row.speedup_vs_official),
        limit,
        ">=",
        detail=f"{fmt(row.cpu_ms_per_page, 2)} ms CPU/page ({official}); RSS growth {fmt(row.growth_per_shard, 1)}x "
        "the largest shard",
    )


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _latency(result: Result, group: str, call: str, versus: str, name: str, limit: float) -> Target:
    def row(role: str) -> LatencyRow | None:
        return next((r for r in result.latency if (r.group, r.call, r.role) == (group, call, role)), None)

    ours, other = row("ours"), row(versus)
    mine = math.nan if ours is None else ours.median_us
    theirs = math.nan if other is None else other.median_us
    detail = f"wall {fmt(mine, 0)} vs {fmt(theirs, 0)} µs"
    if versus == "floor":  # client CPU: what the client costs, whatever the server's share of the wall time
        cpu = (math.nan, math.nan) if ours is None or other is None else (ours.client_cpu_us, other.client_cpu_us)
        wall = _number(None if ours is None else ours.vs_floor)
        detail = f"client CPU {fmt(cpu[0], 0)} vs {fmt(cpu[1], 0)} µs/call; {detail} ({fmt_ratio(wall)})"
        return Target(
            f"{name} (client CPU)", _number(None if ours is None else ours.cpu_vs_floor), limit, "<=", detail=detail
        )
    return Target(name, _number(None if ours is None else ours.vs_official), limit, "<=", detail=detail)


def _throughput(ours: ThroughputRow | None) -> list[Target]:
    detail = ""
    if ours is not None:
        detail = (
            f"{fmt(ours.calls_per_s, 0)} calls/s; client CPU/call {fmt_ratio(ours.cpu_vs_floor)} floor; "
            f"server busy {fmt(ours.server_busy * 100, 0)}%"
        )
        if ours.server_busy > 0.8:
            detail += " (server-bound: calls/s ratios compress toward 1)"
    per_cpu = None if ours is None or not ours.cpu_vs_floor else 1 / ours.cpu_vs_floor
    return [
        Target(
            f"asyncio calls per client CPU second ({THROUGHPUT_CONCURRENCY} in flight) vs bare grpc.aio",
            _number(per_cpu),
            0.95,
            ">=",
            detail=detail + f"; calls/s {fmt_ratio(None if ours is None else ours.vs_floor)} floor",
        ),
        Target(
            "asyncio throughput vs official async (ahead)",
            _number(None if ours is None else ours.vs_official),
            1.0,
            ">=",
        ),
    ]


def _cold(ours: ColdRow | None) -> list[Target]:
    return [
        Target(
            "import + first client time vs official",
            _number(None if ours is None else ours.vs_official_time),
            0.4,
            "<=",
            detail="" if ours is None else f"{fmt(ours.import_construct_ms, 0)} ms (gRPC)",
        ),
        Target(
            "peak RSS after first client vs official",
            _number(None if ours is None else ours.vs_official_rss),
            0.6,
            "<=",
            detail="" if ours is None else f"{fmt(ours.rss_mb, 1)} MB (gRPC)",
        ),
    ]


def _lag(row: LagRow) -> Target:
    return Target(
        f"notice lag, {row.label}, T={row.T:g} s (worst of {row.reps})",
        row.lag_max_ms,
        row.limit_ms,
        "<=",
        " ms",
        f"median {fmt(row.lag_median_ms, 0)} ms, {fmt(row.polls_median, 0)} polls",
    )


def _polling(row: PollRow) -> list[Target]:
    """Never above the budget: the client starts at most burst + rate x W polls in any W seconds (the
    server's busiest second is shown beside: it may also hold polls started a little before it). A
    lone wait keeps its lag bound (more waits keep it only where the budget allows: shown, not a goal)."""
    targets = [
        Target(
            f"polls started in any 1 s, {row.ops} op{'s' if row.ops != 1 else ''} {row.runtime} "
            f"({row.budget:g}/s, burst {row.burst})",
            float(row.peak_started_1s),
            row.burst + row.budget,
            "<=",
            "",
            f"server saw {row.peak_polls_1s} at most; {fmt(row.polls_per_op, 2)} polls/op, "
            f"{fmt(row.polls_per_s, 1)} polls/s over the run",
        )
    ]
    if row.ops == 1:
        targets.append(
            Target(
                f"notice lag, lone wait {row.runtime}, T={row.T:g} s",
                row.lag_max_ms,
                row.limit_ms,
                "<=",
                " ms",
                f"{fmt(row.polls_per_op, 0)} polls",
            )
        )
    return targets
