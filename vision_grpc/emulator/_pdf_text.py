"""DOCUMENT_TEXT_DETECTION and TEXT_DETECTION from the text layer of PDF pages (pypdfium2).

This reads the characters a PDF page already carries; the emulator uses it when the OCR engine
(``_ocr``, the ``ocr`` extra) is not installed, or when asked to (``AnnotatorRegistry(ocr=False)``).
The service itself reads the rendered page, as ``_ocr`` does. The page's lines go through the same
builder as OCR's (``_layout``): ``full_text_annotation`` has one ``Page`` (size in points, as the
service gives for PDFs) with ``normalized_vertices`` and confidence 1.0; ``text_annotations`` the
whole text first, then one entry per word.

Layout, from PDFium's characters in content order and their loose boxes (font ascent to descent):
whitespace ends a word; a line ends at a line break PDFium reports, or when a character is not
level with the previous one or steps back left of it; lines group into paragraphs and blocks by
``_layout.group_lines``. Images, TIFF/GIF pages and PDF pages without text keep an UNIMPLEMENTED
error. Output is deterministic: the same file gives the same bytes.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc.emulator._image import Annotator, ImageInput, feature_name
from vision_grpc.emulator._layout import Box, Glyph, PageText, TextLine, fill_response, group_lines
from vision_grpc.emulator._pages import PDFIUM_LOCK, UnreadableDocument
from vision_grpc.errors import api_error

__all__ = ["INSTALL_HINT", "OCR_NOT_IMPLEMENTED", "TEXT_ANNOTATORS", "annotate_text", "read_page_text"]

OCR_NOT_IMPLEMENTED = (
    "without its OCR engine the emulator reads PDF text layers only; OCR of images and scanned pages "
    "needs pip install 'vision-grpc[ocr]'"
)
INSTALL_HINT = "pip install 'vision-grpc[emulator]'"


# -- reading the PDF ------------------------------------------------------------------------------


def read_page_text(data: bytes, page_number: int) -> PageText:
    """The laid-out text layer of 1-based ``page_number``; ImportError without pypdfium2."""
    pdfium: Any = importlib.import_module("pypdfium2")
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise UnreadableDocument(f"not a readable PDF: {exc}") from None
        try:
            page = document[max(page_number, 1) - 1]
            width, height, to_box = _display(page)
            items = list(_characters(page.get_textpage(), to_box))
        finally:
            document.close()
    blocks = group_lines(TextLine(line) for line in _lines(items))
    return PageText(max(width, 1.0), max(height, 1.0), blocks)  # no division by zero


def _display(page: Any) -> tuple[float, float, Callable[[float, float, float, float], Box]]:
    """Displayed width, height and a map from PDF (left, bottom, right, top) to a displayed ``Box``."""
    x0, y0, x1, y1 = page.get_bbox()  # the visible area: MediaBox clipped by CropBox
    width, height, rotation = x1 - x0, y1 - y0, page.get_rotation()

    def to_box(left: float, bottom: float, right: float, top: float) -> Box:
        lx, rx, ty, by = left - x0, right - x0, y1 - top, y1 - bottom  # unrotated, y going down
        if rotation == 90:
            return Box(height - by, lx, height - ty, rx)
        if rotation == 180:
            return Box(width - rx, height - by, width - lx, height - ty)
        if rotation == 270:
            return Box(ty, width - rx, by, width - lx)
        return Box(lx, ty, rx, by)

    return (height, width, to_box) if rotation in (90, 270) else (width, height, to_box)


def _characters(textpage: Any, to_box: Callable[[float, float, float, float], Box]) -> Iterator[Glyph | str]:
    """The page's characters in content order: glyphs, " " for whitespace, "\\n" for line breaks."""
    raw: Any = importlib.import_module("pypdfium2.raw")
    count, index = textpage.count_chars(), 0
    while index < count:
        code = raw.FPDFText_GetUnicode(textpage, index)
        box = to_box(*textpage.get_charbox(index, loose=True))
        index += 1
        if 0xD800 <= code < 0xDC00 and index < count:  # a UTF-16 surrogate pair is one symbol
            low = raw.FPDFText_GetUnicode(textpage, index)
            if 0xDC00 <= low < 0xE000:
                code, index = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), index + 1
        text = "-" if code == 2 else chr(code)  # PDFium reports a hyphen ending a line as U+0002
        if text in "\r\n":
            yield "\n"
        elif text.isspace():
            yield " "
        elif not unicodedata.category(text).startswith("C"):
            yield Glyph(text, box)


# -- layout ---------------------------------------------------------------------------------------


def _lines(items: Iterable[Glyph | str]) -> list[list[list[Glyph]]]:
    """Words split at whitespace; lines split at line breaks and where the text jumps."""
    lines: list[list[list[Glyph]]] = [[[]]]
    previous: Box | None = None
    for item in items:
        if isinstance(item, str):
            _end_word(lines, end_line=item == "\n")
            continue
        if previous is not None and _jumps(previous, item.box):
            _end_word(lines, end_line=True)
        lines[-1][-1].append(item)
        previous = item.box
    return [[word for word in line if word] for line in lines if any(line)]


def _end_word(lines: list[list[list[Glyph]]], *, end_line: bool) -> None:
    if lines[-1][-1]:
        lines[-1].append([])
    if end_line and any(lines[-1]):
        lines.append([[]])


def _jumps(previous: Box, box: Box) -> bool:
    """``box`` is not on ``previous``'s line: not level with it, or back left of it (by half a line height)."""
    middle = (box.top + box.bottom) / 2
    return not previous.top <= middle <= previous.bottom or box.left < previous.left - previous.height / 2


# -- the annotator --------------------------------------------------------------------------------


def annotate_text(image: ImageInput, feature: Message, response: Message) -> None:
    """The ``Annotator`` for both text features: they give the same answer, computed once per page."""
    target: Any = response
    if target.HasField("full_text_annotation"):
        return  # both features were requested for this page
    name = feature_name(feature)
    if image.mime_type != "application/pdf":
        where = f"page {image.page_number} of an {image.mime_type} file" if image.page_number else "an image"
        raise api_error(code_pb2.UNIMPLEMENTED, f"{name} of {where}: {OCR_NOT_IMPLEMENTED}")
    try:
        page = read_page_text(image.content, image.page_number)
    except ImportError:
        raise api_error(code_pb2.UNIMPLEMENTED, f"{name} of PDF text layers needs pypdfium2: {INSTALL_HINT}") from None
    except UnreadableDocument as exc:
        raise api_error(code_pb2.INVALID_ARGUMENT, f"{image.uri or 'inline content'}: {exc}") from None
    if not page.blocks:
        message = f"{name}: page {image.page_number} has no text layer; {OCR_NOT_IMPLEMENTED}"
        raise api_error(code_pb2.UNIMPLEMENTED, message)
    fill_response(target, page)


TEXT_ANNOTATORS: Mapping[str, Annotator] = MappingProxyType(
    {"DOCUMENT_TEXT_DETECTION": annotate_text, "TEXT_DETECTION": annotate_text}
)
