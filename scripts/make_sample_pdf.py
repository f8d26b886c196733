"""Write ``vision_grpc/demo/sample.pdf`` from ``vision_grpc.demo.SAMPLE_PAGES`` with a minimal PDF writer.

The document is plain PDF 1.4: one catalog, one page tree, the standard Type1 font Helvetica
(WinAnsiEncoding, no embedded font program) and per page an uncompressed content stream that
sets every line with its own text matrix, top to bottom. Nothing varies between runs (no dates,
no IDs, no compression), so the output is byte-for-byte reproducible. When pypdfium2 is installed
the text is read back and must equal ``sample_texts()``.

Usage::

    python scripts/make_sample_pdf.py          # (re)write the PDF
    python scripts/make_sample_pdf.py --check  # exit 1 if the checked-in PDF differs from a fresh build
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision_grpc.demo import SAMPLE_PAGES, SampleBlock, sample_texts  # noqa: E402

OUTPUT = ROOT / "vision_grpc" / "demo" / "sample.pdf"
MAX_SIZE = 20_000
PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
MARGIN_LEFT, FIRST_BASELINE = 72.0, 712.0
LEADING = 1.3  # line pitch, in font sizes
PARAGRAPH_GAP = 8.0  # extra space between paragraphs of a block, in points
BLOCK_GAP = 22.0  # extra space between blocks, in points


def _number(value: float) -> bytes:
    return (f"{value:.2f}".rstrip("0").rstrip(".") or "0").encode("ascii")


def _string(text: str) -> bytes:
    """A PDF literal string; the sample text is ASCII, so WinAnsiEncoding maps it unchanged."""
    escaped = text.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def content_stream(page: tuple[SampleBlock, ...]) -> bytes:
    """Operators that set each line of ``page`` at the left margin, going down the page."""
    out = [b"BT"]
    baseline = FIRST_BASELINE
    for block_index, block in enumerate(page):
        if block_index:
            baseline -= BLOCK_GAP
        out.append(b"/F1 " + _number(block.size) + b" Tf")
        for paragraph_index, paragraph in enumerate(block.paragraphs):
            if paragraph_index:
                baseline -= PARAGRAPH_GAP
            for line in paragraph:
                out.append(b"1 0 0 1 " + _number(MARGIN_LEFT) + b" " + _number(baseline) + b" Tm")
                out.append(_string(line) + b" Tj")
                baseline -= block.size * LEADING
    out.append(b"ET")
    return b"\n".join(out) + b"\n"


def _objects(pages: tuple[tuple[SampleBlock, ...], ...]) -> list[bytes]:
    """Object bodies, numbered from 1: catalog, page tree, font, info, then (page, contents) pairs."""
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Title (Juniper Valley Orchards sample) /Producer (vision-grpc scripts/make_sample_pdf.py) >>",
    ]
    for index, page in enumerate(pages):
        number = first_page + 2 * index
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (PAGE_WIDTH, PAGE_HEIGHT, number + 1)
        )
        stream = content_stream(page)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    return objects


def build_pdf(pages: tuple[tuple[SampleBlock, ...], ...] = SAMPLE_PAGES) -> bytes:
    """The whole file: header, objects, cross-reference table and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(_objects(pages), start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref)
    return bytes(out)


def read_back(data: bytes) -> list[str] | None:
    """Each page's text as pypdfium2 extracts it (CRLF made LF, a final LF added); None without pypdfium2."""
    try:
        pypdfium2: Any = importlib.import_module("pypdfium2")  # untyped; optional (the emulator extra)
    except ImportError:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the checked-in PDF instead of writing it")
    args = parser.parse_args(argv)
    data = build_pdf()
    problems = []
    if len(data) >= MAX_SIZE:
        problems.append(f"the PDF is {len(data)} bytes; keep it under {MAX_SIZE}")
    extracted = read_back(data)
    if extracted is not None and extracted != sample_texts():
        problems.append(f"pypdfium2 reads back different text: {extracted!r}")
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_bytes() != data:
            problems.append(f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/make_sample_pdf.py")
    elif not problems:
        OUTPUT.write_bytes(data)
        print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(data)} bytes, {len(SAMPLE_PAGES)} pages)")
    for problem in problems:
        print(f"make_sample_pdf: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
