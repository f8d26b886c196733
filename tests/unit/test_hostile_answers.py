"""Whatever a server, a proxy or a file answers, only our typed errors come out (hypothesis, bounded).

The REST decoders (``RestCodec.read``: ``errors.from_http`` for error statuses, the fast Operation path and
``_transcoding.decode_response`` for 2xx) get status codes x bodies x content types: JSON of every shape with
wrong types at every level, nesting far past the recursion limit, numbers that overflow (``1e999``, 5000
digits), invalid UTF-8, truncation. An error must be an ``ApiError`` (or ``TransportError``) carrying the HTTP
status, with a short, printable message that echoes no credential. ``operation_from_json`` must give exactly
what ``json_format`` gives, or ``json_format.ParseError``. The outputs reader gets hostile shards and shard
names, and gives at most 2000 results per prefix or ``OutputError`` naming the shard.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vision_grpc import errors, outputs
from vision_grpc._auth import AuthPlan
from vision_grpc._core.methods import METHODS, OPERATIONS, MethodInfo
from vision_grpc._core.options import ClientOptions
from vision_grpc._flows.lro import operation_from_json
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import decode_response
from vision_grpc.outputs import OutputError, read_file_results, read_image_results
from vision_grpc.transports._rest_common import RestCodec

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_LIMIT = 1200  # characters of an error's text: a short description, never a whole page
CODEC = RestCodec(ClientOptions(endpoint="127.0.0.1:1"), AuthPlan(None, (), "anonymous"))
REST_METHODS = [m for m in [*METHODS.values(), *OPERATIONS.values()] if m.http_rule is not None]
GET_OPERATION = OPERATIONS["GetOperation"]
API_KEY = "AIzaSyD" + "x" * 32
TOKEN = "ya29.a0AfB_secret-token"

TYPE_URLS = [
    "type.googleapis.com/google.cloud.vision.v1.OperationMetadata",
    "type.googleapis.com/google.cloud.vision.v1.AsyncBatchAnnotateFilesResponse",
    "type.googleapis.com/google.cloud.vision.v1p4beta1.OperationMetadata",
    "type.googleapis.com/google.rpc.ErrorInfo",
    "type.googleapis.com/google.rpc.RetryInfo",
    "type.googleapis.com/google.rpc.BadRequest",
    "type.googleapis.com/google.protobuf.Struct",
    "type.googleapis.com/google.protobuf.Value",
    "type.googleapis.com/google.protobuf.Duration",
    "type.googleapis.com/no.such.Type",
    "",
    "/",
]
KEYS = [
    "name",
    "done",
    "metadata",
    "response",
    "error",
    "code",
    "message",
    "status",
    "details",
    "@type",
    "value",
    "state",
    "createTime",
    "updateTime",
    "responses",
    "outputConfig",
    "gcsDestination",
    "uri",
    "operations",
    "nextPageToken",
    "fieldViolations",
    "field",
    "retryDelay",
    "reason",
    "inputConfig",
    "gcsSource",
    "totalPages",
    "context",
    "pageNumber",
    "fullTextAnnotation",
    "text",
    "__NUM__",
]
DETAIL_KEYS = [key for key in KEYS if key != "@type"]
WORDS = [
    "RUNNING",
    "DONE",
    "PERMISSION_DENIED",
    "OK",
    "Forbidden",
    "operations/1",
    "2026-11-23T13:45:01Z",
    "2026-13-99T99:99:99Z",
    "0000-01-01T00:00:00Z",
    "1.5s",
    "gs://b/in/doc.pdf",
    f"Authorization: Bearer {TOKEN}",
    f"x-goog-api-key: {API_KEY}",
    "\x1b[31mred\x1b[0m\r\nline",
    "__NUM__",
    "__DEEP__",
]
NUMBERS = ["1e999", "-1e999", "1" * 5000, "1e-999", "-0", "1.5", "9" * 30, "NaN", "-Infinity", "2147483648"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30])
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(TYPE_URLS + WORDS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=16,
)
# Shapes close to the real answers, so that the wrong types land deep inside them too.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "done": json_values,
        "metadata": json_values
        | st.fixed_dictionaries(
            {"@type": st.sampled_from(TYPE_URLS)}, optional=dict.fromkeys(KEYS[10:14], json_values)
        ),
        "response": json_values,
        "error": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "code": json_values,
                "message": json_values,
                "status": json_values,
                "details": st.lists(
                    st.fixed_dictionaries(
                        {"@type": st.sampled_from(TYPE_URLS)}, optional=dict.fromkeys(DETAIL_KEYS, json_values)
                    )
                    | json_values,
                    max_size=3,
                )
                | json_values,
            },
        ),
        "responses": json_values,
        "operations": json_values,
    },
)
documents = shaped | json_values


def _deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "dict":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"@type":"type.googleapis.com/google.protobuf.Value","value":' + b"[" * depth + b"]" * depth + b"}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A JSON document, then maybe damaged: truncated, invalid UTF-8, overflowing numbers, deep nesting, or noise."""
    text = json.dumps(draw(documents)).encode()
    damage = draw(st.sampled_from(["none", "truncate", "utf8", "deep", "noise"]))
    number = draw(st.sampled_from(NUMBERS)).encode()
    deep = _deep(
        draw(st.sampled_from([99, 100, 101, 1000, 5000, 100_000])), draw(st.sampled_from(["list", "dict", "any"]))
    )
    text = text.replace(b'"__NUM__"', number).replace(b'"__DEEP__"', deep)
    if damage == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if damage == "utf8":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + text[at:]
    if damage == "deep":
        return draw(
            st.sampled_from([deep, b'{"error":' + deep + b"}", b'{"name":"operations/1","metadata":' + deep + b"}"])
        )
    if damage == "noise":
        return draw(st.binary(max_size=64))
    return text


