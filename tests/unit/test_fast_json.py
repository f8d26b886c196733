"""The fast JSON -> message builder (``vision_grpc._core.jsonpb``) is ``json_format.ParseDict`` for what it takes.

Documents are drawn from the descriptors of the output shards' messages (v1 and v1p4beta1): every
field under its JSON or its proto name, enums as names, numbers or unknown names, missing fields,
unknown keys, nulls, and values of the wrong JSON type or out of range. Whenever the builder does not
decline (``Fallback``), its message equals ``json_format``'s, and ``json_format`` did not fail. Realistic
OCR pages (the emulator's PDF text layer layout, as ``json_format`` writes it in either naming) never
fall back.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc._transcoding import jsonpb

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = [v1.AnnotateImageResponse, v1p4beta1.AnnotateImageResponse, v1.AnnotateFileResponse]
BUILDERS = {cls: jsonpb.message_builder(cls) for cls in CLASSES}

ODD = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1.0,
        1.5,
        2**31,
        2**64,
        -(2**63) - 1,
        3.5e38,
        1e300,
        math.nan,
        math.inf,
        -math.inf,
        "",
        "1",
        "NaN",
        "Infinity",
        "TEXT",
        "\ud800",
        "x y",
        [],
        [None],
        [1, "a"],
        {},
        {"x": 1},
        "[ext]",
    ]
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_ENUM:
        names = [value.name for value in field.enum_type.values]
        numbers = [value.number for value in field.enum_type.values]
        return st.sampled_from(names) | st.sampled_from(numbers) | st.sampled_from(["NO_SUCH_NAME", 99, "1"])
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(-1e6, 1e6, width=32) | st.integers(-1000, 1000) | st.sampled_from([3.4028234663852886e38])
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=8)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.sampled_from(["", "AAEC", "_-8="])
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
        return st.integers(0, 2**63 - 1) | st.integers(0, 2**63 - 1).map(str)
    return st.integers(-(2**31), 2**31 - 1)


@st.composite
def documents(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> dict[str, Any]:
    """A JSON object for ``descriptor``: a few fields, mostly well typed, some of them odd."""
    document: dict[str, Any] = {}
    fields = [f for f in list(descriptor.fields) if not (f.message_type and depth >= 6)]
    for field in draw(st.lists(st.sampled_from(fields), max_size=4, unique_by=lambda f: f.name)) if fields else []:
        key = draw(st.sampled_from([field.json_name, field.json_name, field.name]))
        if draw(st.integers(0, 9)) == 0:
            document[key] = draw(ODD)
            continue
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Any":
                one: st.SearchStrategy[Any] = st.just({"@type": "type.googleapis.com/google.rpc.ErrorInfo"})
            elif field.message_type.full_name.startswith("google.protobuf."):
                one = st.sampled_from([{}, "2020-01-01T00:00:00Z", 0.5, {"value": 1}])
            else:
                one = documents(field.message_type, depth + 1)
        else:
            one = _scalar(field)
        document[key] = draw(st.lists(one, max_size=3)) if field.is_repeated else draw(one)
    if draw(st.integers(0, 4)) == 0:  # a duplicate under the other name, or an unknown key
        field = draw(st.sampled_from(list(descriptor.fields)))
        document[draw(st.sampled_from([field.name, "futureField", "[a.b]", "@type"]))] = document.get(
            field.json_name, draw(ODD)
        )
    return document


def reference(cls: Any, document: Any) -> Any:
    try:
        return json_format.ParseDict(document, cls(), ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
    except Exception:  # json_format raises several kinds on odd input
        return "error"


def check(cls: Any, document: Any) -> bool:
    """The builder agrees with json_format or declines; whether it took the document."""
    try:
        got = BUILDERS[cls](document)
    except jsonpb.Fallback:
        return False
    expected = reference(cls, document)
    assert not isinstance(expected, str), f"json_format refused what the builder took: {document!r}"
    assert got == expected
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    for name in ("error", "full_text_annotation", "context", "input_config"):  # presence, as HasField sees it
        if name in cls.DESCRIPTOR.fields_by_name:
            assert got.HasField(name) == expected.HasField(name)
    return True


@FUZZ
@given(data=st.data(), which=st.sampled_from(CLASSES))
def test_the_builder_is_json_format_or_declines(data: st.DataObject, which: Any) -> None:
    check(which, data.draw(documents(which.DESCRIPTOR)))


@FUZZ
@given(data=st.data())
def test_well_typed_documents_are_taken(data: st.DataObject) -> None:
    """Messages written by json_format (either naming, enums as names or numbers) go the fast way."""
    document = data.draw(documents(v1.AnnotateImageResponse.DESCRIPTOR))
    message = reference(v1.AnnotateImageResponse, document)
    if isinstance(message, str):
        return
    plain = _plain(message)
    for written in (
        json_format.MessageToDict(message, descriptor_pool=JSON_TYPES),
        json_format.MessageToDict(message, preserving_proto_field_name=True, use_integers_for_enums=True),
    ):
        if reference(v1.AnnotateImageResponse, written) != "error":  # json_format writes float32 max rounded up
            assert check(v1.AnnotateImageResponse, written) or not plain, written


def _plain(message: Any) -> bool:
    """No field of a well-known type (Any, Timestamp, wrappers), no bytes or 64-bit integers and no
    non-finite floats set: the fast subset as json_format writes it."""
    for field, value in message.ListFields():
        if field.type in (FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_INT64):
            return False
        if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            # json_format writes NaN and the infinities as strings ("NaN"): the slow path's job.
            if not all(math.isfinite(item) for item in (value if field.is_repeated else [value])):
                return False
        if field.message_type is not None:
            if field.message_type.full_name.startswith("google.protobuf."):
                return False
            if not all(_plain(item) for item in (value if field.is_repeated else [value])):
                return False
    return True


@pytest.mark.parametrize(
    "document",
    [
        {"fullTextAnnotation": {"pages": [{"blocks": [{"blockType": "TABLE"}]}]}},
        {"full_text_annotation": {"text": "a", "pages": [{"blocks": [{"block_type": 3}]}]}},
        {"textAnnotations": [{"boundingPoly": {"vertices": [{"x": 1, "y": 2}, {}]}}]},
        {"textAnnotations": [{"boundingPoly": {"normalizedVertices": [{"x": 0.5, "y": 1}]}}]},
        {"error": {}, "context": {"uri": "gs://b/x", "pageNumber": 3}},
        {"fullTextAnnotation": None, "error": {"code": 3, "message": "bad", "details": []}},
        {"futureAnnotation": {"x": [1, 2]}, "context": {"pageNumber": 1}},
    ],
)
def test_examples_are_taken_and_equal(document: dict[str, Any]) -> None:
    assert check(v1.AnnotateImageResponse, document)


@pytest.mark.parametrize(
    "document",
    [
        {"context": {"pageNumber": True}},  # a bool for an integer: json_format refuses it
        {"context": {"pageNumber": 3.0}},  # json_format takes an integral float
        {"context": {"pageNumber": "3"}},  # and a string of digits
        {"fullTextAnnotation": {"pages": [{"confidence": 3.5e38}]}},  # beyond float32: refused
        {"fullTextAnnotation": {"pages": [{"blocks": [{"blockType": "NO_SUCH"}]}]}},  # dropped by json_format
        {"fullTextAnnotation": {"pages": [{"blocks": [{"blockType": True}]}]}},  # json_format: 1
        {"textAnnotations": [{"boundingPoly": {"vertices": [{"x": True}]}}]},
        {"textAnnotations": [{"boundingPoly": {"normalizedVertices": [{"x": math.nan}]}}]},
        {"textAnnotations": [None]},
        {"textAnnotations": {"description": "a dict for a list"}},
        {"fullTextAnnotation": "a string for a message"},  # json_format sets the field, empty
        {"context": {"pageNumber": 1}, "context_": 1, "[ext.x]": 1},
        {"fullTextAnnotation": {"text": "a"}, "full_text_annotation": {"pages": []}},  # both names: merged
        {"error": {"code": 3, "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"}]}},
        {"fullTextAnnotation": {"text": "\ud800"}},  # a lone surrogate: refused
    ],
)
def test_odd_documents_are_declined(document: dict[str, Any]) -> None:
    assert not check(v1.AnnotateImageResponse, document)


def test_loads_is_json_loads() -> None:
    for text in [
        b'{"a": [1, 2.5, "x", null, true]}',
        b'"\\ud800"',
        b"NaN",
        b"1e999",
        b"123456789012345678901234567890",
    ]:
        assert json.dumps(jsonpb.loads(text)) == json.dumps(json.loads(text))
    with pytest.raises(ValueError):
        jsonpb.loads(b"{")


# -- messages to JSON objects (the REST request encoder) ---------------------------------------------

ENCODED = [
    v1.AsyncBatchAnnotateFilesRequest,
    v1.BatchAnnotateImagesRequest,
    v1.AsyncBatchAnnotateImagesRequest,
    v1.BatchAnnotateFilesRequest,
    v1p4beta1.AsyncBatchAnnotateFilesRequest,
    v1.AnnotateImageResponse,
]


def generic(message: Any) -> Any:
    return json_format.MessageToDict(message, descriptor_pool=JSON_TYPES)


@FUZZ
@given(data=st.data(), which=st.sampled_from(ENCODED))
def test_message_to_dict_is_json_format(data: st.DataObject, which: Any) -> None:
    message = reference(which, data.draw(documents(which.DESCRIPTOR)))
    if isinstance(message, str):
        return
    for field in ("requests", "responses"):  # and the messages of a batch, each a message of its own
        for item in getattr(message, field, []):
            assert jsonpb.message_to_dict(item, generic) == generic(item)
    assert jsonpb.message_to_dict(message, generic) == generic(message)


def test_message_to_dict_special_values() -> None:
    message = v1.AsyncBatchAnnotateFilesRequest(parent="projects/p", labels={"a": "b", "c": "d"})
    request = message.requests.add()
    request.input_config.content = b"\x00\xff"
    request.image_context.lat_long_rect.min_lat_lng.latitude = math.inf
    request.image_context.lat_long_rect.max_lat_lng.latitude = math.nan
    request.image_context.crop_hints_params.aspect_ratios.extend([1.1, -math.inf, 3.4028234663852886e38])
    request.features.add(type=99, max_results=-3)  # an unknown enum number stays a number
    request.features.add(type="TEXT_DETECTION", model="builtin/latest")
    expected = generic(message)
    assert jsonpb.message_to_dict(message, generic) == expected
    assert json.dumps(jsonpb.message_to_dict(message, generic)) == json.dumps(expected)  # key order too
