"""Schema helpers shared by the test process and the official-client subprocess.

Our generated types and google-cloud-vision's declare the same fully qualified names, so
protobuf refuses to load both into one process. Each side runs these functions in its own
process and the test compares what they print. This module imports protobuf only.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as _d
from google.protobuf.message import Message

# Messages whose closure is the schema we promise (requests, responses, operation types).
ROOTS = (
    "BatchAnnotateImagesRequest",
    "BatchAnnotateImagesResponse",
    "BatchAnnotateFilesRequest",
    "BatchAnnotateFilesResponse",
    "AsyncBatchAnnotateImagesRequest",
    "AsyncBatchAnnotateImagesResponse",
    "AsyncBatchAnnotateFilesRequest",
    "AsyncBatchAnnotateFilesResponse",
    "OperationMetadata",
)
VERSIONS = ("v1", "v1p4beta1")


def proto_name(field: _d.FieldDescriptor) -> str:
    """The .proto field name; the official Python types append ``_`` to names like ``type``."""
    return field.name[:-1] if field.name.endswith("_") else field.name


def _real_oneof(field: _d.FieldDescriptor) -> str | None:
    oneof = field.containing_oneof
    if oneof is None or (len(oneof.fields) == 1 and oneof.name == "_" + field.name):
        return None  # synthetic oneof of a proto3 `optional` field
    return oneof.name


def _is_map(field: _d.FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _type_name(field: _d.FieldDescriptor) -> str:
    if _is_map(field):
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return f"map<{_type_name(key)},{_type_name(value)}>"
    target = field.message_type or field.enum_type
    return target.full_name if target is not None else ""


def closure(roots: list[_d.Descriptor], package: str) -> dict[str, Any]:
    """Every message and enum of ``package`` reachable from ``roots``, by full name."""
    found: dict[str, Any] = {}

    def visit(desc: Any) -> None:
        if desc.full_name in found or not desc.full_name.startswith(package + "."):
            return
        found[desc.full_name] = desc
        if isinstance(desc, _d.Descriptor):
            for field in desc.fields:
                if field.message_type is not None:
                    visit(field.message_type)
                if field.enum_type is not None:
                    visit(field.enum_type)

    for root in roots:
        visit(root)
    return found


def describe(desc: Any) -> dict[str, Any]:
    """A canonical, comparable record of one message or enum."""
    if isinstance(desc, _d.EnumDescriptor):
        return {"enum": {v.name: v.number for v in desc.values}}
    fields = {}
    for f in desc.fields:
        fields[proto_name(f)] = {
            "number": f.number,
            "type": f.type,
            "repeated": f.is_repeated and not _is_map(f),
            "map": _is_map(f),
            "type_name": _type_name(f),
            "json_name": f.json_name,
            "oneof": _real_oneof(f),
            "presence": bool(f.has_presence),
        }
    return {"fields": fields}


def dump_schema(roots_by_version: dict[str, list[_d.Descriptor]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for version, roots in roots_by_version.items():
        for name, desc in closure(roots, f"google.cloud.vision.{version}").items():
            if not (isinstance(desc, _d.Descriptor) and desc.GetOptions().map_entry):
                out[name] = describe(desc)
    return out


# -- fully populated messages -------------------------------------------------------------


def _scalar(field: _d.FieldDescriptor, index: int) -> Any:
    n = field.number + index
    t = field.type
    if t in (_d.FieldDescriptor.TYPE_STRING,):
        return f"{proto_name(field)}-{n}"
    if t == _d.FieldDescriptor.TYPE_BYTES:
        return bytes([0, 255, n % 256]) + proto_name(field).encode()
    if t == _d.FieldDescriptor.TYPE_BOOL:
        return True
    if t in (_d.FieldDescriptor.TYPE_FLOAT, _d.FieldDescriptor.TYPE_DOUBLE):
        return n + 0.5  # exactly representable in both widths
    if t in (_d.FieldDescriptor.TYPE_INT64, _d.FieldDescriptor.TYPE_SINT64, _d.FieldDescriptor.TYPE_SFIXED64):
        return -(2**40) - n
    if t in (_d.FieldDescriptor.TYPE_UINT64, _d.FieldDescriptor.TYPE_FIXED64):
        return 2**40 + n
    if t in (_d.FieldDescriptor.TYPE_INT32, _d.FieldDescriptor.TYPE_SINT32, _d.FieldDescriptor.TYPE_SFIXED32):
        return -n if n % 2 else n
    if t in (_d.FieldDescriptor.TYPE_UINT32, _d.FieldDescriptor.TYPE_FIXED32):
        return n
    if t == _d.FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    raise TypeError(f"unhandled field type {t} of {field.full_name}")


def populate(msg: Message, stack: tuple[str, ...] = ()) -> Message:
    """Set every field of ``msg`` (one branch per oneof), recursively, deterministically."""
    desc = msg.DESCRIPTOR
    if desc.full_name == "google.protobuf.Timestamp":
        msg.seconds, msg.nanos = 1_700_000_000, 250_000_000  # type: ignore[attr-defined]
        return msg
    if desc.full_name == "google.protobuf.Any" or desc.full_name in stack:
        return msg  # Any needs a resolvable type; cycles stop here
    stack = (*stack, desc.full_name)
    chosen: set[str] = set()
    for field in sorted(desc.fields, key=lambda f: f.number):
        oneof = _real_oneof(field)
        if oneof is not None:
            if oneof in chosen:
                continue
            chosen.add(oneof)
        target = getattr(msg, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for i in range(2):
                key = _scalar(field.message_type.fields_by_name["key"], i)
                if value_field.message_type is not None:
                    populate(target[key], stack)
                else:
                    target[key] = _scalar(value_field, i)
        elif field.is_repeated:
            for i in range(2):
                if field.message_type is not None:
                    populate(target.add(), stack)
                else:
                    target.append(_scalar(field, i))
        elif field.message_type is not None:
            populate(target, stack)
            target.SetInParent()
        else:
            setattr(msg, field.name, _scalar(field, 0))
    return msg
