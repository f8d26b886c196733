"""The server side of gRPC transcoding: route an HTTP request to a method and decode its request.

Implements the HTTP-to-RPC direction of ``google.api.HttpRule`` (google/api/http.proto,
https://github.com/googleapis/googleapis/blob/master/google/api/http.proto): path variables,
query parameters and the body (``*`` or a top-level field, proto3 JSON) become one request message.
Use it as ``vision_grpc._transcoding.Router``; it does not depend on the client side.

Choices where the spec is silent:

- Several templates match: the most specific wins (``Template.specificity``: left to right, a
  literal beats ``*`` beats ``**``, then a verb beats none), then an exact method over a custom
  ``*``, then the order of registration (the rule before its ``additional_bindings``).
- No template matches the path: ``NotFound`` (404). A template matches but not with this HTTP
  method: ``Unimplemented`` with HTTP status 405 (google.rpc has no "method not allowed"; this is
  also what grpc-gateway answers); a server sends that ``http_status``, with ``methods_for(path)``
  as its ``Allow`` header.
- The body is merged first, then the query, then the path, so a path value wins over the body.
- Query keys are field paths in JSON or proto names (``sub.subfield``), repeated for repeated
  fields; bools are ``true``/``false``, enums a name or number, Timestamp/Duration/FieldMask/wrappers
  their JSON string form, Struct/Value/ListValue/Any/Empty JSON text. A key naming no field, a map
  or a repeated message, a message as a whole, a field carried by the path or the body, a singular
  field twice, two members of one oneof: ``InvalidArgument`` (400) naming the parameter. Google's
  system parameters (``key``, ``alt``, ``fields``, ...) are ignored unless the message has such a
  field; with ``body: "*"`` any other query parameter is a 400 (all fields go in the body).
- Request bodies are strict proto3 JSON (unknown fields and duplicate keys are a 400); a body sent
  to a binding without one is ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from google.api import http_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc import errors
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding.fields import (
    JSON_TEXT_MESSAGES,
    LEAF_MESSAGES,
    WRAPPERS,
    Binding,
    bad_request,
    bindings,
    body_field,
    descriptor_of,
    is_map,
    json_fields,
    loads,
    resolve_path_field,
)
from vision_grpc._transcoding.match import TemplateMatcher, matcher
from vision_grpc._transcoding.template import Variable

__all__ = ["SYSTEM_PARAMETERS", "Router"]

K = TypeVar("K", bound=Hashable)

# https://cloud.google.com/apis/docs/system-parameters (URL query parameter forms). The ``$``
# forms are what Google's own REST clients send (``$alt=json;enum-encoding=int``).
_SYSTEM_NAMES = (
    "alt",
    "callback",
    "fields",
    "key",
    "prettyPrint",
    "quotaUser",
    "userIp",
    "uploadType",
    "upload_protocol",
    "access_token",
    "oauth_token",
)
SYSTEM_PARAMETERS = frozenset({"$.xgafv", *_SYSTEM_NAMES, *(f"${name}" for name in _SYSTEM_NAMES)})


class Router(Generic[K]):
    """Routes HTTP requests to ``(key, request message)``; build it once from the method table."""

    def __init__(self, entries: Iterable[tuple[K, type[Message], http_pb2.HttpRule]]) -> None:
        routes: list[_Route[K]] = []
        for key, request_cls, rule in entries:
            for binding in bindings(rule):
                routes.append(_Route.build(key, request_cls, binding, len(routes)))
        self.routes: tuple[_Route[K], ...] = tuple(routes)

    def route(self, http_method: str, raw_path: str, query: str = "", body: bytes = b"") -> tuple[K, Message]:
        """The key and decoded request for ``raw_path`` (still percent-encoded, without ``?query``).

        Raises ``NotFound``, ``Unimplemented`` (HTTP 405) or ``InvalidArgument``; see the module doc.
        """
        method = http_method.upper()
        matches = [(r, found) for r in self.routes if (found := r.matcher.match_raw(raw_path)) is not None]
        if not matches:
            raise errors.NotFound(f"no method is bound to {raw_path}", code=code_pb2.NOT_FOUND)
        allowed = [(r, found) for r, found in matches if r.method in (method, "*")]
        if not allowed:
            methods = ", ".join(sorted({r.method for r, _ in matches}))
            message = f"{method} is not allowed on {raw_path} (allowed: {methods})"
            raise errors.Unimplemented(message, code=code_pb2.UNIMPLEMENTED, http_status=405)
        route, captured = min(allowed, key=lambda pair: pair[0].rank)
        return route.key, route.decode(captured, query, body)

    def methods_for(self, raw_path: str) -> list[str]:
        """The HTTP methods bound to ``raw_path``, sorted (``*`` for a custom one): a 405's ``Allow`` header."""
        return sorted({r.method for r in self.routes if r.matcher.match_raw(raw_path) is not None})


@dataclass(frozen=True)
class _QueryField:
    chain: tuple[FieldDescriptor, ...]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(fd.name for fd in self.chain)


