"""Properties of the client's binding choice against our own Router, over random messages (hypothesis, bounded).

For every rule of the test proto (and a few rules mixing bindings), with random request messages whose
path fields often fit the rule's patterns:

- whenever ``to_http`` sends a message, the Router decodes that HTTP request back to an equal message;
- whenever some binding could carry the message (its path fields all set and matching, and every other
  set field expressible in its body or query), ``to_http`` sends it.
"""

from __future__ import annotations

import base64
import math
import struct
from types import ModuleType
from typing import Any

from google.api import http_pb2
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support import request_class, rule_of, same
from vision_grpc import errors
from vision_grpc._transcoding import Router, to_http
from vision_grpc._transcoding.fields import Binding, bindings
from vision_grpc._transcoding.match import matcher
from vision_grpc._transcoding.template import DoubleWildcard, Literal, Variable, Wildcard

F = FieldDescriptor
_INT32 = (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32)
_UINT32 = (F.TYPE_UINT32, F.TYPE_FIXED32)
_INT64 = (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64)
_UINT64 = (F.TYPE_UINT64, F.TYPE_FIXED64)
_WRAPPERS = {
    "google.protobuf.DoubleValue": F.TYPE_DOUBLE,
    "google.protobuf.FloatValue": F.TYPE_FLOAT,
    "google.protobuf.Int64Value": F.TYPE_INT64,
    "google.protobuf.UInt64Value": F.TYPE_UINT64,
    "google.protobuf.Int32Value": F.TYPE_INT32,
    "google.protobuf.UInt32Value": F.TYPE_UINT32,
    "google.protobuf.BoolValue": F.TYPE_BOOL,
    "google.protobuf.StringValue": F.TYPE_STRING,
    "google.protobuf.BytesValue": F.TYPE_BYTES,
}
_JSON_TEXT = ("google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue")
_MAX_DEPTH = 2
_FLT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]

# Rules mixing bindings beyond the test proto's own: issue 13's example (x = message_id, y = user_id),
# bindings that tie, a nested path field, a named body and a body-star fallback.
EXTRA_RULES = [
    (
        "Messaging",
        "GetMessageBindings",
        http_pb2.HttpRule(
            get="/p/{message_id=a/*}",
            additional_bindings=[http_pb2.HttpRule(get="/q/{user_id}"), http_pb2.HttpRule(post="/r", body="*")],
        ),
    ),
    (
        "Messaging",
        "GetMessageBindings",
        http_pb2.HttpRule(get="/v1/{message_id}", additional_bindings=[http_pb2.HttpRule(get="/v2/{user_id}")]),
    ),
    (
        "Messaging",
        "GetMessageSubfield",
        http_pb2.HttpRule(
            get="/p/{sub.subfield=s/*}",
            additional_bindings=[
                http_pb2.HttpRule(get="/q/{message_id}/{sub.subfield=**}"),
                http_pb2.HttpRule(patch="/r/{message_id=m/*}", body="sub"),
            ],
        ),
    ),
    (
        "Library",
        "SearchThings",
        http_pb2.HttpRule(
            get="/v1/shelves/{shelf}/things:search",
            additional_bindings=[
                http_pb2.HttpRule(get="/v1/things/{nested.name=n/*}"),
                http_pb2.HttpRule(put="/v1/shelves/{shelf}/tags", body="tags"),
                http_pb2.HttpRule(post="/v1/things:search", body="*"),
            ],
        ),
    ),
]


def _cases(pb: ModuleType) -> list[tuple[str, type[Message], http_pb2.HttpRule]]:
    cases = []
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            cases.append(
                (
                    method.full_name,
                    request_class(pb, service.name, method.name),
                    rule_of(pb, *method.full_name.split(".")[-2:]),
                )
            )
    for index, (service, method, rule) in enumerate(EXTRA_RULES):
        cases.append((f"extra-{index}:{method}", request_class(pb, service, method), rule))
    return cases


# -- random messages as proto3 JSON (proto field names) -----------------------------------------------------

_SEGMENTS = st.one_of(
    st.sampled_from(["a", "b", "m", "n", "s", "1", "x y", "é", "%2F", "a:b", ".", "..", ""]),
    st.text(max_size=3),
)


def _matching(variable: Variable) -> st.SearchStrategy[str]:
    """Values that often match ``variable``'s pattern (segments may still be empty, ``.`` or ``..``)."""
    parts: list[st.SearchStrategy[list[str]]] = []
    for part in variable.pattern:
        if isinstance(part, Literal):
            parts.append(st.just([part.text]))
        elif isinstance(part, Wildcard):
            parts.append(_SEGMENTS.map(lambda s: [s]))
        else:
            assert isinstance(part, DoubleWildcard)
            parts.append(st.lists(_SEGMENTS, max_size=3))
    return st.tuples(*parts).map(lambda lists: "/".join(s for segment in lists for s in segment))


