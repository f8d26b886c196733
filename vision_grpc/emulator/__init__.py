"""A local emulator of the Cloud Vision ImageAnnotator service and its long-running operations.

Tests and demos run against it offline: no credentials, no network. Cloud Storage is a
directory (``gs://bucket/path`` is ``DIR/bucket/path``). Most users want
``vision_grpc.testing.Emulator`` (in-process, port 0, temp storage) or
``python -m vision_grpc.emulator`` (a standalone server).

Public face:

* ``EmulatorService`` (``_service``): the transport-agnostic core, one ``call`` per RPC;
  ``.faults`` (``FaultInjector``), ``.calls`` (``RecordedCall``), ``.annotators``, ``.storage``.
* ``grpc_server`` / ``rest_server``: the gRPC (``grpc.aio``) and HTTP/1.1 JSON fronts over one
  service; ``single_port`` serves both on one port; ``gcs_server`` serves the storage directory as the
  Cloud Storage JSON API (for ``STORAGE_EMULATOR_HOST``); ``__main__`` runs them.
* ``AnnotatorRegistry``, ``Annotator``, ``ImageInput``: plug in annotators per feature type.
* ``BucketDir``, ``ObjectNotFound``, ``InvalidUri``: the storage directory and its errors.

Inside, each module imports only those below it (an import-linter contract keeps it so):

* ``_operations`` (google.longrunning over ``_store``, finished on time by ``_finisher``),
  ``_jobs`` (reads inputs, annotates, writes output shards), ``_faults`` (injected failures).
* ``_annotate`` (the registry) over ``_ocr`` (the text features by OCR of the rendered page or image,
  the ``ocr`` extra) and ``_pdf_text`` (the text features from PDF text layers).
* ``_layout`` (lines of words grouped into paragraphs and blocks, written as the service answers them),
  ``_raster`` (PDF pages rendered and images decoded into the pixels OCR reads).
* ``_image`` (what an annotator gets), ``_pages`` (page counts of PDF/TIFF/GIF, the PDFium lock),
  ``_objects`` (Cloud Storage objects over ``BucketDir``: generations, hashes, listings, uploads),
  ``_http_server`` (the HTTP/1.1 server both HTTP fronts run on: connections, bounds, keep-alive).
* ``_buckets`` (``BucketDir``), ``_store`` (the operation records), ``_status`` (statuses and errors),
  ``_http1`` (strict HTTP/1.1 request framing, without I/O).
"""

from __future__ import annotations

from vision_grpc.emulator._annotate import AnnotatorRegistry
from vision_grpc.emulator._buckets import BucketDir, InvalidUri, ObjectNotFound
from vision_grpc.emulator._faults import Fault, FaultInjector
from vision_grpc.emulator._image import Annotator, ImageInput
from vision_grpc.emulator._service import RECORDED_METADATA, EmulatorService, RecordedCall

__all__ = [
    "RECORDED_METADATA",
    "Annotator",
    "AnnotatorRegistry",
    "BucketDir",
    "EmulatorService",
    "Fault",
    "FaultInjector",
    "ImageInput",
    "InvalidUri",
    "ObjectNotFound",
    "RecordedCall",
]
