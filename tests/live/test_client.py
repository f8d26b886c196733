"""Every RPC of both versions, the operation life cycle, metadata, errors and retries, end to end."""

from __future__ import annotations

from typing import Any

import pytest
from google.rpc import code_pb2

from tests._support import make_pdf
from tests.live.harness import PDF_URI, Harness
from vision_grpc import errors, types
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1

VERSIONS = {"v1": v1, "v1p4beta1": v1p4beta1}


def files_request(version: str, out: str, uri: str = PDF_URI, batch_size: int = 2) -> Any:
    return types.async_files_request(uri, output_uri=out, batch_size=batch_size, version=version)


@pytest.mark.parametrize("version", list(VERSIONS))
def test_async_files_end_to_end(harness: Harness, version: str) -> None:
    out = f"gs://bucket/out/{harness.transport}-{harness.mode}-{version}/"
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request(version, out)))
    assert op.name.startswith("operations/")
    assert op.metadata.state in (
        VERSIONS[version].OperationMetadata.CREATED,
        VERSIONS[version].OperationMetadata.RUNNING,
    )
    response = harness.do(lambda c: op.result(timeout=10))
    assert isinstance(response, VERSIONS[version].AsyncBatchAnnotateFilesResponse)
    assert response.responses[0].output_config.gcs_destination.uri == out
    assert op.done and op.metadata.state == VERSIONS[version].OperationMetadata.DONE
    assert harness.emulator.list_objects(out) == [f"{out}output-1-to-2.json", f"{out}output-3-to-3.json"]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_async_images_end_to_end(harness: Harness, version: str) -> None:
    harness.emulator.put_object("gs://bucket/img/a.png", b"\x89PNG\r\n\x1a\n")
    out = f"gs://bucket/imgout/{harness.transport}-{harness.mode}-{version}/"
    request = types.async_images_request(["gs://bucket/img/a.png"] * 3, output_uri=out, batch_size=2, version=version)
    op = harness.do(lambda c: c.async_batch_annotate_images(request))
    response = harness.do(lambda c: op.result(timeout=10))
    assert isinstance(response, VERSIONS[version].AsyncBatchAnnotateImagesResponse)
    assert response.output_config.gcs_destination.uri == out
    assert len(harness.emulator.list_objects(out)) == 2


@pytest.mark.parametrize("version", list(VERSIONS))
def test_sync_calls_answer_inline(harness: Harness, version: str) -> None:
    files = harness.do(
        lambda c: c.batch_annotate_files(types.files_request(make_pdf(4), pages=[1, -1], version=version))
    )
    pages = [r.context.page_number for r in files.responses[0].responses]
    assert pages == [1, 4]
    images = harness.do(lambda c: c.batch_annotate_images(types.images_request([b"\x89PNG"] * 2, version=version)))
    assert len(images.responses) == 2
    # The emulator computes no image features yet: each image says so with UNIMPLEMENTED.
    assert images.responses[0].error.code == code_pb2.UNIMPLEMENTED
    assert "TEXT_DETECTION" in images.responses[0].error.message


def test_parent_from_project_and_location_routes_the_call(harness: Harness) -> None:
    client = harness.new_client(project="proj-1", location="eu", endpoint=harness.endpoint)
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/parent/")), client)
    assert op.name.startswith("projects/proj-1/locations/eu/operations/")
    harness.do(lambda c: op.result(timeout=10))
    submit = next(c for c in harness.emulator.service.calls if c.method == "AsyncBatchAnnotateFiles")
    assert submit.metadata.get("x-goog-request-params") == "parent=projects/proj-1/locations/eu"
    get = [c for c in harness.emulator.service.calls if c.method in ("GetOperation", "WaitOperation")][-1]
    assert get.metadata.get("x-goog-request-params") == f"name={op.name}"


