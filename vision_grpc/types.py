"""The request and response messages users build and read: the generated protobuf classes.

``vision_grpc.types.<Name>`` is the v1 class; the beta API's classes are under
``vision_grpc.types.v1p4beta1``. The builders make the common requests short.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeAlias, cast

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import status_pb2
from google.type import color_pb2, latlng_pb2

from vision_grpc._core.builders import async_files_request, async_images_request, files_request, images_request
from vision_grpc._gen._pool import JSON_TYPES, POOL
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import text_annotation_pb2 as _text
from vision_grpc._gen.v1.image_annotator_pb2 import (
    AnnotateFileRequest,
    AnnotateFileResponse,
    AnnotateImageRequest,
    AnnotateImageResponse,
    AsyncAnnotateFileRequest,
    AsyncAnnotateFileResponse,
    AsyncBatchAnnotateFilesRequest,
    AsyncBatchAnnotateFilesResponse,
    AsyncBatchAnnotateImagesRequest,
    AsyncBatchAnnotateImagesResponse,
    BatchAnnotateFilesRequest,
    BatchAnnotateFilesResponse,
    BatchAnnotateImagesRequest,
    BatchAnnotateImagesResponse,
    Feature,
    GcsDestination,
    GcsSource,
    Image,
    ImageContext,
    ImageSource,
    InputConfig,
    OperationMetadata,
    OutputConfig,
)
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1

TextAnnotation = _text.TextAnnotation

# Our messages live in a descriptor pool of their own (``vision_grpc._gen._pool``), so that
# google-cloud-vision can be imported beside us. The common types inside them are that pool's
# classes: build a per-image ``error`` with ``types.Status``, not ``google.rpc.status_pb2.Status``.
# json_format needs ``descriptor_pool=types.JSON_TYPES`` to print or parse an ``Any`` holding our
# messages (an operation's metadata and response).


def _ours(full_name: str) -> Any:
    return GetMessageClass(POOL.FindMessageTypeByName(full_name))


Status = cast("type[status_pb2.Status]", _ours("google.rpc.Status"))
Timestamp = cast("type[timestamp_pb2.Timestamp]", _ours("google.protobuf.Timestamp"))
LatLng = cast("type[latlng_pb2.LatLng]", _ours("google.type.LatLng"))
Color = cast("type[color_pb2.Color]", _ours("google.type.Color"))


def from_official(message: Any) -> Message:
    """Our message equal to an official google-cloud-vision one (proto-plus, or its raw ``pb()``).

    The schemas are wire-identical, so this is one serialization round trip:
    ``types.from_official(vision.AsyncBatchAnnotateFilesRequest(...))``.
    """
    raw = type(message).pb(message) if hasattr(type(message), "pb") else message
    ours: Message = _ours(raw.DESCRIPTOR.full_name)()
    ours.MergeFromString(raw.SerializeToString())
    return ours


def to_official(message: Message) -> Any:
    """The official google-cloud-vision (proto-plus) message equal to ours; needs that package."""
    package = message.DESCRIPTOR.file.package  # google.cloud.vision.v1
    version = package.rsplit(".", 1)[-1]
    official: Any = importlib.import_module(f"google.cloud.vision_{version}.types")
    for name in message.DESCRIPTOR.full_name[len(package) + 1 :].split("."):
        official = getattr(official, name)
    return official.deserialize(message.SerializeToString())


# What an operation of either async method, in either API version, resolves to; and its metadata.
AsyncResponse: TypeAlias = (
    v1.AsyncBatchAnnotateFilesResponse
    | v1.AsyncBatchAnnotateImagesResponse
    | v1p4beta1.AsyncBatchAnnotateFilesResponse
    | v1p4beta1.AsyncBatchAnnotateImagesResponse
)
AnyOperationMetadata: TypeAlias = v1.OperationMetadata | v1p4beta1.OperationMetadata

__all__ = [
    "JSON_TYPES",
    "Color",
    "LatLng",
    "Status",
    "Timestamp",
    "AnyOperationMetadata",
    "AsyncResponse",
    "AnnotateFileRequest",
    "AnnotateFileResponse",
    "AnnotateImageRequest",
    "AnnotateImageResponse",
    "AsyncAnnotateFileRequest",
    "AsyncAnnotateFileResponse",
    "AsyncBatchAnnotateFilesRequest",
    "AsyncBatchAnnotateFilesResponse",
    "AsyncBatchAnnotateImagesRequest",
    "AsyncBatchAnnotateImagesResponse",
    "BatchAnnotateFilesRequest",
    "BatchAnnotateFilesResponse",
    "BatchAnnotateImagesRequest",
    "BatchAnnotateImagesResponse",
    "Feature",
    "GcsDestination",
    "GcsSource",
    "Image",
    "ImageContext",
    "ImageSource",
    "InputConfig",
    "OperationMetadata",
    "OutputConfig",
    "TextAnnotation",
    "async_files_request",
    "from_official",
    "to_official",
    "async_images_request",
    "files_request",
    "images_request",
    "v1",
    "v1p4beta1",
]
