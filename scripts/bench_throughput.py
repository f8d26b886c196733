"""Inputs per second of one machine's ``BulkRunner`` against the in-process emulator.

    .venv/bin/python scripts/bench_throughput.py                 # 200 PDFs of 1-5 pages, 0.2 s operations
    .venv/bin/python scripts/bench_throughput.py --inputs 50 --operation-seconds 0.5 --json out.json

Each configuration runs ``--repeat`` times on fresh inputs (a new bucket, a new journal) and reports the
median wall time from ``run()`` to its report, inputs/s, and the RPCs the emulator counted (submits and
GetOperation). The emulator runs in this process, so its CPU competes with the runner's: the figures are
for comparing settings on one machine, not a forecast of the real service, whose operations take seconds
to minutes and whose quotas (10,000 pages / 8,000 images in processing, 1,800 requests/min per project)
bound a run long before a client does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests._support's synthetic PDFs

from tests._support import make_pdf  # noqa: E402
from vision_grpc import Client  # noqa: E402
from vision_grpc.bulk import BulkRunner  # noqa: E402
from vision_grpc.storage import LocalStorage  # noqa: E402
from vision_grpc.testing import Emulator  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "defaults (8 files/request, 4 in flight)": {},
    "max_in_flight=16": {"max_in_flight": 16},
    "max_in_flight=16, 100 pages, counted": {"max_in_flight": 16, "max_pages_in_flight": 100, "count_pages": True},
}


def pages_of(uri: str) -> int:
    return 1 + int(uri.rsplit("doc", 1)[1].split(".")[0]) % 5


def peak_pages(emulator: Emulator, bucket: str) -> int:
    """The most pages the emulator had in processing at once (operations between created and finished)."""
    steps: list[tuple[float, int]] = []
    for record in emulator.service.store.snapshot():
        request: Any = record.request
        inputs = [r.input_config.gcs_source.uri for r in request.requests]
        if inputs and inputs[0].startswith(bucket) and record.finished_at is not None:
            pages = sum(pages_of(uri) for uri in inputs)
            steps += [(record.created, pages), (record.finished_at, -pages)]
    running = peak = 0
    for _, step in sorted(steps, key=lambda item: (item[0], item[1])):
        running += step
        peak = max(peak, running)
    return peak


def run_once(emulator: Emulator, client: Client, inputs: int, settings: dict[str, Any]) -> dict[str, float]:
    bucket = f"gs://tp-{uuid.uuid4().hex[:10]}/"
    uris = [f"{bucket}in/doc{n:04d}.pdf" for n in range(inputs)]
    for uri in uris:
        emulator.put_object(uri, make_pdf(pages_of(uri)))
    options = dict(settings)
    if options.pop("count_pages", False):
        options["storage"] = LocalStorage(emulator.storage_dir)
    emulator.service.clear_calls()
    with tempfile.TemporaryDirectory() as tmp:
        runner = BulkRunner(client, Path(tmp) / "j.db", output_prefix=f"{bucket}out/", poll_timeout=300, **options)
        start = time.perf_counter()
        report = runner.run(uris)
        seconds = time.perf_counter() - start
    if report.counts["done"] != inputs:
        raise SystemExit(f"run incomplete: {report.counts}")
    calls = [call.method for call in emulator.service.calls]
    return {
        "seconds": seconds,
        "inputs_per_s": inputs / seconds,
        "submits": calls.count("AsyncBatchAnnotateFiles"),
        "polls": calls.count("GetOperation"),
        "peak_pages": peak_pages(emulator, bucket),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--operation-seconds", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with (
        Emulator(operation_seconds=args.operation_seconds) as emulator,
        Client(endpoint=emulator.grpc_target) as client,
    ):
        run_once(emulator, client, 10, {})  # warm-up: channel, imports
        for name, settings in CONFIGS.items():
            runs = [run_once(emulator, client, args.inputs, settings) for _ in range(args.repeat)]
            median = statistics.median(r["seconds"] for r in runs)
            best = min(runs, key=lambda r: abs(r["seconds"] - median))
            results[name] = best
    print(
        f"BulkRunner, {args.inputs} PDFs of 1-5 pages, emulator operations of {args.operation_seconds} s, "
        f"median of {args.repeat} runs"
    )
    print(f"{'configuration':45} {'seconds':>8} {'inputs/s':>9} {'submits':>8} {'polls':>6} {'peak pages':>11}")
    for name, r in results.items():
        print(
            f"{name:45} {r['seconds']:8.2f} {r['inputs_per_s']:9.1f} {r['submits']:8.0f} {r['polls']:6.0f} "
            f"{r['peak_pages']:11.0f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