def test_cancel_then_result_raises_operation_error(harness: Harness) -> None:
    slow = harness.new_client(endpoint=harness.endpoint)
    harness.emulator.service.faults.clear()
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/cancel/")), slow)
    harness.do(lambda c: op.cancel())
    with pytest.raises(errors.OperationError) as caught:
        harness.do(lambda c: op.result(timeout=10))
    assert caught.value.code == code_pb2.CANCELLED
    assert isinstance(caught.value.error, errors.Cancelled)
    assert caught.value.name == op.name


def test_failed_operation_carries_the_status(harness: Harness) -> None:
    request = files_request("v1", "gs://bucket/out/missing/", uri="gs://bucket/docs/absent.pdf")
    op = harness.do(lambda c: c.async_batch_annotate_files(request))
    with pytest.raises(errors.OperationError) as caught:
        harness.do(lambda c: op.result(timeout=10))
    assert caught.value.status.code == code_pb2.NOT_FOUND
    assert "gs://bucket/docs/absent.pdf" in caught.value.status.message


def test_timeout_then_resume_by_name_from_a_new_client(harness: Harness) -> None:
    harness.emulator.service.faults.clear()
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/resume/")))
    with pytest.raises(errors.OperationTimeout) as caught:
        harness.do(lambda c: op.wait(timeout=0.01))
    name = caught.value.name
    assert name == op.name
    other = harness.new_client()
    resumed = harness.do(lambda c: c.get_operation(name), other)
    response = harness.do(lambda c: resumed.result(timeout=10))
    assert isinstance(response, v1.AsyncBatchAnnotateFilesResponse)  # typed from the Any alone


def test_list_and_delete_operations(harness: Harness) -> None:
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/list/")))
    harness.do(lambda c: op.result(timeout=10))
    if harness.mode == "sync":
        names = [o.name for o in harness.client.list_operations(page_size=3)]
    else:

        async def collect() -> list[str]:
            return [o.name async for o in harness.client.list_operations(page_size=3)]

        names = harness.do(lambda c: collect())
    assert op.name in names
    harness.do(lambda c: op.delete())
    with pytest.raises(errors.NotFound):
        harness.do(lambda c: c.get_operation(op.name))


def test_metadata_seen_by_the_server(harness: Harness) -> None:
    client = harness.new_client(api_key="AIza-test-key", quota_project="billing-proj")
    harness.do(lambda c: c.batch_annotate_images(types.images_request([b"x"])), client)
    call = harness.emulator.service.calls[-1]
    assert call.metadata["x-goog-api-key"] == "AIza-test-key"
    assert call.metadata["x-goog-user-project"] == "billing-proj"
    assert call.metadata["x-goog-api-client"].startswith("gl-python/")
    assert "vision-grpc/" in call.metadata["x-goog-api-client"]
    assert "AIza-test-key" not in repr(client)


def test_api_key_on_async_files_explains_itself(harness: Harness) -> None:
    client = harness.new_client(api_key="AIza-test-key")
    with pytest.raises(errors.PermissionDenied) as caught:
        harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/key/")), client)
    assert "does not accept API keys for files:asyncBatchAnnotate" in str(caught.value)
    assert "AIza-test-key" not in str(caught.value)


def test_idempotent_calls_are_retried_and_retry_info_honoured(harness: Harness) -> None:
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/retry/")))
    harness.emulator.service.faults.fail_next("GetOperation", code_pb2.UNAVAILABLE, times=2, retry_delay=0.05)
    harness.do(lambda c: c.get_operation(op.name))
    gets = [c for c in harness.emulator.service.calls if c.method == "GetOperation"]
    assert len(gets) == 3


def test_submit_is_not_retried_once_the_server_saw_it(harness: Harness) -> None:
    harness.emulator.service.faults.fail_next("AsyncBatchAnnotateFiles", code_pb2.UNAVAILABLE)
    with pytest.raises(errors.Unavailable):
        harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/noretry/")))
    assert [c.method for c in harness.emulator.service.calls] == ["AsyncBatchAnnotateFiles"]


