"""Text of PDF text layers: the bundled sample through a real emulator, sync and async, both versions.

The emulator here reads text layers (``AnnotatorRegistry(ocr=False)``) whether or not the OCR engine is
installed; tests/emulator/test_ocr.py covers OCR.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2_grpc
from google.protobuf import json_format
from google.rpc import code_pb2

from tests._support import RPC_TIMEOUT, VERSIONS, make_pdf, wait_done
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1 import image_annotator_pb2_grpc as v1_grpc
from vision_grpc.demo import SAMPLE_PAGES, sample_pdf, sample_texts
from vision_grpc.emulator import AnnotatorRegistry, ImageInput
from vision_grpc.emulator._pdf_text import INSTALL_HINT, OCR_NOT_IMPLEMENTED, Box, _display, annotate_text
from vision_grpc.errors import ApiError
from vision_grpc.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_sample_pdf.py"
FEATURES = ("DOCUMENT_TEXT_DETECTION", "TEXT_DETECTION")
SPACE, EOL_SURE_SPACE, LINE_BREAK = 1, 3, 5
INPUT_PREFIX = "gs://pdf-text/input/"
STUB: Any = v1_grpc.ImageAnnotatorStub  # the generated gRPC stubs are untyped


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_pdf", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """Our own emulator, reading text layers: other modules re-register text annotators on the shared one."""
    with Emulator(operation_seconds=0.05, annotators=AnnotatorRegistry(ocr=False)) as running:
        yield running


@pytest.fixture(scope="module")
def channel(emu: Emulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(emu.grpc_target) as opened:
        yield opened


def _sync(channel: grpc.Channel, content: bytes, *features: str, version: str = "v1") -> Any:
    api, stub_class = VERSIONS[version]
    item = api.AnnotateFileRequest(
        input_config=api.InputConfig(content=content, mime_type="application/pdf"),
        features=[api.Feature(type=api.Feature.Type.Value(name)) for name in features],
    )
    reply = stub_class(channel).BatchAnnotateFiles(api.BatchAnnotateFilesRequest(requests=[item]), timeout=RPC_TIMEOUT)
    return reply.responses[0]


def _async(emu: Emulator, channel: grpc.Channel, feature: str, prefix: str) -> tuple[bytes, Any]:
    """Annotate ``{prefix}sample.pdf`` (staged if missing) into a fresh output prefix: raw JSON, parsed."""
    out = f"{prefix}{uuid.uuid4().hex}/"
    if not emu.list_objects(f"{prefix}sample.pdf"):
        emu.put_object(f"{prefix}sample.pdf", sample_pdf())
    request = v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            v1.AsyncAnnotateFileRequest(
                input_config=v1.InputConfig(
                    gcs_source=v1.GcsSource(uri=f"{prefix}sample.pdf"), mime_type="application/pdf"
                ),
                features=[v1.Feature(type=feature)],
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri=out)),
            )
        ]
    )
    name = STUB(channel).AsyncBatchAnnotateFiles(request, timeout=RPC_TIMEOUT).name
    assert wait_done(operations_pb2_grpc.OperationsStub(channel), name).HasField("response")
    raw = emu.get_object(f"{out}output-1-to-3.json")
    return raw, json_format.Parse(raw, v1.AnnotateFileResponse())


def _expected_breaks(page: int) -> list[list[list[int]]]:
    """Per block, per paragraph: the break after each word, from the text the script wrote."""
    return [
        [
            [SPACE] * (len(line.split()) - 1) + [EOL_SURE_SPACE if number < len(paragraph) else LINE_BREAK]
            for number, line in enumerate(paragraph, start=1)
        ]
        for block in SAMPLE_PAGES[page]
        for paragraph in block.paragraphs
    ]


def _check_page(response: Any, page: int) -> None:
    """Text, counts, structure and breaks of one page's response against ``SAMPLE_PAGES``."""
    text = sample_texts()[page]
    assert not response.HasField("error"), response.error.message
    annotation = response.full_text_annotation
    assert annotation.text == text
    (out_page,) = annotation.pages
    assert (out_page.width, out_page.height, out_page.confidence) == (612, 792, 1.0)
    assert [len(block.paragraphs) for block in out_page.blocks] == [len(b.paragraphs) for b in SAMPLE_PAGES[page]]
    paragraphs = [paragraph for block in out_page.blocks for paragraph in block.paragraphs]
    words = [word for paragraph in paragraphs for word in paragraph.words]
    assert ["".join(symbol.text for symbol in word.symbols) for word in words] == text.split()
    assert sum(len(word.symbols) for word in words) == len("".join(text.split()))
    breaks = [[word.symbols[-1].property.detected_break.type for word in paragraph.words] for paragraph in paragraphs]
    expected = [sum(paragraph, []) for paragraph in _expected_breaks(page)]
    assert breaks == expected
    assert all(not symbol.HasField("property") for word in words for symbol in word.symbols[:-1])
    assert [entity.description for entity in response.text_annotations] == [text, *text.split()]


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("feature", FEATURES)
def test_sync_inline_pages_match_the_written_text(channel: grpc.Channel, feature: str, version: str) -> None:
    reply = _sync(channel, sample_pdf(), feature, version=version)
    assert reply.total_pages == 3 and [r.context.page_number for r in reply.responses] == [1, 2, 3]
    for page, response in enumerate(reply.responses):
        _check_page(response, page)


