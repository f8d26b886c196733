"""Path templates of google/api/http.proto: grammar, printing, expansion, matching, encoding."""

from __future__ import annotations

import pytest

from vision_grpc import errors
from vision_grpc._transcoding import DoubleWildcard, Literal, Template, Variable, Wildcard, matcher, parse

P = pytest.param

# --- parse and print -------------------------------------------------------------------------------

ROUND_TRIP = [
    P("/", id="root"),
    P("/v1", id="one-literal"),
    P("/v1/messages", id="two-literals"),
    P("/v1/{name=messages/*}", id="spec-get-message"),
    P("/v1/messages/{message_id}", id="spec-shorthand"),
    P("/v1/messages/{message_id}/{sub.subfield}", id="spec-service-config"),
    P("/v1/users/{user_id}/messages/{message_id}", id="spec-additional-binding"),
    P("/v1/{message_id=*}", id="explicit-star"),
    P("/v1/{name=messages/**}", id="double-wildcard-in-variable"),
    P("/v1/{name=**}", id="variable-all-double"),
    P("/v1/{book.name=shelves/*/books/*}", id="dotted-field-path"),
    P("/v1/{a.b.c_d=x}", id="deep-field-path-literal-pattern"),
    P("/v1/files:asyncBatchAnnotate", id="verb-after-literal"),
    P("/v1/{parent=projects/*/locations/*}/files:asyncBatchAnnotate", id="vision-parent"),
    P("/v1/{name=operations/**}:cancel", id="verb-after-double-wildcard"),
    P("/v1/{name}:get", id="verb-after-shorthand"),
    P("/v1/*/x", id="bare-star"),
    P("/v1/**", id="bare-double-star"),
    P("/v1/**:verb", id="bare-double-star-verb"),
    P("/v1/{name=operations}", id="single-literal-pattern"),
    P("/v1/a%20b/{x}", id="percent-encoded-literal"),
    P("/v1/$discovery/rest", id="sub-delims-literal"),
    P("/v1/a-b_c.d~e/!$&'()+,;@", id="all-literal-characters"),
    P("/_/{_x9=_/*}", id="underscore-identifiers"),
]


@pytest.mark.parametrize("template", ROUND_TRIP)
def test_parse_prints_back_to_source(template: str) -> None:
    assert str(parse(template)) == template


STRUCTURE = [
    P("/", Template(()), id="root"),
    P(
        "/v1/{name=messages/*}",
        Template((Literal("v1"), Variable(("name",), (Literal("messages"), Wildcard())))),
        id="spec-get-message",
    ),
    P(
        "/v1/messages/{message_id}",
        Template((Literal("v1"), Literal("messages"), Variable(("message_id",), (Wildcard(),)))),
        id="shorthand",
    ),
    P("/v1/{sub.subfield}", Template((Literal("v1"), Variable(("sub", "subfield")))), id="dotted"),
    P(
        "/v1/{name=operations/**}:cancel",
        Template((Literal("v1"), Variable(("name",), (Literal("operations"), DoubleWildcard()))), "cancel"),
        id="verb",
    ),
    P("/v1/*/**", Template((Literal("v1"), Wildcard(), DoubleWildcard())), id="bare-wildcards"),
]


@pytest.mark.parametrize(("template", "expected"), STRUCTURE)
def test_parse_structure(template: str, expected: Template) -> None:
    assert parse(template) == expected


def test_shorthand_equals_explicit_star_but_prints_as_written() -> None:
    short, explicit = parse("/v1/{name}"), parse("/v1/{name=*}")
    assert short == explicit
    assert (str(short), str(explicit)) == ("/v1/{name}", "/v1/{name=*}")


def test_variables_and_properties() -> None:
    template = parse("/v1/{parent=projects/*}/x/{id}/{rest=a/**}")
    assert [v.name for v in template.variables] == ["parent", "id", "rest"]
    assert [v.multi_segment for v in template.variables] == [True, False, True]
    assert [v.pattern_text for v in template.variables] == ["projects/*", "*", "a/**"]
    assert [v.position for v in template.variables] == [4, 26, 31]
    assert not matcher(parse("/v1/{name=**}")).variables[0].accepts("")
    assert parse("/v1/{name=operations}").variables[0].multi_segment is False


