"""``transport="auto"`` against the single-port emulator: gRPC while HTTP/2 passes, REST for good once it is refused.

Each test starts its own ``Emulator(single_port=True)`` (gRPC and REST on one port, like Google's endpoints), with
HTTP/2 passed or refused by its front (``http2=False``: an HTTP/1.1 400 or a reset, like a proxy that strips it),
and runs the same body with the blocking and the asyncio client. Which transport served a call is read from the
``x-goog-api-client`` header the emulator recorded (``grpc/...`` or ``rest/...``) and from the front's counts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from tests._support import make_pdf
from vision_grpc import AsyncClient, Client, errors, types
from vision_grpc._core.policies import RetryPolicy
from vision_grpc.emulator.single_port import PREFACE, SinglePortFront, classify
from vision_grpc.testing import Emulator

MODES = ["sync", "async"]
PDF = "gs://bucket/auto/doc.pdf"
SWITCHED = "uses REST from now on"
RUNS = 20  # fallback decision time: runs per client kind


class Driver:
    """Makes sync or asyncio clients and runs calls on them, so that one test body serves both."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self._clients: list[Any] = []

    def client(self, **settings: Any) -> Any:
        if self.loop is None:
            client: Any = Client(**settings)
        else:

            async def make() -> AsyncClient:
                return AsyncClient(**settings)

            client = self.loop.run_until_complete(make())
        self._clients.append(client)
        return client

    def do(self, fn: Callable[[], Any]) -> Any:
        value = fn()
        if inspect.isawaitable(value):
            assert self.loop is not None
            return self.loop.run_until_complete(_awaited(value))
        return value

    def list_operations(self, client: Any) -> list[Any]:
        if self.loop is None:
            return list(client.list_operations())

        async def collect() -> list[Any]:
            return [op async for op in client.list_operations()]

        return self.loop.run_until_complete(collect())

    def close(self) -> None:
        for client in self._clients:
            self.do(client.close if self.loop is None else client.aclose)
        if self.loop is not None:
            self.loop.close()


async def _awaited(value: Any) -> Any:
    return await value


@pytest.fixture(params=MODES)
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    made = Driver(request.param)
    try:
        yield made
    finally:
        made.close()


def _single_port(**settings: Any) -> Emulator:
    emulator = Emulator(single_port=True, operation_seconds=0.2, **settings).start()
    emulator.put_object(PDF, make_pdf(3))
    return emulator


def _request(out: str) -> Any:
    return types.async_files_request(PDF, output_uri=out, batch_size=2)


def _transports(emulator: Emulator, method: str | None = None) -> list[str]:
    """Per recorded call (of ``method``), the transport its x-goog-api-client header names."""
    names = []
    for call in emulator.service.calls:
        if method is None or call.method == method:
            header = call.metadata.get("x-goog-api-client", "")
            names.append("grpc" if " grpc/" in header else "rest" if " rest/" in header else header)
    return names


def _switch_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("vision_grpc") and SWITCHED in r.getMessage()]


