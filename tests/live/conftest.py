"""One test body, four runs: {grpc, rest} x {sync, asyncio} clients against a real emulator.

The emulator (gRPC and HTTP servers on 127.0.0.1, port 0) lives for the session and is always
stopped. ``Harness.do(fn)`` calls ``fn(client)`` and, for the asyncio client, awaits the result
on the harness's own event loop, so a test reads the same for both clients.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vision_grpc import AsyncClient, Client
from vision_grpc.testing import Emulator

TRANSPORTS = ["grpc", "rest"]
MODES = ["sync", "async"]
PDF_URI = "gs://bucket/docs/three-pages.pdf"


def tiny_pdf(pages: int) -> bytes:
    """A minimal valid PDF with ``pages`` empty pages."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(operation_seconds=0.3) as emu:
        emu.put_object(PDF_URI, tiny_pdf(3))
        yield emu


class Harness:
    def __init__(self, emulator: Emulator, transport: str, mode: str) -> None:
        self.emulator, self.transport, self.mode = emulator, transport, mode
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self._clients: list[Any] = []
        self.client = self.new_client()

    @property
    def endpoint(self) -> str:
        if self.transport == "grpc":
            return self.emulator.grpc_target
        url = self.emulator.rest_url
        assert url is not None
        return url.removeprefix("http://")

    def new_client(self, **settings: Any) -> Any:
        settings.setdefault("endpoint", self.endpoint)
        settings.setdefault("transport", self.transport)
        if self.loop is None:
            client: Any = Client(**settings)
        else:

            async def make() -> AsyncClient:
                return AsyncClient(**settings)

            client = self.loop.run_until_complete(make())
        self._clients.append(client)
        return client

    def do(self, fn: Callable[[Any], Any], client: Any = None) -> Any:
        value = fn(self.client if client is None else client)
        if inspect.isawaitable(value):
            assert self.loop is not None
            return self.loop.run_until_complete(_as_coroutine(value))
        return value

    def close(self) -> None:
        for client in self._clients:
            if self.loop is None:
                client.close()
            else:
                self.loop.run_until_complete(client.aclose())
        if self.loop is not None:
            self.loop.close()


async def _as_coroutine(value: Any) -> Any:
    return await value


@pytest.fixture(params=[(t, m) for t in TRANSPORTS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def harness(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Harness]:
    transport, mode = request.param
    if transport == "rest" and emulator.rest_url is None:
        pytest.fail("the emulator has no REST front")
    emulator.service.faults.clear()
    emulator.service.clear_calls()
    h = Harness(emulator, transport, mode)
    try:
        yield h
    finally:
        h.close()