def test_parse_is_cached() -> None:
    assert parse("/v1/{name=cached/*}") is parse("/v1/{name=cached/*}")


def test_matcher_is_cached_per_source() -> None:
    assert matcher(parse("/v1/{name=cached/*}")) is matcher(parse("/v1/{name=cached/*}"))
    # Equal templates (shorthand), but each matcher's errors quote its own source and offsets.
    assert matcher(parse("/v1/{a}/*")) is not matcher(parse("/v1/{a=*}/*"))


INVALID = [
    P("", 0, "must start with '/'", id="empty"),
    P("v1/x", 0, "must start with '/'", id="no-leading-slash"),
    P("/v1/", 4, "empty segment", id="trailing-slash"),
    P("//", 1, "empty segment", id="double-slash-root"),
    P("/v1//x", 4, "empty segment", id="empty-middle-segment"),
    P("/:verb", 1, "empty segment", id="verb-without-segment"),
    P("/v1/{name=}", 10, "empty segment", id="empty-variable-pattern"),
    P("/v1/{name=a/}", 12, "empty segment", id="variable-trailing-slash"),
    P("/v1/{name", 9, "missing '}'", id="unclosed-variable"),
    P("/v1/{name=a/*", 13, "missing '}'", id="unclosed-variable-pattern"),
    P("/v1/name}", 8, "unbalanced '}'", id="stray-closing-brace"),
    P("/v1/{a}}", 7, "unbalanced '}'", id="extra-closing-brace"),
    P("/v1/{a={b}}", 7, "nested", id="nested-variable"),
    P("/v1/{a=x/{b}}", 9, "nested", id="nested-variable-later"),
    P("/v1/x{a}", 5, "'{' must start a segment", id="variable-inside-literal"),
    P("/v1/{a}{b}", 7, "'{' must start a segment", id="adjacent-variables"),
    P("/v1/{a}b", 7, "unexpected character 'b'", id="literal-after-variable"),
    P("/v1/**/x", 4, "'**' must be the last segment", id="double-wildcard-not-last"),
    P("/**/**", 1, "'**' must be the last segment", id="two-double-wildcards"),
    P("/v1/{a=**}/x", 7, "'**' must be the last segment", id="double-wildcard-in-variable-not-last"),
    P("/v1/{a=**/x}", 7, "'**' must be the last segment", id="double-wildcard-inside-not-last"),
    P("/v1/***", 6, "whole segments", id="triple-star"),
    P("/v1/a*", 5, "whole segments", id="star-in-literal"),
    P("/v1/*a", 5, "unexpected character 'a'", id="literal-after-star"),
    P("/v1/{}", 5, "expected a field name", id="empty-field-path"),
    P("/v1/{1abc}", 5, "expected a field name", id="ident-starts-with-digit"),
    P("/v1/{a.}", 7, "expected a field name", id="trailing-dot"),
    P("/v1/{.a}", 5, "expected a field name", id="leading-dot"),
    P("/v1/{a..b}", 7, "expected a field name", id="double-dot"),
    P("/v1/{a-b}", 6, "expected '.', '=' or '}'", id="dash-in-ident"),
    P("/v1/{a b}", 6, "expected '.', '=' or '}'", id="space-in-ident"),
    P("/v1/{a}/{a}", 8, "bound twice", id="duplicate-variable"),
    P("/v1/x:", 6, "empty verb", id="empty-verb"),
    P("/v1/x:a/b", 7, "the verb must end the template", id="segment-after-verb"),
    P("/v1/x:a:b", 7, "':' may only start the verb", id="two-verbs"),
    P("/v1/{a=x:y}", 8, "':' may only start the verb", id="colon-in-variable"),
    P("/v1/{a}:", 8, "empty verb", id="empty-verb-after-variable"),
    P("/v1/a b", 5, "unexpected character ' '", id="space"),
    P("/v1/a?b", 5, "unexpected character '?'", id="question-mark"),
    P("/v1/a#b", 5, "unexpected character '#'", id="hash"),
    P("/v1/a=b", 5, "unexpected character '='", id="equals-in-literal"),
    P("/v1/é", 4, "unexpected character 'é'", id="non-ascii"),
    P("/v1/%zz", 4, "'%' must start an escape", id="bad-escape"),
    P("/v1/a%2", 5, "'%' must start an escape", id="short-escape"),
    P("/v1/x:%", 6, "'%' must start an escape", id="bad-escape-in-verb"),
]


