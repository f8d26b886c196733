"""``pb``: tests/protos/transcodetest compiled once per session; ``library``: a router for its Library service.

The helpers over ``pb`` (``build``, ``route``, ``service_router``, ...) are in tests/_support.py.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import grpc_tools  # type: ignore[import-untyped]
import pytest
from google.api import http_pb2
from grpc_tools import protoc

from tests._support import service_router
from vision_grpc._transcoding import Router

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


@pytest.fixture(scope="session")
def library(pb: ModuleType) -> Router[str]:
    """One router for every binding of the test proto's Library service."""
    return service_router(pb, "Library")
