"""The benchmark's loopback server: canned answers over gRPC and HTTP/1.1, no work, in its own process.

Run by ``bench.py`` as ``python -m benchlib.server`` (from ``scripts/``); prints one JSON line
(``{"grpc_port": ..., "http_port": ...}``) on stdout once both listeners are up, then serves
until its standard input closes (the parent went away) or it gets SIGTERM/SIGINT. HTTP runs on
an asyncio event loop in the main thread, gRPC on grpcio's own threads:

* gRPC (grpcio's thread-pool server, generic handlers with identity (de)serializers, so
  requests arrive and answers leave as pre-serialized bytes): ``ImageAnnotator/AsyncBatchAnnotateFiles``,
  ``/AsyncBatchAnnotateImages``, ``/BatchAnnotateImages`` and ``Operations/GetOperation``;
  ``Operations/WaitOperation`` answers UNIMPLEMENTED so that clients fall back to polling.
* HTTP/1.1 keep-alive on a raw ``asyncio.Protocol`` (TCP_NODELAY, headers and body written in
  one send): ``POST /v1/files:asyncBatchAnnotate``, ``POST /v1/images:asyncBatchAnnotate``,
  ``POST /v1/images:annotate``, ``GET /v1/operations/{id}``, with canned JSON.

Markers in the request select special answers: ``fulltext`` in an annotate request returns the
full-text ``BatchAnnotateImagesResponse`` (~2 MB of protobuf, ``--fulltext-bytes``); an output
URI containing ``/lag/<T>/`` in a submit returns an operation named
``operations/lag-<done_at_ns>-<seq>`` that GetOperation reports done only from ``done_at`` (T
seconds after the submit) on; polls per such operation are counted.

Control routes on the HTTP port (not counted as requests): ``GET /_bench/fixtures`` (the canned
request bytes and bodies, base64, for the bare-floor clients), ``POST /_bench/reset`` and
``GET /_bench/stats`` (requests served and the CPU time, ``time.process_time``, this process
spent since the reset), ``GET /_bench/polls`` (GetOperation/WaitOperation counts per lag
operation, and the time of each GetOperation, ``time.time_ns``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, json_format

from vision_grpc import types

__all__ = ["Fixtures", "main"]

OPERATION_NAME = "operations/bench-op"
_LAG_MARK = b"/lag/"
_LAG_PREFIX = "operations/lag-"
_FULLTEXT_MARK = b"fulltext"


def _json(message: Any) -> bytes:
    return json.dumps(
        json_format.MessageToDict(message, descriptor_pool=types.JSON_TYPES), separators=(",", ":")
    ).encode()


def _operation(name: str, *, created_ns: int, done: bool) -> operations_pb2.Operation:
    state = types.OperationMetadata.State.DONE if done else types.OperationMetadata.State.RUNNING
    meta = types.OperationMetadata(state=state)
    # Timestamp fields of our messages are our descriptor pool's class: set them in place.
    meta.create_time.FromNanoseconds(created_ns)
    meta.update_time.FromNanoseconds(time.time_ns())
    operation = operations_pb2.Operation(name=name, done=done)
    operation.metadata.Pack(meta)
    if done:
        response = types.AsyncBatchAnnotateFilesResponse(
            responses=[
                types.AsyncAnnotateFileResponse(
                    output_config=types.OutputConfig(
                        gcs_destination=types.GcsDestination(uri="gs://bench-out/ocr/doc/"), batch_size=20
                    )
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(response)
        operation.response.CopyFrom(packed)
    return operation


def _fulltext_response(target_bytes: int) -> tuple[bytes, bytes]:
    """A dense full-text BatchAnnotateImagesResponse of about 2 MB (pages, blocks, words, symbols).

    One block (8 paragraphs of 12 words) is built and repeated, as bytes and as JSON, so that
    the server starts quickly; returns (protobuf bytes, JSON bytes).
    """
    tm = types.TextAnnotation
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    response = types.BatchAnnotateImagesResponse()
    annotation = response.responses.add().full_text_annotation
    page = annotation.pages.add(width=2480, height=3508, confidence=0.98)
    page.property.detected_languages.add(language_code="en", confidence=0.99)
    block = page.blocks.add(block_type=1, confidence=0.97)  # Block.BlockType.TEXT
    text: list[str] = []
    for i in range(96):
        if i % 12 == 0:
            paragraph = block.paragraphs.add(confidence=0.96)
        token = words[i % len(words)]
        x, y = (i * 37) % 2400, (i * 53) % 3400
        word = paragraph.words.add(confidence=0.95)
        for v in ((x, y), (x + 60, y), (x + 60, y + 20), (x, y + 20)):
            word.bounding_box.vertices.add(x=v[0], y=v[1])
        for j, char in enumerate(token):
            symbol = word.symbols.add(text=char, confidence=0.94)
            for v in ((x + 8 * j, y), (x + 8 * j + 7, y), (x + 8 * j + 7, y + 20), (x + 8 * j, y + 20)):
                symbol.bounding_box.vertices.add(x=v[0], y=v[1])
        symbol.property.detected_break.type = tm.DetectedBreak.BreakType.SPACE
        text.append(token)
    copies = max(1, -(-target_bytes // block.ByteSize()))
    as_dict = json_format.MessageToDict(response, descriptor_pool=types.JSON_TYPES)
    json_annotation = as_dict["responses"][0]["fullTextAnnotation"]
    json_annotation["pages"][0]["blocks"] *= copies
    for _ in range(copies - 1):
        page.blocks.add().CopyFrom(block)
    annotation.text = json_annotation["text"] = " ".join(text * copies)
    return response.SerializeToString(), json.dumps(as_dict, separators=(",", ":")).encode()


class Fixtures:
    """Every canned answer (bytes and JSON) and the requests the bare floors send."""

    def __init__(self, fulltext_bytes: int = 2_000_000) -> None:
        created = time.time_ns()
        running = _operation(OPERATION_NAME, created_ns=created, done=False)
        small = types.BatchAnnotateImagesResponse()
        item = small.responses.add()
        for k, word in enumerate(("INVOICE", "No.", "4711")):
            text = item.text_annotations.add(description=word, locale="en")
            for v in ((10 * k, 0), (10 * k + 9, 0), (10 * k + 9, 12), (10 * k, 12)):
                text.bounding_poly.vertices.add(x=v[0], y=v[1])
        fulltext_pb, fulltext_json = _fulltext_response(fulltext_bytes)
        self.operation_pb: bytes = running.SerializeToString()
        self.operation_json: bytes = _json(running)
        self.small_pb = small.SerializeToString()
        self.small_json = _json(small)
        self.fulltext_pb = fulltext_pb
        self.fulltext_json = fulltext_json
        submit = submit_request()
        annotate = fulltext_request()
        get = operations_pb2.GetOperationRequest(name=OPERATION_NAME)
        self.requests: dict[str, bytes] = {
            "submit_pb": submit.SerializeToString(),
            "submit_json": _json(submit),
            "fulltext_pb": annotate.SerializeToString(),
            "fulltext_json": _json(annotate),
            "get_pb": get.SerializeToString(),
        }

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: base64.b64encode(v).decode() for k, v in self.requests.items()}
        out["operation_name"] = OPERATION_NAME
        out["sizes"] = {
            "operation_pb": len(self.operation_pb),
            "operation_json": len(self.operation_json),
            "fulltext_pb": len(self.fulltext_pb),
            "fulltext_json": len(self.fulltext_json),
            "submit_pb": len(self.requests["submit_pb"]),
            "submit_json": len(self.requests["submit_json"]),
        }
        return out


def submit_request(output_uri: str = "gs://bench-out/ocr/doc/") -> Any:
    """The realistic 1-file submit every client sends (ours builds the same with the builder)."""
    return types.async_files_request(
        "gs://bench-in/doc.pdf", output_uri=output_uri, features=["DOCUMENT_TEXT_DETECTION"], batch_size=20
    )


def fulltext_request() -> Any:
    return types.images_request(["gs://bench-in/fulltext.png"], features=["DOCUMENT_TEXT_DETECTION"])


class State:
    """Counters, CPU baseline and the lag operations' poll counts."""

    def __init__(self, fixtures: Fixtures) -> None:
        self.fixtures = fixtures
        self.requests: Counter[str] = Counter()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()
        self.polls: dict[str, dict[str, Any]] = {}
        self.seq = itertools.count()
        self.lock = threading.Lock()  # gRPC handlers run on pool threads, HTTP on the event loop

    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def count_wait(self, name: str) -> None:
        with self.lock:
            if name in self.polls:
                self.polls[name]["wait"] += 1

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            requests = dict(self.requests)
        return {
            "cpu_s": time.process_time() - self.cpu0,
            "wall_s": time.perf_counter() - self.wall0,
            "requests": requests,
            "pid": os.getpid(),
        }

    # -- answers shared by both protocols ------------------------------------------------------

    def submit(self, body: bytes, as_json: bool) -> bytes:
        at = body.find(_LAG_MARK)
        if at < 0:
            return self.fixtures.operation_json if as_json else self.fixtures.operation_pb
        start = at + len(_LAG_MARK)
        lag = float(body[start : body.index(b"/", start)].decode())
        now = time.time_ns()
        name = f"{_LAG_PREFIX}{now + int(lag * 1e9)}-{next(self.seq)}"
        with self.lock:
            self.polls[name] = {"get": 0, "wait": 0, "created_ns": now, "times": []}
        operation = _operation(name, created_ns=now, done=False)
        return _json(operation) if as_json else operation.SerializeToString()

    def get(self, name: str | None, as_json: bool) -> bytes:
        if name is None or not name.startswith(_LAG_PREFIX):
            return self.fixtures.operation_json if as_json else self.fixtures.operation_pb
        with self.lock:
            record = self.polls.setdefault(name, {"get": 0, "wait": 0, "created_ns": 0, "times": []})
            record["get"] += 1
            record["times"].append(time.time_ns())
        done_at = int(name[len(_LAG_PREFIX) :].split("-")[0])
        operation = _operation(name, created_ns=record["created_ns"] or done_at, done=time.time_ns() >= done_at)
        return _json(operation) if as_json else operation.SerializeToString()

    def annotate(self, body: bytes, as_json: bool) -> bytes:
        if _FULLTEXT_MARK in body:
            return self.fixtures.fulltext_json if as_json else self.fixtures.fulltext_pb
        return self.fixtures.small_json if as_json else self.fixtures.small_pb


