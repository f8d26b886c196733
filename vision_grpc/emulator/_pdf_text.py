"""DOCUMENT_TEXT_DETECTION and TEXT_DETECTION computed from the text layer of PDF pages (pypdfium2).

The emulator does no OCR: it reads the characters a PDF page already carries and lays them out
the way the service answers for a file page. ``full_text_annotation`` has one ``Page`` (size in
points, as the service gives for PDFs) of Blocks, Paragraphs, Words and Symbols, each with a
``bounding_box`` of ``normalized_vertices`` (fractions of the displayed page, clockwise from the
top-left corner) and confidence 1.0; the last symbol of a word carries the break that follows it
(SPACE, EOL_SURE_SPACE at a line end inside a paragraph, LINE_BREAK at a paragraph end) and
``text`` is the words joined by those breaks, so every line ends with ``"\\n"``.
``text_annotations`` holds the whole text first, then one entry per word.

Layout, from PDFium's characters in content order and their loose boxes (font ascent to descent):
whitespace ends a word; a line ends at a line break PDFium reports, or when a character is not
level with the previous one or steps back left of it. Between two consecutive lines, with ``h``
the smaller line height: a vertical gap over ``0.5 h`` starts a paragraph; a gap over ``1.2 h``,
a move back up the page, a line height change over 20 % or no horizontal overlap with the
current paragraph starts a block. Images, TIFF/GIF pages and PDF pages without text keep an
UNIMPLEMENTED error. Output is deterministic: the same file gives the same bytes.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc.emulator._image import Annotator, ImageInput, feature_name
from vision_grpc.emulator._pages import PDFIUM_LOCK, UnreadableDocument
from vision_grpc.errors import api_error

__all__ = [
    "OCR_NOT_IMPLEMENTED",
    "TEXT_ANNOTATORS",
    "Box",
    "Glyph",
    "PageText",
    "annotate_text",
    "cover",
    "fill_response",
    "read_page_text",
]

OCR_NOT_IMPLEMENTED = "the emulator reads PDF text layers; OCR of images/scanned pages is not implemented yet"
INSTALL_HINT = "pip install 'vision-grpc[emulator]'"
CONFIDENCE = 1.0  # a text layer is exact
PARAGRAPH_GAP, BLOCK_GAP, SIZE_CHANGE = 0.5, 1.2, 1.2  # in line heights; ratio of line heights
# TextAnnotation.DetectedBreak.BreakType (the same numbers in v1 and v1p4beta1) and the text each adds.
SPACE, EOL_SURE_SPACE, LINE_BREAK = 1, 3, 5
BREAK_TEXT = {SPACE: " ", EOL_SURE_SPACE: "\n", LINE_BREAK: "\n"}
BLOCK_TEXT = 1  # Block.BlockType.TEXT


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in points on the displayed page: origin top-left, y going down."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class Glyph:
    text: str
    box: Box


Word = list[Glyph]
Line = list[Word]
Paragraph = list[Line]
Block = list[Paragraph]


@dataclass(frozen=True)
class PageText:
    """A page's text layer: blocks of paragraphs of lines of words; no blocks for a page without text."""

    width: float
    height: float
    blocks: list[Block]


def cover(boxes: Iterable[Box]) -> Box:
    """The smallest box around ``boxes`` (at least one)."""
    items = list(boxes)
    return Box(
        min(b.left for b in items), min(b.top for b in items), max(b.right for b in items), max(b.bottom for b in items)
    )


def _glyph_boxes(item: Glyph | Word | Line | Paragraph | Block) -> Iterator[Box]:
    if isinstance(item, Glyph):
        yield item.box
    else:
        for part in item:
            yield from _glyph_boxes(part)


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
    return PageText(max(width, 1.0), max(height, 1.0), _blocks(_lines(items)))  # no division by zero


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


def _lines(items: Iterable[Glyph | str]) -> list[Line]:
    """Words split at whitespace; lines split at line breaks and where the text jumps."""
    lines: list[Line] = [[[]]]
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


def _end_word(lines: list[Line], *, end_line: bool) -> None:
    if lines[-1][-1]:
        lines[-1].append([])
    if end_line and any(lines[-1]):
        lines.append([[]])


