"""The emulator's Cloud Storage JSON API (``vision_grpc.emulator.gcs_server``), driven by google-cloud-storage
as a user's code drives it (``STORAGE_EMULATOR_HOST``, ``storage.Client()``), and by raw HTTP for what a
client library hides: error bodies, status codes, framing, bounds."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud import storage

from tests._support import run
from vision_grpc.demo import sample_pdf
from vision_grpc.emulator import BucketDir
from vision_grpc.emulator.__main__ import export_lines
from vision_grpc.emulator._objects import _PyCrc32c
from vision_grpc.emulator.gcs_server import GcsServer
from vision_grpc.storage import GcsStorage
from vision_grpc.testing import Emulator

_names = iter(range(1_000_000))


def crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def gcs(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The shared emulator, with ``STORAGE_EMULATOR_HOST`` pointing at its Cloud Storage API."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.storage_host)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return emulator


@pytest.fixture
def client(gcs: Emulator) -> storage.Client:
    return storage.Client()  # anonymous, as STORAGE_EMULATOR_HOST makes it


@pytest.fixture
def bucket(client: storage.Client) -> storage.Bucket:
    return client.create_bucket(f"gcs-api-{os.getpid()}-{next(_names)}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., GcsServer]]:
    """``server(**limits)``: a GcsServer of its own over ``tmp_path``, stopped after the test."""
    started: list[GcsServer] = []

    def start(**limits: Any) -> GcsServer:
        started.append(GcsServer(BucketDir(tmp_path), **limits))
        started[-1].start()
        return started[-1]

    yield start
    for running in started:
        running.stop()


def call(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-case names), body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def error_of(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    assert set(error) == {"code", "message", "errors"} and error["errors"][0]["domain"] == "global"
    return error


def multipart(
    metadata: dict[str, Any], media: bytes, media_type: str = "application/octet-stream"
) -> tuple[bytes, str]:
    boundary = "==boundary-42=="
    body = (
        (
            f"--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{json.dumps(metadata)}\r\n"
            f"--{boundary}\r\ncontent-type: {media_type}\r\n\r\n"
        ).encode()
        + media
        + f"\r\n--{boundary}--".encode()
    )
    return body, f'multipart/related; boundary="{boundary}"'


# -- the client's flow ------------------------------------------------------------------------------


def test_buckets_create_get_list_delete(client: storage.Client, gcs: Emulator) -> None:
    name = f"gcs-api-buckets-{os.getpid()}"
    created = client.create_bucket(name)
    assert created.name == name and (gcs.storage_dir / name).is_dir()
    with pytest.raises(exceptions.Conflict):
        client.create_bucket(name)
    assert client.get_bucket(name).name == name and client.bucket(name).exists()
    listed = [each.name for each in client.list_buckets()]
    assert name in listed and not [each for each in listed if each.startswith(".")]  # .gcs, .tmp: not buckets
    assert client.lookup_bucket("gcs-api-no-such-bucket") is None
    with pytest.raises(exceptions.NotFound):
        client.get_bucket("gcs-api-no-such-bucket")
    for bad in ("ab", "Upper-Case", "has space", "-dash-first", "google-owned", "1.2.3.4", "x" * 64):
        status, _, body = call(gcs.storage_url, "POST", "/storage/v1/b", json.dumps({"name": bad}).encode())
        assert status == 400 and error_of(body)["message"] == f"Invalid bucket name: {bad!r}"
    created.blob("x.json").upload_from_string(b"{}")
    with pytest.raises(exceptions.Conflict):  # not empty
        created.delete()
    created.blob("x.json").delete()
    created.delete()  # empty once its objects are gone (their empty directories do not count)
    assert not client.bucket(name).exists()


def test_upload_then_read_back_everything_the_service_says(bucket: storage.Bucket, gcs: Emulator) -> None:
    data = sample_pdf()
    blob = bucket.blob("in/report")
    blob.metadata = {"owner": "tests"}
    blob.upload_from_string(data, content_type="application/pdf")  # multipart: JSON metadata, then the bytes
    assert gcs.get_object(f"gs://{bucket.name}/in/report") == data  # a file in the emulator's directory
    got = bucket.get_blob("in/report")
    assert got is not None
    assert (got.size, got.content_type, got.metadata) == (len(data), "application/pdf", {"owner": "tests"})
    assert (got.crc32c, got.md5_hash) == (crc32c(data), md5(data))
    assert got.generation == blob.generation and got.metageneration == 1
    assert got.media_link is not None and got.media_link.startswith(gcs.storage_url + "/download/storage/v1/b/")
    assert got.download_as_bytes() == data  # the client checks X-Goog-Hash against the bytes
    assert bucket.blob("in/report").download_as_bytes() == data  # without a mediaLink: /download/storage/v1
    assert got.download_as_bytes(start=10, end=19) == data[10:20]  # Range: 206
    got.reload()
    assert bucket.get_blob("in/nothing") is None


def test_objects_the_emulator_writes_are_listed_and_read(bucket: storage.Bucket, gcs: Emulator) -> None:
    gcs.put_object(f"gs://{bucket.name}/direct/output-1-to-1.json", b'{"responses": []}')
    (listed,) = bucket.list_blobs(prefix="direct/")
    assert (listed.name, listed.content_type, listed.crc32c) == (
        "direct/output-1-to-1.json",
        "application/json",  # guessed from the extension
        crc32c(b'{"responses": []}'),
    )
    assert listed.download_as_bytes() == b'{"responses": []}'


def test_a_file_replaced_behind_the_apis_back_is_hashed_again(
    server: Callable[..., GcsServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = server()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", first.url)
    bucket = storage.Client().create_bucket("sidecars")
    bucket.blob("doc").upload_from_string(b"first", content_type="application/pdf")
    first.stop()
    second = server()  # a restart keeps the content type given at upload (the sidecar)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", second.url)
    bucket = storage.Client().bucket("sidecars")
    got = bucket.get_blob("doc")
    assert got is not None and (got.content_type, got.crc32c) == ("application/pdf", crc32c(b"first"))
    BucketDir(tmp_path).write("gs://sidecars/doc", b"second, longer")  # another writer: the sidecar is stale
    got = bucket.get_blob("doc")
    assert got is not None
    assert (got.content_type, got.size, got.crc32c, got.md5_hash) == (
        "application/octet-stream",
        len(b"second, longer"),
        crc32c(b"second, longer"),
        md5(b"second, longer"),
    )
    assert got.download_as_bytes() == b"second, longer"


def test_a_resumable_upload_over_8_mib_in_chunks(bucket: storage.Bucket, gcs: Emulator) -> None:
    data = os.urandom(9 * 1024 * 1024 + 123)
    blob = bucket.blob("big/input.bin", chunk_size=4 * 1024 * 1024)  # three PUTs: 308, 308, then the object
    blob.upload_from_string(data)  # the client checks the object's crc32c in the last answer
    assert blob.crc32c == crc32c(data) and blob.size == len(data)
    assert gcs.get_object(f"gs://{bucket.name}/big/input.bin") == data
    assert bucket.blob("big/input.bin").download_as_bytes() == data
    assert not list((gcs.storage_dir / ".gcs" / "uploads").glob("*"))  # the session's file became the object


def test_resumable_protocol_status_resume_and_overlap(server: Callable[..., GcsServer]) -> None:
    gcs = server()
    os.mkdir(gcs.objects.root / "b")
    status, headers, _ = call(
        gcs.url,
        "POST",
        "/upload/storage/v1/b/b/o?uploadType=resumable",
        json.dumps({"name": "r.bin", "contentType": "text/plain"}).encode(),
        {"X-Upload-Content-Length": "10", "Content-Type": "application/json"},
    )
    assert status == 200 and headers["location"].startswith(gcs.url + "/upload/storage/v1/b/b/o?uploadType=resumable")
    session = urlsplit(headers["location"])
    target = f"{session.path}?{session.query}"
    status, headers, _ = call(gcs.url, "PUT", target, b"0123", {"Content-Range": "bytes 0-3/10"})
    assert status == 308 and headers["range"] == "bytes=0-3"
    status, headers, _ = call(gcs.url, "PUT", target, b"", {"Content-Range": "bytes */10"})  # where is it?
    assert status == 308 and headers["range"] == "bytes=0-3"
    status, _, body = call(gcs.url, "PUT", target, b"9", {"Content-Range": "bytes 9-9/10"})  # a gap
    assert status == 400 and "past the 4 bytes" in error_of(body)["message"]
    status, headers, _ = call(gcs.url, "PUT", target, b"23456", {"Content-Range": "bytes 2-6/10"})  # overlaps
    assert status == 308 and headers["range"] == "bytes=0-6"
    wrong = {"Content-Range": "bytes 7-9/10", "X-Goog-Hash": f"crc32c={crc32c(b'x')}"}
    status, _, body = call(gcs.url, "PUT", target, b"789", wrong)
    assert status == 400 and "CRC32C" in error_of(body)["message"]
    assert not (gcs.objects.root / "b" / "r.bin").exists()  # a failed check stores nothing, and ends the session
    status, _, _ = call(gcs.url, "PUT", target, b"", {"Content-Range": "bytes */10"})
    assert status == 404


def test_listing_pages_prefixes_and_order(bucket: storage.Bucket, client: storage.Client) -> None:
    names = ["out/a/1.json", "out/a/2.json", "out/b/x/1.json", "out/c.json", "out-x.json", "out0.json", "z"]
    for name in names:
        bucket.blob(name).upload_from_string(b"{}")
    everything = [blob.name for blob in client.list_blobs(bucket.name, page_size=2)]
    assert (
        everything
        == sorted(names)
        == ["out-x.json", "out/a/1.json", "out/a/2.json", "out/b/x/1.json"]
        + [
            "out/c.json",
            "out0.json",
            "z",
        ]
    )  # byte order: "-" < "/" < "0", wherever the directories are
    pages = client.list_blobs(bucket.name, page_size=2).pages
    assert [len(list(page)) for page in pages] == [2, 2, 2, 1]
    rolled = client.list_blobs(bucket.name, prefix="out/", delimiter="/")
    assert [blob.name for blob in rolled] == ["out/c.json"] and rolled.prefixes == {"out/a/", "out/b/"}
    partial = client.list_blobs(bucket.name, prefix="out/a/", page_size=1)
    assert [blob.name for blob in partial] == ["out/a/1.json", "out/a/2.json"]
    ranged = client.list_blobs(bucket.name, start_offset="out/a/2", end_offset="out0")
    assert [blob.name for blob in ranged] == ["out/a/2.json", "out/b/x/1.json", "out/c.json"]
    assert list(client.list_blobs(bucket.name, prefix="nothing/")) == []
    with pytest.raises(exceptions.NotFound):
        list(client.list_blobs("gcs-api-no-such-bucket"))


def test_raw_listing_pages_count_items_and_prefixes(bucket: storage.Bucket, gcs: Emulator) -> None:
    for name in ("p/a/1", "p/b/1", "p/c", "p/d"):
        bucket.blob(name).upload_from_string(b"")
    path = f"/storage/v1/b/{bucket.name}/o?prefix=p/&delimiter=/&maxResults=3"
    status, _, body = call(gcs.storage_url, "GET", path)
    first = json.loads(body)
    assert status == 200 and first["prefixes"] == ["p/a/", "p/b/"] and [i["name"] for i in first["items"]] == ["p/c"]
    status, _, body = call(gcs.storage_url, "GET", f"{path}&pageToken={first['nextPageToken']}")
    second = json.loads(body)
    assert [i["name"] for i in second["items"]] == ["p/d"] and "nextPageToken" not in second
    _, _, body = call(gcs.storage_url, "GET", f"/storage/v1/b/{bucket.name}/o?prefix=p/&fields=items(name)")
    assert [set(item) >= {"name", "size", "generation"} for item in json.loads(body)["items"]] == [True] * 4
    status, _, body = call(gcs.storage_url, "GET", f"/storage/v1/b/{bucket.name}/o?pageToken=%25%25")
    assert status == 400 and error_of(body)["errors"][0]["reason"] == "invalid"


def test_names_as_clients_encode_them(bucket: storage.Bucket, gcs: Emulator) -> None:
    for name in ("in/my file #1.pdf", "in/ünï?x=1&y.pdf", "in/plus+sign.pdf", "in/100%.json"):
        bucket.blob(name).upload_from_string(name.encode())
        (listed,) = [blob for blob in bucket.list_blobs(prefix="in/") if blob.name == name]
        assert listed.download_as_bytes() == name.encode() == bucket.blob(name).download_as_bytes()
    raw = f"/storage/v1/b/{bucket.name}/o/in/plus+sign.pdf"  # slashes not encoded: the same object
    encoded = f"/storage/v1/b/{bucket.name}/o/{quote('in/plus+sign.pdf', safe='')}"
    assert json.loads(call(gcs.storage_url, "GET", raw)[2])["name"] == "in/plus+sign.pdf"
    assert json.loads(call(gcs.storage_url, "GET", encoded)[2])["name"] == "in/plus+sign.pdf"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("x" * 1025, "1 to 1024 bytes"),
        ("line\nbreak", "carriage return or line feed"),
        ("folder/", "folder placeholders"),
        ("a//b", "empty, '.' or '..' path segment"),
        ("held/under", "is an object"),
        ("s" * 256, "at most 255 bytes"),
    ],
)
def test_names_cloud_storage_or_a_directory_cannot_hold_are_400(bucket: storage.Bucket, name: str, says: str) -> None:
    bucket.blob("held").upload_from_string(b"x")
    with pytest.raises(exceptions.BadRequest) as refused:
        bucket.blob(name).upload_from_string(b"data", retry=None)
    assert says in str(refused.value)


def test_errors_have_cloud_storages_shape(bucket: storage.Bucket, gcs: Emulator) -> None:
    url = gcs.storage_url
    status, _, body = call(url, "GET", f"/storage/v1/b/{bucket.name}/o/missing.json")
    assert status == 404 and error_of(body) == {
        "code": 404,
        "message": f"No such object: {bucket.name}/missing.json",
        "errors": [
            {"message": f"No such object: {bucket.name}/missing.json", "domain": "global", "reason": "notFound"}
        ],
    }
    status, _, body = call(url, "GET", f"/download/storage/v1/b/{bucket.name}/o/missing.json?alt=media")
    assert status == 404 and error_of(body)["errors"][0]["reason"] == "notFound"
    status, _, body = call(url, "GET", "/storage/v1/b/gcs-api-no-such-bucket/o")
    assert status == 404 and error_of(body)["message"] == "The specified bucket does not exist."
    status, _, body = call(url, "PATCH", f"/storage/v1/b/{bucket.name}/o/x", b"{}")
    assert status == 501 and "does not implement PATCH" in error_of(body)["message"]
    status, _, body = call(url, "GET", "/elsewhere")
    assert status == 404 and error_of(body)["code"] == 404
    status, _, body = call(url, "POST", "/storage/v1/b", b"[1]", {"Content-Type": "application/json"})
    assert status == 400 and error_of(body)["errors"][0]["reason"] == "parseError"
    status, headers, body = call(url, "GET", f"/storage/v1/b/{bucket.name}/o/missing.json?alt=media&generation=x")
    assert status == 400 and headers["content-type"].startswith("application/json")


def test_hash_checks_on_upload(bucket: storage.Bucket, gcs: Emulator) -> None:
    path = f"/upload/storage/v1/b/{bucket.name}/o?uploadType=multipart"
    body, content_type = multipart({"name": "bad.bin", "crc32c": crc32c(b"other")}, b"payload")
    status, _, answer = call(gcs.storage_url, "POST", path, body, {"Content-Type": content_type})
    assert status == 400 and "Provided CRC32C hash" in error_of(answer)["message"]
    body, content_type = multipart({"name": "bad.bin", "md5Hash": md5(b"other")}, b"payload")
    status, _, answer = call(gcs.storage_url, "POST", path, body, {"Content-Type": content_type})
    assert status == 400 and "Provided MD5 hash" in error_of(answer)["message"]
    assert bucket.get_blob("bad.bin") is None
    declared = {"name": "good.bin", "crc32c": crc32c(b"payload"), "md5Hash": md5(b"payload")}
    body, content_type = multipart(declared, b"payload", "text/plain")
    status, _, answer = call(gcs.storage_url, "POST", path, body, {"Content-Type": content_type})
    assert status == 200 and json.loads(answer)["contentType"] == "text/plain"
    status, headers, data = call(gcs.storage_url, "GET", f"/download/storage/v1/b/{bucket.name}/o/good.bin?alt=media")
    assert (status, data) == (200, b"payload")
    assert headers["x-goog-hash"] == f"crc32c={crc32c(b'payload')},md5={md5(b'payload')}"


def test_simple_media_upload_and_chunked_bodies(bucket: storage.Bucket, gcs: Emulator) -> None:
    parts = urlsplit(gcs.storage_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        path = f"/upload/storage/v1/b/{bucket.name}/o?uploadType=media&name=chunked.txt"
        connection.request(
            "POST", path, body=iter([b"hello ", b"world"]), headers={"Content-Type": "text/plain"}, encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["size"] == "11"
    finally:
        connection.close()
    got = bucket.get_blob("chunked.txt")
    assert got is not None and (got.content_type, got.download_as_bytes()) == ("text/plain", b"hello world")


def test_generations_and_preconditions(bucket: storage.Bucket, gcs: Emulator) -> None:
    blob = bucket.blob("gen.json")
    blob.upload_from_string(b"1", if_generation_match=0)  # only if absent
    first = blob.generation
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("gen.json").upload_from_string(b"2", if_generation_match=0)
    bucket.blob("gen.json").upload_from_string(b"2", if_generation_match=first)
    second = bucket.get_blob("gen.json")
    assert second is not None and second.generation is not None and first is not None
    assert second.generation > first  # each upload of a name gets a larger generation
    status, _, _ = call(gcs.storage_url, "GET", f"/storage/v1/b/{bucket.name}/o/gen.json?generation={first}")
    assert status == 404  # only the live generation exists
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("gen.json").delete(if_generation_match=first)
    bucket.blob("gen.json").delete(if_generation_match=second.generation)
    with pytest.raises(exceptions.NotFound):
        bucket.blob("gen.json").delete()


def test_ranges(bucket: storage.Bucket, gcs: Emulator) -> None:
    bucket.blob("r.bin").upload_from_string(b"0123456789")
    path = f"/download/storage/v1/b/{bucket.name}/o/r.bin?alt=media"
    for header, status, data, content_range in [
        ("bytes=2-4", 206, b"234", "bytes 2-4/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-2", 206, b"89", "bytes 8-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=1-2,4-5", 200, b"0123456789", None),  # several ranges: all of it
    ]:
        got, headers, body = call(gcs.storage_url, "GET", path, headers={"Range": header})
        assert (got, body, headers.get("content-range")) == (status, data, content_range), header
    got, headers, _ = call(gcs.storage_url, "GET", path, headers={"Range": "bytes=10-"})
    assert got == 416 and headers["content-range"] == "bytes */10"


# -- bounds -----------------------------------------------------------------------------------------


def test_connections_are_capped_and_idle_ones_closed(server: Callable[..., GcsServer]) -> None:
    gcs = server(max_connections=2, idle_timeout=0.3)
    host, port = "127.0.0.1", gcs.port
    kept = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
    try:
        deadline = time.monotonic() + 5
        while gcs.open_connections() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection((host, port), timeout=5) as third:
            answer = third.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        assert kept[0].recv(1) == b""  # idle past 0.3 s: closed without a word
        deadline = time.monotonic() + 5
        while gcs.open_connections() and time.monotonic() < deadline:
            time.sleep(0.01)
        status, _, _ = call(gcs.url, "GET", "/storage/v1/b")
        assert status == 200
    finally:
        for sock in kept:
            sock.close()


def test_bodies_are_capped_before_they_are_read(server: Callable[..., GcsServer]) -> None:
    gcs = server(max_body=1024, max_object_size=4096)
    os.mkdir(gcs.objects.root / "b")
    with socket.create_connection(("127.0.0.1", gcs.port), timeout=5) as sock:
        head = "POST /upload/storage/v1/b/b/o?uploadType=multipart HTTP/1.1\r\nHost: x\r\n"
        sock.sendall(f"{head}Content-Type: multipart/related; boundary=b\r\nContent-Length: 999999\r\n\r\n".encode())
        answer = sock.recv(65536)  # answered with no byte of the body sent
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
    status, headers, _ = call(
        gcs.url,
        "POST",
        "/upload/storage/v1/b/b/o?uploadType=resumable&name=big",
        b"",
        {"X-Upload-Content-Length": "5000"},
    )
    assert status == 413
    status, _, body = call(gcs.url, "POST", "/upload/storage/v1/b/b/o?uploadType=media&name=big", b"x" * 5000)
    assert status == 413 and error_of(body)["errors"][0]["reason"] == "requestTooLarge"  # declared: not read
    assert not (gcs.objects.root / "b" / "big").exists()
    assert not list((gcs.objects.root / ".gcs" / "uploads").glob("*"))


def test_ambiguous_framing_is_refused_and_the_connection_closed(server: Callable[..., GcsServer]) -> None:
    gcs = server()
    with socket.create_connection(("127.0.0.1", gcs.port), timeout=5) as sock:
        sock.sendall(
            b"POST /storage/v1/b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /storage/v1/b HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1") == 1  # nothing smuggled after it


def test_concurrent_clients(bucket: storage.Bucket, gcs: Emulator) -> None:
    errors: queue.Queue[BaseException] = queue.Queue()

    def work(worker: int) -> None:
        own = storage.Client().bucket(bucket.name)
        try:
            for index in range(8):
                data = f"{worker}-{index}".encode()
                own.blob(f"c/{worker}/{index}.json").upload_from_string(data)
                assert own.blob(f"c/{worker}/{index}.json").download_as_bytes() == data
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.put(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors.empty(), errors.get()
    assert len(list(bucket.list_blobs(prefix="c/"))) == 64


# -- who uses it --------------------------------------------------------------------------------------


def shard(first: int, last: int) -> bytes:
    """An output shard as the emulator writes it (one response per page)."""
    responses = [
        {"fullTextAnnotation": {"text": f"page {n}\n"}, "context": {"uri": "gs://b/in.pdf", "pageNumber": n}}
        for n in range(first, last + 1)
    ]
    return json.dumps({"responses": responses}).encode()


def test_gcs_storage_and_the_cli_read_outputs_through_it(
    gcs: Emulator, bucket: storage.Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    output = f"gs://{bucket.name}/out/"
    gcs.put_object(f"{output}output-1-to-2.json", shard(1, 2))  # where and how the emulator's jobs write them
    gcs.put_object(f"{output}output-3-to-3.json", shard(3, 3))
    reader = GcsStorage()  # STORAGE_EMULATOR_HOST: anonymous, at the emulator
    assert reader.list(output) == [f"{output}output-1-to-2.json", f"{output}output-3-to-3.json"]
    assert reader.read(f"{output}output-3-to-3.json") == shard(3, 3)
    code, document, _ = run(capsys, "outputs", output, "--json")  # no --emulator-storage: Cloud Storage
    assert code == 0 and [result["text"] for result in document["results"]] == ["page 1\n", "page 2\n", "page 3\n"]


def test_the_plugins_env_fixture_exports_storage_emulator_host(vision_emulator_env: Emulator) -> None:
    assert os.environ["STORAGE_EMULATOR_HOST"] == vision_emulator_env.storage_host
    vision_emulator_env.put_object("gs://plugin-bucket/x.json", b"{}")
    assert GcsStorage().read("gs://plugin-bucket/x.json") == b"{}"


def test_the_emulator_without_its_storage_api() -> None:
    with Emulator(gcs=False) as bare:
        with pytest.raises(RuntimeError, match="no Cloud Storage API"):
            _ = bare.storage_url
    with pytest.raises(RuntimeError, match="not started"):
        _ = Emulator().storage_host


def test_export_lines_name_storage_emulator_host() -> None:
    assert export_lines("0.0.0.0:1", "http://0.0.0.0:2", "http://127.0.0.1:3") == [
        "export VISION_EMULATOR_HOST=127.0.0.1:1",
        "export VISION_EMULATOR_REST_HOST=127.0.0.1:2",
        "export STORAGE_EMULATOR_HOST=http://127.0.0.1:3",
    ]


def test_the_standalone_emulator_exports_its_storage_api(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "vision_grpc.emulator", "--storage", str(tmp_path), "--operation-seconds", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        found = re.fullmatch(r"export STORAGE_EMULATOR_HOST=(http://127\.0\.0\.1:\d+)", lines[3])
        assert found, lines
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "x.txt").write_bytes(b"from the directory")
        status, _, body = call(found.group(1), "GET", "/download/storage/v1/b/b/o/x.txt?alt=media")
        assert (status, body) == (200, b"from the directory")
    finally:
        process.terminate()
        process.communicate(timeout=15)
    assert process.returncode == 0


def test_upload_files_left_by_a_crash_are_dropped_at_start(tmp_path: Path) -> None:
    uploads = tmp_path / ".gcs" / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "old.part").write_bytes(b"x")
    (uploads / "recent.part").write_bytes(b"x")
    os.utime(uploads / "old.part", (time.time() - 7200, time.time() - 7200))
    GcsServer(BucketDir(tmp_path)).stop()
    assert [path.name for path in uploads.iterdir()] == ["recent.part"]  # perhaps another emulator's session


def test_crc32c_without_google_crc32c_is_the_same() -> None:
    checksum = _PyCrc32c()
    checksum.update(b"123456789")
    assert checksum.digest() == bytes.fromhex("e3069283")  # the CRC-32C check value
    data = os.urandom(4096)
    checksum = _PyCrc32c()
    checksum.update(data[:1000])
    copy = checksum.copy()
    checksum.update(data[1000:])
    copy.update(data[1000:])
    assert checksum.digest() == copy.digest() == google_crc32c.value(data).to_bytes(4, "big")
