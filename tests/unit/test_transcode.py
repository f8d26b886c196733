"""gRPC transcoding (google/api/http.proto) both ways: the spec's examples, the test service, query flattening,
binding choice, injection attempts and malformed rules. Server-only behaviour: test_transcode_server.py; Vision's
own rules: test_transcode_vision.py."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from google.api import http_pb2

from tests._support import build, request_class, route, rule_of, same, service_router
from vision_grpc import errors
from vision_grpc._transcoding import HttpRequest, Router, to_http

P = pytest.param


# --- the examples of google/api/http.proto, both directions ----------------------------------------

SPEC_EXAMPLES = [
    P("GetMessage", {"name": "messages/123456"}, "GET", "/v1/messages/123456", None, id="path-template"),
    P(
        "GetMessageWithQuery",
        {"message_id": "123456", "revision": "2", "sub": {"subfield": "foo"}},
        "GET",
        "/v1/messages/123456?revision=2&sub.subfield=foo",
        None,
        id="query-parameters",
    ),
    P(
        "UpdateMessage",
        {"message_id": "123456", "message": {"text": "Hi!"}},
        "PATCH",
        "/v1/messages/123456",
        '{"text":"Hi!"}',
        id="body-field",
    ),
    P(
        "UpdateMessageStar",
        {"message_id": "123456", "text": "Hi!"},
        "PATCH",
        "/v1/messages/123456",
        '{"text":"Hi!"}',
        id="body-star",
    ),
    P(
        "GetMessageBindings",
        {"message_id": "123456"},
        "GET",
        "/v1/messages/123456",
        None,
        id="additional-bindings-first",
    ),
    P(
        "GetMessageBindings",
        {"user_id": "me", "message_id": "123456"},
        "GET",
        "/v1/users/me/messages/123456",
        None,
        id="additional-bindings-second",
    ),
    P(
        "GetMessageSubfield",
        {"message_id": "123456", "sub": {"subfield": "foo"}, "revision": "2"},
        "GET",
        "/v1/messages/123456/foo?revision=2",
        None,
        id="service-config-nested-path-field",
    ),
]


@pytest.mark.parametrize(("method", "fields", "http_method", "target", "body"), SPEC_EXAMPLES)
def test_spec_examples_to_http(
    pb: ModuleType, method: str, fields: dict[str, Any], http_method: str, target: str, body: str | None
) -> None:
    request = to_http(rule_of(pb, "Messaging", method), build(pb, "Messaging", method, fields))
    assert (request.method, request.target) == (http_method, target)
    assert request.body == (body.encode() if body is not None else None)


@pytest.mark.parametrize(("method", "fields", "http_method", "target", "body"), SPEC_EXAMPLES)
def test_spec_examples_from_http(
    pb: ModuleType, method: str, fields: dict[str, Any], http_method: str, target: str, body: str | None
) -> None:
    router = service_router(pb, "Messaging", only=method)
    key, request = route(router, http_method, target, body.encode() if body is not None else None)
    assert key == method
    assert same(request, build(pb, "Messaging", method, fields))


# --- the Library service: one router for every binding ---------------------------------------------

EVERYTHING = {
    "shelf": "s1",
    "text": "hello world",
    "i32": -1,
    "i64": "-9007199254740993",
    "u32": 4294967295,
    "u64": "18446744073709551615",
    "s32": -2,
    "s64": "-3",
    "f32": 4,
    "f64": "5",
    "sf32": -6,
    "sf64": "-7",
    "real32": 1.5,
    "real64": 0.1,
    "flag": True,
    "blob": "AQID/w==",
    "color": "RED",
    "nested": {
        "name": "n",
        "count": "2",
        "color": "GREEN",
        "tags": ["x", "y"],
        "inner": {"ratio": 2.5, "notes": ["é"]},
    },
    "tags": ["a", "b&c"],
    "numbers": ["1", "2"],
    "colors": ["RED", "GREEN"],
    "blobs": ["AA==", "/w=="],
    "flags": [True, False],
    "choiceNumber": 7,
    "when": "2024-05-06T07:08:09.500Z",
    "howLong": "3.5s",
    "mask": "text,nested.count",
    "maybeI32": 0,
    "maybeI64": "8",
    "maybeU64": "9",
    "maybeFlag": False,
    "maybeText": "",
    "maybeReal": 1e-7,
    "maybeBlob": "AQ==",
    "meta": {"k": "v", "n": 1},
    "dynamic": "str",
    "list": [1, "two", None],
    "times": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
    "optText": "",
    "optNumber": 0,
    "customName": "r",
    "extra": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"},
    "maybeReal32": 0.25,
    "maybeU32": 3,
}
EVERYTHING_QUERY = (
    "text=hello%20world&i32=-1&i64=-9007199254740993&u32=4294967295&u64=18446744073709551615&s32=-2&s64=-3"
    "&f32=4&f64=5&sf32=-6&sf64=-7&real32=1.5&real64=0.1&flag=true&blob=AQID%2Fw%3D%3D&color=RED"
    "&nested.name=n&nested.count=2&nested.color=GREEN&nested.tags=x&nested.tags=y&nested.inner.ratio=2.5"
    "&nested.inner.notes=%C3%A9&tags=a&tags=b%26c&numbers=1&numbers=2&colors=RED&colors=GREEN"
    "&blobs=AA%3D%3D&blobs=%2Fw%3D%3D&flags=true&flags=false&choiceNumber=7&when=2024-05-06T07%3A08%3A09.500Z"
    "&howLong=3.500s&mask=text%2Cnested.count&maybeI32=0&maybeI64=8&maybeU64=9&maybeFlag=false&maybeText="
    "&maybeReal=1e-07&maybeBlob=AQ%3D%3D&meta=%7B%22k%22%3A%22v%22%2C%22n%22%3A1.0%7D&dynamic=%22str%22"
    "&list=%5B1.0%2C%22two%22%2Cnull%5D&times=2024-01-01T00%3A00%3A00Z&times=2024-01-02T00%3A00%3A00Z"
    "&optText=&optNumber=0&customName=r"
    "&extra=%7B%22%40type%22%3A%22type.googleapis.com%2Fgoogle.protobuf.Duration%22%2C%22value%22%3A%221s%22%7D"
    "&maybeReal32=0.25&maybeU32=3"
)

LIBRARY = [
    P("GetBook", {"name": "shelves/s1/books/b 1"}, "GET", "/v1/shelves/s1/books/b%201", None, id="get"),
    P(
        "GetBook",
        {"name": "shelves/ü/books/a?b#c%"},
        "GET",
        "/v1/shelves/%C3%BC/books/a%3Fb%23c%25",
        None,
        id="get-encoded",
    ),
    P(
        "UpdateBook",
        {"book": {"name": "shelves/s/books/b", "title": "T", "authors": ["a", "b"]}, "update_mask": "title,authors"},
        "PATCH",
        "/v1/shelves/s/books/b?updateMask=title%2Cauthors",
        '{"title":"T","authors":["a","b"]}',
        id="nested-path-field-inside-body-field",
    ),
    P(
        "UpdateBook",
        {"book": {"name": "shelves/s/books/b"}},
        "PATCH",
        "/v1/shelves/s/books/b",
        "{}",
        id="body-field-emptied-by-path",
    ),
    P(
        "ArchiveBook",
        {"name": "shelves/s/books/b", "reason": "old", "until": "2030-01-01T00:00:00Z"},
        "POST",
        "/v1/shelves/s/books/b:archive",
        '{"reason":"old","until":"2030-01-01T00:00:00Z"}',
        id="verb-body-star",
    ),
    P(
        "ArchiveBook",
        {"name": "shelves/s/books/b"},
        "POST",
        "/v1/shelves/s/books/b:archive",
        "{}",
        id="body-star-only-path",
    ),
    P(
        "GetObject",
        {"name": "buckets/b/objects/dir/sub dir/file.txt", "generation": "7"},
        "GET",
        "/v1/buckets/b/objects/dir/sub%20dir/file.txt?generation=7",
        None,
        id="double-wildcard",
    ),
    P("GetObject", {"name": "buckets/b/objects"}, "GET", "/v1/buckets/b/objects", None, id="double-wildcard-zero"),
    P(
        "GetObject",
        {"name": "buckets/b/objects/a:purge"},
        "GET",
        "/v1/buckets/b/objects/a%3Apurge",
        None,
        id="colon-in-name-without-verb",
    ),
    P(
        "PurgeObjects",
        {"name": "buckets/b/objects/x/y"},
        "POST",
        "/v1/buckets/b/objects/x/y:purge",
        None,
        id="double-wildcard-verb",
    ),
    P(
        "PurgeObjects",
        {"name": "buckets/b/objects/a:b"},
        "POST",
        "/v1/buckets/b/objects/a%3Ab:purge",
        None,
        id="colon-in-name-with-verb",
    ),
    P("ListShelves", {}, "GET", "/v1/shelves", None, id="no-variables"),
    P(
        "ListShelves",
        {"parent": "projects/p", "page_size": 10, "page_token": "t/1 +"},
        "GET",
        "/v1/projects/p/shelves?pageSize=10&pageToken=t%2F1%20%2B",
        None,
        id="second-binding",
    ),
    P(
        "ListShelves",
        {"parent": "projects/p/locations/l"},
        "GET",
        "/v1/projects/p/locations/l/shelves",
        None,
        id="third-binding",
    ),
    P("HeadShelf", {"name": "shelves/s"}, "HEAD", "/v1/shelves/s", None, id="custom-method"),
    P(
        "SearchThings",
        EVERYTHING,
        "GET",
        "/v1/shelves/s1/things:search?" + EVERYTHING_QUERY,
        None,
        id="query-every-type",
    ),
    P(
        "CreateThing",
        {"shelf": "s", "labels": {"k": "v"}, "items": [{"name": "i"}], "i64": "5", "choiceText": "c"},
        "POST",
        "/v1/shelves/s/things",
        '{"i64":"5","items":[{"name":"i"}],"labels":{"k":"v"},"choiceText":"c"}',
        id="body-star-maps-and-repeated-messages",
    ),
    P(
        "PutThingTags",
        {"shelf": "s", "tags": ["a", "b"], "text": "x"},
        "PUT",
        "/v1/shelves/s/things/tags?text=x",
        '["a","b"]',
        id="repeated-body-field",
    ),
    P("PutThingTags", {"shelf": "s"}, "PUT", "/v1/shelves/s/things/tags", "[]", id="empty-repeated-body-field"),
    P(
        "DeleteThing",
        {"shelf": "s", "number": "-5", "flag": True, "color": "GREEN", "big": "18446744073709551615"},
        "DELETE",
        "/v1/shelves/s/things/-5/true/GREEN/18446744073709551615",
        None,
        id="typed-path-fields",
    ),
]


@pytest.mark.parametrize(("method", "fields", "http_method", "target", "body"), LIBRARY)
def test_library_to_http(
    pb: ModuleType, method: str, fields: dict[str, Any], http_method: str, target: str, body: str | None
) -> None:
    request = to_http(rule_of(pb, "Library", method), build(pb, "Library", method, fields))
    assert (request.method, request.target) == (http_method, target)
    assert request.body == (body.encode() if body is not None else None)


@pytest.mark.parametrize(("method", "fields", "http_method", "target", "body"), LIBRARY)
def test_library_from_http(
    pb: ModuleType,
    library: Router[str],
    method: str,
    fields: dict[str, Any],
    http_method: str,
    target: str,
    body: str | None,
) -> None:
    key, request = route(library, http_method, target, body.encode() if body is not None else None)
    assert key == method
    assert same(request, build(pb, "Library", method, fields))


@pytest.mark.parametrize(("method", "fields"), [P(p.values[0], p.values[1], id=p.id) for p in LIBRARY])
def test_library_round_trip(pb: ModuleType, library: Router[str], method: str, fields: dict[str, Any]) -> None:
    original = build(pb, "Library", method, fields)
    sent = to_http(rule_of(pb, "Library", method), original)
    key, back = library.route(sent.method, sent.path, sent.query_string, sent.body or b"")
    assert key == method and same(back, original)


# --- query flattening, one kind of field at a time -------------------------------------------------

QUERY_TYPES = [
    P({"text": "a b&c=d"}, [("text", "a b&c=d")], id="string"),
    P({"i32": -2147483648}, [("i32", "-2147483648")], id="int32"),
    P({"i64": "9223372036854775807"}, [("i64", "9223372036854775807")], id="int64-decimal-string"),
    P({"u32": 4294967295}, [("u32", "4294967295")], id="uint32"),
    P({"u64": "18446744073709551615"}, [("u64", "18446744073709551615")], id="uint64"),
    P({"s32": -1, "s64": "-2"}, [("s32", "-1"), ("s64", "-2")], id="sint"),
    P(
        {"f32": 1, "f64": "2", "sf32": -3, "sf64": "-4"},
        [("f32", "1"), ("f64", "2"), ("sf32", "-3"), ("sf64", "-4")],
        id="fixed",
    ),
    P({"real32": 0.1}, [("real32", "0.1")], id="float-shortest"),
    P({"real64": 1e300}, [("real64", "1e+300")], id="double-exponent"),
    P({"real64": "NaN"}, [("real64", "NaN")], id="double-nan"),
    P({"real64": "Infinity"}, [("real64", "Infinity")], id="double-infinity"),
    P({"real64": "-Infinity"}, [("real64", "-Infinity")], id="double-negative-infinity"),
    P({"flag": True}, [("flag", "true")], id="bool"),
    P({"blob": "AP8/+w=="}, [("blob", "AP8/+w==")], id="bytes-base64"),
    P({"color": "GREEN"}, [("color", "GREEN")], id="enum-by-name"),
    P(
        {"nested": {"name": "n", "inner": {"ratio": 0.5}}},
        [("nested.name", "n"), ("nested.inner.ratio", "0.5")],
        id="nested-messages",
    ),
    P({"nested": {"tags": ["x", "y"]}}, [("nested.tags", "x"), ("nested.tags", "y")], id="nested-repeated"),
    P({"tags": ["a", "", "a"]}, [("tags", "a"), ("tags", ""), ("tags", "a")], id="repeated-string"),
    P({"numbers": ["1", "-2"]}, [("numbers", "1"), ("numbers", "-2")], id="repeated-int64"),
    P(
        {"colors": ["RED", "COLOR_UNSPECIFIED"]},
        [("colors", "RED"), ("colors", "COLOR_UNSPECIFIED")],
        id="repeated-enum",
    ),
    P({"blobs": ["AA==", ""]}, [("blobs", "AA=="), ("blobs", "")], id="repeated-bytes"),
    P({"flags": [False, True]}, [("flags", "false"), ("flags", "true")], id="repeated-bool"),
    P({"choiceText": "c"}, [("choiceText", "c")], id="oneof-string"),
    P({"choiceNumber": 0}, [("choiceNumber", "0")], id="oneof-default-value-is-set"),
    P({"choiceNested": {"name": "x"}}, [("choiceNested.name", "x")], id="oneof-message"),
    P({"when": "1970-01-01T00:00:00Z"}, [("when", "1970-01-01T00:00:00Z")], id="timestamp-epoch"),
    P({"when": "2024-02-29T23:59:59.123456789Z"}, [("when", "2024-02-29T23:59:59.123456789Z")], id="timestamp-nanos"),
    P({"howLong": "-1.5s"}, [("howLong", "-1.500s")], id="duration"),
    P({"howLong": "0s"}, [("howLong", "0s")], id="duration-zero-is-set"),
    P({"mask": "howLong,nested.inner.ratio"}, [("mask", "howLong,nested.inner.ratio")], id="field-mask"),
    P(
        {"maybeI32": 0, "maybeI64": "-1", "maybeU64": "2", "maybeU32": 3},
        [("maybeI32", "0"), ("maybeI64", "-1"), ("maybeU64", "2"), ("maybeU32", "3")],
        id="integer-wrappers",
    ),
    P(
        {"maybeFlag": False, "maybeText": "", "maybeBlob": ""},
        [("maybeFlag", "false"), ("maybeText", ""), ("maybeBlob", "")],
        id="wrappers-of-defaults",
    ),
    P({"maybeReal": 2.5, "maybeReal32": "NaN"}, [("maybeReal", "2.5"), ("maybeReal32", "NaN")], id="float-wrappers"),
    P(
        {"meta": {"a": [True, None], "b": {"c": "d"}}},
        [("meta", '{"a":[true,null],"b":{"c":"d"}}')],
        id="struct-as-json",
    ),
    P({"dynamic": "text"}, [("dynamic", '"text"')], id="value-string-as-json"),
    P({"dynamic": None}, [("dynamic", "null")], id="value-null"),
    P({"dynamic": {"k": 1.5}}, [("dynamic", '{"k":1.5}')], id="value-object"),
    P({"list": ["a", False]}, [("list", '["a",false]')], id="list-value"),
    P({"times": ["2024-01-01T00:00:00Z"]}, [("times", "2024-01-01T00:00:00Z")], id="repeated-timestamp"),
    P({"optText": "", "optNumber": 0}, [("optText", ""), ("optNumber", "0")], id="proto3-optional-defaults-are-set"),
    P({"customName": "r"}, [("customName", "r")], id="json-name-option"),
    P(
        {"text": "", "i32": 0, "flag": False, "color": "COLOR_UNSPECIFIED", "blob": "", "tags": []},
        [],
        id="defaults-omitted",
    ),
    P({"text": "é 😀 / ? # & = +"}, [("text", "é 😀 / ? # & = +")], id="unicode-and-reserved"),
]


@pytest.mark.parametrize(("fields", "query"), QUERY_TYPES)
def test_query_flattening(
    pb: ModuleType, library: Router[str], fields: dict[str, Any], query: list[tuple[str, str]]
) -> None:
    original = build(pb, "Library", "SearchThings", {"shelf": "s", **fields})
    sent = to_http(rule_of(pb, "Library", "SearchThings"), original)
    assert sent.query == tuple(query) and sent.body is None
    key, back = library.route("GET", sent.path, sent.query_string)
    assert key == "SearchThings" and same(back, original)


@pytest.mark.parametrize(
    ("fields", "field", "kind"),
    [
        P({"labels": {"k": "v"}}, "labels", "a map", id="map"),
        P({"items": [{"name": "i"}]}, "items", "a repeated message", id="repeated-message"),
        P({"nested": {}}, "nested", "an empty message", id="empty-message"),
        P({"nested": {"name": "n", "inner": {}}}, "nested.inner", "an empty message", id="nested-empty-message"),
    ],
)
def test_query_cannot_express(pb: ModuleType, fields: dict[str, Any], field: str, kind: str) -> None:
    request = build(pb, "Library", "SearchThings", {"shelf": "s", **fields})
    with pytest.raises(errors.ValidationError) as caught:
        to_http(rule_of(pb, "Library", "SearchThings"), request)
    assert (caught.value.field, caught.value.rule) == (field, f"{kind} field cannot be sent as query parameters")


def test_query_string_encoding() -> None:
    request = HttpRequest("GET", "/x", (("a b", "c&d=e+f/é%"), ("k", "")))
    assert request.query_string == "a%20b=c%26d%3De%2Bf%2F%C3%A9%25&k="
    assert request.target == "/x?a%20b=c%26d%3De%2Bf%2F%C3%A9%25&k="
    assert HttpRequest("GET", "/x").target == "/x"


# --- binding choice and injection --------------------------------------------------------------------

CHOICE = [
    P({"name": "a/x"}, "/v1/a/x", id="first-binding-wins-when-both-qualify"),
    P({"name": "b/x"}, "/v2/b/x", id="falls-through-to-matching-binding"),
    P({"name": "c"}, "/v3/c", id="falls-through-to-third"),
]


@pytest.mark.parametrize(("fields", "path"), CHOICE)
def test_additional_bindings_order(pb: ModuleType, fields: dict[str, Any], path: str) -> None:
    rule = http_pb2.HttpRule(
        get="/v1/{name=a/*}",
        additional_bindings=[http_pb2.HttpRule(get="/v2/{name=*/*}"), http_pb2.HttpRule(get="/v3/{name}")],
    )
    assert to_http(rule, build(pb, "Messaging", "GetMessage", fields)).path == path


REJECTED = [
    P(
        "Library",
        "GetBook",
        {"name": "shelves/s/books/../../admin"},
        "name",
        "must match shelves/*/books/* for GET /v1/{name=shelves/*/books/*}",
        id="dot-dot",
    ),
    P(
        "Library",
        "GetBook",
        {"name": "shelves/s/books/b/extra"},
        "name",
        "must match shelves/*/books/* for GET /v1/{name=shelves/*/books/*}",
        id="extra-segment",
    ),
    P(
        "Library",
        "GetBook",
        {"name": "shelves//books/b"},
        "name",
        "must match shelves/*/books/* for GET /v1/{name=shelves/*/books/*}",
        id="empty-segment",
    ),
    P(
        "Library",
        "GetBook",
        {"name": "shelves/./books/b"},
        "name",
        "must match shelves/*/books/* for GET /v1/{name=shelves/*/books/*}",
        id="dot",
    ),
    P(
        "Library",
        "GetBook",
        {},
        "name",
        "must match shelves/*/books/* for GET /v1/{name=shelves/*/books/*}",
        id="unset",
    ),
    P(
        "Library",
        "UpdateBook",
        {"book": {"name": "../x"}},
        "book.name",
        "must match shelves/*/books/* for PATCH /v1/{book.name=shelves/*/books/*}",
        id="nested-field",
    ),
    P(
        "Library",
        "GetObject",
        {"name": "buckets/b/objects/a/../../../x"},
        "name",
        "must match buckets/*/objects/** for GET /v1/{name=buckets/*/objects/**}",
        id="double-wildcard-dot-dot",
    ),
    P(
        "Messaging",
        "GetMessage",
        {"name": "messages/1/../../admin"},
        "name",
        "must match messages/* for GET /v1/{name=messages/*}",
        id="spec-multi-segment",
    ),
    P(
        "Messaging",
        "GetMessageBindings",
        {"user_id": "me"},
        "message_id",
        "must match * for GET /v1/messages/{message_id}",
        id="missing-field-of-every-binding",
    ),
    P(
        "Messaging",
        "GetMessageWithQuery",
        {"message_id": ".."},
        "message_id",
        "must match * for GET /v1/messages/{message_id}",
        id="single-segment-dot-dot",
    ),
    P(
        "Library",
        "DeleteThing",
        {"shelf": "s", "number": "1", "color": "RED", "big": "1"},
        "flag",
        "must match * for DELETE /v1/shelves/{shelf}/things/{number}/{flag}/{color}/{big}",
        id="default-bool-unset",
    ),
]


@pytest.mark.parametrize(("service", "method", "fields", "field", "rule"), REJECTED)
def test_values_that_would_change_the_path_are_rejected(
    pb: ModuleType, service: str, method: str, fields: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        to_http(rule_of(pb, service, method), build(pb, service, method, fields))
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_single_segment_variable_encodes_slash_instead_of_rejecting(pb: ModuleType) -> None:
    request = build(pb, "Messaging", "GetMessageWithQuery", {"message_id": "../admin?x=1#y"})
    path = to_http(rule_of(pb, "Messaging", "GetMessageWithQuery"), request).path
    assert path == "/v1/messages/..%2Fadmin%3Fx%3D1%23y"


# Issue 13's example (x = message_id, y = user_id): x fits the rule's own path, y goes to the query.
UNBOUND_RULE = http_pb2.HttpRule(
    get="/p/{message_id=a/*}",
    additional_bindings=[http_pb2.HttpRule(get="/q/{user_id}"), http_pb2.HttpRule(post="/r", body="*")],
)
TIE_RULE = http_pb2.HttpRule(get="/v1/{message_id}", additional_bindings=[http_pb2.HttpRule(get="/v2/{user_id}")])

UNBOUND = [
    P(UNBOUND_RULE, {"message_id": "a/1", "user_id": "yy"}, "GET", "/p/a/1?userId=yy", None, id="issue-13-example"),
    P(UNBOUND_RULE, {"message_id": "b/1", "user_id": "yy"}, "GET", "/q/yy?messageId=b%2F1", None, id="pattern-fails"),
    P(UNBOUND_RULE, {"message_id": "b/1"}, "POST", "/r", '{"messageId":"b/1"}', id="body-star-takes-the-rest"),
    P(UNBOUND_RULE, {}, "POST", "/r", "{}", id="nothing-set"),
    P(TIE_RULE, {"message_id": "m", "user_id": "u"}, "GET", "/v1/m?userId=u", None, id="tie-goes-to-the-first"),
    P(TIE_RULE, {"user_id": "u/v"}, "GET", "/v2/u%2Fv", None, id="the-only-qualifying-one"),
]


@pytest.mark.parametrize(("rule", "fields", "http_method", "target", "body"), UNBOUND)
def test_fields_the_chosen_path_does_not_carry_go_to_the_query_or_body(
    pb: ModuleType, rule: http_pb2.HttpRule, fields: dict[str, Any], http_method: str, target: str, body: str | None
) -> None:
    original = build(pb, "Messaging", "GetMessageBindings", fields)
    sent = to_http(rule, original)
    assert (sent.method, sent.target, sent.body) == (http_method, target, body.encode() if body is not None else None)
    _, back = route(Router([("m", type(original), rule)]), sent.method, sent.target, sent.body)
    assert same(back, original)


QUERY_OR_BODY_RULE = http_pb2.HttpRule(
    get="/v1/shelves/{shelf}/things:search",
    additional_bindings=[http_pb2.HttpRule(post="/v1/shelves/{shelf}/things:search", body="*")],
)


@pytest.mark.parametrize(
    ("fields", "http_method", "body"),
    [
        P({"text": "t"}, "GET", None, id="query-carries-it"),
        P({"labels": {"k": "v"}}, "POST", '{"labels":{"k":"v"}}', id="map"),
        P({"items": [{"name": "i"}]}, "POST", '{"items":[{"name":"i"}]}', id="repeated-message"),
        P({"nested": {}}, "POST", '{"nested":{}}', id="empty-message"),
    ],
)
def test_what_the_query_cannot_carry_goes_to_the_next_qualifying_binding(
    pb: ModuleType, fields: dict[str, Any], http_method: str, body: str | None
) -> None:
    original = build(pb, "Library", "SearchThings", {"shelf": "s", **fields})
    sent = to_http(QUERY_OR_BODY_RULE, original)
    assert (sent.method, sent.path, sent.body) == (
        http_method,
        "/v1/shelves/s/things:search",
        body.encode() if body is not None else None,
    )
    _, back = route(Router([("m", type(original), QUERY_OR_BODY_RULE)]), sent.method, sent.target, sent.body)
    assert same(back, original)


# The rule's own binding (GET /v1/shelves) binds nothing, so it always qualifies: a parent that no other
# binding's pattern takes is a query parameter, as the server accepts it.
@pytest.mark.parametrize("parent", [P("projects/p/zones/z", id="other-shape"), P("projects/../shelves", id="dot-dot")])
def test_path_field_that_fits_no_path_goes_to_the_query(pb: ModuleType, library: Router[str], parent: str) -> None:
    original = build(pb, "Library", "ListShelves", {"parent": parent})
    sent = to_http(rule_of(pb, "Library", "ListShelves"), original)
    assert (sent.method, sent.path, sent.query) == ("GET", "/v1/shelves", (("parent", parent),))
    key, back = route(library, sent.method, sent.target)
    assert key == "ListShelves" and same(back, original)


def test_unset_body_message_is_sent_as_null(pb: ModuleType, library: Router[str]) -> None:
    """``{}`` would set the message (empty) on the server; proto3 JSON's null leaves it unset."""
    original = build(pb, "Messaging", "UpdateMessage", {"message_id": "1"})
    sent = to_http(rule_of(pb, "Messaging", "UpdateMessage"), original)
    assert (sent.method, sent.target, sent.body) == ("PATCH", "/v1/messages/1", b"null")
    _, back = route(service_router(pb, "Messaging", "UpdateMessage"), sent.method, sent.target, sent.body)
    assert same(back, original)


