"""The call surface at its edges, over {grpc, rest} x {sync, asyncio}: fail fast on an endpoint that
cannot be reached, one time budget per call, the wrong request refused before the network, every
concurrent waiter falling back to polling.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live.harness import PDF_URI, Harness
from vision_grpc import RetryPolicy, types
from vision_grpc.errors import ConnectError, Unavailable, ValidationError
from vision_grpc.testing import Emulator

# Tests shorten the connect deadline to keep the suite quick; one test per transport keeps the default (3 s).
# The slack covers a loaded 2-core CI machine.
QUICK = RetryPolicy(connect_deadline=0.5)
SLACK = 2.0


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that never completes a connection: listening with a full backlog, never accepting."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):  # fill the accept queue: later SYNs are dropped and connects hang
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def _timed(harness: Harness, client: Any, call: Any) -> tuple[float, BaseException]:
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        harness.do(call, client)
    return time.monotonic() - started, caught.value


def test_a_refused_endpoint_fails_fast_with_a_connect_error(harness: Harness, closed_port: int) -> None:
    endpoint = f"127.0.0.1:{closed_port}"
    client = harness.new_client(endpoint=endpoint, retry=QUICK)
    for call in (lambda c: c.get_operation("operations/x"), lambda c: c.async_batch_annotate_files(_files_request())):
        took, error = _timed(harness, client, call)
        assert isinstance(error, ConnectError), repr(error)
        assert isinstance(error, Unavailable)
        assert endpoint in str(error)
        assert took < QUICK.connect_deadline + SLACK


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_by_default_a_dead_endpoint_fails_within_seconds(transport: str, closed_port: int) -> None:
    from vision_grpc import Client

    endpoint = f"127.0.0.1:{closed_port}"
    with Client(endpoint=endpoint, transport=transport) as client:  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(ConnectError, match=endpoint):
            client.get_operation("operations/x")
        assert time.monotonic() - started < RetryPolicy().connect_deadline + SLACK


def test_an_endpoint_that_never_answers_fails_fast(harness: Harness, silent_port: int) -> None:
    endpoint = f"127.0.0.1:{silent_port}"
    client = harness.new_client(endpoint=endpoint, retry=QUICK)
    took, error = _timed(harness, client, lambda c: c.get_operation("operations/x"))
    assert isinstance(error, ConnectError), repr(error)
    assert endpoint in str(error)
    assert took < 2 * QUICK.connect_deadline + SLACK  # one connect attempt may take the whole connect deadline


def test_a_tls_handshake_failure_is_a_connect_error(harness: Harness) -> None:
    client = harness.new_client(plaintext=False, anonymous=True, retry=QUICK)  # TLS against the plaintext emulator
    took, error = _timed(harness, client, lambda c: c.get_operation("operations/x"))
    assert isinstance(error, ConnectError), repr(error)
    assert took < QUICK.connect_deadline + SLACK


def test_timeout_bounds_the_whole_call_with_its_retries(harness: Harness, emulator: Emulator) -> None:
    emulator.service.faults.fail_next("GetOperation", "UNAVAILABLE", times=10_000)
    took, error = _timed(harness, harness.client, lambda c: c.get_operation("operations/x", timeout=1.0))
    assert isinstance(error, Unavailable) and not isinstance(error, ConnectError)
    assert took < 1.0 + SLACK
    assert _calls(emulator, "GetOperation") > 1  # it was retried within the budget


def test_the_client_default_timeout_is_the_whole_call_budget(harness: Harness, emulator: Emulator) -> None:
    emulator.service.faults.fail_next("GetOperation", "UNAVAILABLE", times=10_000)
    client = harness.new_client(timeout=1.0)
    took, error = _timed(harness, client, lambda c: c.get_operation("operations/x"))
    assert isinstance(error, Unavailable)
    assert took < 1.0 + SLACK


WRONG = [
    pytest.param("async_batch_annotate_files", lambda: types.images_request(["gs://b/x.png"]), id="files<-images"),
    pytest.param("batch_annotate_images", lambda: _files_request(), id="images<-async-files"),
    pytest.param("async_batch_annotate_images", lambda: types.files_request(b"%PDF"), id="async-images<-files"),
    pytest.param("batch_annotate_files", lambda: types.v1p4beta1.AsyncBatchAnnotateImagesRequest(), id="beta"),
]


@pytest.mark.parametrize(("method", "make"), WRONG)
def test_a_request_of_another_method_never_reaches_the_network(
    harness: Harness, emulator: Emulator, method: str, make: Any
) -> None:
    with pytest.raises(TypeError, match=f"{method}\\(\\) takes a v1\\.") as caught:
        harness.do(lambda c: getattr(c, method)(make()))
    assert "got " in str(caught.value)
    assert emulator.service.calls == []


def test_async_images_refuse_an_https_uri_before_the_network(harness: Harness, emulator: Emulator) -> None:
    request = types.async_images_request(["https://example.com/a.png"], output_uri="gs://bucket/out/")
    with pytest.raises(ValidationError) as caught:
        harness.do(lambda c: c.async_batch_annotate_images(request))
    assert caught.value.field == "requests[0].image.source.image_uri"
    assert emulator.service.calls == []


def test_64_concurrent_waiters_all_fall_back_without_wait_operation(harness: Harness, emulator: Emulator) -> None:
    emulator.service.faults.fail_next("WaitOperation", "UNIMPLEMENTED", times=10_000)
    client = harness.new_client()  # fresh: it has not learnt yet that WaitOperation is missing
    operations = [harness.do(lambda c, k=k: c.async_batch_annotate_files(_files_request(k)), client) for k in range(64)]
    if harness.mode == "async":

        async def wait_all() -> list[Any]:
            return await asyncio.gather(*(op.wait(timeout=30) for op in operations), return_exceptions=True)

        outcomes = harness.do(lambda _: wait_all(), client)
    else:
        outcomes = [None] * len(operations)

        def wait(k: int) -> None:
            try:
                outcomes[k] = operations[k].wait(timeout=30)
            except Exception as error:  # collected and asserted below
                outcomes[k] = error

        threads = [threading.Thread(target=wait, args=(k,)) for k in range(len(operations))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    failures = [o for o in outcomes if isinstance(o, BaseException) or o is None]
    assert failures == []
    assert all(op.done for op in operations)


def _files_request(k: int = 0) -> Any:
    return types.async_files_request(PDF_URI, output_uri=f"gs://bucket/surface/{k}/")


def _calls(emulator: Emulator, method: str) -> int:
    return sum(1 for call in emulator.service.calls if call.method == method)
