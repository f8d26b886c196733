"""DOCUMENT_TEXT_DETECTION and TEXT_DETECTION by OCR of the page or image, offline (the ``ocr`` extra).

The engine is faster-paddle: PaddleOCR's PP-OCR text detection and recognition models (the
"tiny" ones, bundled in its wheel: nothing is downloaded at run time) run with ONNX Runtime, in
one process-wide ``OcrEngine`` created on first use with a thread per core (at most 8). It
serializes its calls and releases the GIL while it works, so the RPC threads keep running; its
busy-waiting worker threads are turned off (``OCR_DET_SPIN``/``OCR_REC_SPIN`` set to 0 unless
already set), so an idle engine leaves the CPU to everybody else. Same pixels, same answer.

The engine finds *lines*: an axis-aligned box, the text and a confidence each. Words and symbols
are cut from the line's box in proportion to typical glyph widths (Helvetica's advance widths; 1 em
for wide East Asian characters), so their boxes are approximate: each spans the line's height, and
a word's horizontal extent is usually within a few pixels of the ink at 200 dpi. Reading order:
lines sorted by their vertical middle; lines that sit side by side (level within half a text
height, not overlapping horizontally) form one line, left to right; then ``_layout.group_lines``
makes paragraphs and blocks from the vertical gaps, the same rules as for PDF text layers, with a
text height estimated from the line's width and characters, so that slightly skewed lines (whose
boxes are taller than their text) still group. There is no column detection: text set in columns
is read across them. Every glyph of a line has the line's confidence.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from vision_grpc.emulator._image import ImageInput
from vision_grpc.emulator._layout import Box, Glyph, PageText, TextLine, fill_response, group_lines
from vision_grpc.emulator._pages import UnreadableDocument
from vision_grpc.emulator._raster import BadImage, Raster, rasterize
from vision_grpc.errors import api_error

__all__ = ["ENGINE", "OcrUnavailable", "annotate_text", "available", "engine_threads", "read_raster"]

ENGINE = "faster_paddle"  # the import name; the distribution is faster-paddle
MODEL_SIZE = "tiny"
MAX_THREADS = 8
OCR_SIZE_CHANGE = 1.5  # estimated text heights vary more than a text layer's exact ones
BOX_PER_EM = 1.2  # an unskewed line's box height, in font sizes (ascender to descender plus padding)
MIN_CHARS_FOR_ESTIMATE = 8
# Helvetica's advance widths (thousandths of an em) for " " to "~"; other characters: 556, wide ones 1000.
_ADVANCES = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 556 556 556 278 "
    "278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 556 833 722 778 667 778 722 667 611 722 "
    "667 944 667 667 611 278 278 278 469 556 333 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 "
    "556 333 500 278 556 500 722 500 500 500 334 260 334 584"
)
WIDTHS = {chr(32 + index): int(width) for index, width in enumerate(_ADVANCES.split())}


class OcrUnavailable(ImportError):
    """The OCR engine (or Pillow / pypdfium2, which feed it) cannot be imported or started."""


_lock = threading.Lock()
_engine: Any = None
_failure: str | None = None


def available() -> bool:
    """True when the engine is installed (nothing is imported) and has not failed to start."""
    try:
        return _failure is None and importlib.util.find_spec(ENGINE) is not None
    except (ImportError, ValueError):  # a blocked or half-imported module
        return False


def engine_threads() -> int:
    """The engine's threads: one per core this process may use, at most ``MAX_THREADS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_THREADS))


def _get_engine() -> Any:
    """The process-wide engine, created on first use; ``OcrUnavailable`` if it cannot be."""
    global _engine, _failure
    with _lock:
        if _engine is None:
            if _failure is not None:
                raise OcrUnavailable(_failure)
            os.environ.setdefault("OCR_DET_SPIN", "0")  # no busy-waiting threads between calls
            os.environ.setdefault("OCR_REC_SPIN", "0")
            try:
                module: Any = importlib.import_module(ENGINE)
                _engine = module.OcrEngine(model_size=MODEL_SIZE, threads=engine_threads())
            except Exception as exc:  # ImportError, or a broken install (missing library, bad CPU)
                _failure = f"the OCR engine {ENGINE} cannot start: {exc!r}"
                raise OcrUnavailable(_failure) from None
        return _engine


# -- from the engine's lines to the page's text -----------------------------------------------------


@dataclass(frozen=True)
class _Line:
    box: Box
    text: str
    confidence: float
    text_height: float


