"""Write ``vision_grpc/demo/sample.pdf`` and ``scan.pdf`` from ``vision_grpc.demo`` with a minimal PDF writer.

``sample.pdf`` is plain PDF 1.4: one catalog, one page tree, the standard Type1 font Helvetica
(WinAnsiEncoding, no embedded font program) and per page an uncompressed content stream that
sets every line with its own text matrix, top to bottom. Nothing varies between runs (no dates,
no IDs, no compression), so the output is byte-for-byte reproducible. When pypdfium2 is installed
the text is read back and must equal ``sample_texts()``.

``scan.pdf`` is a "scanned" page of ``SCAN_PAGE``: the same writer sets its text on a half-letter
page turned by ``SCAN_SKEW`` degrees, pypdfium2 renders that at 200 dpi in grey, and this script
makes it black and white (a fixed threshold), adds speckles (a seeded ``random.Random``: the same
pixels every run) and stores the picture as the only content of a new page (a 1-bit
``/FlateDecode`` image, no text layer). The pixels depend on PDFium's rasterizer, so the file
records which pypdfium2/PDFium rendered it and a digest of its source (text and settings);
``--check`` then fails when the source changed, compares the pixels when the same PDFium is
installed (byte equality of the file is not required: zlib builds may compress differently), and
only notes a different PDFium. Needs pypdfium2 (the ``emulator`` extra) to build the scan.

Usage::

    python scripts/make_sample_pdf.py          # (re)write both PDFs
    python scripts/make_sample_pdf.py --check  # exit 1 if a checked-in PDF is stale
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import math
import random
import re
import sys
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision_grpc.demo import SAMPLE_PAGES, SCAN_PAGE, SampleBlock, sample_texts  # noqa: E402

OUTPUT = ROOT / "vision_grpc" / "demo" / "sample.pdf"
SCAN_OUTPUT = ROOT / "vision_grpc" / "demo" / "scan.pdf"
MAX_SIZE = 20_000
MAX_SCAN_SIZE = 60_000
PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
SCAN_WIDTH, SCAN_HEIGHT = 396, 612  # half letter, in points
MARGIN_LEFT, FIRST_BASELINE = 72.0, 712.0
SCAN_MARGIN_LEFT, SCAN_FIRST_BASELINE = 40.0, 560.0
LEADING = 1.3  # line pitch, in font sizes
PARAGRAPH_GAP = 8.0  # extra space between paragraphs of a block, in points
BLOCK_GAP = 22.0  # extra space between blocks, in points
# The scan: resolution, skew (degrees, counterclockwise), grey level below which a pixel is black,
# the share of pixels turned black (specks) or white (dropouts), and the noise's seed.
SCAN_DPI, SCAN_SKEW, SCAN_THRESHOLD, SCAN_SPECKS, SCAN_DROPOUTS, SCAN_SEED = 200, 0.8, 170, 0.001, 0.002, 2031
INFO = b"<< /Title (Juniper Valley Orchards sample) /Producer (vision-grpc scripts/make_sample_pdf.py) >>"


def _number(value: float) -> bytes:
    return (f"{value:.2f}".rstrip("0").rstrip(".") or "0").encode("ascii")


def _string(text: str) -> bytes:
    """A PDF literal string; the sample text is ASCII, so WinAnsiEncoding maps it unchanged."""
    escaped = text.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def content_stream(
    page: tuple[SampleBlock, ...],
    *,
    left: float = MARGIN_LEFT,
    first_baseline: float = FIRST_BASELINE,
    skew: float = 0.0,
    centre: tuple[float, float] = (PAGE_WIDTH / 2, PAGE_HEIGHT / 2),
) -> bytes:
    """Operators that set each line of ``page`` at the left margin, going down the page; with ``skew``
    (degrees), the lines are turned about ``centre``, as on a sheet fed into a scanner askew."""
    out = [b"BT"]
    baseline = first_baseline
    cos, sin = math.cos(math.radians(skew)), math.sin(math.radians(skew))
    for block_index, block in enumerate(page):
        if block_index:
            baseline -= BLOCK_GAP
        out.append(b"/F1 " + _number(block.size) + b" Tf")
        for paragraph_index, paragraph in enumerate(block.paragraphs):
            if paragraph_index:
                baseline -= PARAGRAPH_GAP
            for line in paragraph:
                if skew:
                    dx, dy = left - centre[0], baseline - centre[1]
                    x, y = centre[0] + dx * cos - dy * sin, centre[1] + dx * sin + dy * cos
                    matrix = b" ".join(_number(v) for v in (cos, sin, -sin, cos, x, y))
                    out.append(matrix + b" Tm")
                else:
                    out.append(b"1 0 0 1 " + _number(left) + b" " + _number(baseline) + b" Tm")
                out.append(_string(line) + b" Tj")
                baseline -= block.size * LEADING
    out.append(b"ET")
    return b"\n".join(out) + b"\n"


def _stream(body: bytes, dictionary: bytes = b"") -> bytes:
    return b"<< " + dictionary + b"/Length %d >>\nstream\n" % len(body) + body + b"endstream"


def _objects(
    pages: tuple[tuple[SampleBlock, ...], ...],
    *,
    size: tuple[int, int] = (PAGE_WIDTH, PAGE_HEIGHT),
    streams: list[bytes] | None = None,
) -> list[bytes]:
    """Object bodies, numbered from 1: catalog, page tree, font, info, then (page, contents) pairs."""
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        INFO,
    ]
    for index, page in enumerate(pages):
        number = first_page + 2 * index
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (*size, number + 1)
        )
        stream = streams[index] if streams is not None else content_stream(page)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    return objects


def _assemble(objects: list[bytes]) -> bytes:
    """The whole file: header, objects (numbered from 1; 1 the catalog, 4 the info), xref table, trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref)
    return bytes(out)


