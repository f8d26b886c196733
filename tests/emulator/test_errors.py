"""Error paths over gRPC: validation details, fault injection, API keys, recorded metadata."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from tests._support import RPC_TIMEOUT, VERSIONS, make_pdf, wait_done
from vision_grpc._core.methods import METHODS
from vision_grpc.emulator import EmulatorService, ImageInput
from vision_grpc.errors import ApiError, PermissionDenied
from vision_grpc.testing import Emulator

_EMPTY_REQUESTS = ["BatchAnnotateImages", "BatchAnnotateFiles", "AsyncBatchAnnotateImages", "AsyncBatchAnnotateFiles"]


def _rich_status(error: grpc.RpcError) -> Any:
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin trailer"
    return status


def _detail(status: Any, detail_type: Any) -> Any:
    for detail in status.details:
        if detail.Is(detail_type.DESCRIPTOR):
            message = detail_type()
            detail.Unpack(message)
            return message
    raise AssertionError(f"no {detail_type.DESCRIPTOR.full_name} detail")


def _async_files(api: ModuleType, uri: str, out: str) -> Any:
    return api.AsyncBatchAnnotateFilesRequest(
        requests=[
            api.AsyncAnnotateFileRequest(
                input_config=api.InputConfig(gcs_source=api.GcsSource(uri=uri), mime_type="application/pdf"),
                features=[api.Feature(type=api.Feature.DOCUMENT_TEXT_DETECTION)],
                output_config=api.OutputConfig(gcs_destination=api.GcsDestination(uri=out)),
            )
        ]
    )


def _image_batch(api: ModuleType) -> Any:
    features = [api.Feature(type=api.Feature.LABEL_DETECTION)]
    item = api.AnnotateImageRequest(image=api.Image(content=b"x"), features=features)
    return api.BatchAnnotateImagesRequest(requests=[item])


@pytest.mark.parametrize("method", _EMPTY_REQUESTS)
def test_validation_error_carries_bad_request(version: str, api: ModuleType, stub: Any, method: str) -> None:
    request = METHODS[(version, method)].request_type()
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request, timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = _rich_status(info.value)
    assert status.code == code_pb2.INVALID_ARGUMENT and "requests" in status.message
    violation = _detail(status, error_details_pb2.BadRequest).field_violations[0]
    assert violation.field == "requests" and violation.description in status.message


def test_async_files_rejects_inline_content(api: ModuleType, stub: Any) -> None:
    request = _async_files(api, "gs://b/in.pdf", "gs://b/out/")
    request.requests[0].input_config.content = make_pdf(1)
    with pytest.raises(grpc.RpcError) as info:
        stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT)
    violation = _detail(_rich_status(info.value), error_details_pb2.BadRequest).field_violations[0]
    assert violation.field == "requests[0].input_config.content"


def test_fault_injection_with_retry_info(emulator: Emulator, api: ModuleType, stub: Any) -> None:
    emulator.service.faults.fail_next("BatchAnnotateImages", "UNAVAILABLE", times=2, retry_delay=1.5)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as info:
            stub.BatchAnnotateImages(_image_batch(api), timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        retry = _detail(_rich_status(info.value), error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToMilliseconds() == 1500
    assert len(stub.BatchAnnotateImages(_image_batch(api), timeout=RPC_TIMEOUT).responses) == 1
    assert emulator.service.faults.pending() == []


def test_fault_injection_on_operations_and_by_version(emulator: Emulator, ops: Any, channel: grpc.Channel) -> None:
    faults = emulator.service.faults
    faults.fail_next("GetOperation", code_pb2.RESOURCE_EXHAUSTED, message="quota for tests")
    with pytest.raises(grpc.RpcError) as info:
        ops.GetOperation(operations_pb2.GetOperationRequest(name="operations/x"), timeout=RPC_TIMEOUT)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota for tests")
    faults.fail_next("BatchAnnotateImages", "INTERNAL", version="v1p4beta1")
    v1_api, v1_stub = VERSIONS["v1"]
    beta_api, beta_stub = VERSIONS["v1p4beta1"]
    v1_stub(channel).BatchAnnotateImages(_image_batch(v1_api), timeout=RPC_TIMEOUT)  # other version: unaffected
    with pytest.raises(grpc.RpcError) as info:
        beta_stub(channel).BatchAnnotateImages(_image_batch(beta_api), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INTERNAL


def test_fault_rules_are_checked(emulator: Emulator) -> None:
    faults = emulator.service.faults
    for bad in [
        dict(method="Nope", code=14),
        dict(method="*", code=0),
        dict(method="*", code="BOGUS"),
        dict(method="*", code=14, times=0),
    ]:
        with pytest.raises(ValueError):
            faults.fail_next(**bad)  # type: ignore[arg-type]
    faults.fail_next("*", 14, times=3)
    assert [(f.method, f.code, f.remaining) for f in faults.pending()] == [("*", 14, 3)]
    faults.clear()
    assert faults.pending() == []


def test_api_key_refused_on_async_files_only(
    emulator: Emulator, api: ModuleType, stub: Any, ops: Any, prefix: str
) -> None:
    key = [("x-goog-api-key", "AIza-test")]
    with pytest.raises(grpc.RpcError) as info:
        stub.AsyncBatchAnnotateFiles(
            _async_files(api, f"{prefix}in.pdf", f"{prefix}o/"), metadata=key, timeout=RPC_TIMEOUT
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "API keys are not accepted" in info.value.details() and "OAuth" in info.value.details()
    assert "AIza-test" not in info.value.details()
    stub.BatchAnnotateImages(_image_batch(api), metadata=key, timeout=RPC_TIMEOUT)  # keys are fine elsewhere


def test_api_key_refusal_can_be_turned_off(new_service: Callable[..., EmulatorService]) -> None:
    method = METHODS[("v1", "AsyncBatchAnnotateFiles")]
    api = VERSIONS["v1"][0]
    with pytest.raises(PermissionDenied):
        new_service().call(method, _async_files(api, "gs://b/in.pdf", "gs://b/o/"), {"x-goog-api-key": "k"})
    lenient = new_service(reject_api_keys_for_async_files=False)
    operation: Any = lenient.call(method, _async_files(api, "gs://b/in.pdf", "gs://b/o/"), {"x-goog-api-key": "k"})
    assert operation.name.startswith("operations/")


def test_call_metadata_is_recorded(emulator: Emulator, api: ModuleType, stub: Any) -> None:
    sent = [
        ("x-goog-user-project", "billing-project"),
        ("x-goog-request-params", "parent=projects%2Fp"),
        ("x-goog-api-client", "gl-python/3.11 grpc/1.85.1 vision-grpc/0.1.0"),
        ("authorization", "Bearer token-for-tests"),
        ("x-other", "not recorded"),
    ]
    emulator.service.clear_calls()
    stub.BatchAnnotateImages(_image_batch(api), metadata=sent, timeout=RPC_TIMEOUT)
    (call,) = emulator.service.calls
    assert (call.method, call.version) == ("BatchAnnotateImages", api.DESCRIPTOR.package.split(".")[-1])
    assert dict(call.metadata) == dict(sent[:4])


def test_recorded_calls_are_bounded(new_service: Callable[..., EmulatorService]) -> None:
    service = new_service(max_recorded_calls=3)
    get = operations_pb2.GetOperationRequest(name="operations/none")
    from vision_grpc._core.methods import OPERATIONS

    for _ in range(5):
        with pytest.raises(ApiError):
            service.call(OPERATIONS["GetOperation"], get, {})
    assert len(service.calls) == 3


def test_annotator_errors(emulator: Emulator, api: ModuleType, stub: Any, ops: Any, prefix: str) -> None:
    from vision_grpc.errors import api_error

    def refuses(image: ImageInput, feature: Any, response: Any) -> None:
        raise api_error(code_pb2.INVALID_ARGUMENT, "Bad image data.")

    def crashes(image: ImageInput, feature: Any, response: Any) -> None:
        raise RuntimeError("engine exploded")

    annotators = emulator.service.annotators
    annotators.register("LABEL_DETECTION", refuses)
    previous_text = None
    try:
        reply = stub.BatchAnnotateImages(_image_batch(api), timeout=RPC_TIMEOUT)
        assert (reply.responses[0].error.code, reply.responses[0].error.message) == (3, "Bad image data.")
        annotators.register("LABEL_DETECTION", crashes)
        with pytest.raises(grpc.RpcError) as info:
            stub.BatchAnnotateImages(_image_batch(api), timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.INTERNAL and "engine exploded" in info.value.details()
        previous_text = annotators.get("DOCUMENT_TEXT_DETECTION")
        annotators.register("DOCUMENT_TEXT_DETECTION", crashes)
        emulator.put_object(f"{prefix}in.pdf", make_pdf(1))
        request = _async_files(api, f"{prefix}in.pdf", f"{prefix}o/")
        name = stub.AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name
        assert wait_done(ops, name).error.code == code_pb2.INTERNAL
    finally:
        annotators.unregister("LABEL_DETECTION")
        annotators.unregister("DOCUMENT_TEXT_DETECTION")
        if previous_text is not None:  # the session emulator's default PDF text annotator
            annotators.register("DOCUMENT_TEXT_DETECTION", previous_text)
