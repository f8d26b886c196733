"""Secrets never leak through errors, closed clients fail clearly, and REST across fork keeps answers apart.

A key read from a file often ends in a line break: http.client then raised ``ValueError: Invalid header
value b'AIza...\\n'``, which the library passed on and the CLI printed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.live.harness import PDF_URI, Harness
from vision_grpc import AsyncClient, Client, RestCall, types
from vision_grpc.errors import ClientClosedError, TransportError, ValidationError, VisionError
from vision_grpc.testing import Emulator

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
SECRET = "AIzaSy-secret-value-0123456789"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("api_key", SECRET + "\n"),
        ("api_key", " " + SECRET),
        ("api_key", SECRET[:5] + "\x00" + SECRET[5:]),
        ("quota_project", "billing project"),
        ("api_key", ""),
    ],
)
def test_a_bad_header_value_is_refused_up_front_without_showing_it(name: str, value: str) -> None:
    for make in (Client, AsyncClient):
        with pytest.raises(ValidationError) as caught:
            make(endpoint="127.0.0.1:1", **{name: value})  # type: ignore[arg-type]
        assert caught.value.field == name
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_bad_header_from_a_rest_interceptor_is_a_transport_error_without_the_value(
    mode: str, emulator: Emulator
) -> None:
    @contextmanager
    def bad(call: RestCall) -> Iterator[None]:
        call.headers["x-custom-secret"] = SECRET + "\n"
        yield

    harness = Harness(emulator, "rest", mode)
    try:
        client = harness.new_client(rest_interceptors=[bad])
        with pytest.raises(TransportError) as caught:
            harness.do(lambda c: c.get_operation("operations/x"), client)
    finally:
        harness.close()
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_closed_client_raises_a_typed_error(harness: Harness) -> None:
    client = harness.new_client()
    if harness.mode == "async":
        harness.do(lambda c: c.aclose(), client)
    else:
        client.close()
    with pytest.raises(ClientClosedError) as caught:
        harness.do(lambda c: c.get_operation("operations/x"), client)
    assert isinstance(caught.value, VisionError)


def test_an_async_rest_client_used_before_fork_works_in_the_child(emulator: Emulator) -> None:
    assert emulator.rest_url is not None
    client = AsyncClient(endpoint=emulator.rest_url.removeprefix("http://"), transport="rest")
    request = types.async_files_request(PDF_URI, output_uri="gs://bucket/no-leaks/fork/")

    async def submit_and_check(rounds: int) -> tuple[str, int]:
        name = (await client.async_batch_annotate_files(request)).name
        crossed = sum([(await client.get_operation(name)).name != name for _ in range(rounds)])
        return name, crossed

    asyncio.run(submit_and_check(3))  # the parent's session has been used (and closed with its loop)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _, crossed = asyncio.run(submit_and_check(50))
            os.write(write, str(crossed).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, crossed_in_parent = asyncio.run(submit_and_check(50))
    _, status = os.waitpid(pid, 0)
    crossed_in_child = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (crossed_in_parent, crossed_in_child) == (0, "0")
