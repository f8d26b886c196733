"""Our descriptors set exactly the options googleapis' Vision protos set (deprecated, field_behavior, ...).

The official package cannot tell (proto-plus drops these options): the facts are the checked-in table
of googleapis_options.py, whose names are checked against the official package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Imported for their extensions: options parse them only when they are registered.
from google.api import annotations_pb2, client_pb2, field_behavior_pb2, resource_pb2  # noqa: F401
from google.longrunning import operations_proto_pb2  # noqa: F401
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from tests.conformance import googleapis_options
from tests.conformance.test_schema import ROOT, _compile_descriptor_set

_PACKAGE = "google.cloud.vision."


def _options(options: Message) -> dict[str, Any]:
    reparsed = type(options).FromString(options.SerializeToString())  # extensions as registered now
    return json_format.MessageToDict(reparsed, preserving_proto_field_name=True)


def declared(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(file name -> file options, element full name -> options) of the Vision files among ``files``;
    every message (map entries excepted), field, oneof, enum and enum value has an entry, ``{}`` if it
    sets no option."""
    file_options: dict[str, Any] = {}
    elements: dict[str, Any] = {}

    def enum(prefix: str, proto: descriptor_pb2.EnumDescriptorProto) -> None:
        name = f"{prefix}.{proto.name}"
        elements[name] = _options(proto.options)
        for value in proto.value:
            elements[f"{name}.{value.name}"] = _options(value.options)

    def message(prefix: str, proto: descriptor_pb2.DescriptorProto) -> None:
        if proto.options.map_entry:
            return  # generated for a map field; its only option is map_entry
        name = f"{prefix}.{proto.name}"
        elements[name] = _options(proto.options)
        for part in (*proto.field, *proto.oneof_decl):
            elements[f"{name}.{part.name}"] = _options(part.options)
        for nested_enum in proto.enum_type:
            enum(name, nested_enum)
        for nested in proto.nested_type:
            message(name, nested)

    for file in files:
        if not file.package.startswith(_PACKAGE):
            continue
        file_options[file.name] = _options(file.options)
        for top in file.message_type:
            message(file.package, top)
        for top_enum in file.enum_type:
            enum(file.package, top_enum)
    return file_options, elements


def differences(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> list[str]:
    """How the options of ``files`` differ from googleapis' (an element or file they lack is not a difference
    here: test_schema compares which messages and fields exist)."""
    file_options, elements = declared(files)
    problems = [
        f"file {name}: ours {options} != googleapis {googleapis_options.FILE_OPTIONS.get(name)}"
        for name, options in sorted(file_options.items())
        if options != googleapis_options.FILE_OPTIONS.get(name)
    ]
    problems += [
        f"{name}: ours {options} != googleapis {googleapis_options.ELEMENT_OPTIONS.get(name, {})}"
        for name, options in sorted(elements.items())
        if options != googleapis_options.ELEMENT_OPTIONS.get(name, {})
    ]
    return problems


def _our_files() -> list[descriptor_pb2.FileDescriptorProto]:
    files = []
    for version in ("v1", "v1p4beta1"):
        package = importlib.import_module(f"vision_grpc._gen.{version}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.endswith("_pb2"):
                module = importlib.import_module(f"{package.__name__}.{info.name}")
                files.append(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    return files


def test_every_option_matches_googleapis() -> None:
    files = _our_files()
    assert len(files) == len(googleapis_options.FILE_OPTIONS)  # every Vision file of both versions
    assert differences(files) == []


def test_deprecated_is_set_where_googleapis_sets_it_and_nowhere_else() -> None:
    _, elements = declared(_our_files())
    assert sorted(name for name, options in elements.items() if options.get("deprecated")) == [
        "google.cloud.vision.v1.EntityAnnotation.confidence",
        "google.cloud.vision.v1.WebDetectionParams.include_geo_results",
        "google.cloud.vision.v1p4beta1.EntityAnnotation.confidence",
    ]


def test_table_names_exist_in_the_official_package(official: dict[str, Any]) -> None:
    """Guards the table against typos; its entries we do not define are outside the promised schema."""
    ours = declared(_our_files())[1]
    assert official["exists"] == {name: True for name in googleapis_options.ELEMENT_OPTIONS}
    outside = [name for name in googleapis_options.ELEMENT_OPTIONS if name not in ours]
    assert outside, "the table also covers Product Search requests, which we do not define"
    assert [name for name in outside if name.rsplit(".", 1)[0] in official["schema"]] == []


def test_a_dropped_option_is_caught(tmp_path: Path) -> None:
    """Proves the comparison can fail: drop one `deprecated` option in a copy of the protos."""
    copy_root = tmp_path / "protos"
    for proto in (ROOT / "protos").rglob("*.proto"):
        target = copy_root / proto.relative_to(ROOT / "protos")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(proto.read_text())
    mutated = copy_root / "google/cloud/vision/v1/image_annotator.proto"
    text = mutated.read_text()
    assert text.count("float confidence = 5 [deprecated = true];") == 1
    mutated.write_text(text.replace("float confidence = 5 [deprecated = true];", "float confidence = 5;"))
    assert differences(_compile_descriptor_set(copy_root, tmp_path).file) == [
        "google.cloud.vision.v1.EntityAnnotation.confidence: ours {} != googleapis {'deprecated': True}"
    ]