def _float(width: int) -> st.SearchStrategy[Any]:
    def as_json(value: float) -> Any:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value

    values = st.floats(width=width)  # type: ignore[arg-type]
    if width == 32:  # json_format writes ±FLT_MAX as ±3.4028235e+38, then refuses it (protobuf issue 8336)
        values = values.filter(lambda v: abs(v) != _FLT_MAX)
    return values.map(as_json)


def _scalar(fd_type: int, enum: Any = None) -> st.SearchStrategy[Any]:
    if fd_type == F.TYPE_STRING:
        return st.text(max_size=6)
    if fd_type == F.TYPE_BYTES:
        return st.binary(max_size=4).map(lambda b: base64.b64encode(b).decode())
    if fd_type == F.TYPE_BOOL:
        return st.booleans()
    if fd_type in _INT32:
        return st.integers(-(2**31), 2**31 - 1)
    if fd_type in _UINT32:
        return st.integers(0, 2**32 - 1)
    if fd_type in _INT64:
        return st.integers(-(2**63), 2**63 - 1).map(str)
    if fd_type in _UINT64:
        return st.integers(0, 2**64 - 1).map(str)
    if fd_type == F.TYPE_FLOAT:
        return _float(32)
    if fd_type == F.TYPE_DOUBLE:
        return _float(64)
    assert fd_type == F.TYPE_ENUM
    return st.sampled_from([value.name for value in enum.values])


_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=3))
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=2), inner, max_size=2)),
    max_leaves=4,
)


def _timestamp(seconds: int, nanos: int) -> str:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToJsonString()


def _duration(seconds: int, nanos: int) -> str:
    return duration_pb2.Duration(seconds=seconds, nanos=nanos if seconds >= 0 else -nanos).ToJsonString()


