"""The results: one row type per table, the machine, and the whole run (also written as JSON).

Field names are the JSON keys. Ratios are None where there is nothing to compare with (a floor
row against the floor, a group without an official client); NaN where the data is missing.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from .series import Series

_VERSIONS_OF = (
    "grpcio",
    "protobuf",
    "urllib3",
    "aiohttp",
    "requests",
    "google-cloud-vision",
    "google-api-core",
    "vision-grpc",
)


@dataclass(frozen=True)
class SeriesRow:
    """The columns naming the series a row was measured from."""

    group: str
    call: str
    family: str
    client: str
    label: str
    role: str

    @staticmethod
    def columns(series: Series) -> dict[str, Any]:
        return {
            "group": series.group,
            "call": series.call,
            "family": series.worker.family,
            "client": series.client,
            "label": series.label,
            "role": series.role,
        }


@dataclass(frozen=True)
class ServerInfo:
    grpc: str
    http: str
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of the canned answers and requests


@dataclass(frozen=True)
class LatencyRow(SeriesRow):
    """Median and p99 over all calls of all rounds; ratios are medians of per-round ratios of medians."""

    median_us: float
    p99_us: float
    n: int  # calls
    rounds: int
    round_medians_us: list[float | None]
    server_us: float  # the server's CPU time per call
    client_cpu_us: float  # the worker process's CPU time per call
    cpu_vs_floor: float | None
    vs_floor: float | None
    vs_official: float | None


@dataclass(frozen=True)
class DecodeRow(SeriesRow):
    """A latency row of the full-text decode, in milliseconds; ratios against the floor's own parse."""

    median_ms: float
    p99_ms: float
    n: int
    rounds: int
    round_medians_us: list[float | None]
    server_ms: float
    client_cpu_us: float
    cpu_vs_floor: float | None
    vs_floor: float | None
    vs_official: float | None

    @classmethod
    def from_latency(cls, row: LatencyRow) -> DecodeRow:
        figures = asdict(row)
        for key in ("median", "p99", "server"):
            figures[f"{key}_ms"] = figures.pop(f"{key}_us") / 1e3
        return cls(**figures)


@dataclass(frozen=True)
class ThroughputRow(SeriesRow):
    calls_per_s: float  # median over rounds
    per_round: list[float | None]
    server_busy: float  # the server's CPU time / wall time: near 1, the server limits the rate
    client_cpu_us: float
    cpu_vs_floor: float | None
    vs_floor: float | None
    vs_official: float | None
    rounds: int


@dataclass(frozen=True)
class ColdRow:
    """Medians over the repetitions, each in a fresh interpreter."""

    variant: str
    label: str
    role: str
    reps: int
    import_ms: float
    construct_ms: float  # the client (or the floor's channel)
    import_construct_ms: float
    first_call_ms: float
    rss_mb: float  # peak RSS once the client exists
    rss_first_call_mb: float
    process_ms: float  # the whole interpreter, start to exit
    vs_official_time: float | None  # import + client
    vs_official_rss: float | None


@dataclass(frozen=True)
class LagRow:
    """How long after an operation is done (T s after its submit) ``result()`` returns."""

    family: str
    client: str
    label: str
    role: str
    T: float  # the table's name for it: seconds from the submit until the server reports done
    reps: int
    lag_ms: list[float]
    lag_median_ms: float
    lag_max_ms: float
    polls: list[int]  # GetOperation calls per operation
    polls_median: float
    limit_ms: float  # the target for our client


@dataclass(frozen=True)
class PollRow:
    """Many operations waited at once on one client (polling): its polls, their pace and the lag."""

    runtime: str  # sync (a thread per wait) or async (a task per wait)
    label: str
    ops: int
    T: float  # seconds from each submit until the server reports it done
    budget: float  # the client's polls per second
    burst: int
    completed: int  # waits that returned the done operation
    wall_s: float  # from the first wait started to the last returned
    polls_per_op: float  # GetOperation calls the server saw, per operation
    peak_started_1s: int  # the most polls the client started in any 1 s window (what the budget bounds)
    peak_polls_1s: int  # the most GetOperation calls the server saw in any 1 s window
    polls_per_s: float  # all of them over the wall time of the waits
    lag_p50_ms: float  # from the server reporting done to the wait returning
    lag_max_ms: float
    limit_ms: float  # the lag bound at age T, max(50 ms, 5% of T): kept only where the budget allows
    cpu_per_op_ms: float  # the worker process's CPU time while waiting, per operation
    loop_lag_p99_ms: float | None  # asyncio only: how late a 10 ms ticker woke
    loop_lag_max_ms: float | None


@dataclass(frozen=True)
class ReadingRow:
    """Reading N pages of output shards in a fresh process, every page once (medians over repetitions)."""

    way: str  # official (proto-plus from_json), ours (read_file_results), ours_text (read_file_text)
    pages: int
    shards: int
    json_mb: float  # all shards
    largest_shard_mb: float
    reps: int
    cpu_ms_per_page: float  # the process's CPU time while reading, per page
    cpu_ms_per_page_runs: list[float]
    wall_ms_per_page: float
    speedup_vs_official: float | None  # median of per-repetition ratios official CPU / this way's CPU
    rss_peak_mb: float  # the process's peak RSS while reading
    rss_growth_mb: float  # that peak minus the RSS before reading: what reading added at its peak
    growth_per_shard: float  # that growth over the largest shard's JSON size


@dataclass(frozen=True)
class Target:
    """One goal: ``value`` compared with ``limit`` (``<=`` or ``>=``)."""

    name: str
    value: float
    limit: float
    op: str  # "<=" or ">="
    unit: str = "x"
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if math.isnan(self.value):
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "value": self.value,
            "limit": self.limit,
            "op": self.op,
            "unit": self.unit,
            "met": self.met,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Machine:
    cores: int | None
    cpu: str
    python: str
    platform: str
    versions: dict[str, str]
    load_before: str
    load_after: str = ""

    @classmethod
    def now(cls) -> Machine:
        return cls(os.cpu_count(), _cpu_model(), platform.python_version(), platform.platform(), _versions(), _load())

    def finished(self) -> Machine:
        return replace(self, load_after=_load())


@dataclass
class Result:
    """Filled in as the phases finish, so that an aborted run keeps what it measured."""

    mode: str
    date: str
    machine: Machine
    phases: list[str]
    duration_s: float = 0.0
    server: ServerInfo | None = None
    latency: list[LatencyRow] = field(default_factory=list)
    throughput: list[ThroughputRow] = field(default_factory=list)
    decode: list[DecodeRow] = field(default_factory=list)
    cold: list[ColdRow] = field(default_factory=list)
    lag: list[LagRow] = field(default_factory=list)
    polling: list[PollRow] = field(default_factory=list)
    reading: list[ReadingRow] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    logs: str | None = None  # the child processes' logs, kept when something failed
    profile: dict[str, Any] | None = None
    schema: int = 1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [target.as_dict() for target in self.targets]
        cleaned: dict[str, Any] = _json_safe(data)
        return cleaned


def _json_safe(value: Any) -> Any:
    """NaN -> None, floats rounded, tuples -> lists."""
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _versions() -> dict[str, str]:
    versions = {}
    for dist in _VERSIONS_OF:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
