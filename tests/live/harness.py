"""``Harness``: one test body run with a {grpc, rest} x {sync, asyncio} client (tests/live/conftest.py's ``harness``).

``Harness.do(fn)`` calls ``fn(client)`` and, for the asyncio client, awaits the result on the harness's own
event loop, so a test reads the same for both clients.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from vision_grpc import AsyncClient, Client
from vision_grpc.testing import Emulator

TRANSPORTS = ["grpc", "rest"]
MODES = ["sync", "async"]
PDF_URI = "gs://bucket/docs/three-pages.pdf"  # staged in the shared emulator by tests/live/conftest.py


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
