"""One builder for both text sources: lines of words -> paragraphs and blocks -> the service's answer.

The text layer of a PDF (``_pdf_text``) and the OCR engine (``_ocr``) both produce lines of words of
glyphs with boxes (``TextLine``); this module groups the lines into paragraphs and blocks and
writes them the way the service answers. ``full_text_annotation`` has one ``Page`` of Blocks,
Paragraphs, Words and Symbols, each with a ``bounding_box`` clockwise from the top-left corner:
``normalized_vertices`` (fractions of the page) for a page of a file (PDF, TIFF, GIF), pixel
``vertices`` for an image. The last symbol of a word carries the break that follows it (SPACE,
EOL_SURE_SPACE at a line end inside a paragraph, LINE_BREAK at a paragraph end) and ``text`` is
the words joined by those breaks, so every line ends with ``"\\n"``. ``text_annotations`` holds
the whole text first (with the box around all words), then one entry per word. Confidences are
the glyphs' (1.0 for a text layer): a word's is its lowest, a paragraph's, block's and page's the
mean of their words'.

Grouping, between two consecutive lines (in reading order), with ``h`` the smaller of the two
lines' text heights and the gap measured between their vertical centres less half of each
height (for level text, exactly the space between the boxes): a gap over ``0.5 h`` starts a
paragraph; a gap over ``1.2 h``, a move back up the page by more than ``h / 2``, a text height
change over ``size_change`` (20 % for a text layer, whose heights are exact) or no horizontal
overlap with the current paragraph starts a block. A line's text height is normally its box's
height; OCR gives a smaller estimate for slightly skewed lines, whose axis-aligned boxes are
taller than their text. Output is deterministic: the same lines give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BLOCK_TEXT",
    "BREAK_TEXT",
    "EOL_SURE_SPACE",
    "LINE_BREAK",
    "SPACE",
    "Box",
    "Glyph",
    "PageText",
    "TextLine",
    "cover",
    "fill_response",
    "group_lines",
]

PARAGRAPH_GAP, BLOCK_GAP = 0.5, 1.2  # in line heights
SIZE_CHANGE = 1.2  # ratio of line heights that starts a block (text layers)
# TextAnnotation.DetectedBreak.BreakType (the same numbers in v1 and v1p4beta1) and the text each adds.
SPACE, EOL_SURE_SPACE, LINE_BREAK = 1, 3, 5
BREAK_TEXT = {SPACE: " ", EOL_SURE_SPACE: "\n", LINE_BREAK: "\n"}
BLOCK_TEXT = 1  # Block.BlockType.TEXT


@dataclass(frozen=True)
class Box:
    """An axis-aligned box on the displayed page (points or pixels): origin top-left, y going down."""

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
    confidence: float = 1.0


Word = list[Glyph]
Line = list[Word]
Paragraph = list[Line]
Block = list[Paragraph]


@dataclass(frozen=True)
class TextLine:
    """One line of words, left to right; ``height`` is its text's height (None: its box's)."""

    words: Line
    height: float | None = None
    box: Box = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", cover(_glyph_boxes(self.words)))

    @property
    def text_height(self) -> float:
        return self.box.height if self.height is None else self.height

    @property
    def middle(self) -> float:
        return (self.box.top + self.box.bottom) / 2


@dataclass(frozen=True)
class PageText:
    """A page's text: blocks of paragraphs of lines of words; no blocks for a page without text.

    ``width``/``height`` are the page's size in the units of the boxes (what normalized vertices
    divide by); ``size`` is what ``Page.width``/``height`` report when that differs (a PDF page read
    from its rendering: its size in points, as for a text layer).
    """

    width: float
    height: float
    blocks: list[Block]
    size: tuple[int, int] | None = None


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


# -- grouping -------------------------------------------------------------------------------------


def group_lines(lines: Iterable[TextLine], *, size_change: float = SIZE_CHANGE) -> list[Block]:
    """Blocks of paragraphs of the (non-empty) ``lines``, which come in reading order."""
    blocks: list[Block] = []
    previous: TextLine | None = None
    paragraph = Box(0, 0, 0, 0)
    for line in lines:
        if not line.words:
            continue
        level = 2 if previous is None else _break_level(previous, line, paragraph, size_change)
        if level == 2:
            blocks.append([[line.words]])
        elif level == 1:
            blocks[-1].append([line.words])
        else:
            blocks[-1][-1].append(line.words)
        paragraph, previous = (line.box if level else cover((paragraph, line.box))), line
    return blocks


def _break_level(previous: TextLine, line: TextLine, paragraph: Box, size_change: float) -> int:
    """What separates two consecutive lines: 0 nothing, 1 a paragraph end, 2 a block end."""
    small, large = sorted((previous.text_height, line.text_height))
    gap = line.middle - previous.middle - (previous.text_height + line.text_height) / 2
    box = line.box
    overlaps = box.left < paragraph.right and paragraph.left < box.right
    if large > size_change * small or not overlaps or gap > BLOCK_GAP * small or gap < -small / 2:
        return 2
    return 1 if gap > PARAGRAPH_GAP * small else 0


# -- the response ---------------------------------------------------------------------------------


class _Geometry:
    """Writes boxes as normalized vertices (a page of a file) or pixel vertices (an image)."""

    def __init__(self, page: PageText, *, pixels: bool) -> None:
        self.width, self.height, self.pixels = page.width, page.height, pixels

    def poly(self, poly: Any, box: Box) -> None:
        """Four vertices, clockwise from the top-left corner, inside the page."""
        if self.pixels:
            px_left, px_right = (round(min(max(x, 0.0), self.width)) for x in (box.left, box.right))
            px_top, px_bottom = (round(min(max(y, 0.0), self.height)) for y in (box.top, box.bottom))
            for px, py in ((px_left, px_top), (px_right, px_top), (px_right, px_bottom), (px_left, px_bottom)):
                poly.vertices.add(x=px, y=py)
            return
        left, right = (min(max(x / self.width, 0.0), 1.0) for x in (box.left, box.right))
        top, bottom = (min(max(y / self.height, 0.0), 1.0) for y in (box.top, box.bottom))
        for x, y in ((left, top), (right, top), (right, bottom), (left, bottom)):
            poly.normalized_vertices.add(x=x, y=y)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 1.0


def _add_word(paragraph: Any, word: Word, break_type: int, geometry: _Geometry) -> float:
    """Add ``word``; returns its confidence."""
    confidence = min(glyph.confidence for glyph in word)
    out = paragraph.words.add(confidence=confidence)
    geometry.poly(out.bounding_box, cover(_glyph_boxes(word)))
    for glyph in word:
        symbol = out.symbols.add(text=glyph.text, confidence=glyph.confidence)
        geometry.poly(symbol.bounding_box, glyph.box)
    symbol.property.detected_break.type = break_type
    return confidence


def _fill_page(annotation: Any, page: PageText, geometry: _Geometry) -> list[tuple[str, Box]]:
    """Fill the ``TextAnnotation``; returns each word's text and box, in order."""
    width, height = page.size or (round(page.width), round(page.height))
    out_page = annotation.pages.add(width=width, height=height)
    words: list[tuple[str, Box]] = []
    text: list[str] = []
    page_confidences: list[float] = []
    for block in page.blocks:
        out_block = out_page.blocks.add(block_type=BLOCK_TEXT)
        geometry.poly(out_block.bounding_box, cover(_glyph_boxes(block)))
        block_confidences: list[float] = []
        for paragraph in block:
            out_paragraph = out_block.paragraphs.add()
            geometry.poly(out_paragraph.bounding_box, cover(_glyph_boxes(paragraph)))
            confidences: list[float] = []
            for line_number, line in enumerate(paragraph, start=1):
                for word_number, word in enumerate(line, start=1):
                    last_line = line_number == len(paragraph)
                    break_type = SPACE if word_number < len(line) else LINE_BREAK if last_line else EOL_SURE_SPACE
                    confidences.append(_add_word(out_paragraph, word, break_type, geometry))
                    words.append(("".join(glyph.text for glyph in word), cover(_glyph_boxes(word))))
                    text += (words[-1][0], BREAK_TEXT[break_type])
            out_paragraph.confidence = _mean(confidences)
            block_confidences += confidences
        out_block.confidence = _mean(block_confidences)
        page_confidences += block_confidences
    out_page.confidence = _mean(page_confidences)
    annotation.text = "".join(text)
    return words


def fill_response(response: Any, page: PageText, *, pixels: bool = False) -> None:
    """Set ``full_text_annotation`` and ``text_annotations`` of an ``AnnotateImageResponse``.

    ``pixels``: pixel ``vertices`` (an image); else ``normalized_vertices`` (a page of a file). A
    page without text leaves the response empty, as the service answers for an image without text.
    """
    if not page.blocks:
        return
    geometry = _Geometry(page, pixels=pixels)
    words = _fill_page(response.full_text_annotation, page, geometry)
    whole = response.text_annotations.add(description=response.full_text_annotation.text)
    geometry.poly(whole.bounding_poly, cover(box for _, box in words))
    for text, box in words:
        geometry.poly(response.text_annotations.add(description=text).bounding_poly, box)
