"""Operation notice lag: how long after an operation is done ``result()`` returns.

The server reports a lag operation done T s after its submit; the sync ``ours`` and ``official``
workers submit and wait, one thread per (client, T), in the background while the cold starts run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .plan import LagCase
from .processes import BenchError, Rig
from .protocol import Lag, to_message
from .results import LagRow
from .series import OFFICIAL_SYNC, OURS_SYNC, Family
from .stats import median


@dataclass(frozen=True)
class LagClient:
    family: Family
    client: str
    label: str


LAG_CLIENTS = (
    LagClient("ours", "grpc", "vision_grpc.Client gRPC"),
    LagClient("ours", "rest", "vision_grpc.Client REST"),
    LagClient("official", "grpc", "official (api-core polling) gRPC"),
    LagClient("official", "rest", "official (api-core polling) REST"),
)
_WORKERS = {"ours": OURS_SYNC, "official": OFFICIAL_SYNC}


@dataclass(frozen=True)
class LagRecord:
    """One operation waited for."""

    family: str
    client: str
    done_after_s: float
    operation: str
    lag_s: float

    @classmethod
    def from_reply(cls, family: str, record: dict[str, Any]) -> LagRecord:
        return cls(family, record["client"], record["T"], record["name"], record["lag_s"])


def _limit_ms(done_after_s: float) -> float:
    """Our target: noticed within 50 ms, or within 5% of T for longer operations."""
    return max(50.0, 0.05 * done_after_s * 1e3)


class BackgroundLag:
    """Start the lag cases in both workers, collect them later; failures are reported, not raised."""

    def __init__(self, rig: Rig, cases: tuple[LagCase, ...]) -> None:
        self.rig, self.cases = rig, cases
        longest = max(case.done_after_s for case in cases)
        most_reps = max(case.reps for case in cases)
        self.max_s = longest * 2.2 + 25 + most_reps * 8  # official polling overshoots; bounded anyway
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()
        command = Lag(["grpc", "rest"], [[case.done_after_s, case.reps] for case in self.cases], self.max_s)
        for worker in _WORKERS.values():
            self.rig.workers[worker].send(to_message(command))  # the reply is read in finish()
        self.rig.say(f"lag cases {', '.join(map(str, self.cases))} running in the background")

    def finish(self) -> list[LagRow]:
        records: list[LagRecord] = []
        for family, worker in _WORKERS.items():
            process = self.rig.workers[worker]
            try:
                reply = process.recv(max(5.0, self.max_s + 30 - (time.monotonic() - self.started)))
            except BenchError as exc:
                self.rig.errors.append(f"lag {family}: {exc}")
                continue
            if reply.get("ok") is False:
                self.rig.errors.append(f"lag {family}: {reply.get('error')}")
            self.rig.errors.extend(f"lag {family}: {error}" for error in reply.get("errors", []))
            records.extend(LagRecord.from_reply(family, record) for record in reply.get("records", []))
        polls = self.rig.server.polls()
        return [self._row(lag_client, case, records, polls) for lag_client in LAG_CLIENTS for case in self.cases]

    @staticmethod
    def _row(
        lag_client: LagClient, case: LagCase, records: list[LagRecord], polls: dict[str, dict[str, Any]]
    ) -> LagRow:
        mine = [
            record
            for record in records
            if (record.family, record.client, record.done_after_s)
            == (lag_client.family, lag_client.client, case.done_after_s)
        ]
        lags = [record.lag_s * 1e3 for record in mine]
        counts = [polls.get(record.operation, {}).get("get", 0) for record in mine]
        return LagRow(
            family=lag_client.family,
            client=lag_client.client,
            label=lag_client.label,
            role=lag_client.family,
            T=case.done_after_s,
            reps=len(mine),
            lag_ms=lags,
            lag_median_ms=median(lags),
            lag_max_ms=max(lags) if lags else float("nan"),
            polls=counts,
            polls_median=median(counts),
            limit_ms=_limit_ms(case.done_after_s),
        )
