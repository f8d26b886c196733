"""Pixels to read text from: a PDF page rendered with pypdfium2, an image or a TIFF/GIF page decoded with Pillow.

``rasterize(image)`` gives a ``Raster``: the page or image as an uncompressed BMP (what the OCR
engine reads fastest: no PNG encoding), its size, and how its pixels map to the coordinates the
answer uses. As the service does, a PDF page is read from its rendering (at ``RENDER_DPI``, 200;
PDFium draws the page as displayed, with its ``/Rotate``), never from its text layer; a page with
no content at all is not rendered. A standalone image is its first frame (the service reads the
first frame of an animated GIF); page ``n`` of a TIFF or GIF file is its ``n``-th frame.
Transparent pixels are laid on white. One raster is held per call: the caller's worker holds one
page image at a time.

Bounds: images over 75 megapixels are refused (the service's documented limit); images, frames
and renderings over ``OCR_MAX_PIXELS`` are scaled down before OCR (the answer's coordinates stay
those of the original pixels), and so are PDF pages that would render larger. Undecodable bytes
raise ``BadImage`` ("Bad image data.", as the service answers). PDFium is used under
``_pages.PDFIUM_LOCK``. Requires pypdfium2 (PDFs) and Pillow (images); ``ImportError`` otherwise.
"""

from __future__ import annotations

import importlib
import io
import math
import struct
from dataclasses import dataclass
from typing import Any

from vision_grpc.emulator._image import ImageInput
from vision_grpc.emulator._pages import PDFIUM_LOCK, UnreadableDocument

__all__ = ["MAX_IMAGE_PIXELS", "OCR_MAX_PIXELS", "RENDER_DPI", "BadImage", "Raster", "rasterize"]

RENDER_DPI = 200
MAX_IMAGE_PIXELS = 75_000_000  # the service: "Image size should not exceed 75M pixels"
OCR_MAX_PIXELS = 16_000_000  # about 4900 x 3300: larger rasters are scaled down to this many pixels
BAD_IMAGE = "Bad image data."


class BadImage(ValueError):
    """The bytes are not an image the emulator can decode (or one that is too large)."""


@dataclass(frozen=True)
class Raster:
    """Pixels for the OCR engine and the page they stand for.

    ``bmp`` is ``width`` x ``height`` pixels (empty when ``blank``); a raster pixel is ``unit`` page
    units wide. Page units are the original image's pixels, or the rendering's pixels for a PDF page,
    whose ``size`` in points is what ``Page.width``/``height`` report. ``pixels``: the answer uses
    pixel ``vertices`` (a standalone image), else ``normalized_vertices`` (a page of a file).
    """

    bmp: bytes
    width: int
    height: int
    unit: float
    pixels: bool
    size: tuple[int, int] | None = None
    blank: bool = False

    @property
    def page_width(self) -> float:
        return self.width * self.unit

    @property
    def page_height(self) -> float:
        return self.height * self.unit


def rasterize(image: ImageInput) -> Raster:
    """The pixels of ``image``: a PDF page rendered, an image (or a TIFF/GIF page) decoded."""
    if image.mime_type == "application/pdf":
        return _render_pdf_page(image.content, image.page_number)
    return _decode_image(image.content, image.page_number, pixels=not image.page_number)


# -- PDF pages ------------------------------------------------------------------------------------


def _render_pdf_page(data: bytes, page_number: int) -> Raster:
    pdfium: Any = importlib.import_module("pypdfium2")
    raw: Any = importlib.import_module("pypdfium2.raw")
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise UnreadableDocument(f"not a readable PDF: {exc}") from None
        try:
            page = document[max(page_number, 1) - 1]
            width, height = page.get_size()  # as displayed: /Rotate applied
            scale = RENDER_DPI / 72
            if width * height * scale * scale > OCR_MAX_PIXELS:
                scale = math.sqrt(OCR_MAX_PIXELS / (width * height))
            size = (round(width), round(height))
            if raw.FPDFPage_CountObjects(page) == 0 and raw.FPDFPage_GetAnnotCount(page) == 0:
                pixel_size = (max(round(width * scale), 1), max(round(height * scale), 1))
                return Raster(b"", *pixel_size, unit=1.0, pixels=False, size=size, blank=True)
            bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255), prefer_bgrx=True)
            try:
                bmp = _bmp(bytes(bitmap.buffer), bitmap.width, bitmap.height, bitmap.stride, bitmap.n_channels)
                return Raster(bmp, bitmap.width, bitmap.height, unit=1.0, pixels=False, size=size)
            finally:
                bitmap.close()
        finally:
            document.close()