def build_pdf(pages: tuple[tuple[SampleBlock, ...], ...] = SAMPLE_PAGES) -> bytes:
    """The whole text PDF."""
    return _assemble(_objects(pages))


def read_back(data: bytes) -> list[str] | None:
    """Each page's text as pypdfium2 extracts it (CRLF made LF, a final LF added); None without pypdfium2."""
    pypdfium2 = _pdfium()
    if pypdfium2 is None:
        return None
    document = pypdfium2.PdfDocument(data)
    try:
        texts = []
        for index in range(len(document)):
            text = document[index].get_textpage().get_text_range()
            texts.append(text.replace("\r\n", "\n") + "\n")
        return texts
    finally:
        document.close()


def _pdfium() -> Any:
    try:
        return importlib.import_module("pypdfium2")  # untyped; optional (the emulator extra)
    except ImportError:
        return None


# -- the scan -------------------------------------------------------------------------------------


def scan_source() -> bytes:
    """The skewed text page the scan is a picture of."""
    stream = content_stream(
        SCAN_PAGE,
        left=SCAN_MARGIN_LEFT,
        first_baseline=SCAN_FIRST_BASELINE,
        skew=SCAN_SKEW,
        centre=(SCAN_WIDTH / 2, SCAN_HEIGHT / 2),
    )
    return _assemble(_objects((SCAN_PAGE,), size=(SCAN_WIDTH, SCAN_HEIGHT), streams=[stream]))


def source_digest() -> str:
    """What the scan is made from: its text and every setting, as 16 hex digits."""
    settings = (SCAN_PAGE, SCAN_WIDTH, SCAN_HEIGHT, SCAN_MARGIN_LEFT, SCAN_FIRST_BASELINE, LEADING, PARAGRAPH_GAP)
    settings += (BLOCK_GAP, SCAN_DPI, SCAN_SKEW, SCAN_THRESHOLD, SCAN_SPECKS, SCAN_DROPOUTS, SCAN_SEED)
    return hashlib.sha256(repr(settings).encode("utf-8")).hexdigest()[:16]


def renderer(pdfium: Any) -> str:
    version = pdfium.version
    return f"pypdfium2 {version.PYPDFIUM_INFO} PDFium {version.PDFIUM_INFO}"


def scan_pixels(pdfium: Any) -> tuple[int, int, bytes]:
    """(width, height, 1-bit rows): the source rendered in grey, thresholded and speckled.

    Rows are packed 8 pixels a byte, most significant bit first, 1 for white (``/DeviceGray``),
    each row padded to whole bytes with white.
    """
    document = pdfium.PdfDocument(scan_source())
    try:
        bitmap = document[0].render(scale=SCAN_DPI / 72, grayscale=True)
        width, height, stride = bitmap.width, bitmap.height, bitmap.stride
        grey = bytes(bitmap.buffer)
        bitmap.close()
    finally:
        document.close()
    threshold = bytes(ord("0") if level < SCAN_THRESHOLD else ord("1") for level in range(256))
    bits = bytearray(b"".join(grey[y * stride : y * stride + width].translate(threshold) for y in range(height)))
    rng = random.Random(SCAN_SEED)  # random() is the same sequence on every Python version
    for share, value in ((SCAN_SPECKS, ord("0")), (SCAN_DROPOUTS, ord("1"))):
        for _ in range(int(width * height * share)):
            bits[int(rng.random() * width * height)] = value
    padded, row_bytes = -width % 8, (width + 7) // 8
    rows = [
        int(bits[y * width : (y + 1) * width].decode("ascii") + "1" * padded, 2).to_bytes(row_bytes, "big")
        for y in range(height)
    ]
    return width, height, b"".join(rows)