def _jumps(previous: Box, box: Box) -> bool:
    """``box`` is not on ``previous``'s line: not level with it, or back left of it (by half a line height)."""
    middle = (box.top + box.bottom) / 2
    return not previous.top <= middle <= previous.bottom or box.left < previous.left - previous.height / 2


def _blocks(lines: list[Line]) -> list[Block]:
    blocks: list[Block] = []
    paragraph = previous = Box(0, 0, 0, 0)
    for line in lines:
        box = cover(_glyph_boxes(line))
        level = 2 if not blocks else _break_level(previous, box, paragraph)
        if level == 2:
            blocks.append([[line]])
        elif level == 1:
            blocks[-1].append([line])
        else:
            blocks[-1][-1].append(line)
        paragraph, previous = (box if level else cover((paragraph, box))), box
    return blocks


def _break_level(previous: Box, box: Box, paragraph: Box) -> int:
    """What separates two consecutive lines: 0 nothing, 1 a paragraph end, 2 a block end."""
    small, large = sorted((previous.height, box.height))
    gap = box.top - previous.bottom
    overlaps = box.left < paragraph.right and paragraph.left < box.right
    if large > SIZE_CHANGE * small or not overlaps or gap > BLOCK_GAP * small or gap < -small / 2:
        return 2
    return 1 if gap > PARAGRAPH_GAP * small else 0


# -- the response ---------------------------------------------------------------------------------


def _poly(poly: Any, box: Box, page: PageText) -> None:
    """Four normalized vertices, clockwise from the top-left corner, each in [0, 1]."""
    left, right = (min(max(x / page.width, 0.0), 1.0) for x in (box.left, box.right))
    top, bottom = (min(max(y / page.height, 0.0), 1.0) for y in (box.top, box.bottom))
    for x, y in ((left, top), (right, top), (right, bottom), (left, bottom)):
        poly.normalized_vertices.add(x=x, y=y)


def _add_word(paragraph: Any, word: Word, break_type: int, page: PageText) -> None:
    out = paragraph.words.add(confidence=CONFIDENCE)
    _poly(out.bounding_box, cover(_glyph_boxes(word)), page)
    for glyph in word:
        symbol = out.symbols.add(text=glyph.text, confidence=CONFIDENCE)
        _poly(symbol.bounding_box, glyph.box, page)
    symbol.property.detected_break.type = break_type


def _fill_page(annotation: Any, page: PageText) -> list[tuple[str, Box]]:
    """Fill the ``TextAnnotation``; returns each word's text and box, in order."""
    out_page = annotation.pages.add(width=round(page.width), height=round(page.height), confidence=CONFIDENCE)
    words: list[tuple[str, Box]] = []
    text: list[str] = []
    for block in page.blocks:
        out_block = out_page.blocks.add(block_type=BLOCK_TEXT, confidence=CONFIDENCE)
        _poly(out_block.bounding_box, cover(_glyph_boxes(block)), page)
        for paragraph in block:
            out_paragraph = out_block.paragraphs.add(confidence=CONFIDENCE)
            _poly(out_paragraph.bounding_box, cover(_glyph_boxes(paragraph)), page)
            for line_number, line in enumerate(paragraph, start=1):
                for word_number, word in enumerate(line, start=1):
                    last_line = line_number == len(paragraph)
                    break_type = SPACE if word_number < len(line) else LINE_BREAK if last_line else EOL_SURE_SPACE
                    _add_word(out_paragraph, word, break_type, page)
                    words.append(("".join(glyph.text for glyph in word), cover(_glyph_boxes(word))))
                    text += (words[-1][0], BREAK_TEXT[break_type])
    annotation.text = "".join(text)
    return words


def fill_response(response: Any, page: PageText) -> None:
    """Set ``full_text_annotation`` and ``text_annotations`` of an ``AnnotateImageResponse``."""
    words = _fill_page(response.full_text_annotation, page)
    whole = response.text_annotations.add(description=response.full_text_annotation.text)
    _poly(whole.bounding_poly, cover(box for _, box in words), page)
    for text, box in words:
        _poly(response.text_annotations.add(description=text).bounding_poly, box, page)


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
