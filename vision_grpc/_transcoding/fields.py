"""Descriptor helpers shared by both directions of gRPC transcoding (``vision_grpc._transcoding.client``).

An ``HttpRule`` (google/api/http.proto, https://github.com/googleapis/googleapis/blob/master/google/api/http.proto)
becomes a tuple of ``Binding`` values (the rule, then its ``additional_bindings``), cached by the
rule's serialized bytes; field paths of path variables and the body are resolved against a message
descriptor here, so that a malformed rule fails once with ``InvalidTemplateError``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, cast

from google.api import http_pb2
from google.protobuf import any_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vision_grpc import errors
from vision_grpc._transcoding.parse import parse
from vision_grpc._transcoding.template import Template, Variable

__all__ = [
    "JSON_TEXT_MESSAGES",
    "LEAF_MESSAGES",
    "STRING_FORM_MESSAGES",
    "WRAPPERS",
    "Binding",
    "bad_request",
    "bindings",
    "body_field",
    "descriptor_of",
    "dumps",
    "is_map",
    "json_fields",
    "loads",
    "resolve_path_field",
    "serialized_bindings",
]

_WRAPPERS = {
    f"google.protobuf.{t}Value"
    for t in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
# Message types sent as one query value: their JSON form is a string or scalar...
STRING_FORM_MESSAGES = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask", *_WRAPPERS}
)
# ... or a JSON document, sent as its compact text (there is no other way to say it in a query).
JSON_TEXT_MESSAGES = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Any",
        "google.protobuf.Empty",
    }
)
LEAF_MESSAGES = STRING_FORM_MESSAGES | JSON_TEXT_MESSAGES
WRAPPERS = frozenset(_WRAPPERS)


@dataclass(frozen=True)
class Binding:
    """One HTTP binding of a method: the rule itself or one of its ``additional_bindings``."""

    method: str  # "GET", "POST", ...; a custom kind as written ("HEAD", "*" for any)
    template: Template
    body: str  # "", "*" or a top-level field name
    response_body: str

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def bindings(rule: http_pb2.HttpRule) -> tuple[Binding, ...]:
    """The rule's own binding, then its ``additional_bindings`` in order (parsed once per rule)."""
    return serialized_bindings(rule.SerializeToString(deterministic=True))


@functools.lru_cache(maxsize=512)
def serialized_bindings(serialized: bytes) -> tuple[Binding, ...]:
    """``bindings`` of a rule given as its deterministic serialization (the cache key)."""
    rule = http_pb2.HttpRule.FromString(serialized)
    out = [_binding(rule)]
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise errors.InvalidTemplateError(str(out[0].template), 0, "additional_bindings cannot be nested")
        out.append(_binding(extra))
    return tuple(out)


def _binding(rule: http_pb2.HttpRule) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise errors.InvalidTemplateError("", 0, "the HttpRule has no pattern (get, put, post, delete, patch, custom)")
    if kind == "custom":
        method, path = rule.custom.kind, rule.custom.path
    else:
        method, path = kind.upper(), getattr(rule, kind)
    return Binding(method, parse(path), rule.body, rule.response_body)


def descriptor_of(message_type: type[Message]) -> Descriptor:
    """The message type's descriptor, typed (the stubs also allow upb's own class)."""
    return cast(Descriptor, message_type.DESCRIPTOR)


def is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


@functools.cache
def json_fields(desc: Descriptor) -> dict[str, FieldDescriptor]:
    """Fields by JSON name (``lowerCamel`` or the ``json_name`` option)."""
    return {fd.json_name: fd for fd in desc.fields}


def resolve_path_field(desc: Descriptor, variable: Variable, template: Template) -> tuple[FieldDescriptor, ...]:
    """The field chain a path variable names: singular messages, then a singular primitive field."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    for name in variable.field_path:
        fd = current.fields_by_name.get(name) if current is not None else None
        if fd is None or fd.is_repeated:
            problem = "no such field" if fd is None else "a repeated or map field"
            raise errors.InvalidTemplateError(
                str(template), variable.position, f"{variable.name}: {problem} in {_owner(current, chain)}"
            )
        chain.append(fd)
        current = fd.message_type
    if current is not None:
        raise errors.InvalidTemplateError(
            str(template), variable.position, f"{variable.name}: a path variable must name a primitive field"
        )
    return tuple(chain)


def _owner(desc: Descriptor | None, chain: list[FieldDescriptor]) -> str:
    return desc.full_name if desc is not None else chain[-1].full_name


def body_field(desc: Descriptor, binding: Binding) -> FieldDescriptor | None:
    """The top-level field named by ``body`` (None for "" and "*")."""
    if binding.body in ("", "*"):
        return None
    fd = desc.fields_by_name.get(binding.body)
    if fd is None:
        raise errors.InvalidTemplateError(
            str(binding.template), 0, f"body: {binding.body!r} is not a field of {desc.full_name}"
        )
    return fd


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once: a per-call hot path


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return _ENCODER.encode(value).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(data: bytes | str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys; raises ValueError."""
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def bad_request(field: str, description: str) -> errors.InvalidArgument:
    """A 400 whose status carries a ``google.rpc.BadRequest`` naming the parameter."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    detail = error_details_pb2.BadRequest(field_violations=[violation])
    message = f"{field}: {description}"
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[packed])
    return errors.InvalidArgument(message, code=code_pb2.INVALID_ARGUMENT, details=[detail], status=status)
