"""A local emulator of the Cloud Vision ImageAnnotator service and its long-running operations.

Tests and demos run against it offline: no credentials, no network. The core
(``EmulatorService``) is transport-agnostic; ``vision_grpc.emulator.grpc_server`` serves it over
gRPC (a REST front can wrap the same core). Cloud Storage is a directory (``gs://bucket/path`` is
``DIR/bucket/path``). Most users want ``vision_grpc.testing.Emulator`` (in-process, port 0, temp
storage) or ``python -m vision_grpc.emulator`` (a standalone server).
"""

from __future__ import annotations

from vision_grpc.emulator._annotate import Annotator, AnnotatorRegistry, ImageInput
from vision_grpc.emulator._faults import Fault, FaultInjector
from vision_grpc.emulator._service import RECORDED_METADATA, EmulatorService, RecordedCall
from vision_grpc.emulator._storage import InvalidUri, ObjectNotFound, Storage

__all__ = [
    "RECORDED_METADATA",
    "Annotator",
    "AnnotatorRegistry",
    "EmulatorService",
    "Fault",
    "FaultInjector",
    "ImageInput",
    "InvalidUri",
    "ObjectNotFound",
    "RecordedCall",
    "Storage",
]
