"""The HTTP/1.1 machinery both HTTP fronts share (``_http_server``), through the Cloud Storage front too.

test_rest_framing drives it through the REST front; here the same hostile framing table, pipelining,
HTTP/1.0, ``100 Continue``, 408 and 413 while reading go through ``GcsServer``, answered in Cloud Storage's
error shape. Then what each front sets for itself: the 503's body, and the one timeout policy that differs
(the REST front bounds a whole request by ``request_timeout``; the Cloud Storage front each wait for more of
a body, since uploads stream). Raw sockets on 127.0.0.1; every read has a timeout, every loop a bound.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.test_rest_framing import HOSTILE, SMUGGLED, Reply, _Reader
from vision_grpc.emulator import BucketDir, EmulatorService
from vision_grpc.emulator.gcs_server import GcsServer
from vision_grpc.emulator.rest_server import RestServer

IO_TIMEOUT = 3.0
UPLOAD = b"POST /upload/storage/v1/b/b/o?uploadType=media&name=%s HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
def connect() -> Iterator[Callable[[int], socket.socket]]:
    """``connect(port)``: a socket to 127.0.0.1, closed after the test."""
    opened: list[socket.socket] = []

    def open_one(port: int) -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT))
        return opened[-1]

    yield open_one
    for sock in opened:
        sock.close()


@pytest.fixture
def gcs(tmp_path: Path) -> Iterator[Callable[..., GcsServer]]:
    """``gcs(**limits)``: a started ``GcsServer`` over ``tmp_path`` with an empty bucket ``b``."""
    started: list[GcsServer] = []

    def start(**limits: Any) -> GcsServer:
        os.makedirs(tmp_path / "b", exist_ok=True)
        started.append(GcsServer(BucketDir(tmp_path), **limits))
        started[-1].start()
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _gcs_error(reply: Reply) -> dict[str, Any]:
    error: dict[str, Any] = reply.json()["error"]  # type: ignore[assignment]
    assert error["code"] == reply.status and error["errors"][0]["domain"] == "global"
    return error


@pytest.mark.parametrize("raw,status", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_framing_is_refused_and_the_request_after_it_never_runs(
    gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket], raw: bytes, status: int
) -> None:
    sock = connect(gcs().port)
    # to a path that reads its body (the front reads a body only when its answer needs it)
    sock.sendall(raw.replace(b"POST /v1/images:annotate ", b"POST /storage/v1/b ") + SMUGGLED)
    reader = _Reader(sock)
    reply = reader.reply()
    assert (reply.status, reply.header("connection")) == (status, "close"), reply.body
    _gcs_error(reply)
    assert reader.closed()  # and the smuggled request after it got no answer


def test_chunked_repeated_lengths_and_pipelined_requests_keep_the_connection(
    gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket]
) -> None:
    bucket = b'{"name": "pipelined"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (bucket[:5], bucket[5:])) + b"0\r\nX-T: 1\r\n\r\n"
    raw = b"POST /storage/v1/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    raw += UPLOAD.replace(b"/b/b/", b"/b/pipelined/") % b"n" + b"Content-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello"
    raw += b"\r\nGET /download/storage/v1/b/pipelined/o/n?alt=media HTTP/1.1\r\nHost: x\r\n\r\n"  # a blank line first
    sock = connect(gcs().port)
    sock.sendall(raw)
    reader = _Reader(sock)
    replies = [reader.reply() for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert replies[2].body == b"hello"
    assert all(r.header("connection") is None for r in replies)  # kept alive


def test_http_1_0_is_served_and_closed(gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket]) -> None:
    sock = connect(gcs().port)
    sock.sendall(b"GET /storage/v1/b HTTP/1.0\r\n\r\n")
    reader = _Reader(sock)
    reply = reader.reply()
    assert (reply.status, reply.header("connection")) == (200, "close")
    assert reader.closed()


def test_100_continue_goes_out_only_when_the_body_is_read(
    gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket]
) -> None:
    server = gcs()
    sock = connect(server.port)
    sock.sendall(UPLOAD % b"c" + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    reader = _Reader(sock)
    assert reader.reply().status == 100
    sock.sendall(b"hello")
    assert reader.reply().status == 200
    refused = connect(server.port)  # no such bucket: answered before the body is asked for
    refused.sendall(UPLOAD.replace(b"/b/b/", b"/b/none/") % b"c" + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    reader = _Reader(refused)
    reply = reader.reply()
    assert (reply.status, reply.header("connection")) == (404, "close")  # the body never sent: nothing to skip
    assert reader.closed()


def test_a_head_or_a_body_that_stalls_is_408_in_cloud_storages_words(
    gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket]
) -> None:
    server = gcs(request_timeout=0.5)
    for raw, message in (
        (b"GET /storage/v1/b HTTP/1.1\r\nHost: x\r\n", "The request did not arrive in time."),
        (UPLOAD % b"s" + b"Content-Length: 10\r\n\r\nabc", "The request body did not arrive in time."),
    ):
        sock = connect(server.port)
        sock.sendall(raw)  # and never the rest
        start = time.monotonic()
        reader = _Reader(sock)
        reply = reader.reply()
        assert (reply.status, reply.header("connection"), _gcs_error(reply)["message"]) == (408, "close", message)
        assert reader.closed() and time.monotonic() - start < 2.0
    assert not (server.objects.root / "b" / "s").exists()


def test_a_chunked_body_past_the_cap_is_413_while_it_is_read(
    gcs: Callable[..., GcsServer], connect: Callable[[int], socket.socket]
) -> None:
    sock = connect(gcs(max_body=1000).port)
    chunks = b"".join(b"64\r\n%s\r\n" % (b" " * 100) for _ in range(12))  # 1200 bytes in chunks of 100
    sock.sendall(b"POST /storage/v1/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    reader = _Reader(sock)
    reply = reader.reply()
    assert (reply.status, reply.header("connection")) == (413, "close")
    assert _gcs_error(reply)["errors"][0]["reason"] == "requestTooLarge"
    assert reader.closed()


# -- what each front sets for itself --------------------------------------------------------------------


@pytest.fixture
def fronts(
    gcs: Callable[..., GcsServer], new_service: Callable[..., EmulatorService]
) -> Iterator[Callable[..., tuple[int, bytes]]]:
    """``fronts(kind, **limits)``: the port of a started front and a POST head to it that takes a body."""
    rests: list[RestServer] = []

    def start(kind: str, **limits: Any) -> tuple[int, bytes]:
        if kind == "gcs":
            return gcs(**limits).port, UPLOAD % b"t"
        rests.append(RestServer(new_service(), **limits))
        rests[-1].start()
        return int(rests[-1].url.rsplit(":", 1)[1]), b"POST /v1/images:annotate HTTP/1.1\r\nHost: x\r\n"

    yield start
    for server in rests:
        server.stop()


@pytest.mark.parametrize("kind", ["rest", "gcs"])
def test_over_the_connection_cap_a_sent_request_still_reads_its_503(
    fronts: Callable[..., tuple[int, bytes]], connect: Callable[[int], socket.socket], kind: str
) -> None:
    port, post = fronts(kind, max_connections=1)
    held = connect(port)
    held.sendall(b"GET /v1/operations/x HTTP/1.1\r\nHost: x\r\n\r\n")
    _Reader(held).reply()  # served: the one slot is taken
    extra = connect(port)
    extra.sendall(post + b"Content-Length: 2000\r\n\r\n" + b" " * 2000)  # unread by the server: no reset first
    reader = _Reader(extra)
    reply = reader.reply()
    assert (reply.status, reply.header("retry-after"), reply.header("connection")) == (503, "1", "close")
    error: dict[str, Any] = reply.json()["error"]  # type: ignore[assignment]
    if kind == "rest":
        assert error == {"code": 503, "message": "too many connections", "status": "UNAVAILABLE"}
    else:
        assert _gcs_error(reply)["errors"][0]["reason"] == "backendError"
    assert reader.closed()


def _trickle(sock: socket.socket, size: int, every: float) -> float:
    """Send ``size`` spaces one at a time, ``every`` seconds apart, until the server answers; the seconds
    until its answer is in."""
    start = time.monotonic()
    for _ in range(size):
        if select.select([sock], [], [], every)[0]:
            break
        sock.sendall(b" ")
    assert select.select([sock], [], [], IO_TIMEOUT)[0]
    return time.monotonic() - start


@pytest.mark.parametrize("kind,status", [("rest", 408), ("gcs", 200)])
def test_a_trickling_body_is_bounded_whole_on_rest_and_per_wait_on_gcs(
    fronts: Callable[..., tuple[int, bytes]], connect: Callable[[int], socket.socket], kind: str, status: int
) -> None:
    port, post = fronts(kind, request_timeout=0.4)
    sock = connect(port)
    sock.sendall(post + b"Content-Length: 20\r\n\r\n")
    took = _trickle(sock, 20, 0.05)  # a byte each 0.05 s: 1 s for all, never 0.4 s without one
    assert _Reader(sock).reply().status == status
    assert (took < 0.9) if kind == "rest" else (took > 0.4)
