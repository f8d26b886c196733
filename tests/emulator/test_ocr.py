"""OCR in the emulator: text detection on images (six formats), on TIFF/GIF pages and on rendered PDF pages.

Images are drawn here with Pillow and a DejaVu font, so where each word is is known: the answer must have
the words in reading order, word boxes near the ink (pixel ``vertices`` for images, ``normalized_vertices``
for pages of files), breaks and page sizes as the service gives them. The bundled scan (a skewed,
speckled, image-only page) is read by OCR too, and a PDF's own text layer is ignored, as by the service.
Images are small (the engine takes ~0.3 s for one, ~1.5 s for a full page). The engine is deterministic,
so clean text must come back exactly.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2_grpc
from google.protobuf import json_format
from google.rpc import code_pb2

from tests._support import RPC_TIMEOUT, VERSIONS, wait_done
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc.demo import scan_pdf, scan_text
from vision_grpc.emulator import AnnotatorRegistry
from vision_grpc.testing import Emulator

pytest.importorskip("faster_paddle", reason="the ocr extra is not installed")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")
ImageFont = pytest.importorskip("PIL.ImageFont")

ROOT = Path(__file__).resolve().parents[2]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = ("Invoice 2031 for Copperleaf Market", "Total due: 1,214.50 today", "Thank you")
FORMATS = ("PNG", "JPEG", "TIFF", "GIF", "WEBP", "BMP")
SPACE, EOL_SURE_SPACE, LINE_BREAK = 1, 3, 5
Box = tuple[float, float, float, float]


def _font(size: int) -> Any:
    if not os.path.exists(FONT):
        pytest.skip(f"{FONT} is needed to draw the test images")
    return ImageFont.truetype(FONT, size)


def draw(lines: tuple[str, ...] = LINES, size: tuple[int, int] = (640, 260)) -> tuple[Any, list[tuple[str, Box]]]:
    """An RGB image of ``lines`` (the third after a larger gap) and each word's ink box, in reading order."""
    font = _font(26)
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    words: list[tuple[str, Box]] = []
    y = 24
    for number, line in enumerate(lines):
        x = 30.0
        for word in line.split():
            box = pen.textbbox((x, y), word, font=font)
            pen.text((x, y), word, fill="black", font=font)
            words.append((word, box))
            x = box[2] + font.getlength(" ")
        y += 100 if number == 1 else 60
    return image, words


