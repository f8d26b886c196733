"""Compiles tests/protos/transcodetest at session start and provides the generated module."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc_tools  # type: ignore[import-untyped]
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from grpc_tools import protoc

from vision_grpc._transcoding.client import Router

PROTO_DIR = Path(__file__).resolve().parents[1] / "protos"
PROTO = "transcodetest/v1/transcode_test.proto"


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """``transcodetest.v1.transcode_test_pb2``, compiled from the test proto into a temporary dir."""
    out = tmp_path_factory.mktemp("transcodetest_gen")
    common_protos = Path(http_pb2.__file__).resolve().parents[2]  # holds google/api/*.proto
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{common_protos}",
        f"-I{well_known}",
        f"--python_out={out}",
        PROTO,
    ]
    assert protoc.main(args) == 0, "protoc failed on " + PROTO
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("transcodetest.v1.transcode_test_pb2")
    finally:
        sys.path.remove(str(out))


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


@pytest.fixture(scope="session")
def library(pb: ModuleType) -> Router[str]:
    """One router for every binding of the test proto's Library service."""
    return service_router(pb, "Library")
