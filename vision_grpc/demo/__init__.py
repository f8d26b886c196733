"""Bundled sample documents for demos and tests: a 3-page PDF with a real text layer, and a scanned page.

``sample_pdf()`` returns the bytes of ``sample.pdf``, a made-up quarterly report and invoice of a
fictional orchard cooperative, written in Helvetica by ``scripts/make_sample_pdf.py`` from
``SAMPLE_PAGES`` (the single source of truth for its text). Each page is a tuple of blocks; a block
has a font size and paragraphs; a paragraph is a tuple of lines; words are separated by single
spaces. ``sample_texts()`` gives each page's text as the Vision service writes
``full_text_annotation.text``: every line followed by ``"\\n"``. The text is ASCII only.

``scan_pdf()`` returns ``scan.pdf``: one half-letter page that is only a picture (a black-and-white
200 dpi "scan", slightly skewed and speckled, no text layer) of ``SCAN_PAGE``, a delivery note of the
same cooperative; the same script makes it. Only OCR reads it; ``scan_text()`` is what it says.

    from vision_grpc.demo import sample_pdf
    emulator.put_object("gs://bucket/sample.pdf", sample_pdf())
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["SAMPLE_PAGES", "SCAN_PAGE", "SampleBlock", "sample_pdf", "sample_texts", "scan_pdf", "scan_text"]


@dataclass(frozen=True)
class SampleBlock:
    """Paragraphs (tuples of lines) set in one font size, in points."""

    size: float
    paragraphs: tuple[tuple[str, ...], ...]


def _title(text: str) -> SampleBlock:
    return SampleBlock(18, ((text,),))


SAMPLE_PAGES: tuple[tuple[SampleBlock, ...], ...] = (
    (
        _title("Juniper Valley Orchards Quarterly Report"),
        SampleBlock(
            11,
            (
                (
                    "This report covers the third quarter of the year 2031 for the cooperative",
                    "of Juniper Valley. All names, figures and places in it are invented for",
                    "testing the Vision emulator.",
                ),
                (
                    "Harvest volumes rose by 12 percent compared with the same quarter last",
                    "year, mostly thanks to the late apple varieties planted in 2027.",
                ),
            ),
        ),
        SampleBlock(
            11,
            (
                ("Highlights of the quarter:",),
                ("- Apples: 418 tonnes (Honeycrisp and Jonagold)",),
                ("- Pears: 96 tonnes",),
                ("- Cherries: 27 tonnes",),
            ),
        ),
    ),
    (
        _title("Invoice JV-2031-0457"),
        SampleBlock(
            11,
            (
                ("Billed to: Copperleaf Market, 12 Lantern Street, Riverton",),
                ("Date of issue: 14 October 2031. Payment is due within 30 days.",),
            ),
        ),
        SampleBlock(
            11,
            (
                ("- 40 crates of Honeycrisp apples at 18.50 = 740.00",),
                ("- 12 crates of Conference pears at 21.00 = 252.00",),
                ("- 6 boxes of dried cherries at 37.00 = 222.00",),
            ),
        ),
        SampleBlock(11, (("Total due: 1,214.50 [tax included]",),)),
    ),
    (
        _title("Notes and Next Steps"),
        SampleBlock(
            11,
            (
                (
                    "The north field lost two irrigation pumps during the August storms. Both",
                    "were replaced with spare units, but the spares are old and should not be",
                    "trusted for another season.",
                ),
                (
                    "Members voted to open a small cider press next spring; a working group",
                    "will report on costs by the end of January.",
                ),
            ),
        ),
        SampleBlock(
            11,
            (
                ("1. Order two new pumps for the north field.",),
                ("2. Ask the bank about a loan for the cider press.",),
                ("3. Plan the winter pruning schedule with all members.",),
            ),
        ),
    ),
)


# The scanned delivery note (a half-letter page): what scan.pdf shows, as a picture only.
SCAN_PAGE: tuple[SampleBlock, ...] = (
    _title("Delivery Note DN-2031-118"),
    SampleBlock(
        11,
        (
            ("Juniper Valley Orchards, 4 Mill Road, Juniper Valley",),
            ("Delivered to: Copperleaf Market, 12 Lantern Street,", "Riverton, on 21 October 2031 at 7:40."),
        ),
    ),
    SampleBlock(
        11,
        (
            ("- 40 crates of Honeycrisp apples",),
            ("- 12 crates of Conference pears",),
            ("- 6 boxes of dried cherries",),
        ),
    ),
    SampleBlock(11, (("Received in good order. Signed: M. Alder",),)),
)


def _text(page: tuple[SampleBlock, ...]) -> str:
    return "".join(f"{line}\n" for block in page for paragraph in block.paragraphs for line in paragraph)


def sample_texts() -> list[str]:
    """Each page's text: its lines in order, each followed by ``"\\n"``."""
    return [_text(page) for page in SAMPLE_PAGES]


def scan_text() -> str:
    """What the scanned page says: its lines in order, each followed by ``"\\n"``."""
    return _text(SCAN_PAGE)


def sample_pdf() -> bytes:
    """The bundled ``sample.pdf`` (3 pages, about 3 KB)."""
    return resources.files(__name__).joinpath("sample.pdf").read_bytes()


def scan_pdf() -> bytes:
    """The bundled ``scan.pdf`` (1 image-only page, about 30 KB)."""
    return resources.files(__name__).joinpath("scan.pdf").read_bytes()