statuses = st.sampled_from([200, 204, 299, 302, 400, 401, 403, 404, 409, 429, 499, 500, 502, 503, 504]) | st.integers(
    100, 999
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=UTF-8", "APPLICATION/JSON", "text/html", "", "text/plain"]
)


def check_error(error: errors.VisionError, status: int) -> None:
    """A typed error with the HTTP status, a short printable text, and no credential in it."""
    assert isinstance(error, (errors.ApiError, errors.TransportError)), repr(error)
    text = str(error)
    if isinstance(error, errors.ApiError):
        assert error.http_status == status, text
    assert len(text) <= MESSAGE_LIMIT, len(text)
    assert text.isprintable(), repr(text)
    assert API_KEY not in text and TOKEN not in text, text


# -- regressions: each of these escaped as a foreign exception -----------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        pytest.param(403, b'{"error": {"code": "Forbidden"}}', errors.PermissionDenied, id="code-is-a-word"),
        pytest.param(403, b'{"error": {"code": 1e999}}', errors.PermissionDenied, id="code-overflows"),
        pytest.param(403, b'{"error": {"code": -1e999, "status": []}}', errors.PermissionDenied, id="status-a-list"),
        pytest.param(500, b'{"error": {"details": 5}}', errors.ApiError, id="details-a-number"),
        pytest.param(403, b'{"error": {"details": [{"@type": 5}]}}', errors.PermissionDenied, id="type-url-a-number"),
        pytest.param(404, b'{"error": {"message": {"a": 1}}}', errors.NotFound, id="message-an-object"),
        pytest.param(502, b"[" * 100_000 + b"]" * 100_000, errors.Unavailable, id="deep-page"),
        pytest.param(
            403,
            b'{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}]}}",
            errors.PermissionDenied,
            id="deep-detail",
        ),
        pytest.param(403, b'{"error": {"code": 403, "status": "OK"}}', errors.PermissionDenied, id="status-ok"),
    ],
)
def test_error_bodies_map_to_the_http_status(status: int, body: bytes, cls: type[errors.ApiError]) -> None:
    error = errors.from_http(status, body, "application/json")
    assert type(error) is cls and error.http_status == status
    check_error(error, status)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-list"),
        pytest.param(b'{"name": "operations/1", "metadata": ' + _deep(5000, "any") + b"}", id="deep-metadata"),
        pytest.param(b'{"name": "operations/1", "done": true, "response": ' + _deep(5000, "any") + b"}", id="deep-any"),
        pytest.param(b'{"name": "operations/1", "metadata": 5}', id="metadata-a-number"),
        pytest.param(b'{"name": "operations/1", "metadata": {"@type": 5}}', id="type-url-a-number"),
        pytest.param(
            b'{"metadata": {"@type": "type.googleapis.com/google.cloud.vision.v1.OperationMetadata", "state": 1e999}}',
            id="state-overflows",
        ),
        pytest.param(b'{"name": "operations/1", "done": 1e999}', id="done-overflows"),
        pytest.param(b'{"name": "operations/1", "done": ' + b"1" * 5000 + b"}", id="too-many-digits"),
        pytest.param(b'{"name": "operations/\xff"}', id="invalid-utf8"),
    ],
)
def test_hostile_operation_answers_are_api_errors(body: bytes) -> None:
    with pytest.raises(errors.ApiError) as caught:
        CODEC.read(GET_OPERATION, 200, body, "application/json")
    check_error(caught.value, 200)


def test_decode_response_maps_deep_json() -> None:
    method = METHODS[("v1", "BatchAnnotateImages")]
    assert method.http_rule is not None
    with pytest.raises(errors.ApiError):
        decode_response(method.http_rule, b'{"responses": ' + _deep(100_000, "list") + b"}", method.response_type)


