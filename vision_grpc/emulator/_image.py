"""What an annotator is given and what it is: ``ImageInput``, the ``Annotator`` signature, ``feature_name``.

Shared by the registry (``_annotate``) and the built-in text annotators (``_pdf_text``), which
both depend on this module and not on each other's insides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

__all__ = ["Annotator", "ImageInput", "feature_name"]


@dataclass(frozen=True)
class ImageInput:
    """One image to annotate: a standalone image, or one page of a PDF/TIFF/GIF file."""

    content: bytes  # the image's bytes; for a file page, the whole file's bytes
    mime_type: str = ""  # the file's mime type; "" for a standalone image
    uri: str = ""  # where it was read from (gs://...), "" for inline content
    page_number: int = 0  # 1-based page of a file; 0 for a standalone image


# (image, feature, response): fill ``response`` (the version's AnnotateImageResponse) for ``feature``;
# raise ``vision_grpc.errors.ApiError`` to report this image's failure in ``response.error``.
Annotator = Callable[[ImageInput, Message, Message], None]


def feature_name(feature: Any) -> str:
    """``Feature.type`` as its enum name (``"DOCUMENT_TEXT_DETECTION"``)."""
    number = feature.type
    value = feature.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number.get(number)
    return str(value.name) if value is not None else str(number)
