"""Per-image annotation: a registry from ``Feature.Type`` to annotator functions.

The emulator has no vision engines. By default it computes DOCUMENT_TEXT_DETECTION and
TEXT_DETECTION from the text layer of PDF pages (``_pdf_text``, with pypdfium2); every other
feature yields an ``AnnotateImageResponse`` whose ``error`` is UNIMPLEMENTED naming the features
("the emulator does not compute LABEL_DETECTION yet"), as the real service reports per-image
failures. ``AnnotatorRegistry({})`` starts empty instead. Real or fake engines are plugged in
with ``AnnotatorRegistry.register``: an annotator (``_image.Annotator``) receives the image
(``_image.ImageInput``: bytes, mime type, URI, page number), the ``Feature`` and the version's
``AnnotateImageResponse`` to fill in. Annotators must
be deterministic: the same input must give the same output. Filled-in annotations are kept even
when another feature fails, as the service documents.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc.emulator._image import Annotator, ImageInput, feature_name
from vision_grpc.emulator._pdf_text import TEXT_ANNOTATORS
from vision_grpc.emulator._status import copy_across, status
from vision_grpc.errors import ApiError

__all__ = ["AnnotatorRegistry", "default_annotators"]


def default_annotators() -> dict[str, Annotator]:
    """The built-in annotators: both text features from PDF text layers."""
    return dict(TEXT_ANNOTATORS)


class AnnotatorRegistry:
    """Thread-safe map ``Feature.Type`` name -> annotator; both API versions share the names.

    ``annotators`` defaults to ``default_annotators()``; pass ``{}`` for an empty registry.
    """

    def __init__(self, annotators: Mapping[str, Annotator] | None = None) -> None:
        self._lock = threading.Lock()
        self._annotators: dict[str, Annotator] = dict(default_annotators() if annotators is None else annotators)

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
        error: Message | None = None
        for feature in features:
            name = feature_name(feature)
            annotator = self.get(name)
            if annotator is None:
                if name not in missing:
                    missing.append(name)
                continue
            try:
                annotator(image, feature, response)
            except ApiError as err:
                error = error or err.status
        if error is None and missing:
            error = status(code_pb2.UNIMPLEMENTED, f"the emulator does not compute {', '.join(missing)} yet")
        if error is not None:
            copy_across(response.error, error)
        return response  # type: ignore[no-any-return]
