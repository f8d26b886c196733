"""The fast Operation JSON decoder gives exactly what json_format gives, for every shape."""

from __future__ import annotations

from typing import Any

import pytest
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import json_format

from vision_grpc import types
from vision_grpc._flows.lro import operation_from_json

# Imported for their registrations: the Any lookups of both versions' types need them.
from vision_grpc._gen.v1 import image_annotator_pb2  # noqa: F401
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as _beta  # noqa: F401

META = "type.googleapis.com/google.cloud.vision.v1.OperationMetadata"
CASES = [
    pytest.param({"name": "operations/1"}, id="name-only"),
    pytest.param({}, id="empty"),
    pytest.param(
        {
            "name": "operations/1",
            "metadata": {
                "@type": META,
                "state": "RUNNING",
                "createTime": "2026-11-23T13:45:01.123456Z",
                "updateTime": "2026-11-23T13:45:02Z",
            },
        },
        id="running",
    ),
    pytest.param(
        {
            "name": "operations/1",
            "metadata": {"@type": META, "state": 3, "createTime": "2026-11-23T13:45:01.123456789+02:30"},
        },
        id="enum-number-and-offset",
    ),
    pytest.param(
        {"name": "operations/1", "metadata": {"@type": META, "createTime": "1970-01-01T00:00:00.1Z"}},
        id="epoch-fraction",
    ),
    pytest.param(
        {
            "name": "operations/1",
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.vision.v1p4beta1.OperationMetadata",
                "state": "CANCELLED",
                "updateTime": "2031-12-31T23:59:59.999Z",
            },
        },
        id="beta-metadata",
    ),
    pytest.param(
        {
            "name": "operations/2",
            "done": True,
            "metadata": {"@type": META, "state": "DONE"},
            "response": {
                "@type": "type.googleapis.com/google.cloud.vision.v1.AsyncBatchAnnotateFilesResponse",
                "responses": [{"outputConfig": {"gcsDestination": {"uri": "gs://b/o/"}, "batchSize": 2}}],
            },
        },
        id="done-response",
    ),
    pytest.param(
        {
            "name": "operations/3",
            "done": True,
            "error": {
                "code": 5,
                "message": "No such object: gs://b/x",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"}],
            },
        },
        id="done-error",
    ),
    pytest.param(
        {"name": "operations/4", "metadata": {"@type": META, "state": "RUNNING", "futureField": 1}},
        id="unknown-metadata-field",
    ),
]


@pytest.mark.parametrize("data", CASES)
def test_fast_decoder_matches_json_format(data: dict[str, Any]) -> None:
    expected = operations_pb2.Operation()
    json_format.ParseDict(data, expected, ignore_unknown_fields=True, descriptor_pool=types.JSON_TYPES)
    assert operation_from_json(data) == expected
