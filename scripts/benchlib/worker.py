"""A benchmark worker: one client family in its own process, driven over a pipe by ``bench.py``.

Run as ``python -m benchlib.worker FAMILY RUNTIME`` (from ``scripts/``) with FAMILY ``floor`` (bare
grpcio / urllib3 / requests / aiohttp with pre-serialized requests), ``ours`` (vision_grpc) or
``official`` (google-cloud-vision), and RUNTIME ``sync`` or ``async`` (see ``series.WorkerId``
for why each gets its own process).

It reads one command per line on stdin (``protocol``) and writes one JSON reply per line on
stdout; anything a library prints goes to stderr. Every loop is bounded by a count and a time
limit; the worker exits on ``quit`` or when its stdin closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict
from typing import Any

from .protocol import Batch, Command, Lag, Latency, Polling, Profile, Setup, Throughput, from_message

GET_PATH = "/google.longrunning.Operations/GetOperation"
SUBMIT_PATH = "/google.cloud.vision.v1.ImageAnnotator/AsyncBatchAnnotateFiles"
ANNOTATE_PATH = "/google.cloud.vision.v1.ImageAnnotator/BatchAnnotateImages"
SUBMIT_URL = "/v1/files:asyncBatchAnnotate"
ANNOTATE_URL = "/v1/images:annotate"
JSON_HEADERS = {"content-type": "application/json"}
_MAX_MESSAGE = [("grpc.max_receive_message_length", 256 << 20)]

SyncCall = Callable[[], Any]
AsyncCall = Callable[[], Awaitable[Any]]


class Context:
    """Targets and fixtures from ``Setup``, the request bytes decoded."""

    def __init__(self, setup: Setup) -> None:
        self.grpc = setup.grpc
        self.http = setup.http
        fixtures = setup.fixtures
        self.operation_name: str = fixtures["operation_name"]
        self.raw: dict[str, bytes] = {
            k: base64.b64decode(v) for k, v in fixtures.items() if k.endswith("_pb") or k.endswith("_json")
        }

    @property
    def get_url(self) -> str:
        return f"/v1/{self.operation_name}"


def _text_length(response: Any) -> int:
    """Touch the decoded text, so that every client really materializes the answer."""
    return len(response.responses[0].full_text_annotation.text)


# -- request messages (only in the ours / floor processes, never with the official schema) --------


def _our_requests(lag: float | None = None) -> tuple[Any, Any]:
    from vision_grpc import types

    output = "gs://bench-out/ocr/doc/" if lag is None else f"gs://bench-out/lag/{lag}/"
    submit = types.async_files_request(
        "gs://bench-in/doc.pdf", output_uri=output, features=["DOCUMENT_TEXT_DETECTION"], batch_size=20
    )
    annotate = types.images_request(["gs://bench-in/fulltext.png"], features=["DOCUMENT_TEXT_DETECTION"])
    return submit, annotate


def _official_requests(lag: float | None = None) -> tuple[Any, Any]:
    from google.cloud import vision_v1

    output = "gs://bench-out/ocr/doc/" if lag is None else f"gs://bench-out/lag/{lag}/"
    submit = vision_v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            vision_v1.AsyncAnnotateFileRequest(
                input_config=vision_v1.InputConfig(
                    gcs_source=vision_v1.GcsSource(uri="gs://bench-in/doc.pdf"), mime_type="application/pdf"
                ),
                features=[vision_v1.Feature(type_=vision_v1.Feature.Type.DOCUMENT_TEXT_DETECTION)],
                output_config=vision_v1.OutputConfig(
                    gcs_destination=vision_v1.GcsDestination(uri=output), batch_size=20
                ),
            )
        ]
    )
    annotate = vision_v1.BatchAnnotateImagesRequest(
        requests=[
            vision_v1.AnnotateImageRequest(
                image=vision_v1.Image(source=vision_v1.ImageSource(image_uri="gs://bench-in/fulltext.png")),
                features=[vision_v1.Feature(type_=vision_v1.Feature.Type.DOCUMENT_TEXT_DETECTION)],
            )
        ]
    )
    return submit, annotate


# -- sync clients: name -> {call: zero-argument function} -----------------------------------------


def floor_sync(ctx: Context, name: str) -> dict[str, SyncCall]:
    raw = ctx.raw
    from google.protobuf import json_format

    from vision_grpc._gen.v1.image_annotator_pb2 import BatchAnnotateImagesResponse  # only for decode_parse

    if name == "grpc":
        import grpc

        channel = grpc.insecure_channel(ctx.grpc, options=_MAX_MESSAGE)
        submit: Any = channel.unary_unary(SUBMIT_PATH, request_serializer=None, response_deserializer=None)
        get: Any = channel.unary_unary(GET_PATH, request_serializer=None, response_deserializer=None)
        annotate: Any = channel.unary_unary(ANNOTATE_PATH, request_serializer=None, response_deserializer=None)

        def decode_parse() -> Any:
            return _text_length(BatchAnnotateImagesResponse.FromString(annotate(raw["fulltext_pb"])))

        return {
            "submit": lambda: submit(raw["submit_pb"]),
            "get": lambda: get(raw["get_pb"]),
            "decode": lambda: annotate(raw["fulltext_pb"]),
            "decode_parse": decode_parse,
        }
    if name == "urllib3":
        import urllib3

        host, port = ctx.http.rsplit(":", 1)
        pool = urllib3.HTTPConnectionPool(host, int(port), maxsize=1, retries=False)

        def post(url: str, body: bytes) -> bytes:
            data: bytes = pool.urlopen("POST", url, body=body, headers=JSON_HEADERS).data
            return data

        def rest_parse() -> Any:  # the leanest stock decode: json.loads, then json_format.ParseDict
            data = json.loads(post(ANNOTATE_URL, raw["fulltext_json"]))
            message = BatchAnnotateImagesResponse()
            return _text_length(json_format.ParseDict(data, message, ignore_unknown_fields=True))

        return {
            "submit": lambda: post(SUBMIT_URL, raw["submit_json"]),
            "get": lambda: pool.urlopen("GET", ctx.get_url).data,
            "decode": lambda: post(ANNOTATE_URL, raw["fulltext_json"]),
            "decode_parse": rest_parse,
        }
    if name == "requests":
        import requests

        session = requests.Session()
        origin = f"http://{ctx.http}"
        return {
            "submit": lambda: session.post(origin + SUBMIT_URL, data=raw["submit_json"], headers=JSON_HEADERS).content,
            "get": lambda: session.get(origin + ctx.get_url).content,
            "decode": lambda: (
                session.post(origin + ANNOTATE_URL, data=raw["fulltext_json"], headers=JSON_HEADERS).content
            ),
        }
    raise KeyError(name)


def ours_sync(ctx: Context, name: str) -> dict[str, SyncCall]:
    from vision_grpc import Client

    client = Client(endpoint=ctx.grpc) if name == "grpc" else Client(endpoint=ctx.http, transport="rest")
    submit, annotate = _our_requests()
    op_name = ctx.operation_name
    return {
        "submit": lambda: client.async_batch_annotate_files(submit),
        "get": lambda: client.get_operation(op_name),
        "decode": lambda: _text_length(client.batch_annotate_images(annotate)),
    }


def _official_client(ctx: Context, name: str) -> Any:
    from google.cloud import vision_v1

    if name == "grpc":
        import grpc
        from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport

        transport = ImageAnnotatorGrpcTransport(channel=grpc.insecure_channel(ctx.grpc, options=_MAX_MESSAGE))
        return vision_v1.ImageAnnotatorClient(transport=transport)
    if name == "rest":
        from google.auth.credentials import AnonymousCredentials

        return vision_v1.ImageAnnotatorClient(
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            transport="rest",
            client_options={"api_endpoint": f"http://{ctx.http}"},
        )
    raise KeyError(name)


def official_sync(ctx: Context, name: str) -> dict[str, SyncCall]:
    client = _official_client(ctx, name)
    submit, annotate = _official_requests()
    op_name = ctx.operation_name
    return {
        "submit": lambda: client.async_batch_annotate_files(request=submit),
        "get": lambda: client.get_operation(request={"name": op_name}),
        "decode": lambda: _text_length(client.batch_annotate_images(request=annotate)),
    }


# -- async clients (created inside the worker's one event loop) ----------------------------------


async def floor_async(ctx: Context, name: str) -> dict[str, AsyncCall]:
    raw = ctx.raw
    if name == "grpc_aio":
        import grpc.aio

        channel = grpc.aio.insecure_channel(ctx.grpc, options=_MAX_MESSAGE)
        submit: Any = channel.unary_unary(SUBMIT_PATH, request_serializer=None, response_deserializer=None)
        get: Any = channel.unary_unary(GET_PATH, request_serializer=None, response_deserializer=None)
        annotate: Any = channel.unary_unary(ANNOTATE_PATH, request_serializer=None, response_deserializer=None)
        return {
            "submit": lambda: submit(raw["submit_pb"]),
            "get": lambda: get(raw["get_pb"]),
            "decode": lambda: annotate(raw["fulltext_pb"]),
        }
    if name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(f"http://{ctx.http}", connector=aiohttp.TCPConnector(limit=100))

        async def request(method: str, url: str, body: bytes | None = None) -> bytes:
            async with session.request(method, url, data=body, headers=JSON_HEADERS if body else None) as response:
                data: bytes = await response.read()
                return data

        return {
            "submit": lambda: request("POST", SUBMIT_URL, raw["submit_json"]),
            "get": lambda: request("GET", ctx.get_url),
            "decode": lambda: request("POST", ANNOTATE_URL, raw["fulltext_json"]),
        }
    raise KeyError(name)


async def ours_async(ctx: Context, name: str) -> dict[str, AsyncCall]:
    from vision_grpc import AsyncClient

    client = AsyncClient(endpoint=ctx.grpc) if name == "grpc" else AsyncClient(endpoint=ctx.http, transport="rest")
    submit, annotate = _our_requests()
    op_name = ctx.operation_name

    async def decode() -> int:
        return _text_length(await client.batch_annotate_images(annotate))

    return {
        "submit": lambda: client.async_batch_annotate_files(submit),
        "get": lambda: client.get_operation(op_name),
        "decode": decode,
    }


async def official_async(ctx: Context, name: str) -> dict[str, AsyncCall]:
    if name != "grpc":
        raise KeyError(f"{name}: google-cloud-vision has no asyncio REST transport")
    import grpc.aio
    from google.cloud import vision_v1
    from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcAsyncIOTransport

    channel = grpc.aio.insecure_channel(ctx.grpc, options=_MAX_MESSAGE)
    client = vision_v1.ImageAnnotatorAsyncClient(transport=ImageAnnotatorGrpcAsyncIOTransport(channel=channel))
    submit, annotate = _official_requests()
    op_name = ctx.operation_name

    async def decode() -> int:
        return _text_length(await client.batch_annotate_images(request=annotate))

    return {
        "submit": lambda: client.async_batch_annotate_files(request=submit),
        "get": lambda: client.get_operation(request={"name": op_name}),
        "decode": decode,
    }


SYNC_FACTORIES = {"floor": floor_sync, "ours": ours_sync, "official": official_sync}
ASYNC_FACTORIES = {"floor": floor_async, "ours": ours_async, "official": official_async}


# -- the worker ------------------------------------------------------------------------------------


class Worker:
    """Creates the family's clients on first use (in its one event loop if asyncio) and runs commands."""

    def __init__(self, family: str, runtime: str) -> None:
        self.family = family
        self.loop = asyncio.new_event_loop() if runtime == "async" else None
        self.ctx: Context | None = None
        self.clients: dict[str, dict[str, Any]] = {}  # client -> call -> function
        self.warm: set[tuple[str, str]] = set()

    def handle(self, command: Command) -> dict[str, Any]:
        if isinstance(command, Setup):
            self.ctx = Context(command)
            return {"pid": os.getpid()}
        if isinstance(command, Latency):
            return asdict(self.latency(command))
        if isinstance(command, Throughput):
            return asdict(self.throughput(command))
        if isinstance(command, Lag):
            return self.lag(command)
        if isinstance(command, Polling):
            assert self.ctx is not None and self.family == "ours", "polling: ours, after setup"
            if self.loop is not None:
                return self.loop.run_until_complete(_async_polling(self.ctx, command))
            return _sync_polling(self.ctx, command)
        return self.profile(command)

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()

    # -- clients -----------------------------------------------------------------------------

    def _function(self, client: str, call: str, warmup: int) -> Any:
        if client not in self.clients:
            assert self.ctx is not None, "setup first"
            if self.loop is not None:
                self.clients[client] = self.loop.run_until_complete(ASYNC_FACTORIES[self.family](self.ctx, client))
            else:
                self.clients[client] = SYNC_FACTORIES[self.family](self.ctx, client)
        function = self.clients[client][call]
        if (client, call) not in self.warm:  # the first calls open connections and fill caches
            for _ in range(warmup):
                self._run_once(function)
            self.warm.add((client, call))
        return function

    def _run_once(self, function: Any) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(function())
        else:
            function()

    # -- commands ----------------------------------------------------------------------------

    def latency(self, command: Latency) -> Batch:
        function = self._function(command.client, command.call, command.warmup)
        cpu, wall = time.process_time(), time.perf_counter()
        if self.loop is not None:
            samples = self.loop.run_until_complete(_async_latency(function, command.n, command.max_s))
        else:
            samples = _sync_latency(function, command.n, command.max_s)
        return Batch(len(samples), time.perf_counter() - wall, time.process_time() - cpu, samples)

    def throughput(self, command: Throughput) -> Batch:
        assert self.loop is not None, "throughput needs an async worker"
        function = self._function(command.client, command.call, command.warmup)
        cpu = time.process_time()
        calls, wall = self.loop.run_until_complete(
            _throughput(function, command.total, command.concurrency, command.max_s)
        )
        return Batch(calls, wall, time.process_time() - cpu)

    def lag(self, command: Lag) -> dict[str, Any]:
        assert self.ctx is not None and self.loop is None
        records: list[dict[str, Any]] = []
        errors: list[str] = []
        threads = [
            threading.Thread(target=self._lag_thread, args=(client, float(t), int(reps), records, errors), daemon=True)
            for client in command.clients
            for t, reps in command.cases
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + command.max_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            errors.append("some lag cases did not finish in time")
        return {"records": records, "errors": errors}

    def _lag_thread(self, client: str, lag: float, reps: int, records: list[dict[str, Any]], errors: list[str]) -> None:
        assert self.ctx is not None
        try:
            if self.family == "ours":
                from vision_grpc import Client

                ours = (
                    Client(endpoint=self.ctx.grpc)
                    if client == "grpc"
                    else Client(endpoint=self.ctx.http, transport="rest")
                )
                submit = _our_requests(lag)[0]
                for _ in range(reps):
                    operation = ours.async_batch_annotate_files(submit)
                    operation.result(timeout=lag + 120)
                    records.append(_lag_record(client, lag, operation.name, time.time_ns()))
            else:
                official = _official_client(self.ctx, client)
                request = _official_requests(lag)[0]
                for _ in range(reps):
                    future = official.async_batch_annotate_files(request=request)
                    future.result(timeout=lag + 120)
                    records.append(_lag_record(client, lag, future.operation.name, time.time_ns()))
        except Exception as exc:  # reported, not raised: the other cases go on
            errors.append(f"{client} T={lag}: {type(exc).__name__}: {exc}")

    def profile(self, command: Profile) -> dict[str, Any]:
        function = self._function(command.client, command.call, warmup=5)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(command.n):
            self._run_once(function)
        profiler.disable()
        wall = time.perf_counter() - start
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(command.top)
        stats.sort_stats("cumulative").print_stats(command.top)
        return {"text": text.getvalue(), "by_package": _by_package(stats), "wall_s": wall, "n": command.n}


def _lag_record(client: str, lag: float, name: str, returned_ns: int) -> dict[str, Any]:
    done_at = int(name.split("lag-", 1)[1].split("-")[0])  # the server puts it in the name
    return {
        "client": client,
        "T": lag,
        "name": name,
        "done_at_ns": done_at,
        "returned_ns": returned_ns,
        "lag_s": (returned_ns - done_at) / 1e9,
    }


@contextlib.contextmanager
def _poll_starts() -> Iterator[list[float]]:
    """The times (``time.time()``) at which the client's planner let a poll start, while inside.

    Instrumentation: wraps ``PollPlanner.turn``, which spends a token when it answers POLL. The
    server sees each poll a little later (the request on its way, a connection opening).
    """
    from vision_grpc._flows import planner

    starts: list[float] = []
    turn = planner.PollPlanner.turn

    def recording(self: Any, ticket: Any, now: float) -> Any:
        answer = turn(self, ticket, now)
        if answer is planner.POLL:
            starts.append(time.time())
        return answer

    planner.PollPlanner.turn = recording  # type: ignore[method-assign]
    try:
        yield starts
    finally:
        planner.PollPlanner.turn = turn  # type: ignore[method-assign]


def _poll_client_settings(ctx: Context, command: Polling) -> dict[str, Any]:
    from vision_grpc import PollPolicy

    return {
        "endpoint": ctx.http if command.client == "rest" else ctx.grpc,
        "transport": command.client,
        "poll": PollPolicy(max_polls_per_second=command.budget, burst=command.burst),
    }


def _sync_polling(ctx: Context, command: Polling) -> dict[str, Any]:
    """Submit, then a thread per operation waits for it; the process's CPU time while they wait."""
    from vision_grpc import Client

    records: list[dict[str, Any]] = []
    errors: list[str] = []
    with Client(**_poll_client_settings(ctx, command)) as client, _poll_starts() as starts:
        submit = _our_requests(command.done_after_s)[0]
        operations = [client.async_batch_annotate_files(submit) for _ in range(command.ops)]

        def wait(operation: Any) -> None:
            try:
                operation.result(timeout=command.max_s)
                records.append(_lag_record(command.client, command.done_after_s, operation.name, time.time_ns()))
            except Exception as exc:  # reported, not raised
                errors.append(f"{operation.name}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=wait, args=(operation,), daemon=True) for operation in operations]
        cpu, wall = time.process_time(), time.perf_counter()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + command.max_s + 5
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if any(thread.is_alive() for thread in threads):
        errors.append("some waits did not finish in time")
    return {"records": records, "errors": errors[:5], "cpu_s": cpu, "wall_s": wall, "starts": starts}


async def _async_polling(ctx: Context, command: Polling) -> dict[str, Any]:
    """Submit, then a task per operation waits for it, beside a 10 ms ticker that measures the loop's lag."""
    from vision_grpc import AsyncClient

    records: list[dict[str, Any]] = []
    errors: list[str] = []
    late_ms: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            late_ms.append((time.perf_counter() - start - 0.01) * 1e3)

    async with AsyncClient(**_poll_client_settings(ctx, command)) as client:
        submit = _our_requests(command.done_after_s)[0]
        operations = [await client.async_batch_annotate_files(submit) for _ in range(command.ops)]

        async def wait(operation: Any) -> None:
            try:
                await operation.result(timeout=command.max_s)
                records.append(_lag_record(command.client, command.done_after_s, operation.name, time.time_ns()))
            except Exception as exc:  # reported, not raised
                errors.append(f"{operation.name}: {type(exc).__name__}: {exc}")

        cpu, wall = time.process_time(), time.perf_counter()
        tick = asyncio.ensure_future(ticker())
        with _poll_starts() as starts:
            try:
                await asyncio.wait_for(asyncio.gather(*(wait(op) for op in operations)), command.max_s + 5)
            except asyncio.TimeoutError:
                errors.append("some waits did not finish in time")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stop.set()
        await tick
    late_ms.sort()
    loop_lag = [late_ms[len(late_ms) // 2], late_ms[int(len(late_ms) * 0.99)], late_ms[-1]] if late_ms else []
    return {
        "records": records,
        "errors": errors[:5],
        "cpu_s": cpu,
        "wall_s": wall,
        "loop_lag_ms": loop_lag,
        "starts": starts,
    }


def _by_package(stats: pstats.Stats) -> dict[str, float]:
    """Self time (seconds) per top-level package / our module, from a cProfile run."""
    buckets: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _func), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        if "vision_grpc" in filename:
            key = "vision_grpc/" + filename.split("vision_grpc/", 1)[1]
        elif "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith("~") or filename.startswith("<"):
            key = "builtins/C"
        else:
            key = "stdlib/" + os.path.basename(filename)
        buckets[key] = buckets.get(key, 0.0) + tottime
    return dict(sorted(buckets.items(), key=lambda kv: -kv[1]))


def _sync_latency(function: SyncCall, n: int, max_s: float) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(max_s * 1e9)
    for _ in range(n):
        start = clock()
        function()
        end = clock()
        samples.append(end - start)
        if end > deadline:
            break
    return samples


async def _async_latency(function: AsyncCall, n: int, max_s: float) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(max_s * 1e9)
    for _ in range(n):
        start = clock()
        await function()
        end = clock()
        samples.append(end - start)
        if end > deadline:
            break
    return samples


async def _throughput(function: AsyncCall, total: int, concurrency: int, max_s: float) -> tuple[int, float]:
    remaining = total
    done = 0
    start = time.perf_counter()
    deadline = start + max_s

    async def lane() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            await function()
            done += 1

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return done, time.perf_counter() - start


def main() -> None:
    family, runtime = sys.argv[1], sys.argv[2]
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to stderr, never into the replies
    worker = Worker(family, runtime)
    replies.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        message = json.loads(line)
        if message["cmd"] == "quit":
            break
        try:
            reply = {"ok": True, **worker.handle(from_message(message))}
        except Exception as exc:  # the orchestrator decides; the worker keeps serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
    worker.close()
    replies.close()


if __name__ == "__main__":
    main()