def _advance(char: str) -> int:
    width = WIDTHS.get(char)
    if width is not None:
        return width
    if unicodedata.combining(char):
        return 0
    return 1000 if unicodedata.east_asian_width(char) in ("W", "F") else 556


def _line(bound: Any, raster: Raster) -> _Line | None:
    text = " ".join(str(bound["text"]).split())
    if not text:
        return None
    (x1, y1), (x2, y2) = bound["topLeftCoord"], bound["bottomRightCoord"]
    left, right = (min(max(float(x), 0.0), raster.width) * raster.unit for x in sorted((x1, x2)))
    top, bottom = (min(max(float(y), 0.0), raster.height) * raster.unit for y in sorted((y1, y2)))
    if right <= left or bottom <= top:
        return None
    box = Box(left, top, right, bottom)
    advances = sum(_advance(char) for char in text)
    height = box.height
    if len(text) >= MIN_CHARS_FOR_ESTIMATE and advances:
        height = min(height, BOX_PER_EM * (right - left) * 1000 / advances)
    return _Line(box, text, float(bound.get("confidence", 1.0)), height)


def _words(line: _Line) -> list[list[Glyph]]:
    """The line's words, their symbols' boxes cut from the line's box in proportion to glyph widths."""
    text, box = line.text, line.box
    total = sum(max(_advance(char), 1) for char in text)
    scale = (box.right - box.left) / total
    words: list[list[Glyph]] = [[]]
    position = box.left
    for char in text:
        end = position + max(_advance(char), 1) * scale
        if char == " ":
            if words[-1]:
                words.append([])
        else:
            words[-1].append(Glyph(char, Box(position, box.top, min(end, box.right), box.bottom), line.confidence))
        position = end
    return [word for word in words if word]


def _rows(lines: Iterable[_Line]) -> list[TextLine]:
    """Lines in reading order: by vertical middle; side-by-side lines joined, left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda item: ((item.box.top + item.box.bottom) / 2, item.box.left)):
        if rows and _beside(rows[-1], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    result = []
    for row in rows:
        row.sort(key=lambda item: item.box.left)
        words = [word for line in row for word in _words(line)]
        result.append(TextLine(words, height=max(line.text_height for line in row)))
    return result


def _beside(row: list[_Line], line: _Line) -> bool:
    middle = (line.box.top + line.box.bottom) / 2
    for other in row:
        if other.box.left < line.box.right and line.box.left < other.box.right:
            return False  # overlapping horizontally: one above the other
        other_middle = (other.box.top + other.box.bottom) / 2
        if abs(middle - other_middle) > min(other.text_height, line.text_height) / 2:
            return False
    return True


def read_raster(raster: Raster) -> PageText:
    """OCR ``raster`` into a page of text (in page units); ``OcrUnavailable`` without the engine."""
    if raster.blank:
        return PageText(raster.page_width, raster.page_height, [], raster.size)
    result = _get_engine().ocr(raster.bmp)
    bounds = result.get("bounds", {})
    lines = [line for key in sorted(bounds, key=int) if (line := _line(bounds[key], raster)) is not None]
    blocks = group_lines(_rows(lines), size_change=OCR_SIZE_CHANGE)
    return PageText(raster.page_width, raster.page_height, blocks, raster.size)


def annotate_text(image: ImageInput, feature: Message, response: Message) -> None:
    """Fill ``response`` with the text of ``image`` (or of its page); ``OcrUnavailable`` without the
    engine, or without pypdfium2 (PDFs) or Pillow (images) to feed it."""
    if not available():
        raise OcrUnavailable(_failure or f"the OCR engine {ENGINE} is not installed")
    try:
        raster = rasterize(image)
    except BadImage as exc:
        raise api_error(code_pb2.INVALID_ARGUMENT, str(exc)) from None
    except UnreadableDocument as exc:
        raise api_error(code_pb2.INVALID_ARGUMENT, f"{image.uri or 'inline content'}: {exc}") from None
    except ImportError as exc:
        raise OcrUnavailable(
            f"OCR needs {exc.name or 'Pillow and pypdfium2'}: pip install 'vision-grpc[ocr]'"
        ) from None
    try:
        page = read_raster(raster)
    except RuntimeError as exc:  # the engine's own failure on pixels it was given
        raise api_error(code_pb2.INTERNAL, f"the OCR engine failed: {exc}") from None
    fill_response(response, page, pixels=raster.pixels)