@dataclass(frozen=True)
class _Route(Generic[K]):
    key: K
    request_cls: type[Message]
    binding: Binding
    matcher: TemplateMatcher  # compiled once per route: no per-request lookup
    path_fields: tuple[tuple[Variable, tuple[FieldDescriptor, ...]], ...]
    body: FieldDescriptor | None
    rank: tuple[Any, ...]
    method: str  # upper case, so that a custom kind matches whatever its case

    @classmethod
    def build(cls, key: K, request_cls: type[Message], binding: Binding, order: int) -> _Route[K]:
        desc = descriptor_of(request_cls)
        template = binding.template
        fields = tuple((v, resolve_path_field(desc, v, template)) for v in template.variables)
        rank = (template.specificity, binding.method == "*", order)
        body = body_field(desc, binding)
        return cls(key, request_cls, binding, matcher(template), fields, body, rank, binding.method.upper())

    def decode(self, captured: Mapping[str, str], query: str, body: bytes) -> Message:
        values = self.matcher.decode(captured)
        message = self.request_cls()
        if self.binding.body and body.strip():
            self._merge_body(message, body)
        self._merge_query(message, query)
        for variable, chain in self.path_fields:
            _merge(message, chain, [values[variable.name]], variable.name)
        return message

    def _merge_body(self, message: Message, body: bytes) -> None:
        try:
            data = loads(body)
            if self.body is not None:
                data = {self.body.name: data}
            elif not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            json_format.ParseDict(data, message, descriptor_pool=JSON_TYPES)
        except (ValueError, json_format.ParseError) as exc:
            raise bad_request("body", f"invalid JSON body: {exc}") from None

    def _merge_query(self, message: Message, query: str) -> None:
        grouped: dict[tuple[str, ...], tuple[str, _QueryField, list[str]]] = {}
        for key, text in _parse_query(query):
            target = _query_field(descriptor_of(self.request_cls), key)
            if key in SYSTEM_PARAMETERS and (target is None or self.binding.body == "*"):
                continue
            if target is None:
                raise bad_request(key, f"unknown query parameter: no such field in {message.DESCRIPTOR.full_name}")
            self._check_place(key, target)
            entry = grouped.setdefault(target.path, (key, target, []))
            if entry[0] != key:
                raise bad_request(key, f"the same field as {entry[0]!r}")
            entry[2].append(text)
        chosen: dict[tuple[tuple[str, ...], str], str] = {}
        for key, target, texts in grouped.values():
            if len(texts) > 1 and not target.chain[-1].is_repeated:
                raise bad_request(key, "a singular field given more than once")
            for depth, fd in enumerate(target.chain):
                oneof = fd.containing_oneof
                # Keyed by the member field: several subfields of one message member are one choice.
                if oneof is not None and chosen.setdefault((target.path[:depth], oneof.name), fd.name) != fd.name:
                    raise bad_request(key, f"only one field of oneof {oneof.name!r} may be set")
            _merge(message, target.chain, texts, key)

    def _check_place(self, key: str, target: _QueryField) -> None:
        if self.binding.body == "*":
            raise bad_request(key, f"{self.binding} takes every field in the body, no query parameter")
        if self.body is not None and target.path[0] == self.body.name:
            raise bad_request(key, f"the body carries {self.body.name!r} for {self.binding}")
        for variable, _ in self.path_fields:
            short, long = sorted((variable.field_path, target.path), key=len)
            if long[: len(short)] == short:
                raise bad_request(key, f"the path carries {variable.name!r} for {self.binding}")


def _parse_query(query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise bad_request("query", "the query string is not UTF-8") from None


@functools.lru_cache(maxsize=4096)
def _query_field(desc: Descriptor, key: str) -> _QueryField | None:
    """The field a query key names (JSON or proto names, dotted); None if none."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    for part in key.split("."):
        if current is None:
            return None
        fd = json_fields(current).get(part) or current.fields_by_name.get(part)
        if fd is None:
            return None
        if is_map(fd) or (
            fd.is_repeated and fd.message_type is not None and fd.message_type.full_name not in LEAF_MESSAGES
        ):
            raise bad_request(key, "map and repeated message fields cannot be set from the query")
        chain.append(fd)
        leaf = fd.message_type is None or fd.message_type.full_name in LEAF_MESSAGES
        current = None if leaf else fd.message_type
    if current is not None:
        raise bad_request(key, f"a message: set its fields, as {key}.<field>")
    return _QueryField(tuple(chain))


def _leaf_json(fd: FieldDescriptor, text: str) -> Any:
    """The proto3 JSON value ``json_format`` expects for one path or query text of field ``fd``."""
    if fd.message_type is not None:
        name = fd.message_type.full_name
        if name in JSON_TEXT_MESSAGES:
            return loads(text)
        if name in WRAPPERS:
            return _leaf_json(fd.message_type.fields_by_name["value"], text)
        return text
    if fd.type == FieldDescriptor.TYPE_BOOL:
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, not {text!r}")
        return text == "true"
    return text  # json_format takes numbers, enum names or numbers and base64 as strings


def _merge(message: Message, chain: tuple[FieldDescriptor, ...], texts: list[str], parameter: str) -> None:
    leaf = chain[-1]
    try:
        value: Any = [_leaf_json(leaf, t) for t in texts] if leaf.is_repeated else _leaf_json(leaf, texts[0])
        for fd in reversed(chain):
            value = {fd.name: value}
        json_format.ParseDict(value, message, descriptor_pool=JSON_TYPES)
    except (ValueError, json_format.ParseError) as exc:
        raise bad_request(parameter, f"invalid value: {exc}") from None