@pytest.mark.parametrize(("template", "position", "reason"), INVALID)
def test_invalid_templates(template: str, position: int, reason: str) -> None:
    with pytest.raises(errors.InvalidTemplateError) as caught:
        parse(template)
    assert (caught.value.template, caught.value.position) == (template, position)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


# --- expansion (client side) -----------------------------------------------------------------------

EXPAND = [
    P("/v1/{name=messages/*}", {"name": "messages/123456"}, "/v1/messages/123456", id="spec-get-message"),
    P("/v1/messages/{message_id}", {"message_id": "123456"}, "/v1/messages/123456", id="spec-shorthand"),
    P(
        "/v1/messages/{message_id}/{sub.subfield}",
        {"message_id": "1", "sub.subfield": "foo"},
        "/v1/messages/1/foo",
        id="dotted",
    ),
    P("/v1/{name}", {"name": "a/b"}, "/v1/a%2Fb", id="single-segment-slash-encoded"),
    P("/v1/{name}", {"name": "a b"}, "/v1/a%20b", id="single-segment-space"),
    P("/v1/{name}", {"name": "100%"}, "/v1/100%25", id="single-segment-percent"),
    P("/v1/{name}", {"name": "é€😀"}, "/v1/%C3%A9%E2%82%AC%F0%9F%98%80", id="single-segment-unicode"),
    P("/v1/{name}", {"name": "-_.~AZaz09"}, "/v1/-_.~AZaz09", id="unreserved-kept"),
    P(
        "/v1/{name}",
        {"name": "!$&'()*+,;=:@?#[]"},
        "/v1/%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40%3F%23%5B%5D",
        id="single-segment-reserved-encoded",
    ),
    P("/v1/{name}", {"name": "..."}, "/v1/...", id="three-dots-allowed"),
    P("/v1/{name}", {"name": ".hidden"}, "/v1/.hidden", id="leading-dot-allowed"),
    P("/v1/{name=messages/*}", {"name": "messages/a b"}, "/v1/messages/a%20b", id="multi-segment-space"),
    P("/v1/{name=messages/*}", {"name": "messages/100%"}, "/v1/messages/100%25", id="multi-segment-percent"),
    P("/v1/{name=messages/*}", {"name": "messages/?#&="}, "/v1/messages/%3F%23%26%3D", id="multi-segment-reserved"),
    P("/v1/{name=messages/*}", {"name": "messages/ü"}, "/v1/messages/%C3%BC", id="multi-segment-unicode"),
    P("/v1/{name=messages/**}", {"name": "messages/a/b c/d"}, "/v1/messages/a/b%20c/d", id="double-keeps-slash"),
    P("/v1/{name=messages/**}", {"name": "messages"}, "/v1/messages", id="double-zero-segments"),
    P("/v1/{name=**}", {"name": "a/b"}, "/v1/a/b", id="all-double"),
    P("/v1/{name=operations/**}:cancel", {"name": "operations/x/y"}, "/v1/operations/x/y:cancel", id="verb"),
    P("/v1/{name=operations}", {"name": "operations"}, "/v1/operations", id="literal-pattern"),
    P(
        "/v1/{p=projects/*/locations/*}/files:asyncBatchAnnotate",
        {"p": "projects/p1/locations/eu"},
        "/v1/projects/p1/locations/eu/files:asyncBatchAnnotate",
        id="vision",
    ),
    P("/v1/{a}/{b=x/*}", {"a": "1", "b": "x/2", "unused": "z"}, "/v1/1/x/2", id="extra-values-ignored"),
    P("/", {}, "/", id="root"),
]


