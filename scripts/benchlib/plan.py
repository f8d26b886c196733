"""How much to measure: one ``Plan`` (the full run) and the quick and smoke runs derived from it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Mode = Literal["full", "quick", "smoke"]

THROUGHPUT_CONCURRENCY = 64  # asyncio calls in flight per throughput batch


@dataclass(frozen=True)
class PhasePlan:
    """An interleaved phase: each round, every series runs one batch.

    A batch makes at most ``calls`` calls in at most ``batch_max_s`` seconds (throughput: ``calls``
    in total, spread over the lanes). Rounds go on until ``min_rounds`` are done and ``budget_s``
    is spent, and stop at ``max_rounds``.
    """

    calls: int
    batch_max_s: float
    min_rounds: int
    max_rounds: int
    budget_s: float
    warmup: int = 5  # unmeasured calls the first time a worker makes a call: connections, caches


@dataclass(frozen=True)
class LagCase:
    """The server reports the operation done ``done_after_s`` (T) after the submit; ``reps`` times."""

    done_after_s: float
    reps: int

    def __str__(self) -> str:
        return f"T={self.done_after_s:g} s x{self.reps}"


@dataclass(frozen=True)
class PollCase:
    """``ops`` operations, each done ``done_after_s`` after its submit, waited at once on one client
    whose poll budget is ``budget`` polls/s with bursts of ``burst`` (the defaults: 10/s, 20)."""

    ops: int
    done_after_s: float
    budget: float = 10.0
    burst: int = 20

    def __str__(self) -> str:
        return f"{self.ops} ops at {self.budget:g}/s"


@dataclass(frozen=True)
class Plan:
    """Every phase is bounded both by counts and by time; the defaults are the full run."""

    mode: Mode = "full"
    latency: PhasePlan = PhasePlan(calls=200, batch_max_s=0.4, min_rounds=5, max_rounds=9, budget_s=55)
    throughput: PhasePlan = PhasePlan(calls=2000, batch_max_s=1.5, min_rounds=3, max_rounds=7, budget_s=20)
    decode: PhasePlan = PhasePlan(calls=6, batch_max_s=1.5, min_rounds=3, max_rounds=5, budget_s=20, warmup=1)
    fulltext_bytes: int = 2_000_000  # protobuf size of the decoded full-text response
    cold_reps: int = 5
    cold_warmup: bool = True  # one more, unrecorded repetition first, to fill the file caches
    cold_variants: tuple[str, ...] = ("floor", "ours_grpc", "official_grpc", "ours_rest", "official_rest")
    lag_cases: tuple[LagCase, ...] = (LagCase(0.3, 5), LagCase(3.0, 3), LagCase(30.0, 1))
    # 512 operations at 10/s take a minute (51 s a round): the full run only; quick runs 512 at 100/s.
    poll_cases: tuple[PollCase, ...] = (PollCase(1, 2.0), PollCase(64, 2.0), PollCase(512, 2.0))
    profile_calls: int = 2000
    reading_pages: tuple[int, ...] = (1, 100, 2000)  # pages of output shards read (reading phase)
    reading_reps: int = 3
    reading_official_max_pages: int = 2000  # the official way costs ~10-30 ms of CPU a page

    @classmethod
    def for_mode(cls, mode: Mode) -> Plan:
        full = cls()
        if mode == "full":
            return full
        quick = replace(
            full,
            mode="quick",
            # Client-CPU ratios need rounds more than calls (5 rounds of 80 calls gave gRPC submit
            # 1.17-1.29x in three runs on an idle machine, where full runs gave 1.14-1.21x).
            latency=PhasePlan(calls=100, batch_max_s=0.2, min_rounds=11, max_rounds=11, budget_s=20),
            throughput=PhasePlan(calls=640, batch_max_s=0.5, min_rounds=7, max_rounds=7, budget_s=8),
            decode=PhasePlan(calls=2, batch_max_s=0.6, min_rounds=1, max_rounds=1, budget_s=4, warmup=0),
            cold_reps=2,
            cold_warmup=False,
            cold_variants=("floor", "ours_grpc", "official_grpc"),
            lag_cases=(LagCase(0.3, 3), LagCase(3.0, 1)),
            poll_cases=(PollCase(1, 2.0), PollCase(64, 2.0), PollCase(512, 2.0, budget=100.0)),
            profile_calls=500,
            reading_reps=3,
            reading_official_max_pages=100,
        )
        if mode == "quick":
            return quick
        return replace(
            quick,
            mode="smoke",
            latency=PhasePlan(calls=8, batch_max_s=0.1, min_rounds=1, max_rounds=1, budget_s=1),
            throughput=PhasePlan(calls=128, batch_max_s=0.3, min_rounds=1, max_rounds=1, budget_s=1),
            decode=PhasePlan(calls=1, batch_max_s=0.5, min_rounds=1, max_rounds=1, budget_s=1, warmup=0),
            fulltext_bytes=200_000,
            cold_reps=1,
            lag_cases=(LagCase(0.3, 1),),
            poll_cases=(PollCase(1, 0.3), PollCase(16, 0.3, budget=100.0)),
            profile_calls=50,
            reading_pages=(1, 20),
            reading_reps=1,
        )
