"""Benchmark vision_grpc against bare transports (the floor) and google-cloud-vision, on loopback.

One command, from the repository root::

    .venv/bin/python scripts/bench.py            # full: about 3 minutes, more with reading
    .venv/bin/python scripts/bench.py --quick    # about 1.5 minutes (--only latency,throughput: ~30 s)
    .venv/bin/python scripts/bench.py --smoke    # a few calls per figure (the test suite runs this)
    .venv/bin/python scripts/bench.py --json out.json --docs --profile

A do-nothing server (gRPC and HTTP/1.1 with canned answers) runs in its own process; each client
family (floor / ours / official, sync / asyncio) runs in its own worker process, driven over a
pipe so that rounds interleave across processes: in round r every series runs one batch, in an
order rotated by r, and ratios are the median over rounds of per-round ratios.

Figures: per-call latency of submit (``files:asyncBatchAnnotate``) and GetOperation (sync and
asyncio, gRPC and REST), asyncio throughput with 64 calls in flight, decode of a ~2 MB full-text
response, cold import + first client (time and peak RSS, fresh processes), and the lag between
an operation finishing and ``result()`` returning. The server reports its own CPU time per call.
Targets are printed next to the ratios, marked met or missed; nothing here asserts timings.

Output: Markdown tables on stdout, ``--json PATH``, and ``--docs`` to rewrite the section between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` in docs/performance.md (the last full run of the
documentation site; ``--readme`` is a hidden alias, from when README.md held it). The exit status is 1
when a series failed (its error is in the output), 0 otherwise.

The code is in the ``benchlib`` package next to this file (found because Python puts a script's
own directory on its path); ``benchlib/__init__.py`` says which module does what.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from benchlib import report
from benchlib.plan import Mode, Plan
from benchlib.processes import ROOT
from benchlib.run import PHASES, run

DOCS_PAGE = ROOT / "docs" / "performance.md"  # where --docs writes the report, between the markers


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
    if not phases or set(phases) - set(PHASES):
        _parser().error(f"--only takes a comma-separated subset of {', '.join(PHASES)}")
    mode: Mode = "smoke" if args.smoke else "quick" if args.quick else "full"

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: the children are closed

    signal.signal(signal.SIGTERM, terminate)
    try:
        result = run(Plan.for_mode(mode), phases=phases, progress=not args.quiet, profile=args.profile)
    except KeyboardInterrupt:
        print("interrupted; server and workers stopped", file=sys.stderr)
        return 130
    text = report.render(result)
    print(text)
    if result.profile:
        _print_profiles(result.profile)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    if args.docs:
        _update_docs(text, mode)
    if result.errors:
        print(f"\n{len(result.errors)} error(s); child logs in {result.logs}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="fewer calls, no 30 s lag case (~1.5 min; --only latency,throughput: ~30 s)",
    )
    size.add_argument("--smoke", action="store_true", help="a few calls per figure (< 15 s), for the tests")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--docs", action="store_true", help=f"rewrite the last full run in {DOCS_PAGE.relative_to(ROOT)}"
    )
    parser.add_argument("--readme", dest="docs", action="store_true", help=argparse.SUPPRESS)  # the old name
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile our sync gRPC get_operation and REST submit, and print the top entries",
    )
    parser.add_argument(
        "--only",
        metavar="PHASES",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _print_profiles(profiles: dict[str, Any]) -> None:
    for name, data in profiles.items():
        print(
            f"\n## cProfile: ours sync {name}, {data['n']} calls, {data['wall_s'] / data['n'] * 1e6:.0f} "
            "µs/call under the profiler\n\nself time by package/module (s):"
        )
        for key, seconds in list(data["by_package"].items())[:15]:
            print(f"  {seconds:8.3f}  {key}")
        print(data["text"])


def _update_docs(text: str, mode: str) -> None:
    page = DOCS_PAGE.relative_to(ROOT)
    if report.update_section(DOCS_PAGE, text):
        print(f"{page}: bench section updated ({mode} mode)", file=sys.stderr)
    else:
        print(
            f"warning: {page} has no {report.BENCH_START} ... {report.BENCH_END} markers; not updated", file=sys.stderr
        )


if __name__ == "__main__":
    sys.exit(main())
