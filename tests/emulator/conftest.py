"""Fixtures of the emulator tests: raw generated stubs on the shared emulator, fresh prefixes, bare services.

Everything here talks to the emulator the way any gRPC client would: ``grpc.insecure_channel``
plus the generated ``ImageAnnotatorStub`` / ``OperationsStub``, never a client class. Each test
works under its own ``gs://emulator-tests/<unique>/`` prefix, so tests share the server safely.
The emulator itself and its reset between tests are tests/conftest.py's ``emulator`` and ``emulator_reset``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2_grpc

from tests._support import VERSIONS
from vision_grpc.emulator import EmulatorService
from vision_grpc.testing import Emulator


@pytest.fixture(scope="session")
def channel(emulator: Emulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(emulator.grpc_target) as opened:
        yield opened


@pytest.fixture
def new_service(tmp_path: Path) -> Iterator[Callable[..., EmulatorService]]:
    """``new_service(**settings)``: an ``EmulatorService`` on ``tmp_path``, closed (finisher joined) after the test."""
    made: list[EmulatorService] = []

    def make(**settings: Any) -> EmulatorService:
        made.append(EmulatorService(tmp_path, **settings))
        return made[-1]

    yield make
    for service in made:
        service.close()


@pytest.fixture
def prefix() -> str:
    """A fresh ``gs://`` prefix for this test's objects (ends with ``/``)."""
    return f"gs://emulator-tests/{uuid.uuid4().hex}/"


@pytest.fixture
def ops(channel: grpc.Channel) -> Any:
    return operations_pb2_grpc.OperationsStub(channel)


@pytest.fixture(params=sorted(VERSIONS))
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(version: str) -> ModuleType:
    """The generated messages of the API version under test."""
    return VERSIONS[version][0]


@pytest.fixture
def stub(version: str, channel: grpc.Channel) -> Any:
    return VERSIONS[version][1](channel)
