"""Run in a subprocess: answers schema questions with the official google-cloud-vision package.

Reads one JSON request on stdin and prints one JSON answer. It must not import vision_grpc
(the two schemas cannot share a process); it loads ``schema_tools`` by path.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, json_format, message_factory

_spec = importlib.util.spec_from_file_location("schema_tools", Path(__file__).with_name("schema_tools.py"))
assert _spec and _spec.loader
schema_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schema_tools)


def _module(version: str) -> Any:
    return importlib.import_module(f"google.cloud.vision_{version}")


def _message_class(full_name: str) -> Any:
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def schema() -> dict[str, Any]:
    roots = {v: [getattr(_module(v), r).pb().DESCRIPTOR for r in schema_tools.ROOTS] for v in schema_tools.VERSIONS}
    return schema_tools.dump_schema(roots)


def methods() -> dict[str, Any]:
    """Per version and RPC: gRPC path and types, REST bindings, LRO types, flattened params."""
    out: dict[str, Any] = {}
    for version in schema_tools.VERSIONS:
        pkg = f"google.cloud.vision_{version}.services.image_annotator"
        rest_base = importlib.import_module(pkg + ".transports.rest_base")._BaseImageAnnotatorRestTransport
        grpc_src = inspect.getsource(importlib.import_module(pkg + ".transports.grpc"))
        client_src = inspect.getsource(importlib.import_module(pkg + ".client"))
        rpcs: dict[str, Any] = {}
        for match in re.finditer(
            r'"/google\.cloud\.vision\.\w+\.ImageAnnotator/(\w+)",\s*'
            r"request_serializer=\w+\.(\w+)\.serialize,\s*"
            r"response_deserializer=([\w.]+)\.(?:deserialize|FromString)",
            grpc_src,
        ):
            name, request, response = match.groups()
            response = response.split(".")[-1]
            rpcs[name] = {
                "request": f"google.cloud.vision.{version}.{request}",
                "response": "google.longrunning.Operation"
                if response == "Operation"
                else f"google.cloud.vision.{version}.{response}",
                "http": [dict(b) for b in getattr(rest_base, f"_Base{name}")._get_http_options()],
            }
        for name, info in rpcs.items():
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
            body = client_src.split(f"def {snake}(", 1)[1].split("\n    def ", 1)[0]
            params = re.search(r"flattened_params = \[([^\]]*)\]", body)
            info["signature"] = params.group(1).replace(" ", "") if params else ""
            lro = re.search(
                r"operation\.from_gapic\([^)]*?image_annotator\.(\w+),\s*"
                r"metadata_type=image_annotator\.(\w+)",
                body,
                re.S,
            )
            info["operation_info"] = list(lro.groups()) if lro else None
        get_operation = getattr(rest_base, "_BaseGetOperation", None)  # v1 only
        out[version] = {
            "rpcs": rpcs,
            "operations_get": [dict(b) for b in get_operation._get_http_options()] if get_operation else [],
        }
    return out


def exists(names: list[str]) -> dict[str, bool]:
    """Whether each full name is a message, enum, field or enum value of the official package."""
    for version in schema_tools.VERSIONS:
        _module(version)  # registers the version's descriptors in the default pool
    pool = descriptor_pool.Default()
    finders = (pool.FindMessageTypeByName, pool.FindEnumTypeByName, pool.FindFieldByName)
    out: dict[str, bool] = {}
    for name in names:
        parent, _, leaf = name.rpartition(".")
        found = False
        for find in finders:
            try:
                find(name)
                found = True
            except KeyError:
                pass
        try:
            found = found or leaf in pool.FindEnumTypeByName(parent).values_by_name
        except KeyError:
            pass
        out[name] = found
    return out


def main() -> None:
    request = json.load(sys.stdin)
    answer: dict[str, Any] = {}
    if request.get("schema"):
        answer["schema"] = schema()
    if request.get("methods"):
        answer["methods"] = methods()
    answer["exists"] = exists(request.get("exists", []))
    answer["parsed"] = [
        json_format.MessageToDict(_message_class(item["type"]).FromString(base64.b64decode(item["b64"])))
        for item in request.get("parse", [])
    ]
    answer["populated"] = []
    for full_name in request.get("populate", []):
        msg = schema_tools.populate(_message_class(full_name)())
        answer["populated"].append(
            {
                "b64": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),
                "json": json_format.MessageToDict(msg),
            }
        )
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