@pytest.mark.parametrize(("template", "values", "expected"), EXPAND)
def test_expand(template: str, values: dict[str, str], expected: str) -> None:
    assert matcher(parse(template)).expand(values) == expected


REJECTED_VALUES = [
    P("/v1/{name=messages/*}", "messages/../admin", id="dot-dot-traversal"),
    P("/v1/{name=messages/*}", "messages/..", id="dot-dot-segment"),
    P("/v1/{name=messages/*}", "messages/.", id="dot-segment"),
    P("/v1/{name=messages/*}", "messages/", id="empty-last-segment"),
    P("/v1/{name=messages/*}", "messages//x", id="empty-middle-segment"),
    P("/v1/{name=messages/*}", "/messages/1", id="leading-slash"),
    P("/v1/{name=messages/*}", "messages/1/extra", id="extra-segment"),
    P("/v1/{name=messages/*}", "messages", id="missing-segment"),
    P("/v1/{name=messages/*}", "users/1", id="wrong-literal"),
    P("/v1/{name=messages/*}", "Messages/1", id="literal-is-case-sensitive"),
    P("/v1/{name=messages/*}", "", id="empty"),
    P("/v1/{name=messages/**}", "messages/a/../b", id="dot-dot-in-double"),
    P("/v1/{name=messages/**}", "messages/a//b", id="empty-in-double"),
    P("/v1/{name=messages/**}", "messages/", id="trailing-slash-in-double"),
    P("/v1/{name=**}", "", id="empty-double"),
    P("/v1/{name=**}", "../x", id="double-leading-dot-dot"),
    P("/v1/{name}", "..", id="single-dot-dot"),
    P("/v1/{name}", ".", id="single-dot"),
    P("/v1/{name}", "", id="single-empty"),
    P("/v1/{name=operations}", "operation", id="literal-pattern-mismatch"),
    P("/v1/{name=operations}", "operations/x", id="literal-pattern-extra"),
    P("/v1/{p=projects/*/locations/*}", "projects/p/zones/eu", id="wrong-middle-literal"),
]


@pytest.mark.parametrize(("template", "value"), REJECTED_VALUES)
def test_expand_rejects_values_that_change_the_path(template: str, value: str) -> None:
    parsed = matcher(parse(template))
    variable = parsed.variables[0]
    assert not variable.accepts(value)
    with pytest.raises(errors.ValidationError) as caught:
        parsed.expand({variable.name: value})
    assert caught.value.field == variable.name
    assert caught.value.rule == f"must match {variable.variable.pattern_text}"


def test_expand_missing_value() -> None:
    with pytest.raises(errors.ValidationError, match=r"^sub\.subfield: must match \*$"):
        matcher(parse("/v1/{id}/{sub.subfield}")).expand({"id": "1"})


def test_reserved_characters_cannot_escape_a_segment() -> None:
    path = matcher(parse("/v1/{name=messages/*}")).expand({"name": "messages/x?admin=1#frag"})
    assert path == "/v1/messages/x%3Fadmin%3D1%23frag"


@pytest.mark.parametrize("template", [P("/v1/*", id="star"), P("/v1/**", id="double-star")])
def test_wildcard_outside_variable_cannot_be_expanded(template: str) -> None:
    with pytest.raises(errors.InvalidTemplateError) as caught:
        matcher(parse(template)).expand({})
    assert caught.value.position == 4


# --- matching (server side) ------------------------------------------------------------------------

