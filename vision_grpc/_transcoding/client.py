"""gRPC transcoding per ``google.api.http`` rules: request message to HTTP request and back.

Implements "gRPC Transcoding" as specified by ``google.api.HttpRule`` in google/api/http.proto
(https://github.com/googleapis/googleapis/blob/master/google/api/http.proto) with proto3 JSON
(``google.protobuf.json_format``): fields bound by the path template go in the URL path, the
``body`` field (or, for ``body: "*"``, every other field) in a JSON body, and the remaining fields
in the query. Pure: no I/O. ``to_http`` / ``decode_response`` are the client side; ``encode_response``
(here: it shares the ``response_body`` handling with ``decode_response``) serves the server side,
whose ``Router`` is ``vision_grpc._transcoding.server`` (this module does not import it).

Client choices where the spec is silent:

- Binding choice: a binding qualifies when every field its path binds is set (non-default: proto3
  cannot tell ``0`` or ``false`` from unset) and matches its variable's pattern. Of the qualifying
  bindings, the one whose path carries the most fields wins, the first declared on a tie (the
  rule's own before its ``additional_bindings``); the fields its path does not carry go in the body
  or the query like any other field (http.proto: fields bound by neither path nor body are query
  parameters). If the query cannot carry one of them (see below), the next qualifying binding in
  that order is tried (one with ``body: "*"`` carries everything). So any message that some binding
  can carry is sent, and our Router decodes what is sent back to the same message. If none
  qualifies: ``ValidationError(field, "must match <pattern> for <METHOD> <template>")`` for the
  first pattern that failed. Nothing is sent.
- Query parameters use JSON names (``sub.subfield``, ``pageSize``), as Google's clients do;
  values are the proto3 JSON forms (int64 in decimal, bytes base64, enums by name; Timestamp,
  Duration, FieldMask, wrappers as their JSON strings; Struct, Value, ListValue, Any as compact
  JSON text). Maps, repeated messages and set but empty messages cannot be query parameters:
  ``ValidationError``.
- Path-bound fields are left out of the body, also for a named body field that contains them. An
  unset message as the body field is sent as ``null`` (``{}`` would set it).
- ``response_body`` is that of the rule itself (not of an additional binding). A response that
  is not the expected JSON raises ``ApiError`` with code UNKNOWN.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from google.api import http_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc import errors
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import jsonpb
from vision_grpc._transcoding.fields import (
    JSON_TEXT_MESSAGES,
    LEAF_MESSAGES,
    Binding,
    body_field,
    descriptor_of,
    dumps,
    is_map,
    json_fields,
    resolve_path_field,
    serialized_bindings,
)
from vision_grpc._transcoding.jsonpb import message_to_dict
from vision_grpc._transcoding.match import TemplateMatcher, VariableMatcher, matcher

__all__ = ["Binding", "HttpRequest", "decode_response", "encode_response", "to_http"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class HttpRequest:
    """What to send: ``query`` holds decoded pairs; ``target`` is the encoded path and query."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None  # UTF-8 JSON, or None when the binding has no body

    @property
    def query_string(self) -> str:
        """``k=v&...``, every character but ``[-_.~0-9a-zA-Z]`` percent-encoded (space is ``%20``)."""
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)

    @property
    def target(self) -> str:
        query = self.query_string
        return f"{self.path}?{query}" if query else self.path


@dataclass(frozen=True)
class _PathField:
    variable: VariableMatcher
    json_path: tuple[str, ...]


@dataclass(frozen=True)
class _ClientBinding:
    binding: Binding
    matcher: TemplateMatcher  # compiled once per plan: no per-call lookup
    fields: tuple[_PathField, ...]
    json_paths: frozenset[tuple[str, ...]]
    body: FieldDescriptor | None


@dataclass(frozen=True)
class _Plan:
    bindings: tuple[_ClientBinding, ...]
    names: dict[tuple[str, ...], str]  # JSON path -> proto field path, for every path-bound field


@functools.lru_cache(maxsize=256)
def _plan(serialized_rule: bytes, desc: Descriptor) -> _Plan:
    planned: list[_ClientBinding] = []
    names: dict[tuple[str, ...], str] = {}
    for binding in serialized_bindings(serialized_rule):
        compiled = matcher(binding.template)
        fields = []
        for variable in compiled.variables:
            chain = resolve_path_field(desc, variable.variable, binding.template)
            fields.append(_PathField(variable, tuple(fd.json_name for fd in chain)))
            names[fields[-1].json_path] = variable.name
        json_paths = frozenset(f.json_path for f in fields)
        planned.append(_ClientBinding(binding, compiled, tuple(fields), json_paths, body_field(desc, binding)))
    return _Plan(tuple(planned), names)