def test_a_page_that_echoes_request_headers_echoes_no_credential() -> None:
    page = f"<pre>GET /v1/operations/1\r\nx-goog-api-key: {API_KEY}\r\nAuthorization: Bearer {TOKEN}\r\n\x1b[2J</pre>"
    for content_type, body in [("text/html", page), ("application/json", json.dumps({"error": {"message": page}}))]:
        error = errors.from_http(403, body.encode(), content_type)
        check_error(error, 403)
        assert "x-goog-api-key" in str(error)  # what it was is kept, the value is not


# -- fuzz -----------------------------------------------------------------------------------------------------


@FUZZ
@given(method=st.sampled_from(REST_METHODS), status=statuses, body=bodies(), content_type=content_types)
def test_rest_answers_give_a_message_or_a_typed_error(
    method: MethodInfo, status: int, body: bytes, content_type: str
) -> None:
    try:
        message = CODEC.read(method, status, body, content_type)
    except errors.VisionError as error:
        check_error(error, status)
    else:
        assert 200 <= status < 300 and isinstance(message, method.response_type)


@FUZZ
@given(status=statuses, body=bodies(), content_type=content_types)
def test_error_answers_map_to_api_errors(status: int, body: bytes, content_type: str) -> None:
    check_error(errors.from_http(status, body, content_type), status)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5) | shaped)
def test_operation_from_json_is_json_format_or_a_parse_error(data: dict[str, Any]) -> None:
    try:
        expected: Message | None = json_format.ParseDict(
            data, operations_pb2.Operation(), ignore_unknown_fields=True, descriptor_pool=JSON_TYPES
        )
    except Exception:  # json_format itself raises several kinds on hostile input
        expected = None
    try:
        got: Message | None = operation_from_json(data)
    except json_format.ParseError:
        got = None
    assert got == expected


# -- output shards --------------------------------------------------------------------------------------------


