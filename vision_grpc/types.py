"""The request and response messages users build and read: the generated protobuf classes.

``vision_grpc.types.<Name>`` is the v1 class; the beta API's classes are under
``vision_grpc.types.v1p4beta1``. The builders make the common requests short.
"""

from __future__ import annotations

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

__all__ = [
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
