"""The interleaved phases: per-call latency, asyncio throughput, full-text decode; each one builds
its commands, runs the rounds and summarises every series against its block's floor and official."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .plan import THROUGHPUT_CONCURRENCY, PhasePlan
from .processes import Rig
from .protocol import Latency, Throughput
from .results import DecodeRow, LatencyRow, SeriesRow, ThroughputRow
from .rounds import Measurement, PerRound, grouped, per_round, run_rounds
from .series import DECODE_SERIES, LATENCY_SERIES, THROUGHPUT_SERIES, Role, Series
from .stats import median, p99, round_ratio

_REPLY_SLACK_S = 90  # beyond a batch's own time limit: first-use warm-up calls, a busy shared machine


def measure_latency(rig: Rig, plan: PhasePlan) -> list[LatencyRow]:
    blocks = grouped(LATENCY_SERIES, key=lambda series: (series.group, series.call))
    results = run_rounds(
        rig,
        "latency",
        blocks,
        plan,
        lambda series: Latency(series.client, series.call, plan.calls, plan.batch_max_s, plan.warmup),
        plan.batch_max_s + _REPLY_SLACK_S,
    )
    return [_latency_row(series, results, _block_of(series, blocks)) for series in LATENCY_SERIES]


def measure_throughput(rig: Rig, plan: PhasePlan) -> list[ThroughputRow]:
    blocks = grouped(THROUGHPUT_SERIES, key=lambda series: series.group)
    results = run_rounds(
        rig,
        "throughput",
        blocks,
        plan,
        lambda series: Throughput(
            series.client, series.call, plan.calls, THROUGHPUT_CONCURRENCY, plan.batch_max_s, plan.warmup
        ),
        plan.batch_max_s + _REPLY_SLACK_S,
    )
    return [_throughput_row(series, results, _block_of(series, blocks)) for series in THROUGHPUT_SERIES]


def measure_decode(rig: Rig, plan: PhasePlan) -> list[DecodeRow]:
    blocks = grouped(DECODE_SERIES, key=lambda series: series.group)
    results = run_rounds(
        rig,
        "decode",
        blocks,
        plan,
        lambda series: Latency(series.client, series.call, plan.calls, plan.batch_max_s, plan.warmup),
        plan.batch_max_s + _REPLY_SLACK_S + 30,  # a decode call takes up to seconds (REST: JSON parse)
    )
    return [
        DecodeRow.from_latency(_latency_row(series, results, _block_of(series, blocks))) for series in DECODE_SERIES
    ]


# -- summaries -------------------------------------------------------------------------------------


def _block_of(series: Series, blocks: Sequence[Sequence[Series]]) -> Sequence[Series]:
    return next(block for block in blocks if series in block)


def _versus(
    series: Series,
    role: Role,
    block: Sequence[Series],
    results: dict[Series, PerRound],
    figure: Callable[[Measurement], float],
) -> float | None:
    """Median of per-round ratios of ``figure`` to the block's ``role`` series (floor or official).

    None for that series itself and when the block has none.
    """
    other = next((member for member in block if member.role == role), None)
    if other is None or series.role == role:
        return None
    return round_ratio(per_round(results[series], figure), per_round(results[other], figure))


def _measured(values: list[float | None]) -> list[float]:
    return [value for value in values if value is not None]


def _latency_row(series: Series, results: dict[Series, PerRound], block: Sequence[Series]) -> LatencyRow:
    measurements = [m for m in results[series] if m is not None]
    samples = [sample for m in measurements for sample in m.samples_us]
    round_medians = per_round(results[series], lambda m: m.median_us)
    return LatencyRow(
        **SeriesRow.columns(series),
        median_us=median(samples),
        p99_us=p99(samples),
        n=len(samples),
        rounds=len(_measured(round_medians)),
        round_medians_us=round_medians,
        server_us=median([m.server.cpu_s * 1e6 / m.server.requests for m in measurements if m.server.requests]),
        client_cpu_us=median(_measured(per_round(results[series], lambda m: m.client_cpu_us))),
        cpu_vs_floor=_versus(series, "floor", block, results, lambda m: m.client_cpu_us),
        vs_floor=_versus(series, "floor", block, results, lambda m: m.median_us),
        vs_official=_versus(series, "official", block, results, lambda m: m.median_us),
    )


def _throughput_row(series: Series, results: dict[Series, PerRound], block: Sequence[Series]) -> ThroughputRow:
    measurements = [m for m in results[series] if m is not None]
    rates = per_round(results[series], lambda m: m.calls_per_s)
    return ThroughputRow(
        **SeriesRow.columns(series),
        calls_per_s=median(_measured(rates)),
        per_round=rates,
        server_busy=median([m.server.cpu_s / m.server.wall_s for m in measurements if m.server.wall_s > 0]),
        client_cpu_us=median(_measured(per_round(results[series], lambda m: m.client_cpu_us))),
        cpu_vs_floor=_versus(series, "floor", block, results, lambda m: m.client_cpu_us),
        vs_floor=_versus(series, "floor", block, results, lambda m: m.calls_per_s),
        vs_official=_versus(series, "official", block, results, lambda m: m.calls_per_s),
        rounds=len(_measured(rates)),
    )
