"""Statistics, targets, Markdown tables and the README section for ``scripts/bench.py``.

Pure functions over the raw measurements (no I/O but ``update_readme``). Ratios are computed
per interleaved round (both sides measured within seconds of each other) and then the median
over rounds is taken, so that machine drift between rounds cancels out.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Target",
    "median",
    "p99",
    "round_ratio",
    "md_table",
    "render",
    "update_readme",
    "README_START",
    "README_END",
]

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def p99(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[98])


def round_ratio(a: Sequence[float | None], b: Sequence[float | None]) -> float:
    """Median over rounds of a[r] / b[r], over the rounds where both were measured."""
    ratios = [x / y for x, y in zip(a, b, strict=False) if x is not None and y is not None and y > 0]
    return median(ratios)


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
            "value": _json_number(self.value),
            "limit": self.limit,
            "op": self.op,
            "unit": self.unit,
            "met": self.met,
            "detail": self.detail,
        }


def _json_number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


# -- formatting ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def fmt_ratio(value: float | None) -> str:
    if value is not None and not math.isnan(value) and 0 < value < 0.1:
        return f"{value:.2g}x"
    return fmt(value, 2, "x")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table padded for reading as plain text; ``align``: one of l/r per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [
        max(len(str(h)), *(len(str(row[i])) for row in rows)) if rows else len(str(h)) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align, strict=False)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "| "
        + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align, strict=False))
        + " |"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def render(result: dict[str, Any]) -> str:
    """The whole report as Markdown (stdout and README)."""
    out: list[str] = []
    machine = result["machine"]
    out.append(
        f"Run {result['date']} ({result['mode']} mode, {result['duration_s']:.0f} s): "
        f"{machine['cores']} cores, {machine['cpu']}, load {machine['load_before']} -> "
        f"{machine['load_after']}; Python {machine['python']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + "."
    )
    out.append("")
    out.append(
        "Per-call latency, one call in flight: median and p99 over all calls of all rounds; ratios are "
        "medians of per-round ratios of medians; client CPU = the worker process's CPU time (all threads) "
        "per call; server = the loopback server's own CPU time per call:"
    )
    out.append("")
    rows = [
        [
            r["group"],
            r["call"],
            r["label"],
            fmt(r["median_us"]),
            fmt(r["p99_us"]),
            fmt_ratio(r["vs_floor"]),
            fmt_ratio(r["vs_official"]),
            fmt(r["client_cpu_us"]),
            fmt_ratio(r["cpu_vs_floor"]),
            fmt(r["server_us"]),
            str(r["n"]),
        ]
        for r in result["latency"]
    ]
    out.append(
        md_table(
            [
                "transport",
                "call",
                "client",
                "median µs",
                "p99 µs",
                "vs floor",
                "vs official",
                "client CPU µs",
                "CPU vs floor",
                "server µs",
                "calls",
            ],
            rows,
            "lllrrrrrrrr",
        )
    )
    out.append("")
    out.append(
        "asyncio throughput (GetOperation, 64 calls in flight, one process each; server busy = server CPU "
        "time / wall time, near 100% the server limits the rate):"
    )
    out.append("")
    rows = [
        [
            r["group"],
            r["label"],
            fmt(r["calls_per_s"], 0),
            fmt_ratio(r["vs_floor"]),
            fmt_ratio(r["vs_official"]),
            fmt(r["client_cpu_us"]),
            fmt_ratio(r["cpu_vs_floor"]),
            fmt(r["server_busy"] * 100, 0, "%"),
            str(r["rounds"]),
        ]
        for r in result["throughput"]
    ]
    out.append(
        md_table(
            [
                "transport",
                "client",
                "calls/s",
                "vs floor",
                "vs official",
                "client CPU µs/call",
                "CPU vs floor",
                "server busy",
                "rounds",
            ],
            rows,
            "llrrrrrrr",
        )
    )
    out.append("")
    sizes = result["server"].get("sizes", {})
    out.append(
        f"Decode of the full-text BatchAnnotateImagesResponse ({fmt(sizes.get('fulltext_pb', 0) / 1e6, 2)} MB "
        f"protobuf, {fmt(sizes.get('fulltext_json', 0) / 1e6, 2)} MB JSON), call including transfer:"
    )
    out.append("")
    rows = [
        [
            r["group"],
            r["label"],
            fmt(r["median_ms"], 2),
            fmt(r["p99_ms"], 2),
            fmt_ratio(r["vs_floor"]),
            fmt_ratio(r["vs_official"]),
            str(r["n"]),
        ]
        for r in result["decode"]
    ]
    out.append(
        md_table(
            ["transport", "client", "median ms", "p99 ms", "vs bare parse", "vs official", "calls"], rows, "llrrrrr"
        )
    )
    out.append("")
    out.append("Cold start in a fresh process (median of repetitions; RSS = peak `ru_maxrss`):")
    out.append("")
    rows = [
        [
            r["label"],
            fmt(r["import_ms"], 0),
            fmt(r["construct_ms"], 1),
            fmt(r["import_construct_ms"], 0),
            fmt(r["first_call_ms"], 1),
            fmt(r["rss_mb"], 1),
            fmt(r["rss_first_call_mb"], 1),
            fmt_ratio(r["vs_official_time"]),
            fmt_ratio(r["vs_official_rss"]),
            str(r["reps"]),
        ]
        for r in result["cold"]
    ]
    out.append(
        md_table(
            [
                "variant",
                "import ms",
                "client ms",
                "import+client ms",
                "first call ms",
                "RSS MB",
                "RSS after call MB",
                "time vs official",
                "RSS vs official",
                "reps",
            ],
            rows,
            "lrrrrrrrrr",
        )
    )
    out.append("")
    out.append(
        "Operation notice lag (GetOperation reports done T s after the submit; lag = from then to "
        "`result()` returning; WaitOperation is UNIMPLEMENTED, so clients poll):"
    )
    out.append("")
    rows = [
        [
            r["label"],
            fmt(r["T"], 1, " s"),
            fmt(r["lag_median_ms"], 0),
            fmt(r["lag_max_ms"], 0),
            fmt(r["polls_median"], 0),
            fmt(r["limit_ms"], 0) if r["role"] == "ours" else "",
            str(r["reps"]),
        ]
        for r in result["lag"]
    ]
    out.append(md_table(["client", "T", "lag median ms", "lag max ms", "polls", "limit ms", "reps"], rows, "lrrrrrr"))
    out.append("")
    out.append("Targets:")
    out.append("")
    rows = [
        [
            t["target"],
            (fmt(t["value"], 2, t["unit"]) if t["value"] is not None else "–"),
            f"{t['op']} {t['limit']:g}{t['unit']}",
            _mark(t["met"]),
            t["detail"],
        ]
        for t in result["targets"]
    ]
    out.append(md_table(["target", "measured", "goal", "", "detail"], rows, "lrrll"))
    if result.get("errors"):
        out.append("")
        out.append("Errors:")
        out.extend(f"- {e}" for e in result["errors"])
    return "\n".join(out)


def update_readme(path: Path, text: str) -> bool:
    """Replace what lies between the markers; False (and no change) when they are missing."""
    content = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(content):
        return False
    block = f"{README_START}\n{text.rstrip()}\n{README_END}"
    path.write_text(pattern.sub(lambda _: block, content, count=1), encoding="utf-8")
    return True