# -- gRPC ----------------------------------------------------------------------------------------


def _grpc_handlers(state: State) -> list[grpc.GenericRpcHandler]:
    def counted(route: str, answer: Callable[[bytes], bytes]) -> Any:
        def handler(request: bytes, context: grpc.ServicerContext) -> bytes:
            state.count(route)
            return answer(request)

        return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=None, response_serializer=None)

    def get_operation(request: bytes) -> bytes:
        if b"lag-" not in request:
            return state.fixtures.operation_pb
        name: str = operations_pb2.GetOperationRequest.FromString(request).name
        return state.get(name, False)

    def wait_operation(request: bytes, context: grpc.ServicerContext) -> bytes:
        state.count("grpc WaitOperation")
        state.count_wait(operations_pb2.WaitOperationRequest.FromString(request).name)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "WaitOperation is not implemented here")
        raise AssertionError("unreachable")  # abort raises

    annotator = grpc.method_handlers_generic_handler(
        "google.cloud.vision.v1.ImageAnnotator",
        {
            "AsyncBatchAnnotateFiles": counted("grpc AsyncBatchAnnotateFiles", lambda b: state.submit(b, False)),
            "AsyncBatchAnnotateImages": counted("grpc AsyncBatchAnnotateImages", lambda b: state.submit(b, False)),
            "BatchAnnotateImages": counted("grpc BatchAnnotateImages", lambda b: state.annotate(b, False)),
        },
    )
    operations = grpc.method_handlers_generic_handler(
        "google.longrunning.Operations",
        {
            "GetOperation": counted("grpc GetOperation", get_operation),
            "WaitOperation": grpc.unary_unary_rpc_method_handler(
                wait_operation, request_deserializer=None, response_serializer=None
            ),
        },
    )
    return [annotator, operations]