@pytest.fixture(scope="module")
def async_runs(emu: Emulator, channel: grpc.Channel) -> dict[str, tuple[bytes, Any]]:
    """One AsyncBatchAnnotateFiles run per feature over the same stored input: raw JSON and parsed."""
    return {feature: _async(emu, channel, feature, INPUT_PREFIX) for feature in FEATURES}


@pytest.mark.parametrize("feature", FEATURES)
def test_async_output_matches_the_sync_answer(
    async_runs: dict[str, tuple[bytes, Any]], channel: grpc.Channel, feature: str
) -> None:
    _, shard = async_runs[feature]
    sync = _sync(channel, sample_pdf(), feature)
    for page, (stored, answered) in enumerate(zip(shard.responses, sync.responses, strict=True)):
        _check_page(stored, page)
        assert stored.full_text_annotation == answered.full_text_annotation
        assert list(stored.text_annotations) == list(answered.text_annotations)


def _vertices(poly: Any) -> list[tuple[float, float]]:
    assert not poly.vertices, "file pages get normalized vertices only"
    return [(vertex.x, vertex.y) for vertex in poly.normalized_vertices]


def _ordered_box(poly: Any) -> tuple[float, float, float, float]:
    """Checks four vertices in [0, 1], clockwise from top-left; returns (left, top, right, bottom)."""
    points = _vertices(poly)
    assert len(points) == 4 and all(0.0 <= c <= 1.0 for point in points for c in point)
    (left, top), (right, top2), (right2, bottom), (left2, bottom2) = points
    assert (left, top, right, bottom) == (left2, top2, right2, bottom2)
    assert left < right and top < bottom
    return left, top, right, bottom


def _inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_boxes_are_normalized_ordered_and_nested(channel: grpc.Channel) -> None:
    for response in _sync(channel, sample_pdf(), "DOCUMENT_TEXT_DETECTION").responses:
        whole = _ordered_box(response.text_annotations[0].bounding_poly)
        for block in response.full_text_annotation.pages[0].blocks:
            block_box = _ordered_box(block.bounding_box)
            assert _inside(block_box, whole)
            for paragraph in block.paragraphs:
                paragraph_box = _ordered_box(paragraph.bounding_box)
                assert _inside(paragraph_box, block_box)
                for word in paragraph.words:
                    word_box = _ordered_box(word.bounding_box)
                    assert _inside(word_box, paragraph_box)
                    assert all(_inside(_ordered_box(s.bounding_box), word_box) for s in word.symbols)
        tops = [_ordered_box(block.bounding_box)[1] for block in response.full_text_annotation.pages[0].blocks]
        assert tops == sorted(tops)  # blocks in reading order, top to bottom


