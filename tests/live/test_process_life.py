"""Living inside a backend process: clients across fork, event loops and threads, and what they log.

Each test checks that answers really belong to their calls (an operation fetched by name comes back
with that name), so crossed responses on a shared connection would fail it, not only hangs.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live.harness import PDF_URI, TRANSPORTS
from vision_grpc import AsyncClient, Client, types
from vision_grpc.errors import ClientClosedError
from vision_grpc.testing import Emulator

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
ROUNDS = 150  # get_operation calls per process in the fork tests: enough to cross on a shared socket


def _endpoint(emulator: Emulator, transport: str) -> str:
    if transport == "grpc":
        return emulator.grpc_target
    assert emulator.rest_url is not None
    return emulator.rest_url.removeprefix("http://")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(emulator: Emulator, transport: str) -> Iterator[Client]:
    with Client(endpoint=_endpoint(emulator, transport), transport=transport) as made:  # type: ignore[arg-type]
        yield made


def _submit(client: Client, tag: str) -> str:
    request = types.async_files_request(PDF_URI, output_uri=f"gs://bucket/life/{tag}/")
    return client.async_batch_annotate_files(request).name


def _check_own(client: Client, names: list[str], rounds: int = ROUNDS) -> int:
    """Fetch each of ``names`` in turn; count answers that carry another operation's name."""
    crossed = 0
    for k in range(rounds):
        name = names[k % len(names)]
        if client.get_operation(name).name != name:
            crossed += 1
    return crossed


# -- fork ---------------------------------------------------------------------------------------


def test_a_client_made_before_fork_works_in_parent_and_child_at_once(client: Client) -> None:
    parent_names = [_submit(client, f"parent-{k}") for k in range(3)]  # the parent's connection is warm
    child_names = [_submit(client, f"child-{k}") for k in range(3)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: same client object, its own connection; reports crossed answers
        code = 1
        try:
            crossed = _check_own(client, child_names)
            submitted = _submit(client, "from-child")
            os.write(write, f"{crossed} {submitted}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    crossed_in_parent = _check_own(client, parent_names)  # concurrently with the child
    _, status = os.waitpid(pid, 0)
    reply = os.read(read, 1000).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert crossed_in_parent == 0
    assert reply[0] == "0"  # the child saw only its own operations
    assert client.get_operation(reply[1]).name == reply[1]  # the parent's client still works


def test_a_pool_of_forked_workers_uses_the_parents_client(client: Client) -> None:
    names = [_submit(client, f"pool-{k}") for k in range(8)]
    global _SHARED_CLIENT
    _SHARED_CLIENT = client
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        results = pool.map(_pool_from_parent, names, chunksize=1)
    assert [crossed for _, crossed in results] == [0] * len(names)
    assert len({pid for pid, _ in results} - {os.getpid()}) >= 2  # really several children
    assert _check_own(client, names, rounds=16) == 0  # and the parent's client afterwards


_SHARED_CLIENT: Client | None = None  # set before the pool forks: the children inherit it


def _pool_from_parent(name: str) -> tuple[int, int]:
    assert _SHARED_CLIENT is not None
    return os.getpid(), _check_own(_SHARED_CLIENT, [name], rounds=30)


def test_a_fork_start_method_process_uses_the_parents_client(client: Client) -> None:
    name = _submit(client, "process")
    context = multiprocessing.get_context("fork")
    queue: Any = context.Queue()

    def child() -> None:
        queue.put(_check_own(client, [name], rounds=30))

    process = context.Process(target=child)
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    assert queue.get(timeout=5) == 0


def test_threads_share_one_client(client: Client) -> None:
    names = [_submit(client, f"thread-{k}") for k in range(8)]
    crossed: list[int] = []

    def worker(k: int) -> None:
        crossed.append(_check_own(client, names[k:] + names[:k], rounds=40))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert crossed == [0] * 8


# -- event loops --------------------------------------------------------------------------------


def test_an_async_client_made_outside_any_loop_works_in_later_loops(emulator: Emulator, transport: str) -> None:
    client = AsyncClient(endpoint=_endpoint(emulator, transport), transport=transport)  # type: ignore[arg-type]

    async def use() -> str:
        operation = await client.async_batch_annotate_files(
            types.async_files_request(PDF_URI, output_uri="gs://bucket/life/loops/")
        )
        return (await client.get_operation(operation.name)).name

    first = asyncio.run(use())  # one loop...
    second = asyncio.run(use())  # ...then another: each loop gets its own channel or session
    assert first and second and first != second

    async def close() -> None:
        await client.aclose()

    asyncio.run(close())


def test_an_async_client_made_in_one_thread_is_used_in_two_loops_at_once(emulator: Emulator, transport: str) -> None:
    made: list[AsyncClient] = []
    maker = threading.Thread(
        target=lambda: made.append(AsyncClient(endpoint=_endpoint(emulator, transport), transport=transport))
    )  # type: ignore[arg-type]
    maker.start()
    maker.join()
    client = made[0]
    names: dict[int, list[str]] = {}

    def loop_thread(k: int) -> None:
        async def use() -> None:
            operation = await client.async_batch_annotate_files(
                types.async_files_request(PDF_URI, output_uri=f"gs://bucket/life/thread-loop-{k}/")
            )
            names[k] = [(await client.get_operation(operation.name)).name for _ in range(10)]
            names[k].append(operation.name)

        asyncio.run(use())

    threads = [threading.Thread(target=loop_thread, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for k in range(2):
        assert len(set(names[k])) == 1  # every answer was this loop's own operation

    async def close_then_call() -> None:
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.get_operation(names[0][0])

    asyncio.run(close_then_call())


# -- logging ------------------------------------------------------------------------------------

API_KEY = "AIzaSy-not-a-real-key-0123456789"
TOKEN = "ya29.not-a-real-token-0123456789"


def _secrets_in(records: list[logging.LogRecord]) -> list[str]:
    found = []
    for record in records:
        text = record.getMessage() + repr(record.args) + str(record.exc_info or "") + str(record.__dict__)
        found += [secret for secret in (API_KEY, TOKEN) if secret in text]
    return found


def test_debug_logs_every_attempt_and_never_a_credential(
    emulator: Emulator, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    from google.oauth2.credentials import Credentials

    caplog.set_level(logging.DEBUG, logger="vision_grpc")
    endpoint = _endpoint(emulator, transport)
    emulator.service.faults.fail_next("GetOperation", "UNAVAILABLE")
    with Client(endpoint=endpoint, transport=transport, credentials=Credentials(token=TOKEN)) as client:  # type: ignore[arg-type]
        name = _submit(client, "logged")
        client.get_operation(name)
    with Client(endpoint=endpoint, transport=transport, api_key=API_KEY) as client:  # type: ignore[arg-type]
        client.get_operation(name)
        client.batch_annotate_images(types.images_request(["gs://bucket/life/missing.png"]))
    attempts = [r for r in caplog.records if r.name == "vision_grpc.rpc"]
    assert any("AsyncBatchAnnotateFiles" in r.getMessage() and endpoint in r.getMessage() for r in attempts)
    assert any("UNAVAILABLE" in r.getMessage() and "attempt 1" in r.getMessage() for r in attempts)
    retries = [r for r in caplog.records if r.levelno == logging.INFO and "retrying in" in r.getMessage()]
    assert len(retries) == 1
    assert _secrets_in(caplog.records) == []
    sent = [dict(call.metadata) for call in emulator.service.calls]
    assert any(TOKEN in str(m) for m in sent) and any(API_KEY in str(m) for m in sent)  # they did travel