def to_http(rule: http_pb2.HttpRule, request: Message) -> HttpRequest:
    """The HTTP request for ``request`` per ``rule``; raises ``ValidationError`` before sending anything."""
    desc = descriptor_of(type(request))
    plan = _plan(rule.SerializeToString(deterministic=True), desc)
    data = message_to_dict(request, _message_to_dict)  # MessageToDict's output, by a precompiled walk
    candidates = _choose(plan, data)
    first_error: errors.ValidationError | None = None
    for chosen, values in candidates:
        try:
            return _request(chosen, values, data, desc)
        except errors.ValidationError as exc:  # the query cannot carry a field this binding leaves to it
            first_error = first_error or exc
    assert first_error is not None  # _choose returns at least one candidate
    raise first_error


def _message_to_dict(message: Message) -> Any:
    """json_format's JSON object of ``message``, for what the precompiled walk leaves to it."""
    return json_format.MessageToDict(message, descriptor_pool=JSON_TYPES)


def _request(chosen: _ClientBinding, values: dict[str, str], data: dict[str, Any], desc: Descriptor) -> HttpRequest:
    """The request for one qualifying binding (``data`` is left as it is: another binding may be tried)."""
    path = chosen.matcher.expand(values)
    body_set = chosen.body is not None and chosen.body.json_name in data
    for field in chosen.fields:
        data = _without(data, field.json_path)
    if chosen.binding.body == "*":
        return HttpRequest(chosen.binding.method, path, (), dumps(data))
    body = None
    if body_set:
        assert chosen.body is not None
        data = dict(data)
        body = dumps(data.pop(chosen.body.json_name, {}))  # {}: a message the path fields emptied stays set
    elif chosen.body is not None:
        message = chosen.body.message_type is not None and not chosen.body.is_repeated
        body = _UNSET_MESSAGE if message else dumps(_absent(chosen.body))
    query: list[tuple[str, str]] = []
    _flatten(data, desc, "", "", query)
    return HttpRequest(chosen.binding.method, path, tuple(query), body)


_UNSET_MESSAGE = b"null"  # proto3 JSON: null leaves a message field unset ({} would set it, empty)


