"""The emulator's parts without a server: storage mapping, page counting, page selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support import make_gif, make_pdf, make_tiff
from vision_grpc.emulator import BucketDir, InvalidUri, ObjectNotFound
from vision_grpc.emulator._jobs import select_pages
from vision_grpc.emulator._pages import UnreadableDocument, count_pages
from vision_grpc.testing import Emulator


def test_storage_maps_uris_to_files(tmp_path: Path) -> None:
    storage = BucketDir(tmp_path)
    storage.write("gs://bucket/a/b.json", b"{}")
    assert (tmp_path / "bucket" / "a" / "b.json").read_bytes() == b"{}"
    assert storage.read("gs://bucket/a/b.json") == b"{}"
    storage.write("gs://bucket/a/b.json", b"[]")  # replaced atomically, no temp file left behind
    assert storage.read("gs://bucket/a/b.json") == b"[]"
    assert list((tmp_path / ".tmp").iterdir()) == []
    with pytest.raises(ObjectNotFound):
        storage.read("gs://bucket/a/missing")
    with pytest.raises(ObjectNotFound):
        storage.read("gs://bucket/a")  # a "directory" is not an object


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/x",
        "gs://",
        "gs:///x",
        "gs://Bucket/x",
        "gs://.hidden/x",
        "gs://bucket",
        "gs://bucket/../escape",
        "gs://bucket/a//b",
        "gs://bucket/./x",
        "gs://bucket/a\\b",
        "gs://bucket/",
    ],
)
def test_storage_refuses_bad_uris(tmp_path: Path, uri: str) -> None:
    with pytest.raises(InvalidUri):
        BucketDir(tmp_path).write(uri, b"x")


def test_storage_lists_by_uri_prefix(tmp_path: Path) -> None:
    storage = BucketDir(tmp_path)
    for name in ["out/output-1-to-2.json", "out/output-3-to-3.json", "out-other/x", "outer", "in/doc.pdf"]:
        storage.write(f"gs://b/{name}", b"")
    assert storage.list("gs://b/out/") == ["gs://b/out/output-1-to-2.json", "gs://b/out/output-3-to-3.json"]
    assert storage.list("gs://b/out") == [
        "gs://b/out-other/x",
        "gs://b/out/output-1-to-2.json",
        "gs://b/out/output-3-to-3.json",
        "gs://b/outer",
    ]
    assert len(storage.list("gs://b")) == 5 and storage.list("gs://b/nothing/") == [] == storage.list("gs://c/")


@pytest.mark.parametrize("pages", [1, 2, 9])
def test_pdf_pages(pages: int) -> None:
    assert count_pages(make_pdf(pages), "application/pdf") == pages


def test_pdf_incremental_update_counts_each_page_object_once() -> None:
    update = b"3 0 obj\n<< /Type /Page /Parent 2 0 R /Rotate 90 >>\nendobj\n%%EOF\n"
    assert count_pages(make_pdf(2) + update, "application/pdf") == 2


def test_pdf_page_text_inside_a_stream_is_not_a_page() -> None:
    stream = b"9 0 obj\n<< /Length 20 >>\nstream\n/Type /Page /Type /Page\nendstream\nendobj\n"
    assert count_pages(make_pdf(1) + stream, "application/pdf") == 1


def test_pdf_with_compressed_page_objects_falls_back_to_the_tree_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from vision_grpc.emulator import _pages

    monkeypatch.setattr(_pages, "_optional", lambda name: None)  # the path taken without pypdfium2
    pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Pages /Kids [] /Count 12 >>\nendobj\n5 0 obj\n<< /Type /ObjStm >>\nendobj\n"
    assert count_pages(pdf, "application/pdf") == 12


@pytest.mark.parametrize(
    ("document", "pages"),
    [
        (make_tiff(1), 1),
        (make_tiff(4, order=">"), 4),
        (make_tiff(3, big=True), 3),
        (make_gif(1), 1),
        (make_gif(5), 5),
    ],
)
def test_tiff_and_gif_pages(document: bytes, pages: int) -> None:
    mime = "image/gif" if document.startswith(b"GIF") else "image/tiff"
    assert count_pages(document, mime) == pages


@pytest.mark.parametrize(
    ("document", "mime"),
    [
        (b"", "application/pdf"),
        (b"%PDF-1.4\nno objects", "application/pdf"),
        (b"hello", "image/tiff"),
        (b"II*\x00\x08\x00\x00\x00\x00", "image/tiff"),  # IFD runs past the end
        (b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x08\x00\x00\x00", "image/tiff"),  # IFD points at itself
        (b"GIF89a", "image/gif"),
        (make_gif(2)[:-6], "image/gif"),
        (make_gif(1)[:13] + b"\x99", "image/gif"),
        (make_pdf(1), "image/png"),
    ],
)
def test_unreadable_documents(document: bytes, mime: str) -> None:
    with pytest.raises(UnreadableDocument):
        count_pages(document, mime)


def test_select_pages() -> None:
    assert select_pages([], 3) == [1, 2, 3]
    assert select_pages([], 9) == [1, 2, 3, 4, 5]
    assert select_pages([-1, 1, -2], 9) == [9, 1, 8]
    for bad in ([0], [10], [-10]):
        with pytest.raises(UnreadableDocument):
            select_pages(bad, 9)


def test_emulator_helper_life_cycle(tmp_path: Path) -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError):
        _ = emulator.grpc_target
    with emulator:
        temp_dir = emulator.storage_dir
        assert emulator.grpc_target.startswith("127.0.0.1:") and emulator.rest_url.startswith("http://127.0.0.1:")
        emulator.put_object("gs://b/x", b"1")
        assert emulator.get_object("gs://b/x") == b"1" and emulator.list_objects("gs://b/") == ["gs://b/x"]
        with pytest.raises(RuntimeError):
            emulator.start()
    assert not temp_dir.exists()
    emulator.stop()  # idempotent
    with Emulator(storage_dir=tmp_path / "kept") as kept:
        kept.put_object("gs://b/y", b"2")
    assert (tmp_path / "kept" / "b" / "y").read_bytes() == b"2"  # a given storage dir is kept


def test_emulator_stop_after_bind_failure() -> None:
    with Emulator() as first:
        port = int(first.grpc_target.rsplit(":", 1)[1])
        second = Emulator(port=port)
        with pytest.raises(OSError):
            second.start()
        with pytest.raises(RuntimeError):
            _ = second.service  # nothing left running