def test_stays_on_grpc_where_http2_passes(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vision_grpc")
    emulator = _single_port()
    try:
        client = driver.client(endpoint=emulator.endpoint, transport="auto")
        out = f"gs://bucket/auto/grpc-{driver.mode}/"
        op = driver.do(lambda: client.async_batch_annotate_files(_request(out)))
        response = driver.do(lambda: op.result(timeout=10))
        assert response.responses[0].output_config.gcs_destination.uri == out
        assert set(_transports(emulator)) == {"grpc"}
        assert "WaitOperation" in [call.method for call in emulator.service.calls]  # gRPC's, not polling
        counts = emulator.front.counts()
        assert counts["grpc"] >= 1 and counts["rest"] == 0 and counts["refused_http2"] == 0
        assert _switch_lines(caplog) == []
    finally:
        emulator.stop()


@pytest.mark.parametrize("refusal", ["400", "reset"])
def test_switches_to_rest_for_good_where_http2_is_refused(
    driver: Driver, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vision_grpc")
    emulator = _single_port(http2=False, http2_refusal=refusal)
    try:
        client = driver.client(endpoint=emulator.endpoint, transport="auto")
        out = f"gs://bucket/auto/refused-{refusal}-{driver.mode}/"
        # The first call is a submit: refused over gRPC at the preface, so sent again over REST, once.
        op = driver.do(lambda: client.async_batch_annotate_files(_request(out)))
        refused_after_first_call = emulator.front.counts()["refused_http2"]
        assert refused_after_first_call >= 1
        assert _transports(emulator, "AsyncBatchAnnotateFiles") == ["rest"]  # delivered once, over REST
        response = driver.do(lambda: op.result(timeout=10))
        assert response.responses[0].output_config.gcs_destination.uri == out
        assert emulator.list_objects(out) == [f"{out}output-1-to-2.json", f"{out}output-3-to-3.json"]
        driver.do(lambda: client.get_operation(op.name))
        assert driver.list_operations(client)
        # Later calls went straight to REST: no further HTTP/2 connection reached the front, and the
        # gRPC channel was closed (it does not keep reconnecting in the background).
        assert emulator.front.counts()["refused_http2"] == refused_after_first_call
        assert set(_transports(emulator)) == {"rest"}
        assert "WaitOperation" not in [call.method for call in emulator.service.calls]  # REST polls
        assert len(_switch_lines(caplog)) == 1
        assert emulator.endpoint in _switch_lines(caplog)[0]
    finally:
        emulator.stop()


def test_an_operation_started_over_grpc_resumes_over_rest(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vision_grpc")
    emulator = _single_port()
    try:
        client = driver.client(endpoint=emulator.endpoint, transport="auto")
        out = f"gs://bucket/auto/resume-{driver.mode}/"
        op = driver.do(lambda: client.async_batch_annotate_files(_request(out)))
        assert _transports(emulator) == ["grpc"]
        # A proxy that strips HTTP/2 goes in front of the service: the gRPC connection is dropped and the
        # next one refused; the operation's name is the same over REST.
        emulator.front.set_http2(False)
        response = driver.do(lambda: op.result(timeout=10))
        assert response.responses[0].output_config.gcs_destination.uri == out
        assert op.done
        transports = _transports(emulator)
        assert transports[0] == "grpc" and transports[-1] == "rest"
        assert _transports(emulator, "AsyncBatchAnnotateFiles") == ["grpc"]  # never sent again
        assert len(_switch_lines(caplog)) == 1
    finally:
        emulator.stop()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_port_is_a_connect_error_without_switch(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vision_grpc")
    endpoint = f"127.0.0.1:{_closed_port()}"
    client = driver.client(endpoint=endpoint, transport="auto", retry=RetryPolicy(connect_deadline=0.5))
    started = time.monotonic()
    with pytest.raises(errors.ConnectError, match="(?i)connection refused") as caught:
        driver.do(lambda: client.get_operation("operations/none", timeout=10))
    assert time.monotonic() - started < 5
    assert type(caught.value.__cause__).__module__.startswith("grpc")  # the gRPC attempt's error: REST not tried
    assert _switch_lines(caplog) == []


class _ResetEverything:
    """A port that accepts every connection and resets it at once: neither HTTP/2 nor HTTP/1.1 gets through."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            time.sleep(0.01)  # let the client send its first bytes: the reset then comes as an answer
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


def test_no_switch_when_rest_fails_as_well(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vision_grpc")
    server = _ResetEverything()
    try:
        once = RetryPolicy(max_attempts=1)  # one attempt per call: gRPC reset at the preface, then REST reset
        client = driver.client(endpoint=server.endpoint, transport="auto", retry=once)
        for _ in range(2):  # and the next call tries gRPC first again
            with pytest.raises(errors.Unavailable) as caught:
                driver.do(lambda: client.get_operation("operations/none", timeout=5))
            assert "reset" in str(caught.value).lower() or "lost" in str(caught.value).lower()
        assert _switch_lines(caplog) == []
    finally:
        server.stop()


def test_fallback_decision_time(capsys: pytest.CaptureFixture[str]) -> None:
    """The first call of an auto client on a port that refuses HTTP/2 (gRPC attempt, decision, REST call) against
    the first call of a plain REST client (connection and call), blocking and asyncio, interleaved."""
    emulator = _single_port(http2=False)
    timings: dict[str, list[float]] = {kind: [] for kind in ("sync auto", "sync rest", "async auto", "async rest")}

    def first_call(transport: Literal["auto", "rest"]) -> float:
        with Client(endpoint=emulator.endpoint, transport=transport) as client:
            started = time.perf_counter()
            list(client.list_operations())
            return time.perf_counter() - started

    async def first_call_async(transport: Literal["auto", "rest"]) -> float:
        async with AsyncClient(endpoint=emulator.endpoint, transport=transport) as client:
            started = time.perf_counter()
            _ = [op async for op in client.list_operations()]
            return time.perf_counter() - started

    try:
        first_call("rest")  # warm up imports and the servers
        first_call("auto")
        for _ in range(RUNS):
            for transport in ("auto", "rest"):  # interleaved, so that drift hits both alike
                timings[f"sync {transport}"].append(first_call(transport))
                timings[f"async {transport}"].append(asyncio.run(first_call_async(transport)))
    finally:
        emulator.stop()
    with capsys.disabled():
        print(f"\nfirst call, {RUNS} runs each (ms, min / median / max):")
        for kind, values in timings.items():
            low, mid, high = (1e3 * v for v in (min(values), statistics.median(values), max(values)))
            print(f"  {kind:10} {low:6.1f} / {mid:6.1f} / {high:6.1f}")
    for mode in ("sync", "async"):  # deciding costs milliseconds, never the connect deadline
        assert statistics.median(timings[f"{mode} auto"]) - statistics.median(timings[f"{mode} rest"]) < 0.5


# -- the single-port front itself -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_front_relays_large_messages_both_ways(transport: Literal["grpc", "rest"]) -> None:
    """Megabytes through the relay (more than its per-direction buffer), on one port for both transports."""
    emulator = _single_port()
    try:
        with Client(endpoint=emulator.endpoint, transport=transport) as client:
            request = types.images_request([b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024)] * 3)
            for _ in range(2):
                response = client.batch_annotate_images(request, timeout=30)
                assert len(response.responses) == 3
        assert _transports(emulator) == [transport, transport]
        assert emulator.front.counts()[transport] == 1  # one kept-alive connection for both calls
    finally:
        emulator.stop()


def _backends(emulator: Emulator) -> tuple[tuple[str, int], tuple[str, int]]:
    grpc_host, grpc_port = emulator.grpc_target.rsplit(":", 1)
    rest_host, rest_port = emulator.rest_url.removeprefix("http://").rsplit(":", 1)
    return (grpc_host, int(grpc_port)), (rest_host, int(rest_port))


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _closed_by_peer(sock: socket.socket, seconds: float = 5.0) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_front_caps_connections_and_closes_silent_and_idle_ones(emulator: Emulator) -> None:
    front = SinglePortFront(*_backends(emulator), max_connections=2, idle_timeout=1.0, sniff_timeout=1.0)
    front.start()
    host, port = front.endpoint.rsplit(":", 1)
    try:
        silent = socket.create_connection((host, int(port)), timeout=5)  # never says anything
        rest = socket.create_connection((host, int(port)), timeout=5)
        rest.sendall(b"GET /v1/operations HTTP/1.1\r\nHost: x\r\n\r\n")
        assert rest.recv(4096).startswith(b"HTTP/1.1 200 ")
        over_cap = socket.create_connection((host, int(port)), timeout=5)
        assert _closed_by_peer(over_cap)  # a third at once is closed as it is accepted
        assert _wait_until(lambda: front.counts()["rejected"] == 1)
        assert _closed_by_peer(silent)  # nothing to decide on within sniff_timeout
        assert _closed_by_peer(rest)  # relayed nothing for idle_timeout
        assert _wait_until(lambda: front.counts()["timed_out"] == 2)
        for sock in (silent, rest, over_cap):
            sock.close()
    finally:
        front.stop()
    with pytest.raises(ConnectionRefusedError):  # stop() closed the port
        socket.create_connection((host, int(port)), timeout=5).close()


def test_the_front_stops_with_connections_open(emulator: Emulator) -> None:
    front = SinglePortFront(*_backends(emulator))
    front.start()
    with Client(endpoint=front.endpoint, transport="grpc") as client:
        assert list(client.list_operations()) is not None  # a connection through the front
        started = time.monotonic()
        front.stop()
        front.stop()  # idempotent
        assert time.monotonic() - started < 2
        with pytest.raises(errors.Unavailable):
            client.get_operation("operations/none", timeout=1)


def test_the_front_tells_the_preface_from_anything_else() -> None:
    assert classify(PREFACE + b"\x00\x00\x12\x04") == "grpc"
    assert classify(PREFACE[:10]) is None  # could still become the preface
    assert classify(b"POST /v1/files:asyncBatchAnnotate HTTP/1.1\r\n") == "rest"
    assert classify(b"PRI * HTTP/1.1\r\n") == "rest"
    assert classify(b"G") == "rest"


def test_the_emulator_command_serves_one_port_and_can_refuse_http2(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "vision_grpc.emulator", "--single-port", "--no-http2", "--storage", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        banner = lines.get(timeout=30)
        match = re.match(r"^vision-grpc emulator: endpoint=(127\.0\.0\.1:\d+) grpc=\S+ rest=\S+ storage=", banner)
        assert match, banner
        with Client(endpoint=match.group(1), transport="auto") as client:
            assert list(client.list_operations()) == []
            assert client._transport.active == "rest"  # type: ignore[attr-defined]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