MATCH = [
    P("/v1/{name=messages/*}", "/v1/messages/123456", {"name": "messages/123456"}, id="spec-get-message"),
    P("/v1/messages/{message_id}", "/v1/messages/123456", {"message_id": "123456"}, id="spec-shorthand"),
    P(
        "/v1/users/{user_id}/messages/{message_id}",
        "/v1/users/me/messages/123456",
        {"user_id": "me", "message_id": "123456"},
        id="spec-two-variables",
    ),
    P(
        "/v1/messages/{message_id}/{sub.subfield}",
        "/v1/messages/1/foo",
        {"message_id": "1", "sub.subfield": "foo"},
        id="dotted",
    ),
    P("/v1/{name}", "/v1/a%2Fb", {"name": "a/b"}, id="single-decodes-slash"),
    P("/v1/{name}", "/v1/a%2fb", {"name": "a/b"}, id="single-decodes-lower-slash"),
    P("/v1/{name}", "/v1/a%20b%25", {"name": "a b%"}, id="single-decodes-space-percent"),
    P("/v1/{name}", "/v1/%C3%A9%F0%9F%98%80", {"name": "é😀"}, id="single-decodes-unicode"),
    P("/v1/{name}", "/v1/é", {"name": "é"}, id="raw-unicode"),
    P("/v1/{name}", "/v1/a+b", {"name": "a+b"}, id="plus-is-not-space-in-paths"),
    P("/v1/{name}", "/v1/a:b", {"name": "a:b"}, id="colon-without-verb-is-data"),
    P("/v1/{name=messages/*}", "/v1/messages/a%2Fb", {"name": "messages/a%2Fb"}, id="multi-keeps-encoded-slash"),
    P("/v1/{name=messages/*}", "/v1/messages/a%2fb", {"name": "messages/a%2fb"}, id="multi-keeps-lower-slash"),
    P("/v1/{name=messages/*}", "/v1/messages/a%20b%3F%25", {"name": "messages/a b?%"}, id="multi-decodes-rest"),
    P("/v1/{name=messages/*}", "/v1/messages/%C3%BC", {"name": "messages/ü"}, id="multi-decodes-unicode"),
    P("/v1/{name=messages/**}", "/v1/messages", {"name": "messages"}, id="double-zero"),
    P("/v1/{name=messages/**}", "/v1/messages/a", {"name": "messages/a"}, id="double-one"),
    P("/v1/{name=messages/**}", "/v1/messages/a/b/c", {"name": "messages/a/b/c"}, id="double-many"),
    P("/v1/{name=**}", "/v1/a/b", {"name": "a/b"}, id="all-double"),
    P("/v1/{name=**}", "/v1", {"name": ""}, id="all-double-zero"),
    P("/v1/{name=operations/**}:cancel", "/v1/operations/a/b:cancel", {"name": "operations/a/b"}, id="verb"),
    P("/v1/{name=operations/**}:cancel", "/v1/operations:cancel", {"name": "operations"}, id="verb-double-zero"),
    P(
        "/v1/{name=operations/**}:cancel",
        "/v1/operations/a:b:cancel",
        {"name": "operations/a:b"},
        id="verb-is-after-the-last-colon",
    ),
    P("/v1/{name}:get", "/v1/a:get", {"name": "a"}, id="verb-after-shorthand"),
    P("/v1/{name}:get", "/v1/a%3Aget:get", {"name": "a:get"}, id="encoded-colon-in-value"),
    P("/v1/files:asyncBatchAnnotate", "/v1/files:asyncBatchAnnotate", {}, id="literal-verb"),
    P(
        "/v1/{p=projects/*}/files:annotate",
        "/v1/projects/x/files:annotate",
        {"p": "projects/x"},
        id="variable-then-literal-verb",
    ),
    P("/v1/*/x", "/v1/anything/x", {}, id="bare-star"),
    P("/v1/**", "/v1/a/b/c", {}, id="bare-double"),
    P("/v1/a%20b/{x}", "/v1/a%20b/1", {"x": "1"}, id="encoded-literal"),
    P("/v1/a%3a/{x}", "/v1/a%3A/1", {"x": "1"}, id="encoded-literal-hex-case"),
    P("/v1/{name=operations}", "/v1/operations", {"name": "operations"}, id="literal-pattern"),
    P("/", "/", {}, id="root"),
]


@pytest.mark.parametrize(("template", "path", "expected"), MATCH)
def test_match(template: str, path: str, expected: dict[str, str]) -> None:
    assert matcher(parse(template)).match(path) == expected