def test_outputs_are_deterministic(
    emu: Emulator, channel: grpc.Channel, async_runs: dict[str, tuple[bytes, Any]]
) -> None:
    again, _ = _async(emu, channel, "DOCUMENT_TEXT_DETECTION", INPUT_PREFIX)
    assert again == async_runs["DOCUMENT_TEXT_DETECTION"][0]
    answers = [_sync(channel, sample_pdf(), "TEXT_DETECTION").SerializeToString(deterministic=True) for _ in range(2)]
    assert answers[0] == answers[1]


def test_both_features_in_one_request_answer_once(channel: grpc.Channel) -> None:
    both = _sync(channel, sample_pdf(), *FEATURES)
    single = _sync(channel, sample_pdf(), "DOCUMENT_TEXT_DETECTION")
    assert list(both.responses) == list(single.responses)


def test_pages_without_text_and_images_are_unimplemented(channel: grpc.Channel) -> None:
    mixed = _script().build_pdf((SAMPLE_PAGES[1], ()))  # page 2 has an empty content stream
    reply = _sync(channel, mixed, "DOCUMENT_TEXT_DETECTION")
    assert reply.responses[0].full_text_annotation.text == sample_texts()[1]
    error = reply.responses[1].error
    assert error.code == code_pb2.UNIMPLEMENTED
    assert error.message == f"DOCUMENT_TEXT_DETECTION: page 2 has no text layer; {OCR_NOT_IMPLEMENTED}"
    blank = _sync(channel, make_pdf(1), "TEXT_DETECTION")
    assert blank.responses[0].error.code == code_pb2.UNIMPLEMENTED
    image = v1.AnnotateImageRequest(
        image=v1.Image(content=b"\x89PNG"), features=[v1.Feature(type=v1.Feature.TEXT_DETECTION)]
    )
    answer = (
        STUB(channel)
        .BatchAnnotateImages(v1.BatchAnnotateImagesRequest(requests=[image]), timeout=RPC_TIMEOUT)
        .responses[0]
    )
    assert answer.error.code == code_pb2.UNIMPLEMENTED
    assert answer.error.message == f"TEXT_DETECTION of an image: {OCR_NOT_IMPLEMENTED}"


def test_without_pypdfium2_the_feature_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # makes "import pypdfium2" fail
    with pytest.raises(ApiError) as info:
        annotate_text(
            ImageInput(sample_pdf(), "application/pdf", "", 1),
            v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION),
            v1.AnnotateImageResponse(),
        )
    assert info.value.code == code_pb2.UNIMPLEMENTED and INSTALL_HINT in info.value.message


class _RotatedPage:
    def __init__(self, rotation: int) -> None:
        self.rotation = rotation

    def get_bbox(self) -> tuple[float, float, float, float]:
        return (0.0, 0.0, 600.0, 800.0)

    def get_rotation(self) -> int:
        return self.rotation


@pytest.mark.parametrize(
    ("rotation", "size", "box"),
    [
        (0, (600.0, 800.0), Box(0, 0, 10, 20)),
        (90, (800.0, 600.0), Box(780, 0, 800, 10)),
        (180, (600.0, 800.0), Box(590, 780, 600, 800)),
        (270, (800.0, 600.0), Box(0, 590, 20, 600)),
    ],
)
def test_rotated_pages_map_to_the_displayed_page(rotation: int, size: tuple[float, float], box: Box) -> None:
    width, height, to_box = _display(_RotatedPage(rotation))
    assert (width, height) == size
    assert to_box(0.0, 780.0, 10.0, 800.0) == box  # a glyph in the unrotated top-left corner


def test_sample_pdf_is_small_and_rebuilds_identically() -> None:
    assert sample_pdf().startswith(b"%PDF-1.4") and len(sample_pdf()) < 20_000
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