def _bmp(pixels: bytes, width: int, height: int, stride: int, channels: int) -> bytes:
    """A top-down BMP of PDFium's BGR/BGRx rows (``stride`` bytes each), rows padded to 4 bytes as BMP wants."""
    if channels not in (3, 4) or stride < width * channels:
        raise ValueError(f"unexpected bitmap layout: {channels} channels, stride {stride} for width {width}")
    row = width * channels
    padded = row + -row % 4
    if stride != padded:
        pixels = b"".join(pixels[y * stride : y * stride + row].ljust(padded, b"\0") for y in range(height))
    header_size = 14 + 40
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, channels * 8, 0, len(pixels), 7874, 7874, 0, 0)
    return b"BM" + struct.pack("<IHHI", header_size + len(pixels), 0, 0, header_size) + info + pixels


# -- images and TIFF/GIF pages --------------------------------------------------------------------


def _decode_image(data: bytes, page_number: int, *, pixels: bool) -> Raster:
    image_module: Any = importlib.import_module("PIL.Image")
    try:
        frame = _frame(image_module, data, page_number)
    except (BadImage, UnreadableDocument):
        raise
    except Exception:  # any decoder failure (or a warning about corrupt data, where warnings are errors)
        raise BadImage(BAD_IMAGE) from None
    unit = 1.0
    if frame.width * frame.height > OCR_MAX_PIXELS:
        factor = math.sqrt(OCR_MAX_PIXELS / (frame.width * frame.height))
        target = (max(round(frame.width * factor), 1), max(round(frame.height * factor), 1))
        unit = frame.width / target[0]
        frame = frame.resize(target, image_module.Resampling.BILINEAR, reducing_gap=2.0)
    if all(low == high for low, high in frame.getextrema()):  # one colour: nothing to read
        return Raster(b"", frame.width, frame.height, unit=unit, pixels=pixels, blank=True)
    out = io.BytesIO()
    frame.save(out, format="BMP")
    return Raster(out.getvalue(), frame.width, frame.height, unit=unit, pixels=pixels)


def _frame(image_module: Any, data: bytes, page_number: int) -> Any:
    """Frame ``page_number`` (1-based; 0: the first) of the image in ``data``, as RGB."""
    try:
        opened = image_module.open(io.BytesIO(data))
    except image_module.DecompressionBombError:
        raise BadImage(f"{BAD_IMAGE} The image is larger than {MAX_IMAGE_PIXELS} pixels.") from None
    with opened:
        width, height = opened.size
        if width * height > MAX_IMAGE_PIXELS:
            raise BadImage(f"{BAD_IMAGE} The image is larger than {MAX_IMAGE_PIXELS} pixels.")
        if page_number > 1:
            try:
                opened.seek(page_number - 1)
            except EOFError:
                raise UnreadableDocument(f"page {page_number} is missing from the file") from None
        return _rgb(opened, image_module)


def _rgb(frame: Any, image_module: Any) -> Any:
    """The current frame as RGB, transparent pixels laid on white."""
    frame.load()
    if frame.mode == "RGB":
        return frame.copy()
    has_alpha = frame.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in frame.info
    if not has_alpha:
        return frame.convert("RGB")
    rgba = frame.convert("RGBA")
    white = image_module.new("RGBA", rgba.size, (255, 255, 255, 255))
    white.alpha_composite(rgba)
    return white.convert("RGB")
