"""Accuracy and speed of the emulator's OCR (a benchmark, not a test): character error rate and seconds per page.

What it reads, all made here from our own text, deterministically (seeded noise):

* scans of the bundled sample (``vision_grpc.demo``, 3 pages): each page rendered by pypdfium2 at 100, 150,
  200 and 300 dpi in grey, turned by a small angle (within 1.5 degrees), softened (a 0.6 px blur), with
  +-8 levels of noise, as PNG;
* the bundled ``scan.pdf`` (a black-and-white 200 dpi page, 0.8 degrees, speckled), through the PDF path;
* "photos": text in DejaVu fonts (sans, bold, serif, mono; 22 to 64 px; dark on light and light on
  dark) on a colour gradient with blotches, turned by up to 3 degrees, blurred, saved as JPEG (quality 80).

Each goes through the emulator's own annotator (``AnnotatorRegistry(ocr=True)``: decoding or rendering,
OCR, layout), as a standalone image (or a PDF page), and its ``full_text_annotation.text`` is compared
with the truth: CER = edit distance / truth length, whitespace runs made single spaces (so reading order
counts, line breaks do not). Time: wall seconds of the annotate call, and the process's CPU seconds
(the engine's threads included), the median of ``--repeat`` runs after a warm-up.

Usage::

    python scripts/bench_ocr.py                 # the table
    python scripts/bench_ocr.py --json out.json # and the numbers

Needs the ``ocr`` extra (faster-paddle, Pillow, pypdfium2) and the DejaVu fonts
(/usr/share/fonts/truetype/dejavu).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision_grpc._gen.v1 import image_annotator_pb2 as v1  # noqa: E402
from vision_grpc.demo import sample_pdf, sample_texts, scan_pdf, scan_text  # noqa: E402
from vision_grpc.emulator import AnnotatorRegistry, ImageInput  # noqa: E402
from vision_grpc.emulator._ocr import MODEL_SIZE, available, engine_threads  # noqa: E402

FONTS = Path("/usr/share/fonts/truetype/dejavu")
DPIS = (100, 150, 200, 300)
SKEWS = (0.8, -1.2, 1.5)  # degrees, one per sample page
WORDS = (
    "orchard apples pears cherries cider harvest crates market invoice total due delivery north field pumps "
    "storm spring winter members report quarter valley juniper copperleaf lantern street riverton order "
    "fresh local organic open daily sale today price per kilo"
).split()


@dataclass
class Row:
    name: str
    pixels: str
    chars: int
    cer: float
    seconds: float
    cpu_seconds: float


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def normalize(text: str) -> str:
    return " ".join(text.split())


def cer(hypothesis: str, truth: str) -> float:
    truth, hypothesis = normalize(truth), normalize(hypothesis)
    return edit_distance(hypothesis, truth) / len(truth)


def measure(registry: AnnotatorRegistry, image: ImageInput, repeat: int) -> tuple[str, float, float]:
    """(text, median wall seconds, median CPU seconds) of annotating ``image``, after one warm-up run."""
    features = [v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)]
    response: Any = registry.annotate(image, features, v1.AnnotateImageResponse)
    if response.HasField("error"):
        raise RuntimeError(response.error.message)
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        again: Any = registry.annotate(image, features, v1.AnnotateImageResponse)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if again != response:
            raise RuntimeError("two runs over the same input gave different answers")
    return str(response.full_text_annotation.text), statistics.median(walls), statistics.median(cpus)


# -- inputs ---------------------------------------------------------------------------------------------------


def scans(image_module: Any, filters: Any, chops: Any) -> list[tuple[str, Any, str]]:
    """(name, PIL image, truth) for each sample page at each resolution: skewed, blurred, noisy."""
    import pypdfium2

    document = pypdfium2.PdfDocument(sample_pdf())
    out = []
    try:
        for dpi in DPIS:
            for index, truth in enumerate(sample_texts()):
                bitmap = document[index].render(scale=dpi / 72, grayscale=True)
                grey = bitmap.to_pil().convert("L")
                bitmap.close()
                turned = grey.rotate(SKEWS[index], resample=image_module.Resampling.BICUBIC, fillcolor=255)
                soft = turned.filter(filters.GaussianBlur(0.6))
                rng = random.Random(dpi * 10 + index)
                noise = image_module.frombytes("L", soft.size, rng.randbytes(soft.width * soft.height))
                noisy = chops.add(soft, noise.point(lambda level: level // 16), scale=1.0, offset=-8)
                out.append((f"sample p{index + 1} {dpi} dpi, {SKEWS[index]:+.1f} deg", noisy, truth))
    finally:
        document.close()
    return out


def photos(image_module: Any, draw_module: Any, font_module: Any, filters: Any) -> list[tuple[str, Any, str]]:
    """(name, PIL image, truth) for synthetic photos of signs and labels."""
    specs = [  # (seed, size, font, font size, dark text on light, lines, angle)
        (1, (1024, 768), "DejaVuSans-Bold.ttf", 64, True, 3, 2.0),
        (2, (1024, 768), "DejaVuSans.ttf", 36, False, 5, -1.5),
        (3, (800, 600), "DejaVuSerif.ttf", 30, True, 6, 3.0),
        (4, (1280, 720), "DejaVuSansMono.ttf", 22, True, 9, -0.7),
    ]
    out = []
    for seed, size, font_name, font_size, dark, count, angle in specs:
        rng = random.Random(seed)
        font = font_module.truetype(str(FONTS / font_name), font_size)
        line_height = int(font_size * 1.5)
        panel = (size[0] // 10, size[1] // 8, size[0] * 9 // 10, size[1] // 8 + line_height * count + font_size)
        lines = [_line(rng, font, panel[2] - panel[0] - font_size) for _ in range(count)]
        base = image_module.linear_gradient("L").resize(size).convert("RGB")
        tint = image_module.new("RGB", size, tuple(rng.randint(40, 200) for _ in range(3)))
        picture = image_module.blend(base, tint, 0.6)
        pen = draw_module.Draw(picture)
        for _ in range(12):  # blotches: the scene behind the sign
            x, y, r = rng.randint(0, size[0]), rng.randint(0, size[1]), rng.randint(20, 120)
            pen.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
        background, ink = ((235, 232, 220), (25, 25, 30)) if dark else ((30, 45, 70), (245, 240, 225))
        pen.rounded_rectangle(panel, radius=18, fill=background)
        for number, line in enumerate(lines):
            pen.text(
                (panel[0] + font_size // 2, panel[1] + font_size // 2 + number * line_height), line, fill=ink, font=font
            )
        turned = picture.rotate(angle, resample=image_module.Resampling.BICUBIC, fillcolor=(90, 90, 90))
        soft = turned.filter(filters.GaussianBlur(0.8))
        out.append((f"photo {seed}: {font_name[:-4]} {font_size}px, {angle:+.1f} deg", soft, "\n".join(lines)))
    return out


def _line(rng: random.Random, font: Any, width: float) -> str:
    """Two to five words that fit in ``width`` pixels, the first capitalized."""
    words = [rng.choice(WORDS).capitalize()]
    for _ in range(rng.randint(1, 4)):
        word = rng.choice(WORDS)
        if font.getlength(" ".join([*words, word])) > width:
            break
        words.append(word)
    return " ".join(words)


def encoded(image: Any, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per input (after a warm-up)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if not available():
        print("bench_ocr: the OCR engine is not installed: pip install 'vision-grpc[ocr]'", file=sys.stderr)
        return 2
    from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

    registry = AnnotatorRegistry(ocr=True)
    rows: list[Row] = []
    inputs = [
        (name, ImageInput(encoded(image, "PNG")), image.size, truth)
        for name, image, truth in scans(Image, ImageFilter, ImageChops)
    ]
    inputs.append(
        (
            "bundled scan.pdf (1-bit, 200 dpi, +0.8 deg)",
            ImageInput(scan_pdf(), "application/pdf", "", 1),
            (1100, 1700),
            scan_text(),
        )
    )
    inputs += [
        (name, ImageInput(encoded(image, "JPEG", quality=80)), image.size, truth)
        for name, image, truth in photos(Image, ImageDraw, ImageFont, ImageFilter)
    ]
    print(f"faster-paddle {MODEL_SIZE} models, {engine_threads()} engine threads, {os.cpu_count()} cores")
    print(f"{'input':52s} {'pixels':>11s} {'chars':>5s} {'CER':>7s} {'s/page':>7s} {'CPU s':>6s}")
    for name, image, (width, height), truth in inputs:
        text, seconds, cpu = measure(registry, image, args.repeat)
        row = Row(name, f"{width}x{height}", len(normalize(truth)), cer(text, truth), seconds, cpu)
        rows.append(row)
        print(
            f"{row.name:52s} {row.pixels:>11s} {row.chars:5d} {row.cer:7.2%} {row.seconds:7.2f} {row.cpu_seconds:6.2f}"
        )
    groups = {
        **{
            f"sample scans, {dpi} dpi": [r for r in rows if r.name.startswith("sample") and f" {dpi} dpi" in r.name]
            for dpi in DPIS
        },
        "photos": [r for r in rows if r.name.startswith("photo")],
    }
    print()
    for label, group in groups.items():
        chars = sum(r.chars for r in group)
        weighted = sum(r.cer * r.chars for r in group) / chars
        print(
            f"{label:24s} CER {weighted:6.2%}  s/page {statistics.mean(r.seconds for r in group):.2f} "
            f"(CPU {statistics.mean(r.cpu_seconds for r in group):.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
