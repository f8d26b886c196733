"""Golden transcoding of Vision's own rules, read from our compiled descriptors: literal URLs and JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from tests._support import same
from vision_grpc import errors
from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc._transcoding import Router, to_http

P = pytest.param

FILES_V1 = v1.AsyncBatchAnnotateFilesRequest(
    requests=[
        v1.AsyncAnnotateFileRequest(
            input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri="gs://in/doc.pdf"), mime_type="application/pdf"),
            features=[v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION, max_results=5)],
            output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="gs://out/doc/"), batch_size=20),
        )
    ],
    labels={"team": "ocr"},
)
FILES_V1_JSON = (
    '{"requests":[{"inputConfig":{"gcsSource":{"uri":"gs://in/doc.pdf"},"mimeType":"application/pdf"},'
    '"features":[{"type":"DOCUMENT_TEXT_DETECTION","maxResults":5}],'
    '"outputConfig":{"gcsDestination":{"uri":"gs://out/doc/"},"batchSize":20}}],'
    '"labels":{"team":"ocr"}}'
)
IMAGES_V1P4 = v1p4beta1.AsyncBatchAnnotateImagesRequest(
    requests=[
        v1p4beta1.AnnotateImageRequest(
            image=v1p4beta1.Image(source=v1p4beta1.ImageSource(image_uri="gs://in/cat.jpg")),
            features=[v1p4beta1.Feature(type=v1p4beta1.Feature.LABEL_DETECTION)],
        )
    ],
    output_config=v1p4beta1.OutputConfig(gcs_destination=v1p4beta1.GcsDestination(uri="gs://out/cats/"), batch_size=2),
)
IMAGES_V1P4_JSON = (
    '{"requests":[{"image":{"source":{"imageUri":"gs://in/cat.jpg"}},"features":[{"type":"LABEL_DETECTION"}]}],'
    '"outputConfig":{"gcsDestination":{"uri":"gs://out/cats/"},"batchSize":2}}'
)


def with_parent(request: v1.AsyncBatchAnnotateFilesRequest, parent: str) -> v1.AsyncBatchAnnotateFilesRequest:
    copy = v1.AsyncBatchAnnotateFilesRequest()
    copy.CopyFrom(request)
    copy.parent = parent
    return copy


GOLDEN = [
    P(
        ("v1", "AsyncBatchAnnotateFiles"),
        with_parent(FILES_V1, "projects/p1/locations/eu"),
        "POST",
        "/v1/projects/p1/locations/eu/files:asyncBatchAnnotate",
        FILES_V1_JSON,
        id="files-parent-location",
    ),
    P(
        ("v1", "AsyncBatchAnnotateFiles"),
        with_parent(FILES_V1, "projects/p1"),
        "POST",
        "/v1/projects/p1/files:asyncBatchAnnotate",
        FILES_V1_JSON,
        id="files-parent-project",
    ),
    P(
        ("v1", "AsyncBatchAnnotateFiles"),
        FILES_V1,
        "POST",
        "/v1/files:asyncBatchAnnotate",
        FILES_V1_JSON,
        id="files-no-parent",
    ),
    P(
        ("v1p4beta1", "AsyncBatchAnnotateImages"),
        IMAGES_V1P4,
        "POST",
        "/v1p4beta1/images:asyncBatchAnnotate",
        IMAGES_V1P4_JSON,
        id="images-v1p4beta1",
    ),
    P(
        ("v1", "BatchAnnotateImages"),
        v1.BatchAnnotateImagesRequest(
            requests=[v1.AnnotateImageRequest(image=v1.Image(content=b"\x89PNG"))], parent="projects/p/locations/us"
        ),
        "POST",
        "/v1/projects/p/locations/us/images:annotate",
        '{"requests":[{"image":{"content":"iVBORw=="}}]}',
        id="images-sync-bytes-base64",
    ),
    P(
        ("operations", "GetOperation"),
        operations_pb2.GetOperationRequest(name="projects/p/locations/eu/operations/123"),
        "GET",
        "/v1/projects/p/locations/eu/operations/123",
        None,
        id="get-operation-location",
    ),
    P(
        ("operations", "GetOperation"),
        operations_pb2.GetOperationRequest(name="projects/p/operations/9"),
        "GET",
        "/v1/projects/p/operations/9",
        None,
        id="get-operation-project",
    ),
    P(
        ("operations", "GetOperation"),
        operations_pb2.GetOperationRequest(name="operations/abc"),
        "GET",
        "/v1/operations/abc",
        None,
        id="get-operation-bare",
    ),
    P(
        ("operations", "GetOperation"),
        operations_pb2.GetOperationRequest(name="locations/eu/operations/7"),
        "GET",
        "/v1/locations/eu/operations/7",
        None,
        id="get-operation-location-only",
    ),
    P(
        ("operations", "ListOperations"),
        operations_pb2.ListOperationsRequest(name="operations", filter="done = true", page_size=50, page_token="a/b"),
        "GET",
        "/v1/operations?filter=done%20%3D%20true&pageSize=50&pageToken=a%2Fb",
        None,
        id="list-operations",
    ),
    P(
        ("operations", "CancelOperation"),
        operations_pb2.CancelOperationRequest(name="operations/x/y"),
        "POST",
        "/v1/operations/x/y:cancel",
        "{}",
        id="cancel-operation",
    ),
    P(
        ("operations", "DeleteOperation"),
        operations_pb2.DeleteOperationRequest(name="operations/x"),
        "DELETE",
        "/v1/operations/x",
        None,
        id="delete-operation",
    ),
]


def method_info(key: tuple[str, str]) -> MethodInfo:
    return OPERATIONS[key[1]] if key[0] == "operations" else METHODS[key]


@pytest.mark.parametrize(("key", "request_message", "http_method", "target", "body"), GOLDEN)
def test_vision_golden(
    key: tuple[str, str], request_message: Message, http_method: str, target: str, body: str | None
) -> None:
    rule = method_info(key).http_rule
    assert rule is not None
    sent = to_http(rule, request_message)
    assert (sent.method, sent.target) == (http_method, target)
    assert sent.body == (body.encode() if body is not None else None)
    if sent.body is not None:
        assert "parent" not in json.loads(sent.body)


@pytest.fixture(scope="module")
def vision_router() -> Router[MethodInfo]:
    infos = [*METHODS.values(), *OPERATIONS.values()]
    return Router((info, info.request_type, info.http_rule) for info in infos if info.http_rule is not None)


@pytest.mark.parametrize(("key", "request_message", "http_method", "target", "body"), GOLDEN)
def test_vision_routes_back(
    vision_router: Router[MethodInfo],
    key: tuple[str, str],
    request_message: Message,
    http_method: str,
    target: str,
    body: str | None,
) -> None:
    path, _, query = target.partition("?")
    info, decoded = vision_router.route(http_method, path, query, body.encode() if body is not None else b"")
    assert info is method_info(key)
    assert same(decoded, request_message)


def test_parent_that_matches_no_path_goes_in_the_body(vision_router: Router[MethodInfo]) -> None:
    """As the service accepts it (the rule's own binding binds nothing); Vision's request validation rejects
    such a parent before the transport (test_validate.py)."""
    rule = METHODS[("v1", "AsyncBatchAnnotateFiles")].http_rule
    assert rule is not None
    original = with_parent(FILES_V1, "projects/p1/zones/eu")
    sent = to_http(rule, original)
    assert (sent.method, sent.target) == ("POST", "/v1/files:asyncBatchAnnotate")
    assert sent.body is not None and json.loads(sent.body)["parent"] == "projects/p1/zones/eu"
    _, decoded = vision_router.route(sent.method, sent.path, sent.query_string, sent.body)
    assert same(decoded, original)


@pytest.mark.parametrize(
    "name",
    [
        P("", id="unset"),
        P("foo/abc", id="unknown-collection"),
        P("operations/../x", id="traversal"),
        P("operations/a/b", id="extra-segment"),
    ],
)
def test_get_operation_rejects(name: str) -> None:
    rule = OPERATIONS["GetOperation"].http_rule
    assert rule is not None
    with pytest.raises(errors.ValidationError) as caught:
        to_http(rule, operations_pb2.GetOperationRequest(name=name))
    assert caught.value.field == "name"
    assert caught.value.rule == "must match projects/*/operations/* for GET /v1/{name=projects/*/operations/*}"


def test_emulator_style_round_trip_for_every_vision_method(vision_router: Router[MethodInfo]) -> None:
    samples: dict[str, dict[str, Any]] = {
        "BatchAnnotateFiles": {"requests": [{"inputConfig": {"content": "AAE="}}]},
        "AsyncBatchAnnotateImages": {"outputConfig": {"batchSize": 3}},
    }
    for info in METHODS.values():
        assert info.http_rule is not None
        original = json_format.ParseDict(samples.get(info.name, {}), info.request_type())
        if info.version == "v1":
            original.parent = "projects/x"  # type: ignore[attr-defined]
        sent = to_http(info.http_rule, original)
        got, decoded = vision_router.route(sent.method, sent.path, sent.query_string, sent.body or b"")
        assert got is info and same(decoded, original)
