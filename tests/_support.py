"""Helpers shared by the test packages (a plain module: import from it; fixtures live in the conftests).

- tiny synthetic documents: ``make_pdf``, ``make_tiff``, ``make_gif``;
- raw gRPC against an emulator: ``VERSIONS`` (generated messages and stub per API version), ``RPC_TIMEOUT``,
  ``wait_done``;
- a settable clock, ``FakeClock``, and the sans-IO flow kit: ``Script``, ``names``;
- the command line in-process: ``run``, ``flags``;
- transcoding against the compiled test proto (the ``pb`` fixture of tests/unit): ``rule_of``,
  ``request_class``, ``response_class``, ``build``, ``same``, ``route``, ``service_router``.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from vision_grpc._flows.retry import Call, Flow, Sleep
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2_grpc as v1p4beta1_grpc
from vision_grpc._transcoding import Router
from vision_grpc.cli import main
from vision_grpc.testing import Emulator

VERSIONS: dict[str, tuple[ModuleType, Any]] = {
    "v1": (v1, v1_grpc.ImageAnnotatorStub),
    "v1p4beta1": (v1p4beta1, v1p4beta1_grpc.ImageAnnotatorStub),
}
RPC_TIMEOUT = 10.0


# -- synthetic documents ----------------------------------------------------------------------------


def make_pdf(pages: int) -> bytes:
    """A minimal valid PDF with ``pages`` blank US Letter pages (catalog, page tree, pages, xref, trailer)."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
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
    """A TIFF (or BigTIFF) whose IFD chain has ``pages`` IFDs of one entry each; ``order`` ``"<"`` or ``">"``."""
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


# -- raw gRPC ---------------------------------------------------------------------------------------


def wait_done(ops_stub: Any, name: str, timeout: float = 5.0) -> operations_pb2.Operation:
    """Poll GetOperation until done (bounded); fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        operation = ops_stub.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_TIMEOUT)
        if operation.done:
            return operation
        assert time.monotonic() < deadline, f"{name} not done after {timeout}s"
        time.sleep(0.02)


# -- clock and flows --------------------------------------------------------------------------------


@dataclass
class FakeClock:
    """A settable clock (call it for the time) for driving operations and flows without sleeping."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Script:
    """Drives a sans-IO flow: answers each Call with the next item (a message, an exception to throw in, or a
    function of the call giving either); Sleeps move the clock (which starts at 0) instead of sleeping."""

    answers: list[Any]
    clock: FakeClock = field(default_factory=lambda: FakeClock(0.0))
    calls: list[Call] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    call_cost: float = 0.01

    def run(self, flow: Flow[Any]) -> Any:
        answers = iter(self.answers)
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    self.sleeps.append(action.seconds)
                    self.clock.now += action.seconds
                    action = flow.send(None)
                    continue
                self.calls.append(action)
                self.clock.now += self.call_cost
                answer = next(answers)
                if isinstance(answer, Callable):  # type: ignore[arg-type]
                    answer = answer(action)
                action = flow.throw(answer) if isinstance(answer, BaseException) else flow.send(answer)
        except StopIteration as stop:
            return stop.value


def names(calls: Iterable[Call]) -> list[str]:
    return [c.method.name for c in calls]


# -- the command line -------------------------------------------------------------------------------


def run(capsys: Any, *argv: str) -> tuple[int, Any, str]:
    """``vision-grpc argv...`` in-process: exit code, stdout (parsed when it is a JSON object), stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    try:
        document = json.loads(captured.out) if captured.out.strip().startswith("{") else captured.out
    except ValueError:
        document = captured.out
    return code, document, captured.err


def flags(emulator: Emulator, *extra: str) -> list[str]:
    """The flags pointing the command line at ``emulator`` (its gRPC port and its storage dir)."""
    return ["--endpoint", emulator.grpc_target, "--emulator-storage", str(emulator.storage_dir), *extra]


# -- transcoding with the test proto ----------------------------------------------------------------


def rule_of(pb: ModuleType, service: str, method: str) -> http_pb2.HttpRule:
    """The ``google.api.http`` option of ``service.method`` in the test proto."""
    options = pb.DESCRIPTOR.services_by_name[service].methods_by_name[method].GetOptions()
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def request_class(pb: ModuleType, service: str, method: str) -> type[Message]:
    desc = pb.DESCRIPTOR.services_by_name[service].methods_by_name[method].input_type
    cls: type[Message] = message_factory.GetMessageClass(desc)
    return cls


def response_class(pb: ModuleType, service: str, method: str) -> type[Message]:
    desc = pb.DESCRIPTOR.services_by_name[service].methods_by_name[method].output_type
    cls: type[Message] = message_factory.GetMessageClass(desc)
    return cls


def build(pb: ModuleType, service: str, method: str, fields: dict[str, Any]) -> Message:
    """The method's request from proto3 JSON (JSON or proto field names)."""
    return json_format.ParseDict(fields, request_class(pb, service, method)())


def same(a: Message, b: Message) -> bool:
    """Equal messages, NaN included."""
    return type(a) is type(b) and a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def route(router: Router[Any], method: str, target: str, body: bytes | None = None) -> tuple[Any, Message]:
    """``router.route`` for a request target, ``path?query``."""
    path, _, query = target.partition("?")
    return router.route(method, path, query, body or b"")


def service_router(pb: ModuleType, service: str, only: str | None = None) -> Router[str]:
    """A router keyed by method name for a service of the test proto (or one of its methods)."""
    methods = pb.DESCRIPTOR.services_by_name[service].methods
    return Router(
        (m.name, request_class(pb, service, m.name), rule_of(pb, service, m.name))
        for m in methods
        if only in (None, m.name)
    )