def test_plans_are_cached(pb: ModuleType) -> None:
    from vision_grpc._transcoding import client as _transcode
    from vision_grpc._transcoding import match as _match
    from vision_grpc._transcoding import parse as _parse  # the function (the face re-exports it)

    rule, request = rule_of(pb, "Library", "GetBook"), build(pb, "Library", "GetBook", {"name": "shelves/a/books/b"})
    to_http(rule, request)
    parses, plans, compiles = _parse.cache_info(), _transcode._plan.cache_info(), _match._compile.cache_info()
    for _ in range(3):
        to_http(rule, request)
    assert _parse.cache_info().misses == parses.misses
    assert _transcode._plan.cache_info().hits == plans.hits + 3
    assert _transcode._plan.cache_info().misses == plans.misses
    assert _match._compile.cache_info() == compiles  # the plan holds the compiled matcher: no lookup per call


# --- malformed rules -----------------------------------------------------------------------------------

BAD_RULES = [
    P(http_pb2.HttpRule(get="/v1/{nope}"), "nope: no such field", id="unknown-field"),
    P(http_pb2.HttpRule(get="/v1/{sub}"), "must name a primitive field", id="message-field"),
    P(http_pb2.HttpRule(get="/v1/{sub.nope}"), "sub.nope: no such field", id="unknown-nested-field"),
    P(http_pb2.HttpRule(get="/v1/{revision.x}"), "revision.x: no such field", id="field-of-a-scalar"),
    P(http_pb2.HttpRule(post="/v1/x", body="nope"), "body: 'nope' is not a field", id="unknown-body"),
    P(http_pb2.HttpRule(body="*"), "no pattern", id="no-pattern"),
    P(
        http_pb2.HttpRule(
            get="/v1/x",
            additional_bindings=[http_pb2.HttpRule(get="/v2/x", additional_bindings=[http_pb2.HttpRule(get="/v3/x")])],
        ),
        "cannot be nested",
        id="nested-bindings",
    ),
    P(http_pb2.HttpRule(get="/v1/{message_id"), "missing '}'", id="bad-template"),
]


@pytest.mark.parametrize(("rule", "reason"), BAD_RULES)
def test_malformed_rules(pb: ModuleType, rule: http_pb2.HttpRule, reason: str) -> None:
    cls = request_class(pb, "Messaging", "GetMessageWithQuery")
    with pytest.raises(errors.InvalidTemplateError, match=reason):
        to_http(rule, cls(message_id="1"))
    with pytest.raises(errors.InvalidTemplateError, match=reason):
        Router([("m", cls, rule)])


def test_repeated_path_field_is_a_malformed_rule(pb: ModuleType) -> None:
    with pytest.raises(errors.InvalidTemplateError, match="authors: a repeated or map field"):
        Router([("m", pb.Book, http_pb2.HttpRule(get="/v1/{authors}"))])


def test_wildcard_outside_variable_cannot_be_sent(pb: ModuleType) -> None:
    with pytest.raises(errors.InvalidTemplateError, match="cannot be expanded"):
        to_http(http_pb2.HttpRule(get="/v1/*/{name}"), build(pb, "Messaging", "GetMessage", {"name": "x"}))
