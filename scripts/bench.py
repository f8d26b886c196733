"""Benchmark vision_grpc against bare transports (the floor) and google-cloud-vision, on loopback.

One command::

    .venv/bin/python scripts/bench.py            # full: under 3 minutes
    .venv/bin/python scripts/bench.py --quick    # under 30 s
    .venv/bin/python scripts/bench.py --smoke    # a few calls per figure (the test suite runs this)
    .venv/bin/python scripts/bench.py --json out.json --readme --profile

A do-nothing server (``bench_server.py``: gRPC and HTTP/1.1 with canned answers) runs in its own
process; each client family (floor / ours / official, sync / asyncio) runs in its own worker
process (``bench_worker.py``; our protos and the official ones cannot share a process), driven
over a pipe so that rounds interleave across processes: in round r every series runs one batch,
in an order rotated by r, and ratios are the median over rounds of per-round ratios.

Figures: per-call latency of submit (``files:asyncBatchAnnotate``) and GetOperation (sync and
asyncio, gRPC and REST), asyncio throughput with 64 calls in flight, decode of a ~2 MB full-text
response, cold import + first client (time and peak RSS, fresh processes), and the lag between
an operation finishing and ``result()`` returning. The server reports its own CPU time per call.
Targets are printed next to the ratios, marked met or missed; nothing here asserts timings.

Output: Markdown tables on stdout, ``--json PATH``, and ``--readme`` to rewrite the section
between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md. The exit status is 1
when a series failed (its error is in the output), 0 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import bench_report as report

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A child process failed, timed out or answered nonsense."""


@dataclass(frozen=True)
class Plan:
    """How much to measure; every phase is bounded by rounds and by a time budget."""

    latency_n: int
    latency_max_s: float
    latency_rounds: tuple[int, int]  # (at least, at most)
    latency_budget_s: float
    throughput_total: int
    throughput_max_s: float
    throughput_rounds: tuple[int, int]
    throughput_budget_s: float
    decode_n: int
    decode_max_s: float
    decode_rounds: tuple[int, int]
    decode_budget_s: float
    decode_warmup: int
    fulltext_bytes: int
    cold_reps: int
    cold_warmup: bool
    cold_variants: tuple[str, ...]
    lag_cases: tuple[tuple[float, int], ...]  # (T seconds, repetitions)
    profile_n: int


PLANS = {
    "full": Plan(
        latency_n=200,
        latency_max_s=0.4,
        latency_rounds=(5, 9),
        latency_budget_s=55,
        throughput_total=2000,
        throughput_max_s=1.5,
        throughput_rounds=(3, 7),
        throughput_budget_s=20,
        decode_n=6,
        decode_max_s=1.5,
        decode_rounds=(3, 5),
        decode_budget_s=20,
        decode_warmup=1,
        fulltext_bytes=2_000_000,
        cold_reps=5,
        cold_warmup=True,
        cold_variants=("floor", "ours_grpc", "official_grpc", "ours_rest", "official_rest"),
        lag_cases=((0.3, 5), (3.0, 3), (30.0, 1)),
        profile_n=2000,
    ),
    "quick": Plan(
        latency_n=60,
        latency_max_s=0.15,
        latency_rounds=(3, 3),
        latency_budget_s=6,
        throughput_total=640,
        throughput_max_s=0.5,
        throughput_rounds=(2, 2),
        throughput_budget_s=3,
        decode_n=2,
        decode_max_s=0.6,
        decode_rounds=(1, 1),
        decode_budget_s=4,
        decode_warmup=0,
        fulltext_bytes=2_000_000,
        cold_reps=2,
        cold_warmup=False,
        cold_variants=("floor", "ours_grpc", "official_grpc"),
        lag_cases=((0.3, 3), (3.0, 1)),
        profile_n=500,
    ),
    "smoke": Plan(
        latency_n=8,
        latency_max_s=0.1,
        latency_rounds=(1, 1),
        latency_budget_s=1,
        throughput_total=128,
        throughput_max_s=0.3,
        throughput_rounds=(1, 1),
        throughput_budget_s=1,
        decode_n=1,
        decode_max_s=0.5,
        decode_rounds=(1, 1),
        decode_budget_s=1,
        decode_warmup=0,
        fulltext_bytes=200_000,
        cold_reps=1,
        cold_warmup=False,
        cold_variants=("floor", "ours_grpc", "official_grpc"),
        lag_cases=((0.3, 1),),
        profile_n=50,
    ),
}

