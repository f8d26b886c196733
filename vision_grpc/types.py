"""The request and response messages users build and read: the generated protobuf classes.

``vision_grpc.types.<Name>`` is the v1 class; the beta API's classes are under
``vision_grpc.types.v1p4beta1``. The builders make the common requests short.
"""

from __future__ import annotations

from typing import TypeAlias

from vision_grpc._core.builders import async_files_request, async_images_request, files_request, images_request
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

# What an operation of either async method, in either API version, resolves to; and its metadata.
AsyncResponse: TypeAlias = (
    v1.AsyncBatchAnnotateFilesResponse
    | v1.AsyncBatchAnnotateImagesResponse
    | v1p4beta1.AsyncBatchAnnotateFilesResponse
    | v1p4beta1.AsyncBatchAnnotateImagesResponse
)
AnyOperationMetadata: TypeAlias = v1.OperationMetadata | v1p4beta1.OperationMetadata

__all__ = [
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
    "async_images_request",
    "files_request",
    "images_request",
    "v1",
    "v1p4beta1",
]
