"""The package exports exactly its public names, and importing it alone loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import vision_grpc
from vision_grpc import errors, types

EXPECTED = {
    "ApiError",
    "AsyncClient",
    "AsyncOperation",
    "Client",
    "ClientOptions",
    "Operation",
    "OperationError",
    "OperationTimeout",
    "PollPolicy",
    "RestCall",
    "RetryPolicy",
    "TransportError",
    "ValidationError",
    "VisionError",
    "__version__",
    "errors",
    "types",
}


def test_exported_members() -> None:
    assert set(vision_grpc.__all__) == EXPECTED
    for name in vision_grpc.__all__:
        assert getattr(vision_grpc, name) is not None, name


def test_every_error_subclasses_vision_error() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.VisionError), name


def test_types_are_the_generated_messages() -> None:
    assert types.AsyncBatchAnnotateFilesRequest.DESCRIPTOR.full_name == (
        "google.cloud.vision.v1.AsyncBatchAnnotateFilesRequest"
    )
    assert types.v1p4beta1.AsyncBatchAnnotateImagesRequest.DESCRIPTOR.full_name == (
        "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateImagesRequest"
    )
    assert set(types.__all__) <= set(dir(types))


def test_importing_the_package_loads_no_grpc_or_protobuf() -> None:
    code = (
        "import sys, vision_grpc; "
        "print(sorted(m for m in ('grpc', 'google.protobuf', 'google.auth') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_optional_libraries_load_only_when_used() -> None:
    code = (
        "import sys; from vision_grpc import Client; c = Client(endpoint='127.0.0.1:1'); "
        "print(sorted(m for m in ('aiohttp', 'rich', 'google.cloud.storage', 'pypdfium2', 'urllib3', "
        "'google.auth') if m in sys.modules)); c.close()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_client_settings_name_every_client_option() -> None:
    """``Client(**settings)`` is typed by ``ClientSettings``; it must list exactly the ``ClientOptions`` fields."""
    import dataclasses

    from vision_grpc._core.options import ClientOptions, ClientSettings

    assert set(ClientSettings.__annotations__) == {f.name for f in dataclasses.fields(ClientOptions)}


def test_messages_pickle_under_their_own_module() -> None:
    """multiprocessing pickles requests and results: our classes name modules that exist."""
    import pickle

    request = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/")
    assert type(request).__module__ == "vision_grpc._gen.v1.image_annotator_pb2"
    assert pickle.loads(pickle.dumps(request)) == request
    status = types.AnnotateImageResponse(error=types.Status(code=5, message="gone"))
    assert pickle.loads(pickle.dumps(status)) == status