# (group, worker family, worker mode, client, label, role); role: floor / ours / official / ref.
LATENCY_SERIES = [
    ("gRPC sync", "floor", "sync", "grpc", "bare grpcio (floor)", "floor"),
    ("gRPC sync", "ours", "sync", "grpc", "vision_grpc.Client", "ours"),
    ("gRPC sync", "official", "sync", "grpc", "official ImageAnnotatorClient", "official"),
    ("gRPC asyncio", "floor", "async", "grpc_aio", "bare grpc.aio (floor)", "floor"),
    ("gRPC asyncio", "ours", "async", "grpc", "vision_grpc.AsyncClient", "ours"),
    ("gRPC asyncio", "official", "async", "grpc", "official ImageAnnotatorAsyncClient", "official"),
    ("REST sync", "floor", "sync", "urllib3", "bare urllib3 (floor)", "floor"),
    ("REST sync", "floor", "sync", "requests", "bare requests (reference)", "ref"),
    ("REST sync", "ours", "sync", "rest", "vision_grpc.Client", "ours"),
    ("REST sync", "official", "sync", "rest", "official ImageAnnotatorClient", "official"),
    ("REST asyncio", "floor", "async", "aiohttp", "bare aiohttp (floor)", "floor"),
    ("REST asyncio", "ours", "async", "rest", "vision_grpc.AsyncClient", "ours"),
]
LATENCY_CALLS = ("submit", "get")
THROUGHPUT_SERIES = [
    ("gRPC asyncio", "floor", "async", "grpc_aio", "bare grpc.aio (floor)", "floor"),
    ("gRPC asyncio", "ours", "async", "grpc", "vision_grpc.AsyncClient", "ours"),
    ("gRPC asyncio", "official", "async", "grpc", "official ImageAnnotatorAsyncClient", "official"),
    ("REST asyncio", "floor", "async", "aiohttp", "bare aiohttp (floor)", "floor"),
    ("REST asyncio", "ours", "async", "rest", "vision_grpc.AsyncClient", "ours"),
]
# (group, family, mode, client, call, label, role)
DECODE_SERIES = [
    ("gRPC", "floor", "sync", "grpc", "decode", "bare grpcio, bytes only", "ref"),
    ("gRPC", "floor", "sync", "grpc", "decode_parse", "bare grpcio + FromString (floor)", "floor"),
    ("gRPC", "ours", "sync", "grpc", "decode", "vision_grpc.Client", "ours"),
    ("gRPC", "official", "sync", "grpc", "decode", "official ImageAnnotatorClient", "official"),
    ("REST", "floor", "sync", "urllib3", "decode", "bare urllib3, bytes only", "ref"),
    ("REST", "floor", "sync", "urllib3", "decode_parse", "bare urllib3 + json.loads + ParseDict (floor)", "floor"),
    ("REST", "ours", "sync", "rest", "decode", "vision_grpc.Client", "ours"),
    ("REST", "official", "sync", "rest", "decode", "official ImageAnnotatorClient", "official"),
]
LAG_CLIENTS = [
    ("ours", "grpc", "vision_grpc.Client gRPC"),
    ("ours", "rest", "vision_grpc.Client REST"),
    ("official", "grpc", "official (api-core polling) gRPC"),
    ("official", "rest", "official (api-core polling) REST"),
]

