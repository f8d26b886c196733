"""Per-image annotation: a registry from ``Feature.Type`` to annotator functions.

By default the emulator computes DOCUMENT_TEXT_DETECTION and TEXT_DETECTION (both give the same
answer, computed once per image) by OCR (``_ocr``, the ``ocr`` extra), as the service does: of
images, of TIFF/GIF pages and of rendered PDF pages. Without the OCR engine (not installed, or
``AnnotatorRegistry(ocr=False)``, or ``VISION_EMULATOR_OCR=0`` in the environment) it reads the
text layer of PDF pages instead (``_pdf_text``, with pypdfium2), says so once in the log (logger
``vision_grpc.emulator``) when the engine is missing, and answers images with an UNIMPLEMENTED error.

Every other feature yields an ``AnnotateImageResponse`` whose ``error`` is UNIMPLEMENTED naming the
features ("the emulator does not compute LABEL_DETECTION yet"), as the real service reports
per-image failures, in both API versions alike; the annotations it can compute are still filled
in beside that error, as the service documents. An annotator's own ``ApiError`` (e.g. "Bad image
data.") takes the error's place; when that is UNIMPLEMENTED too (text of an image without the OCR
engine), one status names them all. ``AnnotatorRegistry({})`` starts empty instead. Real or fake
engines are plugged in with ``AnnotatorRegistry.register``: an annotator (``_image.Annotator``)
receives the image (``_image.ImageInput``: bytes, mime type, URI, page number), the ``Feature``
and the version's ``AnnotateImageResponse`` to fill in. Annotators must be deterministic: the
same input must give the same output.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc.emulator import _ocr, _pdf_text
from vision_grpc.emulator._image import Annotator, ImageInput, feature_name
from vision_grpc.emulator._status import copy_across, status
from vision_grpc.errors import ApiError

__all__ = ["TEXT_FEATURES", "AnnotatorRegistry", "default_annotators", "ocr_enabled"]

_log = logging.getLogger(__name__)
TEXT_FEATURES = ("DOCUMENT_TEXT_DETECTION", "TEXT_DETECTION")
OCR_SWITCH = "VISION_EMULATOR_OCR"  # "0", "off", "false" or "no": read PDF text layers even with the engine
_warned = threading.Event()


def ocr_enabled() -> bool:
    """Whether the default annotators use OCR: unless ``VISION_EMULATOR_OCR`` says no (the engine may
    still turn out to be missing: then they fall back to PDF text layers)."""
    return os.environ.get(OCR_SWITCH, "").strip().lower() not in ("0", "off", "false", "no")


def _fallback_once(reason: str) -> None:
    if not _warned.is_set():
        _warned.set()
        _log.warning(
            "%s: DOCUMENT_TEXT_DETECTION and TEXT_DETECTION read PDF text layers instead, and images get an "
            "UNIMPLEMENTED error (pip install 'vision-grpc[ocr]' for OCR)",
            reason,
        )


def ocr_text(image: ImageInput, feature: Message, response: Message) -> None:
    """Both text features by OCR; the PDF text layer when the OCR engine is missing (logged once)."""
    try:
        _ocr.annotate_text(image, feature, response)
    except _ocr.OcrUnavailable as exc:
        _fallback_once(str(exc))
        _pdf_text.annotate_text(image, feature, response)


def layer_text(image: ImageInput, feature: Message, response: Message) -> None:
    """Both text features from PDF text layers (no OCR)."""
    _pdf_text.annotate_text(image, feature, response)


# Annotators that answer all of TEXT_FEATURES at once: run once per image, whichever were requested.
_ONCE_PER_IMAGE: tuple[Annotator, ...] = (ocr_text, layer_text)


def default_annotators(*, ocr: bool | None = None) -> dict[str, Annotator]:
    """The built-in annotators: both text features, by OCR (``ocr``; None: unless ``VISION_EMULATOR_OCR``
    is off) or from PDF text layers."""
    text = ocr_text if (ocr_enabled() if ocr is None else ocr) else layer_text
    return dict.fromkeys(TEXT_FEATURES, text)


class AnnotatorRegistry:
    """Thread-safe map ``Feature.Type`` name -> annotator; both API versions share the names.

    ``annotators`` defaults to ``default_annotators(ocr=ocr)``; pass ``{}`` for an empty registry.
    ``ocr=False`` reads PDF text layers even when the OCR engine is installed (faster: no rendering).
    """

    def __init__(self, annotators: Mapping[str, Annotator] | None = None, *, ocr: bool | None = None) -> None:
        self._lock = threading.Lock()
        chosen = default_annotators(ocr=ocr) if annotators is None else annotators
        self._annotators: dict[str, Annotator] = dict(chosen)

    def register(self, feature_type: str, annotator: Annotator) -> None:
        """Compute ``feature_type`` (e.g. ``"TEXT_DETECTION"``) with ``annotator`` from now on."""
        with self._lock:
            self._annotators[feature_type] = annotator

    def unregister(self, feature_type: str) -> None:
        with self._lock:
            self._annotators.pop(feature_type, None)

    def get(self, feature_type: str) -> Annotator | None:
        with self._lock:
            return self._annotators.get(feature_type)

    def annotate(self, image: ImageInput, features: Iterable[Message], response_type: type[Message]) -> Message:
        """One ``AnnotateImageResponse`` for ``image``; file pages get ``context {uri, page_number}``."""
        response: Any = response_type()
        if image.page_number:
            response.context.uri = image.uri
            response.context.page_number = image.page_number
        missing: list[str] = []
        error: Any = None  # a google.rpc.Status
        ran: list[Annotator] = []  # of _ONCE_PER_IMAGE (identity: an annotator need not be hashable)
        for feature in features:
            name = feature_name(feature)
            annotator = self.get(name)
            if annotator is None:
                if name not in missing:
                    missing.append(name)
                continue
            if any(annotator is once for once in _ONCE_PER_IMAGE):
                if any(annotator is done for done in ran):
                    continue
                ran.append(annotator)
            try:
                annotator(image, feature, response)
            except ApiError as err:
                error = error or err.status
        if missing:
            unimplemented = f"the emulator does not compute {', '.join(missing)} yet"
            if error is None:
                error = status(code_pb2.UNIMPLEMENTED, unimplemented)
            elif error.code == code_pb2.UNIMPLEMENTED:  # name every feature it cannot compute, in one status
                error = status(code_pb2.UNIMPLEMENTED, f"{unimplemented}; {error.message}")
        if error is not None:
            copy_across(response.error, error)
        return response  # type: ignore[no-any-return]