class MemoryStorage:
    """``list``/``read``/``write`` over a dict: the outputs reader's storage, without files."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def list(self, prefix: str) -> list[str]:
        return sorted(uri for uri in self.objects if uri.startswith(prefix))

    def read(self, uri: str) -> bytes:
        return self.objects[uri]

    def write(self, uri: str, data: bytes) -> None:
        self.objects[uri] = data


PREFIX = "gs://b/out/"
SHARD_FIELDS = {"responses", "inputConfig", "input_config", "error", "totalPages", "total_pages"}
ERROR_ONLY = json.dumps({"inputConfig": {"gcsSource": {"uri": "gs://b/in/doc.pdf"}}, "error": {"code": 3}}).encode()


def test_an_error_only_shard_cannot_claim_a_million_pages() -> None:
    storage = MemoryStorage({f"{PREFIX}output-1-to-1000000.json": ERROR_ONLY})
    with pytest.raises(OutputError, match="at most 2000") as caught:
        next(read_file_results(PREFIX, storage=storage))
    assert caught.value.uri == f"{PREFIX}output-1-to-1000000.json"
    storage = MemoryStorage({f"{PREFIX}output-1-to-{'9' * 5000}.json": ERROR_ONLY})  # int() refuses 5000 digits
    with pytest.raises(OutputError, match="no valid page range"):
        next(read_file_results(PREFIX, storage=storage))
    storage = MemoryStorage({f"{PREFIX}output-1-to-2000.json": ERROR_ONLY})  # the most a file can have
    assert sum(1 for _ in read_file_results(PREFIX, storage=storage)) == 2000


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-top"),
        pytest.param(b'{"responses": [' + _deep(100_000, "list") + b"]}", id="deep-response"),
        pytest.param(b'{"responses": [{"fullTextAnnotation": ' + _deep(5000, "dict") + b"}]}", id="deep-field"),
        pytest.param(b'{"responses": [{"context": {"pageNumber": 1e999}}]}', id="overflow"),
        pytest.param(b'{"responses": [{"context": {"pageNumber": ' + b"1" * 5000 + b"}}]}", id="digits"),
        pytest.param(b'{"inputConfig": 5, "error": {"code": "x"}}', id="wrong-types"),
    ],
)
def test_hostile_shards_are_output_errors(data: bytes) -> None:
    storage = MemoryStorage({f"{PREFIX}output-1-to-1.json": data})
    with pytest.raises(OutputError) as caught:
        list(read_file_results(PREFIX, storage=storage))
    assert caught.value.uri == f"{PREFIX}output-1-to-1.json"


shard_names = st.tuples(
    st.sampled_from(["1", "1", "1", "2", "0", "01", "2000", "2001", "1000000", "9" * 30]),
    st.sampled_from(["1", "2", "3", "1999", "2000", "2001", "1000000", "9" * 30]),
).map(lambda pair: f"{PREFIX}output-{pair[0]}-to-{pair[1]}.json")
shard_documents = (
    st.just(json.loads(ERROR_ONLY))  # a range that failed as a whole: its name alone says how many results
    | st.fixed_dictionaries(
        {},
        optional={
            "inputConfig": st.just({"gcsSource": {"uri": "gs://b/in/doc.pdf"}}) | json_values,
            "responses": st.lists(
                st.fixed_dictionaries({}, optional={"context": json_values, "fullTextAnnotation": json_values})
                | json_values,
                max_size=3,
            )
            | json_values,
            "totalPages": json_values,
            "error": st.just({"code": 3, "message": "bad"}) | json_values,
        },
    )
    | json_values
)


@st.composite
def shard_bodies(draw: st.DrawFn) -> bytes:
    text = json.dumps(draw(shard_documents)).encode()
    text = text.replace(b'"__NUM__"', draw(st.sampled_from(NUMBERS)).encode())
    text = text.replace(
        b'"__DEEP__"', _deep(draw(st.sampled_from([100, 5000])), draw(st.sampled_from(["list", "dict"])))
    )
    damage = draw(st.sampled_from(["none", "none", "truncate", "utf8"]))
    if damage == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if damage == "utf8":
        at = draw(st.integers(0, len(text)))
        return text[:at] + b"\xff" + text[at:]
    return text


@FUZZ
@given(shards=st.dictionaries(shard_names, shard_bodies(), min_size=1, max_size=3), images=st.booleans())
def test_hostile_shards_give_bounded_results_or_output_errors(shards: dict[str, bytes], images: bool) -> None:
    storage = MemoryStorage(shards)
    reader = read_image_results if images else read_file_results
    try:
        count = sum(1 for _ in reader(PREFIX, storage=storage))
    except OutputError as error:
        assert error.uri == PREFIX or error.uri in shards
        assert len(error.reason) <= MESSAGE_LIMIT and error.reason.isprintable(), error.reason
    else:
        assert count <= 2000


@FUZZ
@given(
    pages=st.lists(st.text(max_size=20), min_size=1, max_size=6),
    extra=st.dictionaries(st.text(max_size=6).filter(lambda key: key not in SHARD_FIELDS), json_values, max_size=4),
    order=st.randoms(use_true_random=False),
    indent=st.sampled_from([None, 0, 2]),
    window=st.sampled_from([1, 3, 7, 64, 1 << 20]),
)
def test_a_shard_reads_the_same_whatever_its_layout(
    pages: list[str], extra: dict[str, Any], order: Any, indent: int | None, window: int
) -> None:
    """The streaming shard reader agrees with json.loads for any key order, spacing and window size."""
    responses = [
        {"fullTextAnnotation": {"text": f"{text}\u00e9\U0001f600"}, "context": {"pageNumber": n}}
        for n, text in enumerate(pages, 1)
    ]
    document = {"inputConfig": {"gcsSource": {"uri": "gs://b/in/doc.pdf"}}, "responses": responses, **extra}
    items = list(document.items())
    order.shuffle(items)
    data = json.dumps(dict(items), indent=indent, ensure_ascii=order.random() < 0.5).encode()
    storage = MemoryStorage({f"{PREFIX}output-1-to-{len(pages)}.json": data})
    previous, outputs._WINDOW = outputs._WINDOW, window
    try:
        got = [(page.page_number, page.text) for page in read_file_results(PREFIX, storage=storage)]
    finally:
        outputs._WINDOW = previous
    assert got == [(n, f"{text}\u00e9\U0001f600") for n, text in enumerate(pages, 1)]


@FUZZ
@given(
    document=st.dictionaries(st.text(max_size=4) | st.just("responses"), json_values, max_size=5),
    layout=st.sampled_from([{}, {"indent": 1}, {"ensure_ascii": False}, {"separators": (",", ":")}]),
    window=st.sampled_from([1, 2, 3, 5, 8, 64]),
)
def test_the_streaming_locator_agrees_with_json_loads(document: dict[str, Any], layout: Any, window: int) -> None:
    """``outputs._locate`` (windowed, element by element) reads any JSON object as ``json.loads`` does."""
    data = json.dumps(document, **layout).encode()
    previous, outputs._WINDOW = outputs._WINDOW, window
    try:
        found, members, spans = outputs._locate(data, "responses", set(document), 100)
    finally:
        outputs._WINDOW = previous
    assert found is dict and members.keys() == document.keys()
    if isinstance(document.get("responses"), list):  # compared as JSON text: NaN != NaN
        assert json.dumps([json.loads(data[start:end]) for start, end in spans]) == json.dumps(document["responses"])
        document = {**document, "responses": None}
    else:
        assert spans == []
    assert json.dumps(members) == json.dumps(document)
