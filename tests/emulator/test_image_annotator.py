"""Every ImageAnnotator RPC of both API versions over gRPC: inline answers and async outputs."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.rpc import code_pb2

from tests._support import RPC_TIMEOUT, VERSIONS, make_gif, make_pdf, make_tiff, wait_done
from vision_grpc.emulator import ImageInput
from vision_grpc.testing import Emulator


def _file_request(api: ModuleType, uri: str, out: str, *, mime: str = "application/pdf", batch: int = 0) -> Any:
    return api.AsyncAnnotateFileRequest(
        input_config=api.InputConfig(gcs_source=api.GcsSource(uri=uri), mime_type=mime),
        features=[api.Feature(type=api.Feature.DOCUMENT_TEXT_DETECTION)],
        output_config=api.OutputConfig(gcs_destination=api.GcsDestination(uri=out), batch_size=batch),
    )


def _image_request(api: ModuleType, *, uri: str = "", content: bytes = b"", feature: str = "LABEL_DETECTION") -> Any:
    image = api.Image(content=content) if content else api.Image(source=api.ImageSource(gcs_image_uri=uri))
    return api.AnnotateImageRequest(image=image, features=[api.Feature(type=api.Feature.Type.Value(feature))])


def test_batch_annotate_images_answers_inline(emulator: Emulator, api: ModuleType, stub: Any, prefix: str) -> None:
    emulator.put_object(f"{prefix}a.png", b"\x89PNG fake")
    request = api.BatchAnnotateImagesRequest(
        requests=[
            _image_request(api, content=b"inline"),
            _image_request(api, uri=f"{prefix}a.png", feature="LOGO_DETECTION"),
        ]
    )
    reply = stub.BatchAnnotateImages(request, timeout=RPC_TIMEOUT)
    assert isinstance(reply, api.BatchAnnotateImagesResponse)
    assert [r.error.code for r in reply.responses] == [code_pb2.UNIMPLEMENTED] * 2
    assert reply.responses[0].error.message == "the emulator does not compute LABEL_DETECTION yet"
    assert "LOGO_DETECTION" in reply.responses[1].error.message
    assert not reply.responses[0].HasField("context")  # standalone images carry no page context


def test_missing_image_object_is_a_per_image_error(api: ModuleType, stub: Any, emulator: Emulator, prefix: str) -> None:
    emulator.put_object(f"{prefix}there.png", b"\x89PNG fake")
    request = api.BatchAnnotateImagesRequest(
        requests=[
            _image_request(api, uri=f"{prefix}missing.png"),
            _image_request(api, uri=f"{prefix}there.png", feature="TEXT_DETECTION"),
        ]
    )
    reply = stub.BatchAnnotateImages(request, timeout=RPC_TIMEOUT)
    missing, there = reply.responses
    assert (missing.error.code, missing.error.message) == (
        code_pb2.NOT_FOUND,
        f"Error opening file: {prefix}missing.png.",
    )
    assert there.error.code == code_pb2.UNIMPLEMENTED  # the other image went to the annotators (no image OCR)


def test_http_image_uri_is_a_per_image_error(api: ModuleType, stub: Any) -> None:
    item = api.AnnotateImageRequest(
        image=api.Image(source=api.ImageSource(image_uri="https://example.com/a.jpg")),
        features=[api.Feature(type=api.Feature.LABEL_DETECTION)],
    )
    reply = stub.BatchAnnotateImages(api.BatchAnnotateImagesRequest(requests=[item]), timeout=RPC_TIMEOUT)
    assert reply.responses[0].error.code == code_pb2.UNIMPLEMENTED
    assert "http" in reply.responses[0].error.message


def _sync_file(
    api: ModuleType, *, content: bytes = b"", uri: str = "", mime: str = "application/pdf", pages: tuple[int, ...] = ()
) -> Any:
    config = (
        api.InputConfig(content=content, mime_type=mime)
        if content
        else api.InputConfig(gcs_source=api.GcsSource(uri=uri), mime_type=mime)
    )
    item = api.AnnotateFileRequest(
        input_config=config, features=[api.Feature(type=api.Feature.TEXT_DETECTION)], pages=list(pages)
    )
    return api.BatchAnnotateFilesRequest(requests=[item])


def test_batch_annotate_files_first_five_pages_by_default(
    emulator: Emulator, api: ModuleType, stub: Any, prefix: str
) -> None:
    emulator.put_object(f"{prefix}doc.pdf", make_pdf(7))
    reply = stub.BatchAnnotateFiles(_sync_file(api, uri=f"{prefix}doc.pdf"), timeout=RPC_TIMEOUT)
    (file_reply,) = reply.responses
    assert file_reply.total_pages == 7
    assert [r.context.page_number for r in file_reply.responses] == [1, 2, 3, 4, 5]
    assert {r.context.uri for r in file_reply.responses} == {f"{prefix}doc.pdf"}
    assert file_reply.input_config.gcs_source.uri == f"{prefix}doc.pdf"
    assert all(r.error.code == code_pb2.UNIMPLEMENTED for r in file_reply.responses)


def test_batch_annotate_files_inline_pages_count_from_the_end(api: ModuleType, stub: Any) -> None:
    reply = stub.BatchAnnotateFiles(_sync_file(api, content=make_pdf(4), pages=(-1, 2, -4)), timeout=RPC_TIMEOUT)
    (file_reply,) = reply.responses
    assert [r.context.page_number for r in file_reply.responses] == [4, 2, 1]
    assert [r.context.uri for r in file_reply.responses] == ["", "", ""]
    assert not file_reply.input_config.content  # inline bytes are not echoed back


@pytest.mark.parametrize(
    ("mime", "document", "pages"),
    [
        ("image/tiff", make_tiff(3), 3),
        ("image/tiff", make_tiff(2, order=">", big=True), 2),
        ("image/gif", make_gif(6), 6),
    ],
)
def test_batch_annotate_files_counts_tiff_and_gif_pages(
    api: ModuleType, stub: Any, mime: str, document: bytes, pages: int
) -> None:
    reply = stub.BatchAnnotateFiles(_sync_file(api, content=document, mime=mime), timeout=RPC_TIMEOUT)
    assert reply.responses[0].total_pages == pages
    assert len(reply.responses[0].responses) == min(pages, 5)


def test_batch_annotate_files_bad_page_and_bad_document_are_file_errors(api: ModuleType, stub: Any) -> None:
    out_of_range = stub.BatchAnnotateFiles(_sync_file(api, content=make_pdf(2), pages=(3,)), timeout=RPC_TIMEOUT)
    assert out_of_range.responses[0].error.code == code_pb2.INVALID_ARGUMENT
    assert "page 3" in out_of_range.responses[0].error.message
    not_pdf = stub.BatchAnnotateFiles(_sync_file(api, content=b"hello"), timeout=RPC_TIMEOUT)
    assert not_pdf.responses[0].error.code == code_pb2.INVALID_ARGUMENT
    assert not not_pdf.responses[0].responses


def test_batch_annotate_files_missing_object_is_not_found(api: ModuleType, stub: Any, prefix: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchAnnotateFiles(_sync_file(api, uri=f"{prefix}nope.pdf"), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"{prefix}nope.pdf" in info.value.details()


def test_async_files_writes_sharded_outputs(
    emulator: Emulator, version: str, api: ModuleType, stub: Any, ops: Any, prefix: str
) -> None:
    emulator.put_object(f"{prefix}five.pdf", make_pdf(5))
    emulator.put_object(f"{prefix}three.pdf", make_pdf(3))
    request = api.AsyncBatchAnnotateFilesRequest(
        requests=[
            _file_request(api, f"{prefix}five.pdf", f"{prefix}out-a/", batch=2),
            _file_request(api, f"{prefix}three.pdf", f"{prefix}out-b/"),
        ]
    )
    submitted = stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT)
    assert submitted.name.startswith("operations/") and not submitted.done
    operation = wait_done(ops, submitted.name)
    result = api.AsyncBatchAnnotateFilesResponse()
    assert operation.response.Unpack(result)
    assert [r.output_config.gcs_destination.uri for r in result.responses] == [f"{prefix}out-a/", f"{prefix}out-b/"]
    assert emulator.list_objects(f"{prefix}out-") == [
        f"{prefix}out-a/output-1-to-2.json",
        f"{prefix}out-a/output-3-to-4.json",
        f"{prefix}out-a/output-5-to-5.json",
        f"{prefix}out-b/output-1-to-3.json",
    ]
    shard = json_format.Parse(emulator.get_object(f"{prefix}out-a/output-3-to-4.json"), api.AnnotateFileResponse())
    assert shard.input_config.gcs_source.uri == f"{prefix}five.pdf"
    assert [(r.context.uri, r.context.page_number) for r in shard.responses] == [
        (f"{prefix}five.pdf", 3),
        (f"{prefix}five.pdf", 4),
    ]
    raw = json.loads(emulator.get_object(f"{prefix}out-b/output-1-to-3.json"))
    assert set(raw) == {"inputConfig", "responses"} and raw["responses"][2]["context"]["pageNumber"] == 3


def test_async_files_operation_name_uses_parent(emulator: Emulator, prefix: str, channel: grpc.Channel) -> None:
    api, stub_class = VERSIONS["v1"]
    emulator.put_object(f"{prefix}in.pdf", make_pdf(1))
    request = api.AsyncBatchAnnotateFilesRequest(
        parent="projects/demo/locations/eu", requests=[_file_request(api, f"{prefix}in.pdf", f"{prefix}o/")]
    )
    operation = stub_class(channel).AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT)
    head, _, op_id = operation.name.rpartition("/")
    assert head == "projects/demo/locations/eu/operations"
    assert len(op_id) == 16 and int(op_id, 16) >= 0


def test_async_images_writes_batch_responses(
    emulator: Emulator, api: ModuleType, stub: Any, ops: Any, prefix: str
) -> None:
    emulator.put_object(f"{prefix}a.jpg", b"a")
    emulator.put_object(f"{prefix}c.jpg", b"c")
    request = api.AsyncBatchAnnotateImagesRequest(
        requests=[
            _image_request(api, uri=f"{prefix}a.jpg"),
            _image_request(api, uri=f"{prefix}absent.jpg"),
            _image_request(api, uri=f"{prefix}c.jpg", feature="TEXT_DETECTION"),
        ],
        output_config=api.OutputConfig(gcs_destination=api.GcsDestination(uri=f"{prefix}run-"), batch_size=2),
    )
    operation = wait_done(ops, stub.AsyncBatchAnnotateImages(request, timeout=RPC_TIMEOUT).name)
    result = api.AsyncBatchAnnotateImagesResponse()
    assert operation.response.Unpack(result)  # a missing image does not fail the operation
    assert result.output_config.gcs_destination.uri == f"{prefix}run-"
    assert emulator.list_objects(prefix) == [
        f"{prefix}a.jpg",
        f"{prefix}c.jpg",
        f"{prefix}run-output-1-to-2.json",
        f"{prefix}run-output-3-to-3.json",
    ]
    shard = json_format.Parse(emulator.get_object(f"{prefix}run-output-1-to-2.json"), api.BatchAnnotateImagesResponse())
    assert [r.error.code for r in shard.responses] == [code_pb2.UNIMPLEMENTED, code_pb2.NOT_FOUND]
    assert shard.responses[1].error.message == f"Error opening file: {prefix}absent.jpg."
    last = json_format.Parse(emulator.get_object(f"{prefix}run-output-3-to-3.json"), api.BatchAnnotateImagesResponse())
    assert "OCR of images" in last.responses[0].error.message  # annotated: the emulator has no image OCR


def test_async_outputs_are_deterministic(emulator: Emulator, api: ModuleType, stub: Any, ops: Any, prefix: str) -> None:
    emulator.put_object(f"{prefix}in.pdf", make_pdf(3))
    outputs = []
    for run in ("one", "two"):
        item = _file_request(api, f"{prefix}in.pdf", f"{prefix}{run}/")
        request = api.AsyncBatchAnnotateFilesRequest(requests=[item])
        wait_done(ops, stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name)
        outputs.append(emulator.get_object(f"{prefix}{run}/output-1-to-3.json"))
    assert outputs[0] == outputs[1]


def test_plugged_annotator_fills_responses(emulator: Emulator, api: ModuleType, stub: Any) -> None:
    def labels(image: ImageInput, feature: Any, response: Any) -> None:
        response.label_annotations.add(description=f"{len(image.content)} bytes, page {image.page_number}", score=1)

    emulator.service.annotators.register("LABEL_DETECTION", labels)
    try:
        request = api.BatchAnnotateImagesRequest(requests=[_image_request(api, content=b"four")])
        reply = stub.BatchAnnotateImages(request, timeout=RPC_TIMEOUT)
    finally:
        emulator.service.annotators.unregister("LABEL_DETECTION")
    assert not reply.responses[0].HasField("error")
    assert reply.responses[0].label_annotations[0].description == "4 bytes, page 0"


def test_operation_metadata_type_matches_version(
    version: str, api: ModuleType, stub: Any, ops: Any, emulator: Emulator, prefix: str
) -> None:
    emulator.put_object(f"{prefix}in.gif", make_gif(2))
    request = api.AsyncBatchAnnotateFilesRequest(
        requests=[_file_request(api, f"{prefix}in.gif", f"{prefix}o/", mime="image/gif")]
    )
    operation = wait_done(ops, stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name)
    assert operation.metadata.type_url == f"type.googleapis.com/google.cloud.vision.{version}.OperationMetadata"
    assert operation.response.type_url.endswith(f"vision.{version}.AsyncBatchAnnotateFilesResponse")
    assert isinstance(operation, operations_pb2.Operation)
    assert emulator.list_objects(f"{prefix}o/") == [f"{prefix}o/output-1-to-2.json"]
