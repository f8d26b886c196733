"""Page counts of the document types the file calls accept: PDF, TIFF and GIF.

The service annotates every page of a file in the asynchronous call, and ``pages`` (or the first
five) in the synchronous one, so the emulator must know how many pages a file has without a
rendering engine. PDF pages are counted with pypdfium2 when it is installed, else by the page
objects (``/Type /Page``, not ``/Pages``) of the file, each object number once; TIFF pages by
walking the IFD chain (classic and BigTIFF); GIF frames by counting image descriptors. Every loop
is bounded and malformed files raise ``UnreadableDocument`` instead of looping or crashing.
``PDFIUM_LOCK`` guards every use of PDFium here and in ``_pdf_text`` (which reads page text).
"""

from __future__ import annotations

import importlib
import re
import struct
import threading
from typing import Any

__all__ = ["MIME_TYPES", "PDFIUM_LOCK", "UnreadableDocument", "count_pages"]

MIME_TYPES = ("application/pdf", "image/tiff", "image/gif")
MAX_PAGES = 100_000
# PDFium is not thread-safe and the servers annotate on several threads: every use holds this lock.
PDFIUM_LOCK = threading.Lock()

_PDF_OBJECT = re.compile(rb"(?<![0-9])(\d+)\s+\d+\s+obj\b")
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9_.#-])")
_PDF_BODY_END = re.compile(rb"\bstream\b|\bendobj\b")
_PDF_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b")


class UnreadableDocument(ValueError):
    """The bytes are not a document of the declared type (or are truncated)."""


def count_pages(data: bytes, mime_type: str) -> int:
    """Number of pages (frames for GIF) of ``data``; ``UnreadableDocument`` if there are none."""
    if mime_type == "application/pdf":
        pages = _pdf_pages(data)
    elif mime_type == "image/tiff":
        pages = _tiff_pages(data)
    elif mime_type == "image/gif":
        pages = _gif_pages(data)
    else:
        raise UnreadableDocument(f"unsupported mime_type {mime_type!r}; expected one of {', '.join(MIME_TYPES)}")
    if pages <= 0:
        raise UnreadableDocument(f"no pages found in the {mime_type} document")
    return min(pages, MAX_PAGES)


def _pdf_pages(data: bytes) -> int:
    if b"%PDF-" not in data[:1024]:
        raise UnreadableDocument("not a PDF: no %PDF- header")
    pdfium = _optional("pypdfium2")
    if pdfium is not None:
        with PDFIUM_LOCK:
            try:
                document = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                raise UnreadableDocument(f"not a readable PDF: {exc}") from None
            try:
                return int(len(document))
            finally:
                document.close()
    return _pdf_pages_by_objects(data)


def _pdf_pages_by_objects(data: bytes) -> int:
    """Distinct object numbers whose dictionary says ``/Type /Page``; else the page tree's ``/Count``."""
    headers = list(_PDF_OBJECT.finditer(data))
    pages: set[bytes] = set()
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(data)
        body_end = _PDF_BODY_END.search(data, header.end(), end)
        body = data[header.end() : body_end.start() if body_end else end]
        if _PDF_PAGE.search(body):
            pages.add(header.group(1))
    if pages:
        return len(pages)
    counts = [int(m.group(1) or m.group(2)) for m in _PDF_COUNT.finditer(data)]
    return max(counts, default=0)  # page objects inside compressed object streams: trust the tree root


def _tiff_pages(data: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        raise UnreadableDocument("not a TIFF: bad byte-order mark")
    (version,) = struct.unpack(order + "H", data[2:4])
    if version == 42:
        offset_fmt, count_fmt, entry_size = "I", "H", 12
        (offset,) = struct.unpack(order + "I", data[4:8])
    elif version == 43 and len(data) >= 16:
        offset_fmt, count_fmt, entry_size = "Q", "Q", 20
        (offset,) = struct.unpack(order + "Q", data[8:16])
    else:
        raise UnreadableDocument("not a TIFF: bad version")
    count_size, offset_size = struct.calcsize(count_fmt), struct.calcsize(offset_fmt)
    seen: set[int] = set()
    while offset:
        if offset in seen or offset + count_size > len(data) or len(seen) >= MAX_PAGES:
            raise UnreadableDocument("corrupt TIFF: IFD chain loops or points past the end")
        seen.add(offset)
        (entries,) = struct.unpack_from(order + count_fmt, data, offset)
        next_at = offset + count_size + entries * entry_size
        if next_at + offset_size > len(data):
            raise UnreadableDocument("truncated TIFF: IFD runs past the end")
        (offset,) = struct.unpack_from(order + offset_fmt, data, next_at)
    return len(seen)


def _gif_pages(data: bytes) -> int:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise UnreadableDocument("not a GIF: bad signature")
    pos = 13 + _color_table_size(data[10])
    frames = 0
    while pos < len(data) and data[pos] != 0x3B:  # 0x3B: trailer
        if data[pos] == 0x2C:  # image descriptor: 9 bytes, local color table, LZW code size, data
            if pos + 10 > len(data):
                raise UnreadableDocument("truncated GIF image descriptor")
            frames += 1
            pos = _skip_sub_blocks(data, pos + 10 + _color_table_size(data[pos + 9]) + 1)
        elif data[pos] == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        else:
            raise UnreadableDocument(f"corrupt GIF: unexpected block 0x{data[pos]:02x} at byte {pos}")
    return frames


def _color_table_size(flags: int) -> int:
    return 3 * (2 ** ((flags & 0x07) + 1)) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise UnreadableDocument("truncated GIF data sub-blocks")
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