_WELL_KNOWN: dict[str, st.SearchStrategy[Any]] = {
    "google.protobuf.Timestamp": st.builds(
        _timestamp, st.integers(-62135596800, 253402300799), st.integers(0, 999_999_999)
    ),
    "google.protobuf.Duration": st.builds(_duration, st.integers(-(10**10), 10**10), st.integers(0, 999_999_999)),
    "google.protobuf.FieldMask": st.sampled_from(["", "a", "aB", "a.bC", "a,b.c"]),
    "google.protobuf.Struct": st.dictionaries(st.text(max_size=2), _JSON, max_size=2),
    "google.protobuf.Value": _JSON,
    "google.protobuf.ListValue": st.lists(_JSON, max_size=2),
    "google.protobuf.Any": st.sampled_from(
        [
            {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"},
            {"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "2024-01-02T03:04:05Z"},
        ]
    ),
    "google.protobuf.Empty": st.just({}),
}


def _value(
    fd: FieldDescriptor, path: tuple[str, ...], patterns: dict[tuple[str, ...], list[Variable]], depth: int
) -> st.SearchStrategy[Any]:
    sub = fd.message_type
    if sub is None:
        if fd.type == F.TYPE_STRING and path in patterns:
            return st.one_of(*(_matching(v) for v in patterns[path]), _scalar(fd.type))
        return _scalar(fd.type, fd.enum_type)
    if sub.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[sub.full_name]
    if sub.full_name in _WRAPPERS:
        return _scalar(_WRAPPERS[sub.full_name])
    return _message(sub, path, patterns, depth + 1)


def _field(
    fd: FieldDescriptor, path: tuple[str, ...], patterns: dict[tuple[str, ...], list[Variable]], depth: int
) -> st.SearchStrategy[Any]:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        key, value = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
        return st.dictionaries(_scalar(key.type), _value(value, path, patterns, depth), max_size=2)
    if fd.is_repeated:
        return st.lists(_value(fd, path, patterns, depth), max_size=2)
    return _value(fd, path, patterns, depth)


def _message(
    desc: Descriptor, prefix: tuple[str, ...], patterns: dict[tuple[str, ...], list[Variable]], depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """A proto3 JSON object of ``desc``: any subset of its fields, at most one member of each oneof."""
    if depth > _MAX_DEPTH:
        return st.just({})
    optional: dict[str, st.SearchStrategy[Any]] = {}
    oneofs: list[st.SearchStrategy[dict[str, Any]]] = []
    for fd in desc.fields:
        oneof = fd.containing_oneof
        if oneof is not None and not (len(oneof.fields) == 1 and oneof.name == "_" + fd.name):
            continue  # a real oneof, drawn below
        optional[fd.name] = _field(fd, (*prefix, fd.name), patterns, depth)
    for oneof in desc.oneofs:
        if len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name:
            continue  # the synthetic oneof of a proto3 `optional` field
        members = [
            _field(fd, (*prefix, fd.name), patterns, depth).map(lambda v, n=fd.name: {n: v}) for fd in oneof.fields
        ]
        oneofs.append(st.one_of(st.just({}), *members))
    plain = st.fixed_dictionaries({}, optional=optional)
    return st.tuples(plain, *oneofs).map(lambda parts: {k: v for part in parts for k, v in part.items()})


# -- the oracle: could a binding carry this message? ------------------------------------------------------


def _path_text(message: Message, variable: Variable) -> str | None:
    """The text a path variable would take: None when its field is unset (at its default)."""
    holder: Any = message
    for name in variable.field_path[:-1]:
        if not holder.HasField(name):
            return None
        holder = getattr(holder, name)
    fd = holder.DESCRIPTOR.fields_by_name[variable.field_path[-1]]
    value = getattr(holder, fd.name)
    if fd.has_presence and not holder.HasField(fd.name):
        return None
    if not fd.has_presence and value == fd.default_value:
        return None
    if fd.enum_type is not None:
        return fd.enum_type.values_by_number[value].name if value in fd.enum_type.values_by_number else str(value)
    if fd.type == F.TYPE_BOOL:
        return "true" if value else "false"
    return str(value)


def _query_cannot_carry(message: Message, skip: str | None) -> bool:
    """Whether a set field (other than the top-level ``skip``) is a map, a repeated message or an empty
    message, somewhere under singular messages: the query cannot express it."""

    def walk(msg: Message, top: bool) -> bool:
        for fd, value in msg.ListFields():
            if top and fd.name == skip:
                continue
            sub = fd.message_type
            if sub is None or sub.full_name.startswith("google.protobuf."):
                continue
            if fd.is_repeated or not value.ListFields():  # a map, a repeated message or an empty message
                return True
            if walk(value, False):
                return True
        return False

    return walk(message, True)


def _can_carry(binding: Binding, message: Message) -> bool:
    """The binding's path fields are all set and match, and the query can express every field that its
    path and body leave to it."""
    for variable, variable_matcher in zip(binding.template.variables, matcher(binding.template).variables, strict=True):
        text = _path_text(message, variable)
        if text is None or not variable_matcher.accepts(text):
            return False
    if binding.body == "*":
        return True
    return not _query_cannot_carry(message, binding.body or None)


# -- the properties ------------------------------------------------------------------------------------------


def _check(name: str, cls: type[Message], rule: http_pb2.HttpRule, data: st.DataObject) -> None:
    all_bindings = bindings(rule)
    patterns: dict[tuple[str, ...], list[Variable]] = {}
    for binding in all_bindings:
        for variable in binding.template.variables:
            patterns.setdefault(variable.field_path, []).append(variable)
    fields = data.draw(_message(cls.DESCRIPTOR, (), patterns), label="fields")
    message = json_format.ParseDict(fields, cls())
    sendable = [str(b) for b in all_bindings if _can_carry(b, message)]
    try:
        sent = to_http(rule, message)
    except errors.ValidationError as exc:
        assert sendable == [], f"{name}: refused ({exc}) although {sendable[0]} can carry it"
        return
    assert sendable, f"{name}: sent as {sent.method} {sent.target} although no binding can carry it"
    router = Router([(name, cls, rule)])
    _, back = router.route(sent.method, sent.path, sent.query_string, sent.body or b"")
    assert same(back, message), f"{name}: {sent.method} {sent.target} {sent.body!r} decodes to {back} not {message}"


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_what_is_sent_routes_back_and_what_fits_a_binding_is_sent(pb: ModuleType, data: st.DataObject) -> None:
    name, cls, rule = data.draw(st.sampled_from(_cases(pb)), label="rule")
    _check(name, cls, rule, data)


def test_router_takes_several_fields_of_a_oneof_message_from_the_query(pb: ModuleType) -> None:
    router = Router([("m", request_class(pb, "Library", "SearchThings"), rule_of(pb, "Library", "SearchThings"))])
    _, back = router.route("GET", "/v1/shelves/a/things:search", "choiceNested.name=n&choiceNested.count=1")
    assert same(
        back, json_format.ParseDict({"shelf": "a", "choice_nested": {"name": "n", "count": "1"}}, pb.Everything())
    )
