"""Interleaved rounds: in round r every series runs one batch, in an order rotated by r.

Each batch is paired with the server's own usage meanwhile (reset before, read after); a series
whose batch fails is reported and skipped in the later rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .plan import PhasePlan
from .processes import BenchError, Rig, ServerUsage
from .protocol import Batch, Command
from .series import Series
from .stats import median

T = TypeVar("T")


@dataclass(frozen=True)
class Measurement:
    """One series' batch in one round, and what the server spent serving it."""

    batch: Batch
    server: ServerUsage

    @property
    def samples_us(self) -> list[float]:
        return [ns / 1e3 for ns in self.batch.samples_ns]

    @property
    def median_us(self) -> float:
        return median(self.samples_us)

    @property
    def client_cpu_us(self) -> float:
        """The worker process's CPU time (all threads) per call."""
        return self.batch.cpu_s * 1e6 / self.batch.calls

    @property
    def calls_per_s(self) -> float:
        return self.batch.calls / self.batch.wall_s


PerRound = list[Measurement | None]  # None: that round's batch failed or was skipped


def per_round(measurements: PerRound, figure: Callable[[Measurement], float]) -> list[float | None]:
    """``figure`` of every round's batch; None for the rounds without a batch or without calls."""
    return [None if m is None or not m.batch.calls else figure(m) for m in measurements]


def rotated(items: Sequence[T], by: int) -> list[T]:
    return [items[(i + by) % len(items)] for i in range(len(items))]


def grouped(series: Sequence[Series], key: Callable[[Series], Hashable]) -> list[list[Series]]:
    """Series with the same key, in order of first appearance: the blocks compared with each other."""
    blocks: dict[Hashable, list[Series]] = {}
    for one in series:
        blocks.setdefault(key(one), []).append(one)
    return list(blocks.values())


def run_rounds(
    rig: Rig,
    phase: str,
    blocks: Sequence[Sequence[Series]],
    plan: PhasePlan,
    command: Callable[[Series], Command],
    reply_timeout_s: float,
) -> dict[Series, PerRound]:
    """Run every series once per round: the blocks, and the series within each, rotate every round.

    Rounds stop at ``plan.max_rounds``, or once ``plan.min_rounds`` are done and ``plan.budget_s``
    is spent.
    """
    results: dict[Series, PerRound] = {series: [] for block in blocks for series in block}
    failed: set[Series] = set()
    start = time.monotonic()
    for r in range(plan.max_rounds):
        if r >= plan.min_rounds and time.monotonic() - start > plan.budget_s:
            break
        rig.say(f"{phase}: round {r + 1}")
        for block in rotated(blocks, r):
            for series in rotated(block, r):
                measured = None if series in failed else _measure(rig, phase, series, command(series), reply_timeout_s)
                if measured is None:
                    failed.add(series)
                results[series].append(measured)
    return results


def _measure(rig: Rig, phase: str, series: Series, command: Command, timeout_s: float) -> Measurement | None:
    worker = rig.workers[series.worker]
    try:
        rig.server.reset_usage()
        reply = worker.request(command, timeout_s)
        usage = rig.server.usage()
    except BenchError as exc:
        rig.errors.append(f"{phase} {series.group} {series.call} {series.label}: {exc}")
        if worker.exited:  # nothing more to measure in that process
            raise
        return None
    return Measurement(Batch.from_reply(reply), usage)