# Cold start: code run in a fresh interpreter; {grpc}, {http}, {name} are filled in. It prints one
# JSON line: times in seconds since the snippet started, peak RSS in KiB.
_COLD_HEAD = "import json, resource, time\nt0 = time.perf_counter()\n"
_COLD_TAIL = (
    "t2 = time.perf_counter()\nrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "{call}\nt3 = time.perf_counter()\nrss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps({{'import': t1 - t0, 'construct': t2 - t1, 'first_call': t3 - t2, "
    "'rss_kb': rss1, 'rss_call_kb': rss2}}))\n"
)
COLD_VARIANTS: dict[str, tuple[str, str, str, str]] = {  # name: (label, role, imports+construct, first call)
    "floor": (
        "floor: import grpc, protobuf, google.auth, annotations_pb2, operations_pb2; channel",
        "floor",
        "import grpc, google.protobuf, google.auth, google.api.annotations_pb2, google.longrunning.operations_pb2\n"
        "t1 = time.perf_counter()\n"
        "channel = grpc.insecure_channel({grpc!r})\n"
        "get = channel.unary_unary('/google.longrunning.Operations/GetOperation', None, None)\n",
        "get(google.longrunning.operations_pb2.GetOperationRequest(name={name!r}).SerializeToString())",
    ),
    "ours_grpc": (
        "import vision_grpc; Client(endpoint=...)",
        "ours",
        "import vision_grpc\nfrom vision_grpc import Client\n"
        "t1 = time.perf_counter()\nclient = Client(endpoint={grpc!r})\n",
        "client.get_operation({name!r})",
    ),
    "official_grpc": (
        "from google.cloud import vision; ImageAnnotatorClient(grpc channel)",
        "official",
        "from google.cloud import vision\nimport grpc\n"
        "from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport\n"
        "t1 = time.perf_counter()\n"
        "client = vision.ImageAnnotatorClient(transport=ImageAnnotatorGrpcTransport("
        "channel=grpc.insecure_channel({grpc!r})))\n",
        "client.get_operation(request={{'name': {name!r}}})",
    ),
    "ours_rest": (
        "import vision_grpc; Client(endpoint=..., transport='rest')",
        "ours",
        "import vision_grpc\nfrom vision_grpc import Client\nt1 = time.perf_counter()\n"
        "client = Client(endpoint={http!r}, transport='rest')\n",
        "client.get_operation({name!r})",
    ),
    "official_rest": (
        "from google.cloud import vision; ImageAnnotatorClient(transport='rest')",
        "official",
        "from google.cloud import vision\nfrom google.auth.credentials import AnonymousCredentials\n"
        "t1 = time.perf_counter()\n"
        "client = vision.ImageAnnotatorClient(credentials=AnonymousCredentials(), transport='rest', "
        "client_options={{'api_endpoint': 'http://' + {http!r}}})\n",
        "client.get_operation(request={{'name': {name!r}}})",
    ),
}
_COLD_PAIRS = {"ours_grpc": "official_grpc", "ours_rest": "official_rest"}


# -- child processes -----------------------------------------------------------------------------


class Child:
    """A child process speaking JSON lines over its stdin/stdout; stderr goes to a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ, GRPC_VERBOSITY="ERROR", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"{self.name} exited ({self.proc.poll()}); {self.log_tail()}") from None

    def recv(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no answer within {timeout:.0f} s; {self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.proc.wait(5)
                    raise BenchError(f"{self.name} exited ({self.proc.returncode}); {self.log_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(message)
        reply = self.recv(timeout)
        if reply.get("ok") is False:
            raise BenchError(
                f"{self.name} {message.get('cmd')} {message.get('client', '')} "
                f"{message.get('call', '')}: {reply.get('error')}"
            )
        return reply

    def log_tail(self, lines: int = 6) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return "no log"
        return "log: " + " | ".join(tail) if tail else f"log {self.log_path} is empty"

    def close(self, timeout: float = 5.0) -> None:
        """Ask politely (quit, then stdin EOF), then SIGTERM, then SIGKILL; always reaps."""
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                try:
                    self.proc.stdin.write(b'{"cmd": "quit"}\n')
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(2)
        finally:
            for stream in (self.proc.stdout,):
                if stream is not None:
                    stream.close()
            self._log.close()


class Server:
    """The loopback server process and its control endpoint."""

    def __init__(self, log_dir: Path, fulltext_bytes: int) -> None:
        self.child = Child(
            "server", [PYTHON, str(SCRIPTS / "bench_server.py"), f"--fulltext-bytes={fulltext_bytes}"], log_dir
        )
        ports = self.child.recv(60)
        self.grpc_port, self.http_port = int(ports["grpc_port"]), int(ports["http_port"])
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.http_target = f"127.0.0.1:{self.http_port}"
        self._control: http.client.HTTPConnection | None = None
        self.fixtures = self.control("GET", "/_bench/fixtures")

    def control(self, method: str, path: str) -> Any:
        for attempt in range(2):
            try:
                if self._control is None:
                    self._control = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
                self._control.request(method, path, body=b"" if method == "POST" else None)
                response = self._control.getresponse()
                return json.loads(response.read())
            except (OSError, http.client.HTTPException):
                self._control = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
        self.child.close()


@contextmanager
def measured(server: Server) -> Iterator[dict[str, Any]]:
    """Server CPU time and requests over the block (reset before, read after)."""
    out: dict[str, Any] = {}
    server.control("POST", "/_bench/reset")
    yield out
    stats = server.control("GET", "/_bench/stats")
    out["cpu_s"] = stats["cpu_s"]
    out["wall_s"] = stats["wall_s"]
    out["requests"] = sum(stats["requests"].values())


# -- phases --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, plan: Plan, mode: str, log_dir: Path, progress: bool) -> None:
        self.plan, self.mode, self.log_dir, self.progress = plan, mode, log_dir, progress
        self.errors: list[str] = []
        self.server: Server | None = None
        self.workers: dict[tuple[str, str], Child] = {}

    def say(self, text: str) -> None:
        if self.progress:
            print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # -- setup / teardown ------------------------------------------------------------------------

    def start(self) -> None:
        self.say("starting the server and the workers")
        self.server = Server(self.log_dir, self.plan.fulltext_bytes)
        for family in ("floor", "ours", "official"):
            for mode in ("sync", "async"):
                self.workers[(family, mode)] = Child(
                    f"{family}-{mode}", [PYTHON, str(SCRIPTS / "bench_worker.py"), family, mode], self.log_dir
                )
        setup = {
            "cmd": "setup",
            "grpc": self.server.grpc_target,
            "http": self.server.http_target,
            "fixtures": self.server.fixtures,
        }
        for worker in self.workers.values():
            worker.recv(60)  # "ready"
            worker.send(setup)
        for worker in self.workers.values():
            reply = worker.recv(60)
            if not reply.get("ok"):
                raise BenchError(f"{worker.name} setup: {reply.get('error')}")
        # Create every client (imports, channels, first calls) in parallel, before measuring.
        pending = []
        for group, family, mode, client, _label, _role in LATENCY_SERIES:
            worker = self.workers[(family, mode)]
            worker.send({"cmd": "latency", "client": client, "call": "get", "n": 1, "max_s": 1})
            pending.append((worker, f"{group} {family} {client}"))
        for worker, what in pending:
            reply = worker.recv(120)
            if not reply.get("ok"):
                self.errors.append(f"warm-up {what}: {reply.get('error')}")

    def close(self) -> None:
        for worker in self.workers.values():
            try:
                worker.close()
            except Exception as exc:  # keep closing the others
                self.errors.append(f"closing {worker.name}: {exc}")
        if self.server is not None:
            self.server.close()

    # -- interleaved rounds ----------------------------------------------------------------------

    def rounds(
        self,
        name: str,
        blocks: list[list[tuple[Any, dict[str, Any]]]],
        rounds: tuple[int, int],
        budget_s: float,
        timeout_s: float,
    ) -> dict[Any, list[dict[str, Any] | None]]:
        """Run each (key, command) once per round; blocks and their members rotate every round.

        Returns key -> per-round replies (None where a batch failed), each with the server's
        ``server`` stats for that batch.
        """
        assert self.server is not None
        results: dict[Any, list[dict[str, Any] | None]] = {key: [] for block in blocks for key, _ in block}
        failed: set[Any] = set()
        start = time.monotonic()
        low, high = rounds
        for r in range(high):
            if r >= low and time.monotonic() - start > budget_s:
                break
            self.say(f"{name}: round {r + 1}")
            for b in range(len(blocks)):
                block = blocks[(b + r) % len(blocks)]
                for m in range(len(block)):
                    key, command = block[(m + r) % len(block)]
                    if key in failed:
                        results[key].append(None)
                        continue
                    worker = self.workers[(command["family"], command["mode"])]
                    message = {k: v for k, v in command.items() if k not in ("family", "mode")}
                    try:
                        with measured(self.server) as server_stats:
                            reply = worker.request(message, timeout_s)
                    except BenchError as exc:
                        self.errors.append(f"{name} {key}: {exc}")
                        failed.add(key)
                        results[key].append(None)
                        if worker.proc.poll() is not None:
                            raise
                        continue
                    reply["server"] = server_stats
                    results[key].append(reply)
        return results

    def latency(self) -> list[dict[str, Any]]:
        plan = self.plan
        blocks = []
        for group in dict.fromkeys(s[0] for s in LATENCY_SERIES):
            for call in LATENCY_CALLS:
                blocks.append(
                    [
                        (
                            (group, call, family, client),
                            {
                                "family": family,
                                "mode": mode,
                                "cmd": "latency",
                                "client": client,
                                "call": call,
                                "n": plan.latency_n,
                                "max_s": plan.latency_max_s,
                            },
                        )
                        for g, family, mode, client, _label, _role in LATENCY_SERIES
                        if g == group
                    ]
                )
        results = self.rounds("latency", blocks, plan.latency_rounds, plan.latency_budget_s, plan.latency_max_s + 90)
        rows = []
        for group, family, _mode, client, label, role in LATENCY_SERIES:
            for call in LATENCY_CALLS:
                per_round = results[(group, call, family, client)]
                floor_key = next(
                    ((group, call, f, c) for g, f, _m, c, _l, ro in LATENCY_SERIES if g == group and ro == "floor"),
                    None,
                )
                official_key = next(
                    ((group, call, f, c) for g, f, _m, c, _l, ro in LATENCY_SERIES if g == group and ro == "official"),
                    None,
                )
                rows.append(
                    _latency_row(
                        group,
                        call,
                        family,
                        client,
                        label,
                        role,
                        per_round,
                        results.get(floor_key) if floor_key else None,
                        results.get(official_key) if official_key else None,
                    )
                )
        return rows

    def throughput(self) -> list[dict[str, Any]]:
        plan = self.plan
        blocks = []
        for group in dict.fromkeys(s[0] for s in THROUGHPUT_SERIES):
            blocks.append(
                [
                    (
                        (group, family, client),
                        {
                            "family": family,
                            "mode": mode,
                            "cmd": "throughput",
                            "client": client,
                            "call": "get",
                            "total": plan.throughput_total,
                            "concurrency": 64,
                            "max_s": plan.throughput_max_s,
                        },
                    )
                    for g, family, mode, client, _label, _role in THROUGHPUT_SERIES
                    if g == group
                ]
            )
        results = self.rounds(
            "throughput", blocks, plan.throughput_rounds, plan.throughput_budget_s, plan.throughput_max_s + 90
        )

        def rates(key: Any) -> list[float | None]:
            return [None if r is None or not r["calls"] else r["calls"] / r["wall_s"] for r in results.get(key, [])]

        def cpu(key: Any) -> list[float | None]:
            return [
                None if r is None or not r["calls"] else r["cpu_s"] * 1e6 / r["calls"] for r in results.get(key, [])
            ]

        rows = []
        for group, family, _mode, client, label, role in THROUGHPUT_SERIES:
            key = (group, family, client)
            floor = next(((g, f, c) for g, f, _m, c, _l, ro in THROUGHPUT_SERIES if g == group and ro == "floor"))
            official = next(
                ((g, f, c) for g, f, _m, c, _l, ro in THROUGHPUT_SERIES if g == group and ro == "official"), None
            )
            mine = rates(key)
            busy = [
                r["server"]["cpu_s"] / r["server"]["wall_s"]
                for r in results[key]
                if r is not None and r["server"]["wall_s"] > 0
            ]
            rows.append(
                {
                    "group": group,
                    "family": family,
                    "client": client,
                    "label": label,
                    "role": role,
                    "calls_per_s": report.median([x for x in mine if x is not None]),
                    "per_round": mine,
                    "server_busy": report.median(busy),
                    "client_cpu_us": report.median([c for c in cpu(key) if c is not None]),
                    "cpu_vs_floor": None if role == "floor" else report.round_ratio(cpu(key), cpu(floor)),
                    "vs_floor": None if role == "floor" else report.round_ratio(mine, rates(floor)),
                    "vs_official": (
                        None if role == "official" or official is None else report.round_ratio(mine, rates(official))
                    ),
                    "rounds": sum(x is not None for x in mine),
                }
            )
        return rows

    def decode(self) -> list[dict[str, Any]]:
        plan = self.plan
        blocks = []
        for group in dict.fromkeys(s[0] for s in DECODE_SERIES):
            blocks.append(
                [
                    (
                        (group, family, client, call),
                        {
                            "family": family,
                            "mode": mode,
                            "cmd": "latency",
                            "client": client,
                            "call": call,
                            "n": plan.decode_n,
                            "max_s": plan.decode_max_s,
                            "warmup": plan.decode_warmup,
                        },
                    )
                    for g, family, mode, client, call, _label, _role in DECODE_SERIES
                    if g == group
                ]
            )
        results = self.rounds("decode", blocks, plan.decode_rounds, plan.decode_budget_s, plan.decode_max_s + 120)
        rows = []
        for group, family, _mode, client, call, label, role in DECODE_SERIES:
            key = (group, family, client, call)
            floor = next((g, f, c, ca) for g, f, _m, c, ca, _l, ro in DECODE_SERIES if g == group and ro == "floor")
            official = next(
                (g, f, c, ca) for g, f, _m, c, ca, _l, ro in DECODE_SERIES if g == group and ro == "official"
            )
            row = _latency_row(
                group, call, family, client, label, role, results[key], results[floor], results[official]
            )
            row["median_ms"] = row.pop("median_us") / 1e3
            row["p99_ms"] = row.pop("p99_us") / 1e3
            row["server_ms"] = row.pop("server_us") / 1e3
            rows.append(row)
        return rows

    # -- lag (background) and cold start ---------------------------------------------------------

    def start_lag(self) -> float:
        cases = [list(c) for c in self.plan.lag_cases]
        longest = max(t for t, _ in self.plan.lag_cases)
        reps = max(r for _, r in self.plan.lag_cases)
        max_s = longest * 2.2 + 25 + reps * 8  # official polling overshoots; bounded anyway
        for family in ("ours", "official"):
            self.workers[(family, "sync")].send(
                {"cmd": "lag", "clients": ["grpc", "rest"], "cases": cases, "max_s": max_s}
            )
        self.say(f"lag cases {self.plan.lag_cases} running in the background")
        return max_s

    def finish_lag(self, max_s: float, started: float) -> list[dict[str, Any]]:
        assert self.server is not None
        records: list[dict[str, Any]] = []
        for family in ("ours", "official"):
            worker = self.workers[(family, "sync")]
            try:
                reply = worker.recv(max(5.0, max_s + 30 - (time.monotonic() - started)))
            except BenchError as exc:
                self.errors.append(f"lag {family}: {exc}")
                continue
            self.errors.extend(f"lag {family}: {e}" for e in reply.get("errors", []))
            for record in reply.get("results", []):
                record["family"] = family
                records.append(record)
        polls = self.server.control("GET", "/_bench/polls")
        rows = []
        for family, client, label in LAG_CLIENTS:
            for lag_t, _reps in self.plan.lag_cases:
                mine = [r for r in records if r["family"] == family and r["client"] == client and r["T"] == lag_t]
                lags = [r["lag_s"] * 1e3 for r in mine]
                counts = [polls.get(r["name"], {}).get("get", 0) for r in mine]
                rows.append(
                    {
                        "family": family,
                        "client": client,
                        "label": label,
                        "role": family,
                        "T": lag_t,
                        "reps": len(mine),
                        "lag_ms": lags,
                        "lag_median_ms": report.median(lags),
                        "lag_max_ms": max(lags) if lags else float("nan"),
                        "polls": counts,
                        "polls_median": report.median(counts),
                        "limit_ms": max(50.0, 0.05 * lag_t * 1e3),
                    }
                )
        return rows

    def cold(self) -> list[dict[str, Any]]:
        assert self.server is not None
        fill = {
            "grpc": self.server.grpc_target,
            "http": self.server.http_target,
            "name": self.server.fixtures["operation_name"],
        }
        variants = list(self.plan.cold_variants)
        runs: dict[str, list[dict[str, Any] | None]] = {v: [] for v in variants}
        reps = self.plan.cold_reps + (1 if self.plan.cold_warmup else 0)
        for rep in range(reps):
            self.say(f"cold start: repetition {rep + 1}/{reps}")
            for i in range(len(variants)):
                variant = variants[(i + rep) % len(variants)]
                _label, _role, body, call = COLD_VARIANTS[variant]
                code = _COLD_HEAD + body.format(**fill) + _COLD_TAIL.format(call=call.format(**fill))
                started = time.perf_counter()
                try:
                    done = subprocess.run(
                        [PYTHON, "-c", code],
                        capture_output=True,
                        timeout=90,
                        cwd=ROOT,
                        env=dict(os.environ, GRPC_VERBOSITY="ERROR"),
                        start_new_session=True,
                    )
                    wall = time.perf_counter() - started
                    if done.returncode != 0:
                        raise BenchError(done.stderr.decode(errors="replace").strip().splitlines()[-1:])
                    data = json.loads(done.stdout.decode().strip().splitlines()[-1])
                except (subprocess.TimeoutExpired, BenchError, ValueError, IndexError) as exc:
                    self.errors.append(f"cold {variant}: {exc}")
                    data = None
                else:
                    data["process_s"] = wall
                if rep or not self.plan.cold_warmup:  # the first repetition only warms caches
                    runs[variant].append(data)
        rows = []
        for variant in variants:
            label, role, _body, _call = COLD_VARIANTS[variant]
            ok = [r for r in runs[variant] if r is not None]

            def total(r: dict[str, Any] | None) -> float | None:
                return None if r is None else r["import"] + r["construct"]

            def rss(r: dict[str, Any] | None) -> float | None:
                return None if r is None else float(r["rss_kb"])

            other = _COLD_PAIRS.get(variant)
            rows.append(
                {
                    "variant": variant,
                    "label": label,
                    "role": role,
                    "reps": len(ok),
                    "import_ms": report.median([r["import"] * 1e3 for r in ok]),
                    "construct_ms": report.median([r["construct"] * 1e3 for r in ok]),
                    "import_construct_ms": report.median([(r["import"] + r["construct"]) * 1e3 for r in ok]),
                    "first_call_ms": report.median([r["first_call"] * 1e3 for r in ok]),
                    "rss_mb": report.median([r["rss_kb"] / 1024 for r in ok]),
                    "rss_first_call_mb": report.median([r["rss_call_kb"] / 1024 for r in ok]),
                    "process_ms": report.median([r["process_s"] * 1e3 for r in ok]),
                    "vs_official_time": (
                        report.round_ratio([total(r) for r in runs[variant]], [total(r) for r in runs[other]])
                        if other in runs
                        else None
                    ),
                    "vs_official_rss": (
                        report.round_ratio([rss(r) for r in runs[variant]], [rss(r) for r in runs[other]])
                        if other in runs
                        else None
                    ),
                }
            )
        return rows

    def profile(self) -> dict[str, Any]:
        worker = self.workers[("ours", "sync")]
        out = {}
        for client, call in (("grpc", "get"), ("rest", "submit")):
            self.say(f"profiling ours sync {client} {call}")
            try:
                out[f"{client} {call}"] = worker.request(
                    {"cmd": "profile", "client": client, "call": call, "n": self.plan.profile_n, "top": 35}, 300
                )
            except BenchError as exc:
                self.errors.append(f"profile {client} {call}: {exc}")
        return out


def _samples_us(reply: dict[str, Any] | None) -> list[float]:
    return [] if reply is None else [ns / 1e3 for ns in reply["ns"]]


def _round_medians(replies: list[dict[str, Any] | None] | None) -> list[float | None]:
    if replies is None:
        return []
    return [None if r is None or not r["ns"] else report.median(_samples_us(r)) for r in replies]


def _round_cpu(replies: list[dict[str, Any] | None] | None) -> list[float | None]:
    """Client CPU (µs, all threads of the worker process) per call, per round."""
    if replies is None:
        return []
    return [None if r is None or not r["ns"] else r["cpu_s"] * 1e6 / len(r["ns"]) for r in replies]


def _latency_row(
    group: str,
    call: str,
    family: str,
    client: str,
    label: str,
    role: str,
    replies: list[dict[str, Any] | None],
    floor: list[dict[str, Any] | None] | None,
    official: list[dict[str, Any] | None] | None,
) -> dict[str, Any]:
    samples = [x for r in replies for x in _samples_us(r)]
    server = [
        r["server"]["cpu_s"] * 1e6 / r["server"]["requests"]
        for r in replies
        if r is not None and r["server"]["requests"]
    ]
    mine = _round_medians(replies)
    cpu = _round_cpu(replies)
    return {
        "group": group,
        "call": call,
        "family": family,
        "client": client,
        "label": label,
        "role": role,
        "median_us": report.median(samples),
        "p99_us": report.p99(samples),
        "n": len(samples),
        "rounds": sum(m is not None for m in mine),
        "round_medians_us": mine,
        "server_us": report.median(server),
        "client_cpu_us": report.median([c for c in cpu if c is not None]),
        "cpu_vs_floor": None if role == "floor" or floor is None else report.round_ratio(cpu, _round_cpu(floor)),
        "vs_floor": None if role == "floor" or floor is None else report.round_ratio(mine, _round_medians(floor)),
        "vs_official": (
            None if role == "official" or official is None else report.round_ratio(mine, _round_medians(official))
        ),
    }


# -- targets, machine ----------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> list[report.Target]:
    nan = float("nan")

    def latency(group: str, call: str, role: str, key: str) -> float:
        row = next(
            (r for r in result["latency"] if r["group"] == group and r["call"] == call and r["role"] == role), None
        )
        value = None if row is None else row[key]
        return nan if value is None else float(value)

    def detail(group: str, call: str, other: str) -> str:
        mine, theirs = latency(group, call, "ours", "median_us"), latency(group, call, other, "median_us")
        cpu = latency(group, call, "ours", "cpu_vs_floor")
        text = f"{report.fmt(mine, 0)} vs {report.fmt(theirs, 0)} µs"
        return text + (f"; client CPU {report.fmt_ratio(cpu)} floor" if other == "floor" else "")

    out = []
    for call in LATENCY_CALLS:
        out.append(
            report.Target(
                f"sync gRPC {call} vs bare grpcio",
                latency("gRPC sync", call, "ours", "vs_floor"),
                1.10,
                "<=",
                detail=detail("gRPC sync", call, "floor"),
            )
        )
    for call in LATENCY_CALLS:
        out.append(
            report.Target(
                f"sync REST {call} vs bare urllib3",
                latency("REST sync", call, "ours", "vs_floor"),
                1.3,
                "<=",
                detail=detail("REST sync", call, "floor"),
            )
        )
        out.append(
            report.Target(
                f"sync REST {call} vs official REST",
                latency("REST sync", call, "ours", "vs_official"),
                0.4,
                "<=",
                detail=detail("REST sync", call, "official"),
            )
        )
    ours_tput = next((r for r in result["throughput"] if r["group"] == "gRPC asyncio" and r["role"] == "ours"), None)
    tput_detail = (
        ""
        if ours_tput is None
        else (
            f"{report.fmt(ours_tput['calls_per_s'], 0)} calls/s; client CPU/call "
            f"{report.fmt_ratio(ours_tput['cpu_vs_floor'])} floor; "
            f"server busy {report.fmt(ours_tput['server_busy'] * 100, 0)}%"
            + (" (server-bound: calls/s ratios compress toward 1)" if ours_tput["server_busy"] > 0.8 else "")
        )
    )
    out.append(
        report.Target(
            "asyncio throughput (64 in flight) vs bare grpc.aio",
            nan if ours_tput is None or ours_tput["vs_floor"] is None else ours_tput["vs_floor"],
            0.9,
            ">=",
            detail=tput_detail,
        )
    )
    out.append(
        report.Target(
            "asyncio throughput vs official async (ahead)",
            nan if ours_tput is None or ours_tput["vs_official"] is None else ours_tput["vs_official"],
            1.0,
            ">=",
        )
    )
    cold = next((r for r in result["cold"] if r["variant"] == "ours_grpc"), None)
    out.append(
        report.Target(
            "import + first client time vs official",
            nan if cold is None or cold["vs_official_time"] is None else cold["vs_official_time"],
            0.4,
            "<=",
            detail="" if cold is None else f"{report.fmt(cold['import_construct_ms'], 0)} ms (gRPC)",
        )
    )
    out.append(
        report.Target(
            "peak RSS after first client vs official",
            nan if cold is None or cold["vs_official_rss"] is None else cold["vs_official_rss"],
            0.6,
            "<=",
            detail="" if cold is None else f"{report.fmt(cold['rss_mb'], 1)} MB (gRPC)",
        )
    )
    for row in result["lag"]:
        if row["role"] == "ours":
            out.append(
                report.Target(
                    f"notice lag, {row['label']}, T={row['T']:g} s (worst of {row['reps']})",
                    row["lag_max_ms"],
                    row["limit_ms"],
                    "<=",
                    " ms",
                    f"median {report.fmt(row['lag_median_ms'], 0)} ms, {report.fmt(row['polls_median'], 0)} polls",
                )
            )
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in (
        "grpcio",
        "protobuf",
        "urllib3",
        "aiohttp",
        "requests",
        "google-cloud-vision",
        "google-api-core",
        "vision-grpc",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, floats rounded, tuples -> lists."""
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# -- main ----------------------------------------------------------------------------------------


PHASES = ("latency", "throughput", "decode", "cold", "lag")


def run(mode: str, *, progress: bool, profile: bool, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    plan = PLANS[mode]
    started = time.monotonic()
    result: dict[str, Any] = {
        "schema": 1,
        "mode": mode,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "latency": [],
        "throughput": [],
        "decode": [],
        "cold": [],
        "lag": [],
        "server": {},
        "targets": [],
        "errors": [],
        "phases": list(phases),
    }
    log_dir = Path(tempfile.mkdtemp(prefix="vision-bench-"))
    bench = Bench(plan, mode, log_dir, progress)
    try:
        bench.start()
        assert bench.server is not None
        result["server"] = {
            "grpc": bench.server.grpc_target,
            "http": bench.server.http_target,
            "sizes": bench.server.fixtures["sizes"],
        }
        if "latency" in phases:
            result["latency"] = bench.latency()
        if "throughput" in phases:
            result["throughput"] = bench.throughput()
        if "decode" in phases:
            result["decode"] = bench.decode()
        lag_started = time.monotonic()
        lag_max_s = bench.start_lag() if "lag" in phases else 0.0
        if "cold" in phases:
            result["cold"] = bench.cold()
        if "lag" in phases:
            bench.say("waiting for the lag cases")
            result["lag"] = bench.finish_lag(lag_max_s, lag_started)
        if profile:
            result["profile"] = bench.profile()
    except BenchError as exc:
        bench.errors.append(f"aborted: {exc}")
    finally:
        bench.close()
    result["errors"] = bench.errors
    result["machine"]["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    result["duration_s"] = time.monotonic() - started
    result["targets"] = [t.as_dict() for t in targets(result)]
    if bench.errors:
        result["logs"] = str(log_dir)  # kept for the post-mortem
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds and calls, no 30 s lag case (< 30 s)")
    size.add_argument("--smoke", action="store_true", help="a few calls per figure (< 15 s), for the tests")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--readme", action="store_true", help="rewrite the bench section of README.md")
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
    args = parser.parse_args(argv)
    phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
    if not phases or set(phases) - set(PHASES):
        parser.error(f"--only takes a comma-separated subset of {', '.join(PHASES)}")
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: children are closed

    signal.signal(signal.SIGTERM, terminate)
    try:
        result = run(mode, progress=not args.quiet, profile=args.profile, phases=phases)
    except KeyboardInterrupt:
        print("interrupted; server and workers stopped", file=sys.stderr)
        return 130
    text = report.render(_clean(result))
    print(text)
    if args.profile:
        for name, data in result.get("profile", {}).items():
            print(
                f"\n## cProfile: ours sync {name}, {data['n']} calls, {data['wall_s'] / data['n'] * 1e6:.0f} "
                "µs/call under the profiler\n\nself time by package/module (s):"
            )
            for key, seconds in list(data["by_package"].items())[:15]:
                print(f"  {seconds:8.3f}  {key}")
            print(data["text"])
    if args.json:
        Path(args.json).write_text(json.dumps(_clean(result), indent=1) + "\n", encoding="utf-8")
    if args.readme:
        readme = ROOT / "README.md"
        if report.update_readme(readme, text):
            print(f"README.md: bench section updated ({mode} mode)", file=sys.stderr)
        else:
            print(
                f"warning: README.md has no {report.README_START} ... {report.README_END} markers; not updated",
                file=sys.stderr,
            )
    if result["errors"]:
        print(f"\n{len(result['errors'])} error(s); child logs in {result['logs']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
