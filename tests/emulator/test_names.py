"""Names the emulator cannot store or should not echo: 400 INVALID_ARGUMENT naming the field, never INTERNAL.

Cloud Storage object names are at most 1024 bytes of UTF-8; the emulator keeps objects as files, so a
path segment is at most 255 bytes and an object cannot also be a "directory" of others (``gs://b/a`` and
``gs://b/a/x.json``). Operation names (and the ``parent`` they are built from) are bounded too. Each
case once failed as INTERNAL (a raw ``OSError``) or, for an output path, as a failed operation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from tests._support import RPC_TIMEOUT, FakeClock
from vision_grpc._core.methods import METHODS, OPERATIONS
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc.emulator import EmulatorService
from vision_grpc.testing import Emulator

PNG = b"\x89PNG\r\n\x1a\n"


def v1_stub(channel: grpc.Channel) -> Any:
    return v1_grpc.ImageAnnotatorStub(channel)  # type: ignore[no-untyped-call]


def _violation(error: grpc.RpcError) -> tuple[int, str, str]:
    """(code, field, message) of an error carrying a BadRequest."""
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin trailer"
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return status.code, bad_request.field_violations[0].field, status.message
    raise AssertionError(f"no BadRequest in {status}")


def _fails(call: Any, *args: Any) -> tuple[int, str, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=RPC_TIMEOUT)
    return _violation(info.value)


def _images(uri: str, out: str = "gs://names/out/", parent: str = "") -> v1.AsyncBatchAnnotateImagesRequest:
    return v1.AsyncBatchAnnotateImagesRequest(
        parent=parent,
        requests=[
            v1.AnnotateImageRequest(
                image=v1.Image(source=v1.ImageSource(image_uri=uri)),
                features=[v1.Feature(type=v1.Feature.LABEL_DETECTION)],
            )
        ],
        output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=out)),
    )


@pytest.mark.parametrize("rpc", ["GetOperation", "WaitOperation", "CancelOperation", "DeleteOperation"])
def test_an_overlong_operation_name_is_invalid_argument(ops: Any, rpc: str) -> None:
    name = "operations/" + "x" * 100_000
    request = getattr(operations_pb2, f"{rpc}Request")(name=name)
    code, field, message = _fails(getattr(ops, rpc), request)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "name")
    assert len(message) < 300  # the name is not echoed back


def test_an_overlong_operation_name_over_rest_is_400(emulator: Emulator) -> None:
    url = f"{emulator.rest_url}/v1/operations/{'x' * 2000}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=RPC_TIMEOUT)
    with info.value as answer:
        error = json.loads(answer.read())["error"]
    assert (answer.code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"][0]["fieldViolations"][0]["field"] == "name"


def test_an_overlong_parent_is_invalid_argument(channel: grpc.Channel) -> None:
    request = _images("gs://names/in.png", parent="projects/" + "p" * 2000)
    code, field, _ = _fails(v1_stub(channel).AsyncBatchAnnotateImages, request)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "parent")


@pytest.mark.parametrize(
    "name",
    ["a/" * 520 + "in.png", "s" * 300 + ".png"],
    ids=["over 1024 bytes", "a segment over 255 bytes"],
)
def test_an_input_name_the_storage_cannot_hold_is_invalid_argument(channel: grpc.Channel, name: str) -> None:
    stub: Any = v1_stub(channel)
    uri = f"gs://names/{name}"
    request = v1.BatchAnnotateImagesRequest(requests=_images(uri).requests)
    code, field, _ = _fails(stub.BatchAnnotateImages, request)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "requests[0].image.source.image_uri")
    files = v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            v1.AsyncAnnotateFileRequest(
                input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri=uri), mime_type="application/pdf"),
                features=[v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)],
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="gs://names/files-out/")),
            )
        ]
    )
    code, field, _ = _fails(stub.AsyncBatchAnnotateFiles, files)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "requests[0].input_config.gcs_source.uri")


def test_an_output_prefix_too_long_for_its_shards_is_invalid_argument(
    emulator: Emulator, channel: grpc.Channel
) -> None:
    emulator.put_object("gs://names/in.png", PNG)
    out = "gs://names/" + "o/" * 505  # 1010 bytes: "output-1-to-1.json" takes the name past 1024
    code, field, _ = _fails(v1_stub(channel).AsyncBatchAnnotateImages, _images("gs://names/in.png", out))
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "output_config.gcs_destination.uri")


def test_an_output_under_an_existing_object_is_invalid_argument(emulator: Emulator, channel: grpc.Channel) -> None:
    emulator.put_object("gs://names/in.png", PNG)
    emulator.put_object("gs://names/taken/a", b"an object")
    request = _images("gs://names/in.png", "gs://names/taken/a/out/")
    code, field, message = _fails(v1_stub(channel).AsyncBatchAnnotateImages, request)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "output_config.gcs_destination.uri")
    assert "gs://names/taken/a" in message
    emulator.put_object("gs://names/dir/out/output-1-to-1.json/x", b"under the shard's name")
    request = _images("gs://names/in.png", "gs://names/dir/out/")
    code, field, _ = _fails(v1_stub(channel).AsyncBatchAnnotateImages, request)
    assert (code, field) == (code_pb2.INVALID_ARGUMENT, "output_config.gcs_destination.uri")


def test_an_object_that_appears_after_submit_fails_the_operation_with_invalid_argument(
    new_service: Callable[..., EmulatorService],
) -> None:
    clock = FakeClock(1_700_000_000.0)
    service = new_service(operation_seconds=2.0, clock=clock)
    service.storage.write("gs://names/in.png", PNG)
    submit, get = METHODS[("v1", "AsyncBatchAnnotateImages")], OPERATIONS["GetOperation"]
    submitted: Any = service.call(submit, _images("gs://names/in.png", "gs://names/late/a/out/"), {})
    service.storage.write("gs://names/late/a", b"created while the operation ran")
    clock.advance(2.0)
    assert service.operations.finisher.wait_idle()
    done: Any = service.call(get, operations_pb2.GetOperationRequest(name=submitted.name), {})
    assert done.done and done.error.code == code_pb2.INVALID_ARGUMENT, done.error
    bad_request = error_details_pb2.BadRequest()
    assert done.error.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "output_config.gcs_destination.uri"
    assert service.storage.list("gs://names/late/") == ["gs://names/late/a"]  # nothing half written