def _choose(plan: _Plan, data: dict[str, Any]) -> list[tuple[_ClientBinding, dict[str, str]]]:
    """The qualifying bindings with their path values, best first (see the module doc); raises
    ``ValidationError`` for the first pattern that failed when none qualifies."""
    present = {path: _text(value, False) for path in plan.names if (value := _lookup(data, path)) is not None}
    mismatch: tuple[VariableMatcher, Binding] | None = None
    qualifying: list[tuple[_ClientBinding, dict[str, str]]] = []
    for candidate in plan.bindings:
        values: dict[str, str] = {}
        for field in candidate.fields:
            text = present.get(field.json_path)
            if text is None or not field.variable.accepts(text):
                mismatch = mismatch or (field.variable, candidate.binding)
                break
            values[field.variable.name] = text
        else:
            qualifying.append((candidate, values))
    if not qualifying:
        assert mismatch is not None  # a rule has at least one binding
        variable, binding = mismatch
        raise errors.ValidationError(variable.name, f"must match {variable.variable.pattern_text} for {binding}")
    if len(qualifying) > 1:  # stable: declaration order among bindings whose paths carry as many fields
        qualifying.sort(key=lambda pair: -len(pair[0].json_paths))
    return qualifying


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _without(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """MessageToDict output without one field, nor the messages that only held it (copies, not changes)."""
    if path[0] not in data:
        return data
    out = dict(data)
    if len(path) == 1:
        del out[path[0]]
        return out
    child = out[path[0]]
    if isinstance(child, dict):
        child = _without(child, path[1:])
        if child:
            out[path[0]] = child
        else:
            del out[path[0]]
    return out


def _text(value: Any, json_text: bool) -> str:
    """One query or path value: the JSON string itself, other JSON values as compact JSON text
    (keys sorted: protobuf maps, hence Struct, have no stable order)."""
    if isinstance(value, str) and not json_text:
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _flatten(data: dict[str, Any], desc: Descriptor, name: str, key: str, out: list[tuple[str, str]]) -> None:
    """Append ``(query key, value)`` for every field in ``data`` (MessageToDict output of ``desc``)."""
    fields = json_fields(desc)
    for json_name, value in data.items():
        fd = fields.get(json_name)
        if fd is None:
            raise errors.ValidationError(name + json_name, "an extension cannot be sent as a query parameter")
        field_name, query_key = name + fd.name, key + json_name
        sub = fd.message_type
        if is_map(fd) or (fd.is_repeated and sub is not None and sub.full_name not in LEAF_MESSAGES):
            kind = "a map" if is_map(fd) else "a repeated message"
            raise errors.ValidationError(field_name, f"{kind} field cannot be sent as query parameters")
        if sub is not None and sub.full_name not in LEAF_MESSAGES:
            if not value:  # set, with no field set: no query parameter can say so
                raise errors.ValidationError(field_name, "an empty message field cannot be sent as query parameters")
            _flatten(value, sub, field_name + ".", query_key + ".", out)
            continue
        json_text = sub is not None and sub.full_name in JSON_TEXT_MESSAGES
        out.extend((query_key, _text(item, json_text)) for item in (value if fd.is_repeated else [value]))


def _absent(fd: FieldDescriptor) -> Any:
    """The JSON of an unset body field: MessageToDict leaves it out."""
    if is_map(fd):
        return {}
    if fd.is_repeated:
        return []
    if fd.message_type is not None:
        return None if fd.message_type.full_name in LEAF_MESSAGES else {}
    if fd.has_presence:
        return None
    if fd.enum_type is not None:
        zero = fd.enum_type.values_by_number.get(0)
        return zero.name if zero is not None else 0
    defaults = {FieldDescriptor.TYPE_BOOL: False, FieldDescriptor.TYPE_STRING: "", FieldDescriptor.TYPE_BYTES: ""}
    return defaults.get(fd.type, "0" if fd.type in jsonpb.INT64_TYPES else 0)


def _response_field(rule: http_pb2.HttpRule, desc: Descriptor) -> FieldDescriptor | None:
    if not rule.response_body:
        return None
    fd = desc.fields_by_name.get(rule.response_body)
    if fd is None:
        template = serialized_bindings(rule.SerializeToString(deterministic=True))[0].template
        reason = f"response_body: {rule.response_body!r} is not a field of {desc.full_name}"
        raise errors.InvalidTemplateError(str(template), 0, reason)
    return fd


def decode_response(rule: http_pb2.HttpRule, body: bytes, response_cls: type[M]) -> M:
    """The response message from an HTTP response body (unknown JSON fields are ignored); any body that
    is not one raises ``ApiError`` (UNKNOWN), whatever is wrong with it."""
    message = response_cls()
    fd = _response_field(rule, descriptor_of(type(message)))
    try:
        # Responses are parsed leniently (no duplicate-key check, which requests get on the server
        # side): the client takes what the service sends. msgspec decodes when the `fast` extra is in.
        data = jsonpb.loads(body) if body.strip() else ({} if fd is None else None)
        if fd is not None:
            data = {fd.name: data}
        elif not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        try:
            # The precompiled walk: json_format's message, built in C (a dense OCR response ~5x faster).
            built: M = jsonpb.message_builder(response_cls)(data)
            return built
        except jsonpb.Fallback:
            pass  # outside its subset (an Any, an odd value...): json_format decides
        json_format.ParseDict(data, message, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
    except Exception as exc:  # the body is the server's: json and json_format raise ValueError, ParseError and,
        # on odd input, RecursionError (nesting), TypeError, AttributeError...; each is the answer's fault
        reason = "nested too deeply" if isinstance(exc, RecursionError) else errors.describe(str(exc), 300)
        text = f"cannot decode the {message.DESCRIPTOR.full_name} response: {reason or type(exc).__name__}"
        raise errors.ApiError(text, code=code_pb2.UNKNOWN) from None
    return message


def encode_response(rule: http_pb2.HttpRule, message: Message) -> bytes:
    """The HTTP response body for ``message``: its JSON, or that of the ``response_body`` field."""
    fd = _response_field(rule, descriptor_of(type(message)))
    data = json_format.MessageToDict(message, descriptor_pool=JSON_TYPES)
    return dumps(data if fd is None else data.get(fd.json_name, _absent(fd)))
