"""Fixtures: one in-process emulator for the session, raw generated stubs, tiny synthetic documents.

Everything here talks to the emulator the way any gRPC client would: ``grpc.insecure_channel``
plus the generated ``ImageAnnotatorStub`` / ``OperationsStub``, never a client class. Each test
works under its own ``gs://emulator-tests/<unique>/`` prefix, so tests share the server safely.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2_grpc as v1p4beta1_grpc
from vision_grpc.emulator import EmulatorService
from vision_grpc.testing import Emulator

VERSIONS: dict[str, tuple[ModuleType, Any]] = {
    "v1": (v1, v1_grpc.ImageAnnotatorStub),
    "v1p4beta1": (v1p4beta1, v1p4beta1_grpc.ImageAnnotatorStub),
}
OPERATION_SECONDS = 0.2
RPC_TIMEOUT = 10.0


# -- synthetic documents ----------------------------------------------------------------------


def make_pdf(pages: int) -> bytes:
    """A minimal valid PDF with ``pages`` blank pages (catalog, page tree, pages, xref, trailer)."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_tiff(pages: int, *, order: str = "<", big: bool = False) -> bytes:
    """A TIFF (or BigTIFF) whose IFD chain has ``pages`` IFDs of one entry each."""
    mark = b"II" if order == "<" else b"MM"
    if big:
        header = mark + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        ifd_size, pack_ifd = 8 + 20 + 8, lambda nxt: struct.pack(order + "QHHQQQ", 1, 256, 4, 1, 1, nxt)
    else:
        header = mark + struct.pack(order + "HI", 42, 8)
        ifd_size, pack_ifd = 2 + 12 + 4, lambda nxt: struct.pack(order + "HHHIII", 1, 256, 4, 1, 1, nxt)
    out = bytearray(header)
    for index in range(pages):
        following = len(header) + (index + 1) * ifd_size if index + 1 < pages else 0
        out += pack_ifd(following)
    return bytes(out)


def make_gif(frames: int) -> bytes:
    """A GIF89a with ``frames`` 1x1 frames, each preceded by a graphic control extension."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control extension
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x4c\x01\x00"
    return bytes(out + b"\x3b")


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(operation_seconds=OPERATION_SECONDS) as running:
        yield running


@pytest.fixture(scope="session")
def channel(emulator: Emulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(emulator.grpc_target) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _no_leftover_faults(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.service.faults.clear()


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


def wait_done(ops_stub: Any, name: str, timeout: float = 5.0) -> operations_pb2.Operation:
    """Poll GetOperation until done (bounded); fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        operation = ops_stub.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_TIMEOUT)
        if operation.done:
            return operation
        assert time.monotonic() < deadline, f"{name} not done after {timeout}s"
        time.sleep(0.02)


class FakeClock:
    """A settable clock for driving operation states without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
