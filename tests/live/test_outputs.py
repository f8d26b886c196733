"""Reading async results back: through the emulator end to end, from hand-built shards, and over a fake GCS."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from google.longrunning import operations_pb2
from google.protobuf import json_format

from tests._support import make_pdf
from vision_grpc import AsyncClient, Client, OperationError, VisionError, types
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc.client import Operation
from vision_grpc.outputs import OutputError, document_text, page_text, read_file_results, read_image_results
from vision_grpc.storage import GcsStorage, LocalStorage, Storage, storage_for
from vision_grpc.testing import Emulator

DOC = "gs://in/doc.pdf"
FIVE_IN_TWOS = ["output-1-to-2.json"] * 2 + ["output-3-to-4.json"] * 2 + ["output-5-to-5.json"]  # 5 items, batch_size=2


def unique(kind: str) -> str:
    return f"gs://bucket/outputs/{kind}-{uuid.uuid4().hex[:8]}/"


def file_shard(first: int, last: int, uri: str = DOC) -> bytes:
    message = v1.AnnotateFileResponse(input_config={"gcs_source": {"uri": uri}, "mime_type": "application/pdf"})
    for number in range(first, last + 1):
        page = message.responses.add(context={"uri": uri, "page_number": number})
        page.full_text_annotation.text = f"p{number}\n"
    return json_format.MessageToJson(message).encode()


def write_doc(storage: Storage, prefix: str, ranges: list[tuple[int, int]], uri: str = DOC) -> None:
    for first, last in ranges:
        storage.write(f"{prefix}output-{first}-to-{last}.json", file_shard(first, last, uri))


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path)


def submit_files(emulator: Emulator, pages: list[int], out: str, **kwargs: Any) -> tuple[list[str], Operation]:
    uris = [f"gs://bucket/inputs/{uuid.uuid4().hex[:8]}.pdf" for _ in pages]
    for uri, count in zip(uris, pages, strict=True):
        emulator.put_object(uri, make_pdf(count))
    with Client(endpoint=emulator.grpc_target) as client:
        operation = client.async_batch_annotate_files(types.async_files_request(uris, output_uri=out, **kwargs))
        return uris, operation.wait(timeout=30)


# -- through the emulator -------------------------------------------------------------------------


def test_files_pages_in_order_across_shards(emulator: Emulator) -> None:
    out, storage = unique("files"), LocalStorage(emulator.storage_dir)
    (uri,), operation = submit_files(emulator, [5], out, batch_size=2)
    pages = list(read_file_results(operation, storage=storage))
    expected = [(uri, number, name) for number, name in enumerate(FIVE_IN_TWOS, start=1)]
    assert [(p.input_uri, p.page_number, p.shard_uri.removeprefix(out)) for p in pages] == expected
    for page in pages:  # blank pages: no text, whether or not the emulator extracts text yet
        assert isinstance(page.response, v1.AnnotateImageResponse) and page.text == ""
        assert page.error is None or page.error.code != 0
    assert list(read_file_results(operation.result(), storage=storage)) == pages
    assert list(read_file_results(out, storage=storage)) == pages


def test_numeric_order_with_many_shards_and_beta(emulator: Emulator) -> None:
    out = unique("many")
    _, operation = submit_files(emulator, [11], out, batch_size=1, version="v1p4beta1")
    pages = list(read_file_results(operation, storage=LocalStorage(emulator.storage_dir)))
    assert [(p.page_number, p.shard_uri) for p in pages] == [(n, f"{out}output-{n}-to-{n}.json") for n in range(1, 12)]
    assert all(isinstance(p.response, v1p4beta1.AnnotateImageResponse) for p in pages)


def test_several_files_grouped_by_input(emulator: Emulator) -> None:
    out = unique("multi")
    uris, operation = submit_files(emulator, [3, 2], out, batch_size=2)
    pages = list(read_file_results(operation.result(), storage=LocalStorage(emulator.storage_dir)))
    assert [(p.input_uri, p.page_number) for p in pages] == [
        (uris[0], 1),
        (uris[0], 2),
        (uris[0], 3),
        (uris[1], 1),
        (uris[1], 2),
    ]
    with pytest.raises(OutputError, match=re.escape(f"shards are under {out}0/, {out}1/")):
        list(read_file_results(out, storage=LocalStorage(emulator.storage_dir)))  # the builder's per-file prefixes
    with pytest.raises(ValueError, match="cover 2 input files"):
        document_text(pages)
    assert document_text(pages, input_uri=uris[1]) == "\n"


def test_images_output(emulator: Emulator) -> None:
    emulator.put_object("gs://bucket/img/a.png", b"\x89PNG\r\n\x1a\n")
    out, storage = unique("images"), LocalStorage(emulator.storage_dir)
    with Client(endpoint=emulator.grpc_target) as client:
        request = types.async_images_request(["gs://bucket/img/a.png"] * 5, output_uri=out, batch_size=2)
        operation = client.async_batch_annotate_images(request).wait(timeout=30)
    images = list(read_image_results(operation, storage=storage))
    assert [(i.index, i.shard_uri.removeprefix(out)) for i in images] == list(enumerate(FIVE_IN_TWOS))
    assert all(i.image_uri in ("", "gs://bucket/img/a.png") for i in images)
    with pytest.raises(TypeError, match="AsyncBatchAnnotateFilesResponse"):
        read_file_results(operation, storage=storage)


def test_async_operation_read_in_a_thread(emulator: Emulator) -> None:
    out, uri, local = unique("aio"), "gs://bucket/inputs/aio.pdf", LocalStorage(emulator.storage_dir)
    emulator.put_object(uri, make_pdf(3))

    async def main() -> list[Any]:
        async with AsyncClient(endpoint=emulator.grpc_target) as client:
            operation = await client.async_batch_annotate_files(types.async_files_request(uri, output_uri=out))
            await operation.wait(timeout=30)
            return await asyncio.to_thread(lambda: list(read_file_results(operation, storage=local)))

    assert [p.page_number for p in asyncio.run(main())] == [1, 2, 3]


def test_failed_or_unfinished_operation(emulator: Emulator) -> None:
    storage = LocalStorage(emulator.storage_dir)
    with Client(endpoint=emulator.grpc_target) as client:
        request = types.async_files_request("gs://bucket/missing.pdf", output_uri=unique("failed"))
        operation = client.async_batch_annotate_files(request).wait(timeout=30)
        with pytest.raises(OperationError):
            read_file_results(operation, storage=storage)
        with pytest.raises(VisionError, match="not done"):
            read_file_results(Operation(operations_pb2.Operation(name="operations/pending"), client), storage=storage)


# -- hand-built shards: exact text and every kind of damage ----------------------------------------


def test_known_text_numeric_order(local: LocalStorage) -> None:
    prefix = "gs://b/out/"
    write_doc(local, prefix, [(n, n) for n in range(12, 0, -1)])
    local.write(f"{prefix}notes.txt", b"not a shard")
    local.write(f"{prefix}0/output-1-to-1.json", b"a nested prefix: not ours")
    assert local.list(prefix)[:2] == [f"{prefix}0/output-1-to-1.json", f"{prefix}notes.txt"]  # listed first
    pages = list(read_file_results(prefix, storage=local))
    assert [p.page_number for p in pages] == list(range(1, 13))
    assert document_text(pages, separator="") == "".join(f"p{n}\n" for n in range(1, 13))
    assert page_text(pages, 10) == "p10\n" and pages[0].input_uri == DOC and pages[0].error is None
    pytest.raises(LookupError, page_text, pages, 13)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([(1, 2), (5, 6)], "missing pages 3-4"),
        ([(2, 3)], "missing page 1"),
        ([(1, 2), (2, 3)], "overlaps an earlier shard under gs://b/gap/ on page 2"),
        ([(1, 2), (4, 3)], "names no valid page range"),
    ],
)
def test_gaps_and_overlaps(local: LocalStorage, ranges: list[tuple[int, int]], message: str) -> None:
    write_doc(local, "gs://b/gap/", ranges)
    with pytest.raises(OutputError, match=message) as caught:
        next(read_file_results("gs://b/gap/", storage=local))
    assert "gs://b/gap/" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\xffgarbage", "not valid JSON"),
        (file_shard(3, 4)[:40], "not valid JSON"),  # truncated
        (json.dumps({"inputConfig": {"gcsSource": {"uri": DOC}}, "responses": [{}]}).encode(), "holds 1 page"),
        (json.dumps({"responses": [{"context": {"pageNumber": 3}}, {}]}).encode(), "names no input file"),
        (json.dumps({"name": "operations/1", "done": True}).encode(), "is not the expected AnnotateFileResponse"),
        (b"[1, 2]", "found a JSON list"),
        (json.dumps({"responses": "oops"}).encode(), "is not a valid AnnotateFileResponse"),
        (file_shard(4, 5), "holds page 4 where its name says page 3"),
        (file_shard(3, 4, uri="gs://in/other.pdf"), "is for gs://in/other.pdf"),
    ],
)
def test_damaged_shard(local: LocalStorage, data: bytes, message: str) -> None:
    write_doc(local, "gs://b/bad/", [(1, 2)])
    local.write("gs://b/bad/output-3-to-4.json", data)
    results = read_file_results("gs://b/bad/", storage=local)
    assert [next(results).page_number for _ in range(2)] == [1, 2]  # good shards stream first
    with pytest.raises(OutputError, match=re.escape(message)) as caught:
        next(results)
    assert caught.value.uri == "gs://b/bad/output-3-to-4.json"


def test_unknown_fields_total_pages_and_file_errors(local: LocalStorage) -> None:
    shard = json.loads(file_shard(1, 2))
    shard["someNewField"] = {"x": 1}
    shard["responses"][0]["futureAnnotation"] = [1]
    local.write("gs://b/u/output-1-to-2.json", json.dumps(shard).encode())
    assert [p.text for p in read_file_results("gs://b/u/", storage=local)] == ["p1\n", "p2\n"]
    shard["totalPages"] = 4
    local.write("gs://b/t/output-1-to-2.json", json.dumps(shard).encode())
    with pytest.raises(OutputError, match="has 4 pages but the shards cover pages 1-2"):
        list(read_file_results("gs://b/t/", storage=local))
    failed = {"inputConfig": {"gcsSource": {"uri": DOC}}, "error": {"code": 3, "message": "bad page"}}
    local.write("gs://b/e/output-1-to-2.json", json.dumps(failed).encode())
    pages = list(read_file_results("gs://b/e/", storage=local))
    assert [(p.page_number, p.error.code, p.text) for p in pages] == [(1, 3, ""), (2, 3, "")]


def test_image_shards(local: LocalStorage) -> None:
    for first, last in [(1, 2), (3, 3)]:
        responses = [
            {"context": {"uri": f"gs://img/{n}.png"}, "fullTextAnnotation": {"text": f"i{n}"}}
            for n in range(first, last + 1)
        ]
        local.write(f"gs://b/img/output-{first}-to-{last}.json", json.dumps({"responses": responses}).encode())
    images = list(read_image_results("gs://b/img/", storage=local, version="v1p4beta1"))
    expected = [(n - 1, f"gs://img/{n}.png", f"i{n}") for n in (1, 2, 3)]
    assert [(i.index, i.image_uri, i.text) for i in images] == expected
    write_doc(local, "gs://b/files/", [(1, 1)])
    with pytest.raises(OutputError, match="fields of an AnnotateFileResponse"):
        list(read_image_results("gs://b/files/", storage=local))
    with pytest.raises(OutputError, match="no output shards"):
        list(read_image_results("gs://b/nothing/", storage=local))
    pytest.raises(ValueError, read_image_results, "/local/dir/", storage=local)


# -- storage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "gs://b/../x",
        "gs://b/a/../../x",
        "gs://../x",
        "gs://b//x",
        "gs://b/./x",
        "gs://b/a\\..\\x",
        "gs://b/",
        "s3://b/x",
        "gs://B/x",
        "/etc/passwd",
    ],
)
def test_local_storage_rejects_escapes(local: LocalStorage, uri: str) -> None:
    for call, args in ((local.read, (uri,)), (local.write, (uri, b"x")), (local.list, ("gs://b/../",))):
        pytest.raises(ValueError, call, *args)


def test_local_storage_round_trip_and_storage_for(
    local: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.write("gs://b/a/2.json", b"two")
    local.write("gs://b/a/10.json", b"ten")
    local.write("gs://b/a/10.json", b"TEN")
    assert local.read("gs://b/a/10.json") == b"TEN" and (tmp_path / "b/a/2.json").read_bytes() == b"two"
    assert local.list("gs://b/a/") == ["gs://b/a/10.json", "gs://b/a/2.json"] == local.list("gs://b")
    assert local.list("gs://b/a/1") == ["gs://b/a/10.json"] and local.list("gs://nope/") == []
    assert list((tmp_path / ".tmp").iterdir()) == []
    pytest.raises(FileNotFoundError, local.read, "gs://b/a/3.json")
    assert isinstance(storage_for("gs://b/out/", local_root=tmp_path), LocalStorage)
    pytest.raises(ValueError, storage_for, "https://example.com/out/", local_root=tmp_path)
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # as if the `storage` extra were missing
    with pytest.raises(ImportError, match=re.escape("pip install 'vision-grpc[storage]'")):
        storage_for("gs://b/out/")


# -- GcsStorage against a fake GCS JSON API on 127.0.0.1 ------------------------------------------


class FakeGcs(ThreadingHTTPServer):
    """The JSON API calls GcsStorage makes; URLs as google-cloud-storage 3.x builds them (client.py, blob.py)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GcsHandler)
        self.objects: dict[tuple[str, str], bytes] = {}
        self.requests: list[str] = []


