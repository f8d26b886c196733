"""``raise_for_errors``: results read back through the emulator, all or nothing when pages or images failed."""

from __future__ import annotations

import uuid

import pytest

from tests._support import make_pdf
from vision_grpc import Client, VisionError, types
from vision_grpc.demo import sample_pdf
from vision_grpc.errors import ItemErrors, NotFound, Unimplemented
from vision_grpc.outputs import ImageResult, PageResult, raise_for_errors, read_file_results, read_image_results
from vision_grpc.storage import LocalStorage
from vision_grpc.testing import Emulator


def unique(kind: str) -> str:
    return f"gs://bucket/raise/{kind}-{uuid.uuid4().hex[:8]}/"


def read_files(emulator: Emulator, documents: dict[str, bytes]) -> list[PageResult]:
    """Annotate ``documents`` (gs:// URI -> PDF bytes) on the emulator and read every page back."""
    for uri, data in documents.items():
        emulator.put_object(uri, data)
    with Client(endpoint=emulator.grpc_target) as client:
        request = types.async_files_request(list(documents), output_uri=unique("files"))
        operation = client.async_batch_annotate_files(request).wait(timeout=30)
    return list(read_file_results(operation, storage=LocalStorage(emulator.storage_dir)))


def test_no_failed_page_gives_the_results_back(emulator: Emulator) -> None:
    pages = read_files(emulator, {"gs://bucket/raise/ok.pdf": sample_pdf()})
    assert raise_for_errors(iter(pages)) == pages  # any iterable; the list of all results
    assert [p.page_number for p in pages] == [1, 2, 3]


def test_failed_pages_raise_item_errors_naming_each(emulator: Emulator) -> None:
    good, blank = "gs://bucket/raise/good.pdf", "gs://bucket/raise/blank.pdf"
    pages = read_files(emulator, {good: sample_pdf(), blank: make_pdf(2)})  # blank pages: no text layer, an error
    with pytest.raises(ItemErrors) as caught:
        raise_for_errors(pages)
    error = caught.value
    assert isinstance(error, VisionError)
    assert error.total == 5
    assert [label for label, _ in error.failed] == [f"{blank} page 1", f"{blank} page 2"]
    assert all(isinstance(api_error, Unimplemented) for _, api_error in error.failed)
    assert error.items == [p for p in pages if p.input_uri == blank]  # the failed results themselves
    assert str(error).startswith(f"2 of 5 page(s) failed: {blank} page 1: UNIMPLEMENTED (501): ")


def test_failed_images_raise_item_errors(emulator: Emulator) -> None:
    emulator.put_object("gs://bucket/raise/a.png", b"\x89PNG\r\n\x1a\n")
    uris = ["gs://bucket/raise/a.png", "gs://bucket/raise/absent.png"]
    with Client(endpoint=emulator.grpc_target) as client:
        request = types.async_images_request(uris, output_uri=unique("images"))
        operation = client.async_batch_annotate_images(request).wait(timeout=30)
    images = read_image_results(operation, storage=LocalStorage(emulator.storage_dir))
    with pytest.raises(ItemErrors) as caught:
        raise_for_errors(images)
    error = caught.value
    assert error.total == 2 and [type(e) for _, e in error.failed] == [Unimplemented, NotFound]
    assert all(isinstance(item, ImageResult) for item in error.items)
    assert [label for label, _ in error.failed] == [item.label for item in error.items]
    assert "2 of 2 image(s) failed: image 0" in str(error) and "absent.png" in str(error)


def test_many_failures_are_summed_up(emulator: Emulator) -> None:
    pages = read_files(emulator, {"gs://bucket/raise/five.pdf": make_pdf(5)})
    with pytest.raises(ItemErrors, match=r"^5 of 5 page\(s\) failed: .*page 3: .*; and 2 more$"):
        raise_for_errors(pages)