def build_scan(width: int, height: int, pixels: bytes, made_by: str) -> bytes:
    """An image-only page showing ``pixels`` (1-bit rows, 1 white) over the whole half-letter page."""
    info = (
        b"<< /Title (Juniper Valley Orchards delivery note, scanned) /Producer (vision-grpc scripts/make_sample_pdf.py)"
        b" /Subject (source %s) /Creator (rendered with %s) >>" % (source_digest().encode(), made_by.encode("ascii"))
    )
    image = _stream(
        zlib.compress(pixels, 9),
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "
        b"/Filter /FlateDecode " % (width, height),
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        image,
        info,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 3 0 R >> >> "
        b"/Contents 6 0 R >>" % (SCAN_WIDTH, SCAN_HEIGHT),
        _stream(b"q %d 0 0 %d 0 0 cm /Im1 Do Q\n" % (SCAN_WIDTH, SCAN_HEIGHT)),
    ]
    return _assemble(objects)


def read_scan(data: bytes) -> tuple[str, str, bytes]:
    """(source digest, renderer, decompressed pixels) of a scan this script wrote."""
    source = re.search(rb"/Subject \(source ([0-9a-f]+)\)", data)
    made_by = re.search(rb"/Creator \(rendered with ([^)]*)\)", data)
    image = re.search(rb"/Subtype /Image .*?/Length (\d+) >>\nstream\n", data, re.DOTALL)
    if not (source and made_by and image):
        raise ValueError("not a scan written by this script")
    start = image.end()
    pixels = zlib.decompress(data[start : start + int(image.group(1))])
    return source.group(1).decode(), made_by.group(1).decode(), pixels


def check_scan(data: bytes, checked_in: bytes | None, pdfium: Any) -> tuple[list[str], list[str]]:
    """(problems, notes) comparing a freshly built scan with the checked-in one."""
    if checked_in is None:
        return [f"{SCAN_OUTPUT.relative_to(ROOT)} is missing: run python scripts/make_sample_pdf.py"], []
    if checked_in == data:
        return [], []
    stale = f"{SCAN_OUTPUT.relative_to(ROOT)} is stale: run python scripts/make_sample_pdf.py"
    try:
        source, made_by, pixels = read_scan(checked_in)
    except (ValueError, zlib.error) as exc:
        return [f"{stale} ({exc})"], []
    if source != source_digest():
        return [f"{stale} (its text or settings changed)"], []
    if made_by != renderer(pdfium):
        return [], [f"scan.pdf was rendered with {made_by}; this is {renderer(pdfium)}: pixels not compared"]
    if pixels != read_scan(data)[2]:
        return [f"{stale} (the same renderer draws other pixels)"], []
    return [], []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the checked-in PDFs instead of writing them")
    args = parser.parse_args(argv)
    data = build_pdf()
    problems, notes = [], []
    if len(data) >= MAX_SIZE:
        problems.append(f"the PDF is {len(data)} bytes; keep it under {MAX_SIZE}")
    extracted = read_back(data)
    if extracted is not None and extracted != sample_texts():
        problems.append(f"pypdfium2 reads back different text: {extracted!r}")
    pdfium = _pdfium()
    scan = None
    if pdfium is None:
        notes.append("pypdfium2 is not installed: scan.pdf not built (pip install 'vision-grpc[emulator]')")
    else:
        scan = build_scan(*scan_pixels(pdfium), renderer(pdfium))
        if len(scan) >= MAX_SCAN_SIZE:
            problems.append(f"the scan is {len(scan)} bytes; keep it under {MAX_SCAN_SIZE}")
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_bytes() != data:
            problems.append(f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/make_sample_pdf.py")
        if scan is not None:
            found, said = check_scan(scan, SCAN_OUTPUT.read_bytes() if SCAN_OUTPUT.is_file() else None, pdfium)
            problems += found
            notes += said
    elif not problems:
        OUTPUT.write_bytes(data)
        print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(data)} bytes, {len(SAMPLE_PAGES)} pages)")
        if scan is not None:
            SCAN_OUTPUT.write_bytes(scan)
            print(f"wrote {SCAN_OUTPUT.relative_to(ROOT)} ({len(scan)} bytes, 1 page)")
    for note in notes:
        print(f"make_sample_pdf: note: {note}", file=sys.stderr)
    for problem in problems:
        print(f"make_sample_pdf: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
