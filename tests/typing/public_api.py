"""Checked by ``mypy --strict`` in CI (not run by pytest): the public API's types, as a user sees them.

``assert_type`` pins what each public call returns; a line that must be rejected carries
``# type: ignore[<code>]``, and ``warn_unused_ignores`` fails the check if mypy ever accepts it.
"""

from __future__ import annotations

from typing_extensions import assert_type

from vision_grpc import AsyncClient, AsyncOperation, Client, ClientOptions, Operation, types
from vision_grpc.types import AnyOperationMetadata, AsyncResponse, v1p4beta1


def sync_calls(client: Client) -> None:
    files = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/")
    assert_type(files, types.AsyncBatchAnnotateFilesRequest)
    operation = client.async_batch_annotate_files(files)
    assert_type(operation, Operation[types.AsyncBatchAnnotateFilesResponse])
    assert_type(operation.result(timeout=60), types.AsyncBatchAnnotateFilesResponse)
    assert_type(operation.wait(), Operation[types.AsyncBatchAnnotateFilesResponse])
    assert_type(operation.metadata, AnyOperationMetadata | None)
    assert_type(operation.name, str)
    assert_type(operation.done, bool)

    images = types.async_images_request(["gs://b/a.png"], output_uri="gs://b/out/")
    assert_type(client.async_batch_annotate_images(images).result(), types.AsyncBatchAnnotateImagesResponse)
    assert_type(client.batch_annotate_images(types.images_request([b"png"])), types.BatchAnnotateImagesResponse)
    assert_type(client.batch_annotate_files(types.files_request(b"%PDF")), types.BatchAnnotateFilesResponse)

    beta = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/", version="v1p4beta1")
    assert_type(beta, v1p4beta1.AsyncBatchAnnotateFilesRequest)
    assert_type(client.async_batch_annotate_files(beta).result(), v1p4beta1.AsyncBatchAnnotateFilesResponse)

    assert_type(client.get_operation("operations/1"), Operation[AsyncResponse])
    resumed = client.get_operation("operations/1", response_type=types.AsyncBatchAnnotateFilesResponse)
    assert_type(resumed.result(), types.AsyncBatchAnnotateFilesResponse)
    for listed in client.list_operations():
        assert_type(listed, Operation[AsyncResponse])


async def async_calls(client: AsyncClient) -> None:
    files = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/")
    operation = await client.async_batch_annotate_files(files)
    assert_type(operation, AsyncOperation[types.AsyncBatchAnnotateFilesResponse])
    assert_type(await operation.result(), types.AsyncBatchAnnotateFilesResponse)
    response = await client.batch_annotate_images(types.images_request(["gs://b/a.png"]))
    assert_type(response, types.BatchAnnotateImagesResponse)
    assert_type(await client.get_operation("operations/1"), AsyncOperation[AsyncResponse])


def settings_are_typed() -> None:
    Client(endpoint="127.0.0.1:1", project="p", timeout=5.0, transport="rest")
    AsyncClient(ClientOptions(project="p"), location="eu")
    Client(projcet="p")  # type: ignore[call-arg]
    Client(timeout="5")  # type: ignore[arg-type]
    Client(transport="http")  # type: ignore[arg-type]


def wrong_requests_are_rejected(client: Client) -> None:
    images = types.images_request(["gs://b/a.png"])
    files = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/")
    client.async_batch_annotate_files(images)  # type: ignore[call-overload]
    client.batch_annotate_images(files)  # type: ignore[call-overload]
    client.async_batch_annotate_images(types.files_request(b"%PDF"))  # type: ignore[call-overload]
    client.get_operation("operations/1", response_type=int)  # type: ignore[type-var]
