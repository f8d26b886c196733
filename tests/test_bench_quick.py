"""The benchmark runs end to end: ``scripts/bench.py --smoke`` exits 0 and writes well-formed JSON.

Only the shape of the results is checked, never a timing (the machine is shared and noisy).
Also unit-checks the docs section rewrite and the per-round ratios of ``scripts/benchlib``
(imported as ``scripts.benchlib`` from the repository root, which pytest puts on the path).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.benchlib import report, stats
from scripts.benchlib.results import Target

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


@pytest.mark.timeout(300)
def test_smoke_run_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--smoke", "--quiet", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    assert "Targets:" in done.stdout.decode()

    result = json.loads(out.read_text())
    assert result["mode"] == "smoke"
    assert result["errors"] == []
    for key in (
        "schema",
        "date",
        "machine",
        "duration_s",
        "server",
        "latency",
        "throughput",
        "decode",
        "cold",
        "lag",
        "targets",
    ):
        assert key in result, key
    for key in ("cores", "cpu", "python", "versions"):
        assert key in result["machine"], key
    for dist in ("grpcio", "protobuf", "urllib3", "aiohttp", "google-cloud-vision"):
        assert dist in result["machine"]["versions"], dist

    latency = {(r["group"], r["call"], r["role"]) for r in result["latency"]}
    for group in ("gRPC sync", "gRPC asyncio", "REST sync", "REST asyncio"):
        for call in ("submit", "get"):
            assert (group, call, "floor") in latency and (group, call, "ours") in latency, (group, call)
    for row in result["latency"]:
        assert row["n"] > 0 and row["median_us"] is not None and row["p99_us"] is not None, row
        assert {"vs_floor", "vs_official", "server_us", "client_cpu_us"} <= row.keys()
    for section, value in (
        ("throughput", "calls_per_s"),
        ("decode", "median_ms"),
        ("cold", "import_construct_ms"),
        ("lag", "lag_median_ms"),
        ("reading", "cpu_ms_per_page"),
    ):
        assert result[section], section
        for row in result[section]:
            assert row[value] is not None, (section, row)
    assert {r["role"] for r in result["cold"]} >= {"floor", "ours", "official"}
    assert {r["family"] for r in result["lag"]} == {"ours", "official"}
    assert {r["way"] for r in result["reading"]} == {"official", "ours", "ours_text"}
    for target in result["targets"]:
        assert {"target", "value", "limit", "op", "met"} <= target.keys()
        assert target["met"] in (True, False, None)


def test_readme_section_is_replaced_only_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "performance.md"
    readme.write_text(f"# title\n\nbefore\n{report.BENCH_START}\nold table\n{report.BENCH_END}\nafter\n")
    assert report.update_section(readme, "new table\n")
    assert readme.read_text() == f"# title\n\nbefore\n{report.BENCH_START}\nnew table\n{report.BENCH_END}\nafter\n"

    readme.write_text("# no markers\n")
    assert not report.update_section(readme, "table")
    assert readme.read_text() == "# no markers\n"


def test_round_ratios_and_targets() -> None:
    assert stats.round_ratio([2.0, 3.0, None, 8.0], [1.0, 1.0, 1.0, 2.0]) == 3.0
    assert stats.p99([5.0]) == 5.0
    assert Target("t", 1.05, 1.1, "<=").met is True
    assert Target("t", 0.8, 0.9, ">=").met is False
    assert Target("t", float("nan"), 0.9, ">=").met is None
