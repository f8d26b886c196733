"""Runs the official google-cloud-vision package once, in its own process, for this folder."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from tests.conformance import schema_tools
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1

MODULES = {"v1": v1, "v1p4beta1": v1p4beta1}

# Messages exchanged as bytes with the official types, fully populated, both ways.
ROUND_TRIP = [
    "google.cloud.vision.v1.AsyncBatchAnnotateFilesRequest",
    "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateFilesRequest",
    "google.cloud.vision.v1.AsyncBatchAnnotateImagesRequest",
    "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateImagesRequest",
    "google.cloud.vision.v1.BatchAnnotateImagesResponse",
    "google.cloud.vision.v1p4beta1.BatchAnnotateImagesResponse",
    "google.cloud.vision.v1.AnnotateFileResponse",
    "google.cloud.vision.v1p4beta1.AnnotateFileResponse",
    "google.cloud.vision.v1.OperationMetadata",
    "google.cloud.vision.v1p4beta1.OperationMetadata",
    "google.cloud.vision.v1.BatchAnnotateFilesRequest",
    "google.cloud.vision.v1.AsyncBatchAnnotateFilesResponse",
]


def our_class(full_name: str) -> Any:
    version, name = full_name.split(".")[3], full_name.split(".")[4]
    return getattr(MODULES[version], name)


def our_populated(full_name: str) -> Any:
    return schema_tools.populate(our_class(full_name)())


@pytest.fixture(scope="session")
def official() -> dict[str, Any]:
    request = {
        "schema": True,
        "methods": True,
        "populate": ROUND_TRIP,
        "parse": [
            {"type": name, "b64": base64.b64encode(our_populated(name).SerializeToString(deterministic=True)).decode()}
            for name in ROUND_TRIP
        ],
    }
    script = Path(__file__).with_name("official_side.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def our_json(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg)
