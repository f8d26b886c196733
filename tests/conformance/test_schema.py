"""Our compiled schema equals the official google-cloud-vision schema, field by field."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.api import annotations_pb2, client_pb2
from google.longrunning import operations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

from tests.conformance import schema_tools
from tests.conformance.ours import MODULES, ROUND_TRIP, our_class, our_json, our_populated

ROOT = Path(__file__).resolve().parents[2]


def _our_schema() -> dict[str, Any]:
    roots = {v: [getattr(m, r).DESCRIPTOR for r in schema_tools.ROOTS] for v, m in MODULES.items()}
    return schema_tools.dump_schema(roots)


def _differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    problems = [f"missing from ours: {n}" for n in sorted(set(theirs) - set(ours))]
    problems += [f"not in the official schema: {n}" for n in sorted(set(ours) - set(theirs))]
    for name in sorted(set(ours) & set(theirs)):
        if ours[name] != theirs[name]:
            mine, official = ours[name], theirs[name]
            for key in sorted(set(mine.get("fields", {})) | set(official.get("fields", {}))):
                a, b = mine.get("fields", {}).get(key), official.get("fields", {}).get(key)
                if a != b:
                    problems.append(f"{name}.{key}: ours {a} != official {b}")
            if mine.get("enum") != official.get("enum"):
                problems.append(f"{name}: enum ours {mine.get('enum')} != official {official.get('enum')}")
    return problems


def test_every_message_enum_and_field_matches_the_official_schema(official: dict[str, Any]) -> None:
    ours = _our_schema()
    assert len(ours) > 100  # both versions' full closure, not an empty comparison
    assert _differences(ours, official["schema"]) == []


def _rule_dicts(rule: Any) -> list[dict[str, str]]:
    out = []
    for binding in [rule, *rule.additional_bindings]:
        verb = binding.WhichOneof("pattern")
        entry = {"method": verb, "uri": getattr(binding, verb)}
        if binding.body:
            entry["body"] = binding.body
        out.append(entry)
    return out


@pytest.mark.parametrize("version", list(MODULES))
def test_service_methods_match_the_official_client(official: dict[str, Any], version: str) -> None:
    service = MODULES[version].DESCRIPTOR.services_by_name["ImageAnnotator"]
    theirs = official["methods"][version]["rpcs"]
    assert sorted(m.name for m in service.methods) == sorted(theirs)
    for method in service.methods:
        expected = theirs[method.name]
        options = method.GetOptions()
        assert method.input_type.full_name == expected["request"], method.name
        assert method.output_type.full_name == expected["response"], method.name
        assert _rule_dicts(options.Extensions[annotations_pb2.http]) == expected["http"], method.name
        assert ",".join(options.Extensions[client_pb2.method_signature]) == expected["signature"], method.name
        info = options.Extensions[operations_pb2.operation_info]
        got = [info.response_type, info.metadata_type] if info.response_type else None
        assert got == expected["operation_info"], method.name


@pytest.mark.parametrize("version", list(MODULES))
def test_service_host_and_scopes(version: str) -> None:
    options = MODULES[version].DESCRIPTOR.services_by_name["ImageAnnotator"].GetOptions()
    assert options.Extensions[client_pb2.default_host] == "vision.googleapis.com"
    assert options.Extensions[client_pb2.oauth_scopes].split(",") == [
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/cloud-vision",
    ]


@pytest.mark.parametrize(
    ("version", "method", "uri"),
    [
        pytest.param(
            "v1",
            "AsyncBatchAnnotateFiles",
            "/v1/{parent=projects/*/locations/*}/files:asyncBatchAnnotate",
            id="seed-000-files",
        ),
        pytest.param(
            "v1p4beta1", "AsyncBatchAnnotateImages", "/v1p4beta1/images:asyncBatchAnnotate", id="seed-001-images"
        ),
    ],
)
def test_seed_pages_bindings_are_present(version: str, method: str, uri: str) -> None:
    rule = MODULES[version].DESCRIPTOR.services_by_name["ImageAnnotator"].methods_by_name[method].GetOptions()
    assert {"method": "post", "uri": uri, "body": "*"} in _rule_dicts(rule.Extensions[annotations_pb2.http])


@pytest.mark.parametrize("index", range(len(ROUND_TRIP)), ids=[n.split(".", 3)[3] for n in ROUND_TRIP])
def test_our_bytes_parse_with_official_types_to_the_same_json(official: dict[str, Any], index: int) -> None:
    name = ROUND_TRIP[index]
    assert official["parsed"][index] == our_json(our_populated(name))


@pytest.mark.parametrize("index", range(len(ROUND_TRIP)), ids=[n.split(".", 3)[3] for n in ROUND_TRIP])
def test_official_bytes_parse_with_our_types_to_the_same_json_and_bytes(official: dict[str, Any], index: int) -> None:
    name = ROUND_TRIP[index]
    theirs = official["populated"][index]
    raw = base64.b64decode(theirs["b64"])
    parsed = our_class(name).FromString(raw)
    assert our_json(parsed) == theirs["json"]
    assert parsed.SerializeToString(deterministic=True) == raw
    assert our_populated(name).SerializeToString(deterministic=True) == raw


@pytest.mark.parametrize("version", list(MODULES))
def test_round_trip_response_sets_every_annotation_type(version: str) -> None:
    response = our_populated(f"google.cloud.vision.{version}.BatchAnnotateImagesResponse").responses[0]
    unset = [
        f.name
        for f in response.DESCRIPTOR.fields
        if not (len(getattr(response, f.name)) if f.is_repeated else response.HasField(f.name))
    ]
    assert unset == []


def test_a_changed_field_number_is_caught(official: dict[str, Any], tmp_path: Path) -> None:
    """Proves the comparison can fail: renumber one field in a copy of the protos."""
    source = ROOT / "protos/google/cloud/vision/v1/geometry.proto"
    copy_root = tmp_path / "protos"
    for proto in (ROOT / "protos").rglob("*.proto"):
        target = copy_root / proto.relative_to(ROOT / "protos")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(proto.read_text())
    mutated = copy_root / source.relative_to(ROOT / "protos")
    text = mutated.read_text()
    assert "int32 y = 2;" in text
    mutated.write_text(text.replace("int32 y = 2;", "int32 y = 3;", 1))
    descriptor_set = _compile_descriptor_set(copy_root, tmp_path)
    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptor_set.file:
        pool.Add(file_proto)
    roots = {
        v: [pool.FindMessageTypeByName(f"google.cloud.vision.{v}.{r}") for r in schema_tools.ROOTS] for v in MODULES
    }
    problems = _differences(schema_tools.dump_schema(roots), official["schema"])
    assert problems == [
        "google.cloud.vision.v1.Vertex.y: ours {'number': 3, 'type': 5, 'repeated': False, 'map': False, "
        "'type_name': '', 'json_name': 'y', 'oneof': None, 'presence': False} != official {'number': 2, "
        "'type': 5, 'repeated': False, 'map': False, 'type_name': '', 'json_name': 'y', 'oneof': None, "
        "'presence': False}"
    ]


def _compile_descriptor_set(proto_root: Path, tmp_path: Path) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path / "set.pb"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "gen_protos.py"),
        "--proto-root",
        str(proto_root),
        "--descriptor-set-out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_json_names_follow_the_api(official: dict[str, Any]) -> None:
    request = our_class("google.cloud.vision.v1.AsyncBatchAnnotateFilesRequest")()
    json_format.ParseDict(
        {
            "requests": [
                {
                    "inputConfig": {"gcsSource": {"uri": "gs://b/f.pdf"}, "mimeType": "application/pdf"},
                    "features": [{"type": "DOCUMENT_TEXT_DETECTION"}],
                    "outputConfig": {"gcsDestination": {"uri": "gs://b/out/"}, "batchSize": 2},
                }
            ],
            "parent": "projects/p/locations/eu",
        },
        request,
    )
    assert request.requests[0].output_config.batch_size == 2
    assert request.requests[0].features[0].type == 11
