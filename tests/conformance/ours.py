"""Our side of the conformance comparison: our generated modules, the round-trip messages, populated and as JSON.

Imported by this folder's conftest and tests (never by the official-side subprocess scripts).
"""

from __future__ import annotations

from typing import Any

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


def our_json(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg)
