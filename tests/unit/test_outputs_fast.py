"""The outputs reader's fast ways: ``read_file_results`` (msgspec-located, built by ``jsonpb``) and
``read_file_text`` give what the json_format way gives, with msgspec and without it.

Shards are drawn from the descriptors (``test_fast_json.documents``: both key namings, enums as names
or numbers, odd values), so pages are often odd: whenever ``read_file_results`` reads a shard, the text
way reads the same text, words, page numbers and errors (it may also read shards whose other fields are
broken: it does not check them), and an ``OutputError`` of the text way is one of the full way too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_fast_json import documents
from tests.unit.test_hostile_answers import MemoryStorage
from vision_grpc import outputs
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._transcoding import jsonpb
from vision_grpc.outputs import OutputError, PageText, Word, raise_for_errors, read_file_results, read_file_text

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # the decoder: set per test
)
PREFIX = "gs://b/out/"
INPUT = {"gcsSource": {"uri": "gs://b/in/doc.pdf"}}


@pytest.fixture(params=["msgspec", "stdlib"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both ways: with the `fast` extra's msgspec, and as without it (the standard library's json)."""
    if request.param == "stdlib":
        monkeypatch.setattr(jsonpb, "_msgspec", None)
        monkeypatch.setattr(jsonpb, "loads", lambda data: json.loads(bytes(data)))
    elif not jsonpb.FAST_JSON:
        pytest.skip("msgspec is not installed")
    yield request.param


def full_way(storage: MemoryStorage) -> Any:
    try:
        return [
            (p.page_number, p.text, outputs._words(p.response), p.error)
            for p in read_file_results(PREFIX, storage=storage)
        ]
    except OutputError as error:
        return error


def text_way(storage: MemoryStorage) -> Any:
    try:
        return [(p.page_number, p.text, p.words, p.error) for p in read_file_text(PREFIX, storage=storage)]
    except OutputError as error:
        return error


def json_format_way(storage: MemoryStorage) -> Any:
    """The reference: each page built by json_format itself."""
    (uri,) = storage.list(PREFIX)
    shard = json.loads(storage.read(uri))
    pages = []
    for response in shard["responses"]:
        pages.append(json_format.ParseDict(response, v1.AnnotateImageResponse(), True, descriptor_pool=JSON_TYPES))
    return pages


@FUZZ
@given(data=st.data(), indent=st.sampled_from([None, 1]))
def test_the_fast_ways_read_what_json_format_reads(decoder: str, data: st.DataObject, indent: int | None) -> None:
    responses = data.draw(st.lists(documents(v1.AnnotateImageResponse.DESCRIPTOR), min_size=1, max_size=3))
    shard = {"inputConfig": INPUT, "responses": responses}
    storage = MemoryStorage({f"{PREFIX}output-1-to-{len(responses)}.json": json.dumps(shard, indent=indent).encode()})
    full, text = full_way(storage), text_way(storage)
    if isinstance(full, list):
        assert text == full
        try:
            expected = json_format_way(storage)
        except Exception:  # noqa: BLE001 - json_format refused a page: the full way must have refused it too
            pytest.fail("read_file_results read a shard that json_format refuses")
        assert [p.response for p in read_file_results(PREFIX, storage=storage)] == expected
    elif isinstance(text, OutputError):
        assert text.uri == full.uri


def test_emulator_pages(decoder: str, tmp_path: Path) -> None:
    """A realistic page (the layout the emulator writes from a PDF's text layer) reads the same every way."""
    words = [("Juniper", "SPACE"), ("Valley", "LINE_BREAK"), ("Orchards", "")]
    symbols = lambda word, after: [  # noqa: E731
        {
            "boundingBox": {"normalizedVertices": [{"x": 0.1, "y": 0.2}, {"x": 0.3, "y": 0.2}, {"y": 0.4}, {}]},
            "text": char,
            "confidence": 0.98,
            **({"property": {"detectedBreak": {"type": after}}} if after and i == len(word) - 1 else {}),
        }
        for i, char in enumerate(word)
    ]
    page = {
        "fullTextAnnotation": {
            "pages": [
                {
                    "width": 612,
                    "height": 792,
                    "blocks": [
                        {
                            "blockType": "TEXT",
                            "paragraphs": [
                                {"words": [{"symbols": symbols(w, a), "confidence": 0.9} for w, a in words]}
                            ],
                        }
                    ],
                }
            ],
            "text": "Juniper Valley\nOrchards",
        },
        "context": {"uri": "gs://b/in/doc.pdf", "pageNumber": 1},
    }
    failed = {"error": {"code": 5, "message": "no text"}, "context": {"uri": "gs://b/in/doc.pdf", "pageNumber": 2}}
    storage = MemoryStorage(
        {f"{PREFIX}output-1-to-2.json": json.dumps({"inputConfig": INPUT, "responses": [page, failed]}).encode()}
    )
    texts = list(read_file_text(PREFIX, storage=storage))
    assert texts[0] == PageText(
        "gs://b/in/doc.pdf", 1, "Juniper Valley\nOrchards", tuple(Word(*w) for w in words), None, texts[0].shard_uri
    )
    assert texts[1].error.code == 5 and texts[1].text == "" and texts[1].label == "gs://b/in/doc.pdf page 2"
    assert full_way(storage) == text_way(storage)
    assert [p.response for p in read_file_results(PREFIX, storage=storage)] == json_format_way(storage)
    with pytest.raises(outputs.ItemErrors, match="1 of 2 page"):
        raise_for_errors(texts)
    assert outputs.document_text(texts) == "Juniper Valley\nOrchards\n"


def test_a_shard_that_failed_whole(decoder: str) -> None:
    error_only = {"inputConfig": INPUT, "error": {"code": 3, "message": "bad"}}
    storage = MemoryStorage({f"{PREFIX}output-1-to-3.json": json.dumps(error_only).encode()})
    assert text_way(storage) == full_way(storage)
    assert [p.error.code for p in read_file_text(PREFIX, storage=storage)] == [3, 3, 3]


def test_many_tiny_elements_are_not_all_located_at_once(decoder: str) -> None:
    """A hostile shard of a million tiny responses: refused after the 2000 its name allows, never all held."""
    data = b'{"inputConfig": {"gcsSource": {"uri": "gs://b/in/doc.pdf"}}, "responses": [' + b"{}," * 1_000_000 + b"{}]}"
    storage = MemoryStorage({f"{PREFIX}output-1-to-2.json": data})
    assert jsonpb.split_array(data, "responses", {"responses"}) is None  # too many elements for its size
    with pytest.raises(OutputError, match="holds more page responses than the 2"):
        next(read_file_text(PREFIX, storage=storage))