def test_v1p4beta1_retries_nothing(harness: Harness) -> None:
    harness.emulator.service.faults.fail_next("BatchAnnotateImages", code_pb2.UNAVAILABLE, version="v1p4beta1")
    with pytest.raises(errors.Unavailable):
        harness.do(lambda c: c.batch_annotate_images(types.images_request([b"x"], version="v1p4beta1")))
    assert len(harness.emulator.service.calls) == 1


def test_rich_error_details_are_decoded(harness: Harness) -> None:
    harness.emulator.service.faults.fail_next(
        "BatchAnnotateImages", code_pb2.RESOURCE_EXHAUSTED, message="quota exceeded", retry_delay=1.5
    )
    with pytest.raises(errors.ResourceExhausted) as caught:
        harness.do(lambda c: c.batch_annotate_images(types.images_request([b"x"])))
    assert caught.value.retry_delay == 1.5
    assert caught.value.http_status == 429
    assert "quota exceeded" in caught.value.message


def test_server_side_validation_maps_to_field_violations(harness: Harness) -> None:
    # Bypass the client's own checks to see the service's answer to a bad request.
    from vision_grpc._core.methods import METHODS
    from vision_grpc._flows.retry import call_flow

    bad = v1.BatchAnnotateImagesRequest()
    flow = call_flow(METHODS[("v1", "BatchAnnotateImages")], bad, budget=5, retry=harness.client.options.retry)
    with pytest.raises(errors.InvalidArgument) as caught:
        harness.do(lambda c: c.run(flow))
    assert caught.value.field_violations == [("requests", "must hold at least one request")]


def test_validation_fails_before_any_network_call(harness: Harness) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "s3://nope/")))
    assert caught.value.field == "requests[0].output_config.gcs_destination.uri"
    assert harness.emulator.service.calls == []


def test_the_caller_request_is_not_mutated(harness: Harness) -> None:
    client = harness.new_client(project="proj-1", location="us")
    request = files_request("v1", "gs://bucket/out/nomutate/")
    op = harness.do(lambda c: c.async_batch_annotate_files(request), client)
    assert request.parent == ""
    harness.do(lambda c: op.result(timeout=10))


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_resume_by_name_from_another_process(emulator: Any, transport: str) -> None:
    import subprocess
    import sys

    from vision_grpc import Client

    endpoint = emulator.grpc_target if transport == "grpc" else emulator.rest_url.removeprefix("http://")
    with Client(endpoint=endpoint, transport=transport) as client:
        op = client.async_batch_annotate_files(files_request("v1", f"gs://bucket/out/other-process-{transport}/"))
    script = (
        "import sys; from vision_grpc import Client\n"
        "with Client(endpoint=sys.argv[1], transport=sys.argv[2]) as client:\n"
        "    response = client.get_operation(sys.argv[3]).result(timeout=30)\n"
        "    print(type(response).__name__, response.responses[0].output_config.gcs_destination.uri)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, endpoint, transport, op.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AsyncBatchAnnotateFilesResponse", f"gs://bucket/out/other-process-{transport}/"]


def test_regional_operation_cancel_over_rest_says_grpc_is_needed(harness: Harness) -> None:
    client = harness.new_client(project="proj-1", location="eu")
    op = harness.do(lambda c: c.async_batch_annotate_files(files_request("v1", "gs://bucket/out/regional/")), client)
    if harness.transport == "rest":  # Vision binds REST cancel only for operations/... names
        with pytest.raises(errors.Unimplemented) as caught:
            harness.do(lambda c: c.cancel_operation(op.name), client)
        assert "transport='grpc'" in str(caught.value)
        assert harness.do(lambda c: op.result(timeout=10), client)  # get and wait still work over REST
    else:
        harness.do(lambda c: c.cancel_operation(op.name), client)
        with pytest.raises(errors.OperationError):
            harness.do(lambda c: op.result(timeout=10), client)