def encode(image: Any, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator of our own that reads text by OCR (the shared one reads PDF text layers)."""
    with Emulator(operation_seconds=0.05, annotators=AnnotatorRegistry(ocr=True)) as running:
        yield running


@pytest.fixture(scope="module")
def channel(emu: Emulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(emu.grpc_target) as opened:
        yield opened


def annotate_images(channel: grpc.Channel, *contents: bytes, features: tuple[str, ...] = ("TEXT_DETECTION",)) -> Any:
    return annotate_images_as(channel, "v1", *contents, features=features)


def annotate_images_as(channel: grpc.Channel, version: str, *contents: bytes, features: tuple[str, ...]) -> Any:
    api, stub = VERSIONS[version]
    requests = [
        api.AnnotateImageRequest(
            image=api.Image(content=content),
            features=[api.Feature(type=api.Feature.Type.Value(name)) for name in features],
        )
        for content in contents
    ]
    return stub(channel).BatchAnnotateImages(api.BatchAnnotateImagesRequest(requests=requests), timeout=RPC_TIMEOUT)


def annotate_file(channel: grpc.Channel, content: bytes, mime: str, pages: tuple[int, ...] = ()) -> Any:
    item = v1.AnnotateFileRequest(
        input_config=v1.InputConfig(content=content, mime_type=mime),
        features=[v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)],
        pages=list(pages),
    )
    stub = VERSIONS["v1"][1](channel)
    return stub.BatchAnnotateFiles(v1.BatchAnnotateFilesRequest(requests=[item]), timeout=RPC_TIMEOUT).responses[0]


# -- geometry checks --------------------------------------------------------------------------------------------


def pixel_box(poly: Any, width: int, height: int) -> Box:
    """Four pixel vertices, clockwise from the top-left, inside the image; (left, top, right, bottom)."""
    assert not poly.normalized_vertices, "images get pixel vertices"
    (left, top), (right, top2), (right2, bottom), (left2, bottom2) = [(v.x, v.y) for v in poly.vertices]
    assert (left, top, right, bottom) == (left2, top2, right2, bottom2)
    assert 0 <= left < right <= width and 0 <= top < bottom <= height
    return left, top, right, bottom


def normalized_box(poly: Any) -> Box:
    assert not poly.vertices, "pages of files get normalized vertices"
    (left, top), (right, top2), (right2, bottom), (left2, bottom2) = [(v.x, v.y) for v in poly.normalized_vertices]
    assert (left, top, right, bottom) == (left2, top2, right2, bottom2)
    assert 0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0
    return left, top, right, bottom


def overlap(a: Box, b: Box) -> float:
    """Intersection over union."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def check_reading_order(boxes: list[Box]) -> None:
    """Words of one line left to right; each line below the one before."""
    for before, after in zip(boxes, boxes[1:], strict=False):
        same_line = after[1] < before[3] and before[1] < after[3]
        assert after[0] > before[0] if same_line else after[1] >= before[1], (before, after)


def check_image_answer(response: Any, words: list[tuple[str, Box]], width: int, height: int) -> None:
    """The service's shape for an image: the whole text first, then one entry per word; boxes near the ink."""
    assert not response.HasField("error"), response.error.message
    text = "".join(f"{line}\n" for line in LINES)
    whole, *entries = response.text_annotations
    assert whole.description == text == response.full_text_annotation.text
    assert [entry.description for entry in entries] == [word for word, _ in words]
    boxes = [pixel_box(entry.bounding_poly, width, height) for entry in entries]
    check_reading_order(boxes)
    for (word, ink), box in zip(words, boxes, strict=True):
        assert overlap(box, ink) > 0.5, (word, box, ink)
    outer = pixel_box(whole.bounding_poly, width, height)
    assert all(outer[0] <= b[0] and outer[1] <= b[1] and b[2] <= outer[2] and b[3] <= outer[3] for b in boxes)
    (page,) = response.full_text_annotation.pages
    assert (page.width, page.height) == (width, height) and 0.5 < page.confidence <= 1.0
    out_words = [w for block in page.blocks for paragraph in block.paragraphs for w in paragraph.words]
    assert ["".join(s.text for s in w.symbols) for w in out_words] == [word for word, _ in words]
    for word, entry in zip(out_words, entries, strict=True):
        assert pixel_box(word.bounding_box, width, height) == pixel_box(entry.bounding_poly, width, height)
        symbols = [pixel_box(s.bounding_box, width, height) for s in word.symbols]
        assert [s[0] for s in symbols] == sorted(s[0] for s in symbols)  # symbols left to right
    breaks = [w.symbols[-1].property.detected_break.type for w in out_words]
    line_ends = [len(line.split()) for line in LINES]
    ends = {sum(line_ends[: i + 1]) - 1 for i in range(len(LINES))}
    assert all(b == SPACE for i, b in enumerate(breaks) if i not in ends)
    assert all(breaks[i] in (EOL_SURE_SPACE, LINE_BREAK) for i in ends) and breaks[-1] == LINE_BREAK


# -- images -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drawn() -> tuple[Any, list[tuple[str, Box]]]:
    return draw()


@pytest.mark.parametrize("fmt", FORMATS)
def test_images_of_every_format_are_read(channel: grpc.Channel, drawn: tuple[Any, Any], fmt: str) -> None:
    image, words = drawn
    (response,) = annotate_images(channel, encode(image, fmt)).responses
    check_image_answer(response, words, *image.size)


def test_both_features_answer_alike_and_deterministically(channel: grpc.Channel, drawn: tuple[Any, Any]) -> None:
    image, _ = drawn
    png = encode(image, "PNG")
    document = annotate_images(channel, png, features=("DOCUMENT_TEXT_DETECTION",)).responses[0]
    text = annotate_images(channel, png, features=("TEXT_DETECTION",)).responses[0]
    both = annotate_images(channel, png, features=("TEXT_DETECTION", "DOCUMENT_TEXT_DETECTION")).responses[0]
    assert document.SerializeToString(deterministic=True) == text.SerializeToString(deterministic=True)
    assert both == text  # computed once for the two features


def test_transparent_and_grey_images_are_read_on_white(channel: grpc.Channel, drawn: tuple[Any, Any]) -> None:
    image, words = drawn
    ink = image.convert("L").point(lambda level: 255 - level)  # black text as the alpha channel
    clear = Image.new("RGBA", image.size, (0, 0, 0, 0))
    clear.putalpha(ink)  # black text on fully transparent black
    for response in annotate_images(channel, encode(clear, "PNG"), encode(image.convert("L"), "PNG")).responses:
        check_image_answer(response, words, *image.size)


def test_blank_and_undecodable_images(channel: grpc.Channel) -> None:
    blank, broken = annotate_images(
        channel, encode(Image.new("RGB", (200, 100), "white"), "PNG"), b"\x89PNG no"
    ).responses
    assert not blank.HasField("error") and not blank.text_annotations and not blank.HasField("full_text_annotation")
    assert (broken.error.code, broken.error.message) == (code_pb2.INVALID_ARGUMENT, "Bad image data.")


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_mixed_features_get_text_beside_an_error_naming_the_others(
    channel: grpc.Channel, drawn: tuple[Any, Any], version: str
) -> None:
    image, words = drawn
    features = ("LABEL_DETECTION", "TEXT_DETECTION", "LOGO_DETECTION", "LABEL_DETECTION")
    (response,) = annotate_images_as(channel, version, encode(image, "PNG"), features=features).responses
    assert response.error.code == code_pb2.UNIMPLEMENTED
    assert response.error.message == "the emulator does not compute LABEL_DETECTION, LOGO_DETECTION yet"
    response.ClearField("error")
    check_image_answer(response, words, *image.size)


# -- pages of files ---------------------------------------------------------------------------------------------


def test_tiff_and_gif_pages_are_read_with_normalized_vertices(channel: grpc.Channel) -> None:
    first, _ = draw(("First page of the file",), size=(500, 120))
    second, _ = draw(("Second page here",), size=(500, 120))
    tiff = encode(first, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
    gif = encode(first, "GIF", save_all=True, append_images=[second])
    for content, mime in ((tiff, "image/tiff"), (gif, "image/gif")):
        reply = annotate_file(channel, content, mime)
        assert reply.total_pages == 2 and [r.context.page_number for r in reply.responses] == [1, 2]
        texts = [r.full_text_annotation.text for r in reply.responses]
        assert texts == ["First page of the file\n", "Second page here\n"], mime
        for response in reply.responses:
            assert [p.width for p in response.full_text_annotation.pages] == [500]
            boxes = [normalized_box(entry.bounding_poly) for entry in response.text_annotations[1:]]
            check_reading_order(boxes)


def test_the_scanned_sample_page_is_read(channel: grpc.Channel) -> None:
    """scan.pdf is only a picture: skewed 0.8 degrees, black and white, speckled."""
    (response,) = annotate_file(channel, scan_pdf(), "application/pdf").responses
    assert not response.HasField("error"), response.error.message
    (page,) = response.full_text_annotation.pages
    assert (page.width, page.height) == (396, 612)  # points, as for any PDF page
    expected, got = scan_text().split(), response.full_text_annotation.text.split()
    found = _in_order(expected, got)
    assert found >= 0.9 * len(expected), (found, got)
    boxes = [normalized_box(entry.bounding_poly) for entry in response.text_annotations[1:]]
    tops = [box[1] for box in boxes]
    assert tops[0] < 0.1 and tops[-1] > tops[0] + 0.25  # from the title near the top to the signature further down
    assert [len(block.paragraphs) for block in page.blocks] == [1, 2, 3, 1]  # as SCAN_PAGE sets it


def _in_order(expected: list[str], got: list[str]) -> int:
    """How many of ``expected`` appear in ``got`` in the same order (longest common subsequence)."""
    lengths = [0] * (len(got) + 1)
    for word in expected:
        diagonal = 0
        for index, other in enumerate(got, start=1):
            best = diagonal + 1 if word == other else max(lengths[index], lengths[index - 1])
            diagonal, lengths[index] = lengths[index], best
    return lengths[-1]


def _pdf_with_picture_and_hidden_text(picture: Any, hidden: str) -> bytes:
    """A page showing ``picture`` (grey) at 200 dpi, with an invisible text layer (render mode 3) saying ``hidden``."""
    width, height = (round(side * 72 / 200) for side in picture.size)
    grey = picture.convert("L")
    pixels = zlib.compress(grey.tobytes())
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (*grey.size, len(pixels)) + pixels + b"\nendstream"
    )
    content = b"q %d 0 0 %d 0 0 cm /Im1 Do Q BT 3 Tr /F1 10 Tf 10 10 Td (%s) Tj ET\n" % (width, height, hidden.encode())
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 4 0 R >> "
        b"/Font << /F1 6 0 R >> >> /Contents 5 0 R >>" % (width, height),
        image,
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(
        b"%010d 00000 n \n" % o for o in offsets
    )
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_is_read_from_its_rendering_not_its_text_layer(channel: grpc.Channel, drawn: tuple[Any, Any]) -> None:
    image, words = drawn
    pdf = _pdf_with_picture_and_hidden_text(image, "poor scanner text layer")
    (response,) = annotate_file(channel, pdf, "application/pdf").responses
    assert response.full_text_annotation.text == "".join(f"{line}\n" for line in LINES)
    (page,) = response.full_text_annotation.pages
    assert (page.width, page.height) == (230, 94)  # the page's size in points
    width, height = image.size
    for (word, ink), entry in zip(words, response.text_annotations[1:], strict=True):
        box = normalized_box(entry.bounding_poly)
        scaled = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
        assert entry.description == word and overlap(scaled, ink) > 0.5, (word, scaled, ink)


def test_async_files_output_of_a_scanned_page(emu: Emulator, channel: grpc.Channel) -> None:
    prefix = f"gs://ocr-tests/{uuid.uuid4().hex}/"
    emu.put_object(f"{prefix}scan.pdf", scan_pdf())
    request = v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            v1.AsyncAnnotateFileRequest(
                input_config=v1.InputConfig(
                    gcs_source=v1.GcsSource(uri=f"{prefix}scan.pdf"), mime_type="application/pdf"
                ),
                features=[v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)],
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=f"{prefix}out/")),
            )
        ]
    )
    name = VERSIONS["v1"][1](channel).AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name
    done = wait_done(operations_pb2_grpc.OperationsStub(channel), name, timeout=60)
    assert done.HasField("response"), done.error
    shard = json_format.Parse(emu.get_object(f"{prefix}out/output-1-to-1.json"), v1.AnnotateFileResponse())
    sync = annotate_file(channel, scan_pdf(), "application/pdf").responses[0]
    assert shard.responses[0].full_text_annotation == sync.full_text_annotation  # the same, deterministic


