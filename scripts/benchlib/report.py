"""The Markdown report (stdout, and the section of docs/performance.md): one table per phase, then the targets."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from .plan import THROUGHPUT_CONCURRENCY
from .results import Result

BENCH_START = "<!-- bench:start -->"
BENCH_END = "<!-- bench:end -->"


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def fmt_ratio(value: float | None) -> str:
    if value is not None and 0 < value < 0.1:  # two significant digits, not 0.01x
        return f"{value:.2g}x"
    return fmt(value, 2, "x")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table padded for reading as plain text; ``align``: one of l/r per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(cells, widths, align, strict=False)
        ]
        return "| " + " | ".join(padded) + " |"

    rules = ["-" * (w - 1) + ":" if a == "r" else "-" * w for w, a in zip(widths, align, strict=False)]
    return "\n".join([line(headers), "| " + " | ".join(rules) + " |", *(line(row) for row in rows)])


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def render(result: Result) -> str:
    """The whole report as Markdown."""
    phases = [
        ("latency", _latency),
        ("throughput", _throughput),
        ("decode", _decode),
        ("cold", _cold),
        ("lag", _lag),
        ("polling", _polling),
        ("reading", _reading),
    ]
    # A phase left out (--only) gets no table, rather than an empty one.
    sections = [_heading(result), *(table(result) for name, table in phases if name in result.phases)]
    sections.append(_targets(result))
    if result.errors:
        sections.append("\n".join(["Errors:", *(f"- {error}" for error in result.errors)]))
    return "\n\n".join(sections)


def _heading(result: Result) -> str:
    machine = result.machine
    versions = ", ".join(f"{dist} {version}" for dist, version in machine.versions.items())
    return (
        f"Run {result.date} ({result.mode} mode, {result.duration_s:.0f} s): {machine.cores} cores, {machine.cpu}, "
        f"load {machine.load_before} -> {machine.load_after}; Python {machine.python}, {versions}."
    )


def _latency(result: Result) -> str:
    intro = (
        "Per-call latency, one call in flight: median and p99 over all calls of all rounds; ratios are "
        "medians of per-round ratios of medians; client CPU = the worker process's CPU time (all threads) "
        "per call; server = the loopback server's own CPU time per call:"
    )
    headers = [
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
    ]
    rows = [
        [
            r.group,
            r.call,
            r.label,
            fmt(r.median_us),
            fmt(r.p99_us),
            fmt_ratio(r.vs_floor),
            fmt_ratio(r.vs_official),
            fmt(r.client_cpu_us),
            fmt_ratio(r.cpu_vs_floor),
            fmt(r.server_us),
            str(r.n),
        ]
        for r in result.latency
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'lllrrrrrrrr')}"


def _throughput(result: Result) -> str:
    intro = (
        f"asyncio throughput (GetOperation, {THROUGHPUT_CONCURRENCY} calls in flight, one process each; "
        "server busy = server CPU "
        "time / wall time, near 100% the server limits the rate):"
    )
    headers = [
        "transport",
        "client",
        "calls/s",
        "vs floor",
        "vs official",
        "client CPU µs/call",
        "CPU vs floor",
        "server busy",
        "rounds",
    ]
    rows = [
        [
            r.group,
            r.label,
            fmt(r.calls_per_s, 0),
            fmt_ratio(r.vs_floor),
            fmt_ratio(r.vs_official),
            fmt(r.client_cpu_us),
            fmt_ratio(r.cpu_vs_floor),
            fmt(r.server_busy * 100, 0, "%"),
            str(r.rounds),
        ]
        for r in result.throughput
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'llrrrrrrr')}"


def _decode(result: Result) -> str:
    sizes = result.server.sizes if result.server else {}
    intro = (
        f"Decode of the full-text BatchAnnotateImagesResponse ({fmt(sizes.get('fulltext_pb', 0) / 1e6, 2)} MB "
        f"protobuf, {fmt(sizes.get('fulltext_json', 0) / 1e6, 2)} MB JSON), call including transfer:"
    )
    headers = ["transport", "client", "median ms", "p99 ms", "vs bare parse", "vs official", "calls"]
    rows = [
        [
            r.group,
            r.label,
            fmt(r.median_ms, 2),
            fmt(r.p99_ms, 2),
            fmt_ratio(r.vs_floor),
            fmt_ratio(r.vs_official),
            str(r.n),
        ]
        for r in result.decode
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'llrrrrr')}"


def _cold(result: Result) -> str:
    intro = "Cold start in a fresh process (median of repetitions; RSS = peak `ru_maxrss`):"
    headers = [
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
    ]
    rows = [
        [
            r.label,
            fmt(r.import_ms, 0),
            fmt(r.construct_ms, 1),
            fmt(r.import_construct_ms, 0),
            fmt(r.first_call_ms, 1),
            fmt(r.rss_mb, 1),
            fmt(r.rss_first_call_mb, 1),
            fmt_ratio(r.vs_official_time),
            fmt_ratio(r.vs_official_rss),
            str(r.reps),
        ]
        for r in result.cold
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'lrrrrrrrrr')}"


def _lag(result: Result) -> str:
    intro = (
        "Operation notice lag (GetOperation reports done T s after the submit; lag = from then to "
        "`result()` returning; WaitOperation is UNIMPLEMENTED, so clients poll):"
    )
    headers = ["client", "T", "lag median ms", "lag max ms", "polls", "limit ms", "reps"]
    rows = [
        [
            r.label,
            fmt(r.T, 1, " s"),
            fmt(r.lag_median_ms, 0),
            fmt(r.lag_max_ms, 0),
            fmt(r.polls_median, 0),
            fmt(r.limit_ms, 0) if r.role == "ours" else "",
            str(r.reps),
        ]
        for r in result.lag
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'lrrrrrr')}"


def _polling(result: Result) -> str:
    intro = (
        "Polling at scale (REST, so every wait polls GetOperation): N operations, each done T s after its "
        "submit, waited at once on one client with the poll budget shown (polls/s, burst); the sync and "
        "asyncio workers run each case at the same time, a client each. Polls per op as the server saw "
        "them; peak = the most polls in any 1 s window, as the client started them (what the budget "
        "bounds: burst + rate) and as the server saw them (later by the request's way, a connection opening); "
        "lag = from the server reporting done to the wait returning (limit: max(50 ms, 5% of T), kept "
        "only where the budget allows); CPU = the worker process's CPU time while waiting, per "
        "operation; loop lag = how late a 10 ms asyncio ticker woke:"
    )
    headers = [
        "client",
        "ops",
        "T",
        "budget",
        "done",
        "wall s",
        "polls/op",
        "peak in 1 s: started / at server",
        "polls/s",
        "lag p50 ms",
        "lag max ms",
        "limit ms",
        "CPU/op ms",
        "loop lag p99 / max ms",
    ]
    rows = [
        [
            r.label,
            str(r.ops),
            fmt(r.T, 1, " s"),
            f"{r.budget:g}/s, {r.burst}",
            str(r.completed),
            fmt(r.wall_s, 1),
            fmt(r.polls_per_op, 2),
            f"{r.peak_started_1s} / {r.peak_polls_1s}",
            fmt(r.polls_per_s, 1),
            fmt(r.lag_p50_ms, 0),
            fmt(r.lag_max_ms, 0),
            fmt(r.limit_ms, 0),
            fmt(r.cpu_per_op_ms, 2),
            "" if r.loop_lag_p99_ms is None else f"{fmt(r.loop_lag_p99_ms, 1)} / {fmt(r.loop_lag_max_ms, 1)}",
        ]
        for r in result.polling
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'lrrrrrrrrrrrrr')}"


def _reading(result: Result) -> str:
    intro = (
        "Reading results: N pages of dense OCR output shards (20 pages a shard, each page ~50 KB of JSON "
        "down to symbols), every page once, streaming, each way in a fresh process (repetitions rotate "
        "the order); CPU = the process's CPU time while reading, per page; speedup = median of "
        "per-repetition ratios of the official way's CPU to this way's; RSS growth = peak RSS while reading "
        "minus RSS before reading, and per the largest shard's JSON size:"
    )
    headers = [
        "way",
        "pages",
        "JSON MB",
        "CPU ms/page",
        "CPU ms/page, each run",
        "wall ms/page",
        "speedup vs official",
        "peak RSS MB",
        "RSS growth MB",
        "growth / shard",
        "reps",
    ]
    labels = {
        "official": "official AnnotateFileResponse.from_json",
        "ours": "read_file_results",
        "ours_text": "read_file_text",
    }
    rows = [
        [
            labels.get(r.way, r.way),
            str(r.pages),
            fmt(r.json_mb, 1),
            fmt(r.cpu_ms_per_page, 2),
            " / ".join(fmt(value, 2) for value in r.cpu_ms_per_page_runs),
            fmt(r.wall_ms_per_page, 2),
            fmt_ratio(r.speedup_vs_official),
            fmt(r.rss_peak_mb, 0),
            fmt(r.rss_growth_mb, 1),
            fmt(r.growth_per_shard, 1, "x"),
            str(r.reps),
        ]
        for r in result.reading
    ]
    return f"{intro}\n\n{md_table(headers, rows, 'lrrrrrrrrrr')}"


def _targets(result: Result) -> str:
    rows = [
        [t.name, fmt(t.value, 2, t.unit), f"{t.op} {t.limit:g}{t.unit}", _mark(t.met), t.detail] for t in result.targets
    ]
    return "Targets:\n\n" + md_table(["target", "measured", "goal", "", "detail"], rows, "lrrll")


def update_section(path: Path, text: str) -> bool:
    """Replace what lies between the markers in ``path``; False (and no change) when they are missing."""
    content = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BENCH_START) + r".*?" + re.escape(BENCH_END), re.S)
    if not pattern.search(content):
        return False
    block = f"{BENCH_START}\n{text.rstrip()}\n{BENCH_END}"
    path.write_text(pattern.sub(lambda _: block, content, count=1), encoding="utf-8")
    return True
