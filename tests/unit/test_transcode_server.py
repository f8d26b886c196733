"""The server side of gRPC transcoding (Router) and response bodies (encode_response / decode_response)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from google.api import http_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, error_details_pb2

from tests._support import build, request_class, response_class, route, rule_of, same, service_router
from vision_grpc import errors
from vision_grpc._transcoding import Router, decode_response, encode_response

P = pytest.param

# --- what a router accepts beyond what our client sends ----------------------------------------------

ACCEPTED = [
    P(
        "GET",
        "/v1/projects/p/shelves?page_size=3&page_token=t",
        None,
        "ListShelves",
        {"parent": "projects/p", "page_size": 3, "page_token": "t"},
        id="proto-names-in-query",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?color=2&colors=1&colors=GREEN",
        None,
        "SearchThings",
        {"shelf": "s", "color": "GREEN", "colors": ["RED", "GREEN"]},
        id="enum-by-number-or-name",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?text=a+b&tags=c%2Bd&tags=e%20f",
        None,
        "SearchThings",
        {"shelf": "s", "text": "a b", "tags": ["c+d", "e f"]},
        id="plus-is-space-in-query",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?nested.inner.ratio=1e3&choice_nested.name=n",
        None,
        "SearchThings",
        {"shelf": "s", "nested": {"inner": {"ratio": 1000}}, "choice_nested": {"name": "n"}},
        id="nested-proto-names",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?renamed=r&opt_number=0",
        None,
        "SearchThings",
        {"shelf": "s", "renamed": "r", "opt_number": 0},
        id="proto-name-of-custom-json-name",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?blob=AP8_-w&maybeBlob=_w%3D%3D",
        None,
        "SearchThings",
        {"shelf": "s", "blob": "AP8/+w==", "maybe_blob": "/w=="},
        id="url-safe-base64-without-padding",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?key=k&alt=json&prettyPrint=false&%24.xgafv=2&fields=a",
        None,
        "SearchThings",
        {"shelf": "s"},
        id="system-parameters-ignored",
    ),
    P(
        "POST",
        "/v1/shelves/s/things?key=k&alt=json",
        b'{"text":"t"}',
        "CreateThing",
        {"shelf": "s", "text": "t"},
        id="system-parameters-ignored-with-body-star",
    ),
    P(
        "GET",
        "/v1/shelves/s%2Fx/things:search",
        None,
        "SearchThings",
        {"shelf": "s/x"},
        id="single-segment-decodes-slash",
    ),
    P(
        "GET",
        "/v1/buckets/b/objects/a%2Fb/c%20d",
        None,
        "GetObject",
        {"name": "buckets/b/objects/a%2Fb/c d"},
        id="multi-segment-keeps-encoded-slash",
    ),
    P(
        "GET",
        "/v1/buckets/b/objects/x:purge",
        None,
        "GetObject",
        {"name": "buckets/b/objects/x:purge"},
        id="verb-of-another-method-is-data",
    ),
    P(
        "POST",
        "/v1/buckets/b/objects/x:purge",
        b'{"ignored": true}',
        "PurgeObjects",
        {"name": "buckets/b/objects/x"},
        id="body-ignored-without-body-rule",
    ),
    P("head", "/v1/shelves/s", None, "HeadShelf", {"name": "shelves/s"}, id="method-case-insensitive"),
    P("POST", "/v1/shelves/s/things", b"", "CreateThing", {"shelf": "s"}, id="empty-body-star"),
    P(
        "POST",
        "/v1/shelves/s/things",
        b'{"shelf": "other", "text": "t"}',
        "CreateThing",
        {"shelf": "s", "text": "t"},
        id="path-wins-over-body",
    ),
    P(
        "POST",
        "/v1/shelves/s/things",
        b'{"renamed": "x", "maybe_flag": true, "labels": {"a": "b"}}',
        "CreateThing",
        {"shelf": "s", "renamed": "x", "maybe_flag": True, "labels": {"a": "b"}},
        id="proto-names-in-body",
    ),
    P(
        "PATCH",
        "/v1/shelves/s/books/b",
        b'{"name": "shelves/x/books/y", "title": "T"}',
        "UpdateBook",
        {"book": {"name": "shelves/s/books/b", "title": "T"}},
        id="path-wins-inside-body-field",
    ),
    P("PUT", "/v1/shelves/s/things/tags", b"null", "PutThingTags", {"shelf": "s"}, id="null-body-field"),
]


@pytest.mark.parametrize(("method", "target", "body", "key", "fields"), ACCEPTED)
def test_router_accepts(
    pb: ModuleType, library: Router[str], method: str, target: str, body: bytes | None, key: str, fields: dict[str, Any]
) -> None:
    got_key, request = route(library, method, target, body)
    assert got_key == key
    assert same(request, build(pb, "Library", key, fields))


def assert_bad_request(caught: pytest.ExceptionInfo[errors.InvalidArgument], parameter: str, text: str) -> None:
    error = caught.value
    assert (error.code, error.http_status) == (code_pb2.INVALID_ARGUMENT, 400)
    assert [field for field, _ in error.field_violations] == [parameter]
    assert text in error.message and error.message.startswith(f"{parameter}: ")
    assert error.status.code == code_pb2.INVALID_ARGUMENT
    assert error.status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)


REJECTED = [
    P("GET", "/v1/shelves/s/things:search?unknown=1", None, "unknown", "unknown query parameter", id="unknown"),
    P("GET", "/v1/shelves/s/things:search?nested.unknown=1", None, "nested.unknown", "unknown", id="unknown-nested"),
    P("GET", "/v1/shelves/s/things:search?text.x=1", None, "text.x", "unknown", id="field-of-a-scalar"),
    P("GET", "/v1/shelves/s/things:search?labels.k=v", None, "labels.k", "map and repeated message", id="map"),
    P("GET", "/v1/shelves/s/things:search?labels=v", None, "labels", "map and repeated message", id="map-whole"),
    P(
        "GET",
        "/v1/shelves/s/things:search?items.name=v",
        None,
        "items.name",
        "map and repeated message",
        id="repeated-message",
    ),
    P("GET", "/v1/shelves/s/things:search?nested=x", None, "nested", "a message: set its fields", id="message"),
    P("GET", "/v1/shelves/s/things:search?shelf=x", None, "shelf", "the path carries 'shelf'", id="path-field"),
    P("GET", "/v1/shelves/s/things:search?text=a&text=b", None, "text", "more than once", id="singular-twice"),
    P(
        "GET",
        "/v1/shelves/s/things:search?customName=a&renamed=b",
        None,
        "renamed",
        "the same field as 'customName'",
        id="json-and-proto-name",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?choiceText=a&choiceNumber=1",
        None,
        "choiceNumber",
        "oneof 'choice'",
        id="two-oneof-members",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?choiceText=a&choiceNested.name=n",
        None,
        "choiceNested.name",
        "oneof 'choice'",
        id="oneof-member-and-nested-member",
    ),
    P("GET", "/v1/shelves/s/things:search?i32=abc", None, "i32", "invalid value", id="int-not-a-number"),
    P("GET", "/v1/shelves/s/things:search?i32=1.5", None, "i32", "invalid value", id="int-fraction"),
    P("GET", "/v1/shelves/s/things:search?i32=4294967296", None, "i32", "invalid value", id="int-out-of-range"),
    P("GET", "/v1/shelves/s/things:search?u64=-1", None, "u64", "invalid value", id="unsigned-negative"),
    P("GET", "/v1/shelves/s/things:search?real64=abc", None, "real64", "invalid value", id="float"),
    P("GET", "/v1/shelves/s/things:search?flag=yes", None, "flag", "expected true or false", id="bool"),
    P(
        "GET",
        "/v1/shelves/s/things:search?flags=true&flags=1",
        None,
        "flags",
        "expected true or false",
        id="repeated-bool",
    ),
    P(
        "GET",
        "/v1/shelves/s/things:search?maybeFlag=True",
        None,
        "maybeFlag",
        "expected true or false",
        id="bool-wrapper",
    ),
    P("GET", "/v1/shelves/s/things:search?color=PURPLE", None, "color", "invalid value", id="enum-name"),
    P("GET", "/v1/shelves/s/things:search?when=yesterday", None, "when", "invalid value", id="timestamp"),
    P("GET", "/v1/shelves/s/things:search?howLong=5", None, "howLong", "invalid value", id="duration"),
    P("GET", "/v1/shelves/s/things:search?meta=%7Bbad", None, "meta", "invalid value", id="struct-not-json"),
    P("GET", "/v1/shelves/s/things:search?meta=%5B%5D", None, "meta", "invalid value", id="struct-not-object"),
    P("GET", "/v1/shelves/s/things:search?dynamic=text", None, "dynamic", "invalid value", id="value-not-json"),
    P("GET", "/v1/shelves/s/things:search?text=%FF", None, "query", "not UTF-8", id="query-not-utf8"),
    P("DELETE", "/v1/shelves/s/things/x/true/RED/1", None, "number", "invalid value", id="path-int"),
    P("DELETE", "/v1/shelves/s/things/1/yes/RED/1", None, "flag", "expected true or false", id="path-bool"),
    P("DELETE", "/v1/shelves/s/things/1/true/BLUE/1", None, "color", "invalid value", id="path-enum"),
    P("POST", "/v1/shelves/s/things?text=x", b"{}", "text", "takes every field in the body", id="query-with-body-star"),
    P(
        "PATCH",
        "/v1/shelves/s/books/b?book.title=x",
        b"{}",
        "book.title",
        "the body carries 'book'",
        id="query-for-body-field",
    ),
    P("POST", "/v1/shelves/s/things", b"{", "body", "invalid JSON body", id="body-syntax"),
    P("POST", "/v1/shelves/s/things", b"[1]", "body", "must be a JSON object", id="body-not-object"),
    P("POST", "/v1/shelves/s/things", b'{"nope": 1}', "body", "nope", id="body-unknown-field"),
    P(
        "POST",
        "/v1/shelves/s/things",
        b'{"text": "a", "text": "b"}',
        "body",
        "duplicate key 'text'",
        id="body-duplicate-key",
    ),
    P("POST", "/v1/shelves/s/things", b'{"text": "a", "i32": "x"}', "body", "i32", id="body-bad-value"),
    P(
        "POST",
        "/v1/shelves/s/things",
        b'{"choiceText": "a", "choiceNumber": 1}',
        "body",
        "oneof",
        id="body-two-oneof-members",
    ),
    P("POST", "/v1/shelves/s/things", b"\xff", "body", "invalid JSON body", id="body-not-utf8"),
    P("POST", "/v1/shelves/s/things", b"[" * 100000, "body", "invalid JSON body", id="body-too-deep"),
    P("PUT", "/v1/shelves/s/things/tags", b'"a"', "body", "invalid JSON body", id="body-field-wrong-type"),
]


@pytest.mark.parametrize(("method", "target", "body", "parameter", "text"), REJECTED)
def test_router_rejects(
    library: Router[str], method: str, target: str, body: bytes | None, parameter: str, text: str
) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        route(library, method, target, body)
    assert_bad_request(caught, parameter, text)


@pytest.mark.parametrize(
    "path", [P("/v1/shelves/%FF/things:search", id="not-utf8"), P("/v1/shelves/%zz/things:search", id="bad-escape")]
)
def test_router_rejects_malformed_path_encoding(library: Router[str], path: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="path variable 'shelf'"):
        library.route("GET", path)


NOT_ROUTED = [
    P("GET", "/v2/shelves", errors.NotFound, 404, "no method is bound to /v2/shelves", id="unknown-path"),
    P("GET", "/v1/shelves/", errors.NotFound, 404, "no method is bound", id="trailing-slash"),
    P("GET", "/v1/shelves/s/books", errors.NotFound, 404, "no method is bound", id="missing-segment"),
    P("GET", "/v1/shelves/s/things:find", errors.NotFound, 404, "no method is bound", id="unknown-verb"),
    P(
        "DELETE",
        "/v1/shelves/s1/books/b1",
        errors.Unimplemented,
        405,
        "DELETE is not allowed on /v1/shelves/s1/books/b1 (allowed: GET, PATCH)",
        id="method-not-allowed",
    ),
    P("GET", "/v1/shelves/s/things", errors.Unimplemented, 405, "(allowed: POST)", id="get-on-post"),
    P(
        "PATCH",
        "/v1/buckets/b/objects/x:purge",
        errors.Unimplemented,
        405,
        "(allowed: GET, POST)",
        id="several-allowed",
    ),
]


@pytest.mark.parametrize(("method", "path", "error", "status", "text"), NOT_ROUTED)
def test_router_not_routed(
    library: Router[str], method: str, path: str, error: type[errors.ApiError], status: int, text: str
) -> None:
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")) as caught:
        library.route(method, path)
    assert caught.value.http_status == status
    expected_code = code_pb2.NOT_FOUND if status == 404 else code_pb2.UNIMPLEMENTED
    assert caught.value.code == expected_code


# --- which route wins -----------------------------------------------------------------------------


def test_most_specific_template_wins_whatever_the_order(pb: ModuleType) -> None:
    cls = request_class(pb, "Messaging", "GetMessage")
    entries = [
        ("star", cls, http_pb2.HttpRule(get="/v1/{name=shelves/*}")),
        ("double", cls, http_pb2.HttpRule(get="/v1/{name=**}")),
        ("literal", cls, http_pb2.HttpRule(get="/v1/shelves/special")),
        ("verb", cls, http_pb2.HttpRule(get="/v1/{name=shelves/*}:get")),
    ]
    for ordered in (entries, entries[::-1]):
        router = Router(ordered)
        assert router.route("GET", "/v1/shelves/special")[0] == "literal"
        assert router.route("GET", "/v1/shelves/x")[0] == "star"
        assert router.route("GET", "/v1/shelves/x:get")[0] == "verb"
        assert router.route("GET", "/v1/other/x")[0] == "double"


def test_ties_go_to_the_first_registered(pb: ModuleType) -> None:
    router = service_router(pb, "Messaging")  # GetMessage, GetMessageWithQuery, GetMessageBindings share a path
    assert router.route("GET", "/v1/messages/1")[0] == "GetMessage"
    assert router.route("PATCH", "/v1/messages/1", "", b'{"text": "t"}')[0] == "UpdateMessage"


def test_exact_method_beats_custom_wildcard_method(pb: ModuleType) -> None:
    cls = request_class(pb, "Messaging", "GetMessage")
    router = Router(
        [
            ("any", cls, http_pb2.HttpRule(custom=http_pb2.CustomHttpPattern(kind="*", path="/v1/{name}"))),
            ("get", cls, http_pb2.HttpRule(get="/v1/{name}")),
        ]
    )
    assert router.route("GET", "/v1/x")[0] == "get"
    assert router.route("OPTIONS", "/v1/x")[0] == "any"


def test_custom_kind_matches_whatever_its_case(pb: ModuleType) -> None:
    cls = request_class(pb, "Messaging", "GetMessage")
    router = Router([("m", cls, http_pb2.HttpRule(custom=http_pb2.CustomHttpPattern(kind="purge", path="/v1/{name}")))])
    assert router.route("PURGE", "/v1/x")[0] == "m"


def test_keys_can_be_any_hashable(pb: ModuleType) -> None:
    cls = request_class(pb, "Messaging", "GetMessage")
    key = ("svc", "Method")
    router: Router[tuple[str, str]] = Router([(key, cls, http_pb2.HttpRule(get="/v1/{name=messages/*}"))])
    got, request = router.route("GET", "/v1/messages/a")
    assert got is key and same(request, cls(name="messages/a"))


# --- response bodies ------------------------------------------------------------------------------


def test_response_body_field(pb: ModuleType) -> None:
    rule = rule_of(pb, "Library", "ListShelves")
    response = pb.ListShelvesResponse(shelves=[pb.Shelf(name="shelves/a", theme="t")], next_page_token="n")
    body = encode_response(rule, response)
    assert body == b'[{"name":"shelves/a","theme":"t"}]'
    assert same(decode_response(rule, body, pb.ListShelvesResponse), pb.ListShelvesResponse(shelves=response.shelves))
    assert encode_response(rule, pb.ListShelvesResponse()) == b"[]"
    assert same(decode_response(rule, b"", pb.ListShelvesResponse), pb.ListShelvesResponse())


RESPONSES = [
    P(
        b'{"name":"shelves/s/books/b","title":"T","authors":["x"]}',
        {"name": "shelves/s/books/b", "title": "T", "authors": ["x"]},
        id="json-names",
    ),
    P(b'{"name":"n","unknownField":{"deep":[1]},"another":1}', {"name": "n"}, id="unknown-fields-ignored"),
    P(b'{"name":"n","authors":["a","b"]}', {"name": "n", "authors": ["a", "b"]}, id="repeated"),
    P(b"", {}, id="empty-body"),
    P(b"  \n", {}, id="blank-body"),
    P('{"title":"é"}'.encode(), {"title": "é"}, id="utf8"),
]


@pytest.mark.parametrize(("body", "fields"), RESPONSES)
def test_decode_response(pb: ModuleType, body: bytes, fields: dict[str, Any]) -> None:
    rule = rule_of(pb, "Library", "GetBook")
    assert same(decode_response(rule, body, pb.Book), pb.Book(**fields))


def test_decode_response_accepts_proto_names(pb: ModuleType) -> None:
    rule = http_pb2.HttpRule(get="/v1/shelves")
    decoded = decode_response(rule, b'{"next_page_token": "t", "shelves": [{"name": "a"}]}', pb.ListShelvesResponse)
    assert same(decoded, pb.ListShelvesResponse(next_page_token="t", shelves=[pb.Shelf(name="a")]))


@pytest.mark.parametrize(
    "body",
    [
        P(b"{", id="syntax"),
        P(b"[]", id="not-an-object"),
        P(b'"x"', id="string"),
        P(b'{"authors": "x"}', id="wrong-type"),
        P(b"\xff", id="not-utf8"),
    ],
)
def test_decode_response_errors(pb: ModuleType, body: bytes) -> None:
    with pytest.raises(errors.ApiError, match="cannot decode the transcodetest.v1.Book response") as caught:
        decode_response(rule_of(pb, "Library", "GetBook"), body, pb.Book)
    assert caught.value.code == code_pb2.UNKNOWN


def test_encode_response(pb: ModuleType) -> None:
    rule = rule_of(pb, "Library", "GetBook")
    assert encode_response(rule, pb.Book(name="n", authors=["é"])) == '{"name":"n","authors":["é"]}'.encode()
    assert encode_response(rule_of(pb, "Library", "HeadShelf"), empty_pb2.Empty()) == b"{}"
    cls = response_class(pb, "Library", "SearchThings")
    assert encode_response(rule_of(pb, "Library", "SearchThings"), cls(i64=5)) == b'{"i64":"5"}'


def test_unknown_response_body_field_is_a_malformed_rule(pb: ModuleType) -> None:
    rule = http_pb2.HttpRule(get="/v1/x", response_body="nope")
    with pytest.raises(errors.InvalidTemplateError, match="response_body: 'nope' is not a field"):
        encode_response(rule, pb.Book())
    with pytest.raises(errors.InvalidTemplateError, match="response_body"):
        decode_response(rule, b"{}", pb.Book)