# -- without the engine -----------------------------------------------------------------------------------------


def test_without_the_ocr_extra_pdf_text_layers_are_read_and_the_log_says_so_once() -> None:
    """In a fresh interpreter where ``import faster_paddle`` fails, as when the extra is not installed."""
    script = textwrap.dedent(
        """
        import logging, sys
        sys.modules["faster_paddle"] = None  # makes the import fail
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        from vision_grpc._gen.v1 import image_annotator_pb2 as v1
        from vision_grpc.demo import sample_pdf, sample_texts
        from vision_grpc.emulator import AnnotatorRegistry, ImageInput
        registry = AnnotatorRegistry()
        features = [v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)]
        for _ in range(2):
            page_one = ImageInput(sample_pdf(), "application/pdf", "", 1)
            page = registry.annotate(page_one, features, v1.AnnotateImageResponse)
            assert page.full_text_annotation.text == sample_texts()[0], page
            label = [v1.Feature(type=v1.Feature.LABEL_DETECTION), *features]
            image = registry.annotate(ImageInput(b"\\x89PNG"), label, v1.AnnotateImageResponse)
            assert image.error.code == 12 and "vision-grpc[ocr]" in image.error.message, image.error
            assert image.error.message.startswith("the emulator does not compute LABEL_DETECTION yet; "), image.error
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING vision_grpc.emulator")]
    assert len(warnings) == 1 and "read PDF text layers" in warnings[0] and "vision-grpc[ocr]" in warnings[0]


def test_ocr_can_be_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from vision_grpc.emulator import _annotate

    monkeypatch.setenv("VISION_EMULATOR_OCR", "off")
    assert AnnotatorRegistry().get("TEXT_DETECTION") is _annotate.layer_text
    assert AnnotatorRegistry(ocr=True).get("TEXT_DETECTION") is _annotate.ocr_text
    monkeypatch.delenv("VISION_EMULATOR_OCR")
    assert AnnotatorRegistry().get("DOCUMENT_TEXT_DETECTION") is _annotate.ocr_text