# -- HTTP/1.1 ------------------------------------------------------------------------------------

_REASONS = {200: "OK", 404: "Not Found", 400: "Bad Request"}


class HttpProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server: Content-Length bodies, one write per response."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            close = False
            for line in head[1:]:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "content-length":
                    length = int(value.strip())
                elif key == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target, _ = head[0].split(" ", 2)
            status, payload = self.route(method, target, body)
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                % (
                    status,
                    _REASONS.get(status, "OK").encode(),
                    len(payload),
                    b"Connection: close\r\n" if close else b"",
                    payload,
                )
            )
            if close:
                self.transport.close()
                return

    def route(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        state = self.state
        path = target.partition("?")[0]
        if path.startswith("/_bench/"):
            return self.control(path)
        if method == "POST" and path.endswith("files:asyncBatchAnnotate"):
            state.count("http POST files:asyncBatchAnnotate")
            return 200, state.submit(body, True)
        if method == "POST" and path.endswith("images:asyncBatchAnnotate"):
            state.count("http POST images:asyncBatchAnnotate")
            return 200, state.submit(body, True)
        if method == "POST" and path.endswith("images:annotate"):
            state.count("http POST images:annotate")
            return 200, state.annotate(body, True)
        if method == "GET" and "/operations/" in path:
            state.count("http GET operations")
            name = path[path.index("operations/") :]
            return 200, state.get(name, True)
        state.count("http 404")
        return 404, b'{"error":{"code":404,"message":"no such route","status":"NOT_FOUND"}}'

    def control(self, path: str) -> tuple[int, bytes]:
        state = self.state
        if path == "/_bench/reset":
            state.reset()
            return 200, b"{}"
        if path == "/_bench/stats":
            return 200, json.dumps(state.stats()).encode()
        if path == "/_bench/fixtures":
            return 200, json.dumps(state.fixtures.describe()).encode()
        if path == "/_bench/polls":
            with state.lock:  # gRPC handler threads append to it
                return 200, json.dumps(state.polls).encode()
        return 404, b"{}"


# -- main ----------------------------------------------------------------------------------------


async def serve(stop: asyncio.Event, fulltext_bytes: int) -> None:
    state = State(Fixtures(fulltext_bytes))
    # grpcio's thread-pool server: less CPU per call than grpc.aio's and more throughput at 64
    # calls in flight, so the server stays further from being the bottleneck.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-grpc"),
        options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)],
    )
    server.add_generic_rpc_handlers(_grpc_handlers(state))
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    loop = asyncio.get_running_loop()
    http = await loop.create_server(lambda: HttpProtocol(state), "127.0.0.1", 0, backlog=512)
    http_port = http.sockets[0].getsockname()[1]
    try:
        sys.stdout.write(json.dumps({"grpc_port": grpc_port, "http_port": http_port, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        http.close()
        server.stop(grace=0.2).wait(2)


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's loopback server")
    parser.add_argument(
        "--fulltext-bytes", type=int, default=2_000_000, help="approximate protobuf size of the full-text response"
    )
    fulltext_bytes = parser.parse_args().fulltext_bytes
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:  # the parent closes our stdin (or dies): shut down
        try:
            while os.read(0, 4096):  # raw fd: no buffered-reader lock held at interpreter exit
                pass
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(serve(stop, fulltext_bytes))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