class _GcsHandler(BaseHTTPRequestHandler):
    server: FakeGcs
    page_size = 2  # small, so listing pages through nextPageToken

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, code: int, body: bytes | dict[str, Any]) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url, objects = urlsplit(self.path), self.server.objects
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append(f"GET {url.path}")
        if bucket := re.fullmatch(r"/storage/v1/b/([^/]+)", url.path):  # 3.x fetches it in the background
            return self._reply(200, {"name": bucket[1], "projectNumber": "1", "location": "US"})
        if (listing := re.fullmatch(r"/storage/v1/b/([^/]+)/o", url.path)) and listing[1] != "no-such-bucket":
            start, prefix = int(query.get("pageToken", "0")), query.get("prefix", "")
            names = sorted(n for b, n in objects if b == listing[1] and n.startswith(prefix))
            body: dict[str, Any] = {"items": [{"name": n} for n in names[start : start + self.page_size]]}
            if start + self.page_size < len(names):
                body["nextPageToken"] = str(start + self.page_size)
            return self._reply(200, body)
        media = re.fullmatch(r"/download/storage/v1/b/([^/]+)/o/([^/]+)", url.path)
        data = objects.get((media[1], unquote(media[2]))) if media and query.get("alt") == "media" else None
        if data is None:
            return self._reply(404, {"error": {"code": 404, "message": f"No such object: {url.path}"}})
        self._reply(200, data)

    def do_POST(self) -> None:  # multipart upload: --boundary, JSON metadata, --boundary, bytes, --boundary--
        url = urlsplit(self.path)
        upload = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", url.path)
        assert upload is not None and parse_qs(url.query)["uploadType"] == ["multipart"]
        boundary = self.headers["Content-Type"].split('boundary="')[1].rstrip('"').encode()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        meta, media = (part.split(b"\r\n\r\n", 1)[1][:-2] for part in body.split(b"--" + boundary)[1:3])
        name = json.loads(meta)["name"]
        self.server.objects[(upload[1], name)] = media
        self._reply(200, {"bucket": upload[1], "name": name, "size": str(len(media))})