NO_MATCH = [
    P("/v1/{name=messages/*}", "/v1/messages", id="missing-segment"),
    P("/v1/{name=messages/*}", "/v1/messages/", id="empty-segment"),
    P("/v1/{name=messages/*}", "/v1/messages/1/2", id="extra-segment"),
    P("/v1/{name=messages/*}", "/v1/users/1", id="wrong-literal"),
    P("/v1/{name=messages/*}", "v1/messages/1", id="no-leading-slash"),
    P("/v1/{name=messages/*}", "/v1//messages/1", id="double-slash"),
    P("/v1/messages/{id}", "/v1/messages/1/", id="trailing-slash"),
    P("/v1/files:annotate", "/v1/files", id="missing-verb"),
    P("/v1/files:annotate", "/v1/files:annotateX", id="wrong-verb"),
    P("/v1/files", "/v1/files:annotate", id="verb-on-verbless-literal"),
    P("/v1/{name}:get", "/v1/a", id="verb-required"),
    P("/v1/{name}:get", "/v1/:get", id="empty-before-verb"),
    P("/v1/{name=messages/**}", "/v1/messages/a//b", id="double-empty-segment"),
    P("/v1/{name=messages/**}", "/v1/messagesX", id="double-literal-prefix"),
    P("/", "/v1", id="root-only"),
    P("/v1", "/", id="not-root"),
]


@pytest.mark.parametrize(("template", "path"), NO_MATCH)
def test_no_match(template: str, path: str) -> None:
    assert matcher(parse(template)).match(path) is None


@pytest.mark.parametrize(
    "path",
    [
        P("/v1/a%zz", id="bad-hex"),
        P("/v1/a%2", id="short"),
        P("/v1/%FF", id="not-utf8"),
        P("/v1/%C3", id="truncated-utf8"),
    ],
)
def test_match_rejects_malformed_encoding(path: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="path variable 'name'") as caught:
        matcher(parse("/v1/{name}")).match(path)
    assert caught.value.http_status == 400


ROUND_TRIP_VALUES = [
    P("/v1/{name}", "hello world", id="space"),
    P("/v1/{name}", "a/b/c", id="slashes-in-single"),
    P("/v1/{name}", "100% sure?#&=+", id="reserved"),
    P("/v1/{name}", "日本語 😀", id="unicode"),
    P("/v1/{name}", "%2F", id="literal-percent-2F"),
    P("/v1/{name=messages/*}", "messages/hello world", id="multi-space"),
    P("/v1/{name=messages/*}", "messages/ü?#", id="multi-reserved-unicode"),
    P("/v1/{name=messages/**}", "messages/a b/c%d/é", id="double"),
    P("/v1/{name=operations/**}:cancel", "operations/x:y/z", id="colon-before-verb"),
]


@pytest.mark.parametrize(("template", "value"), ROUND_TRIP_VALUES)
def test_expand_then_match_gives_the_value_back(template: str, value: str) -> None:
    parsed = matcher(parse(template))
    name = parsed.variables[0].name
    assert parsed.match(parsed.expand({name: value})) == {name: value}


def test_match_raw_keeps_encoding() -> None:
    assert matcher(parse("/v1/{name}")).match_raw("/v1/a%2Fb") == {"name": "a%2Fb"}


SPECIFICITY = [
    P("/v1/a/b", "/v1/{x}/b", id="literal-beats-star"),
    P("/v1/a/{y}", "/v1/{x}/b", id="leftmost-literal-decides"),
    P("/v1/{x}/c", "/v1/{x=**}", id="star-beats-double"),
    P("/v1/{x}:get", "/v1/{x}", id="verb-beats-none"),
    P("/v1/a/{b=**}", "/v1/{a=*}/c", id="literal-then-double-beats-star"),
]


@pytest.mark.parametrize(("specific", "general"), SPECIFICITY)
def test_specificity(specific: str, general: str) -> None:
    assert parse(specific).specificity < parse(general).specificity