@pytest.fixture
def fake_gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcs]:
    import google.cloud.storage  # noqa: F401 - the test extra installs it; fail loudly if it is missing

    server = FakeGcs()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_gcs_storage_through_storage_emulator_host(fake_gcs: FakeGcs) -> None:
    from google.auth.credentials import AnonymousCredentials

    gcs = storage_for("gs://b/out/")
    assert isinstance(gcs, GcsStorage) and isinstance(gcs.client._credentials, AnonymousCredentials)
    write_doc(gcs, "gs://b/out/doc/", [(n, n) for n in range(1, 11)])
    fake_gcs.objects[("b", "out/doc/readme.txt")] = b"x"
    assert fake_gcs.objects[("b", "out/doc/output-10-to-10.json")] == file_shard(10, 10)
    assert len(gcs.list("gs://b/out/doc/")) == 11 and gcs.list("gs://b/out/doc/output-1-") == [
        "gs://b/out/doc/output-1-to-1.json"
    ]
    pages = list(read_file_results("gs://b/out/doc/", storage=gcs))
    assert document_text(pages, separator="") == "".join(f"p{n}\n" for n in range(1, 11))
    pytest.raises(FileNotFoundError, gcs.read, "gs://b/out/doc/missing.json")
    assert gcs.list("gs://no-such-bucket/out/") == []
    assert "GET /download/storage/v1/b/b/o/out%2Fdoc%2Foutput-1-to-1.json" in fake_gcs.requests
