"""``Client(transport="rest")`` and ``AsyncClient(transport="rest")`` against a hostile server on 127.0.0.1.

A gateway's own JSON, pages of HTML, nesting far past the recursion limit, numbers that overflow, invalid
UTF-8, broken framing (a body cut short, bad gzip, a garbled status line, a connection closed at once):
each call ends in an ``ApiError`` carrying the answer's HTTP status, or a ``TransportError``, with a
short printable message that holds no credential even when the page echoes the request's headers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.hostile_server import Answer, HostileServer
from vision_grpc import AsyncClient, Client, RetryPolicy, errors, types

DEEP = b"[" * 100_000 + b"]" * 100_000
META = "type.googleapis.com/google.cloud.vision.v1.OperationMetadata"
API_KEY = "AIzaSyD" + "k" * 32
ANSWERS = [
    Answer(403, body=b'{"error": {"code": "Forbidden"}}', label="gateway-json"),
    Answer(403, body=b'{"error": {"code": 1e999, "message": 7}}', label="code-overflows"),
    Answer(429, body=b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": 5}}', label="details-5"),
    Answer(502, "text/html", b"<html><body><h1>502 Bad Gateway</h1>\x1b[2J</body></html>", label="html-502"),
    Answer(500, body=b'{"error": ' + DEEP + b"}", label="deep-error"),
    Answer(200, body=DEEP, label="deep-200"),
    Answer(200, body=b'{"name": "operations/1", "done": 1e999}', label="done-overflows"),
    Answer(
        200,
        body=b'{"name": "operations/1", "metadata": {"@type": "' + META.encode() + b'", "state": 1e999}}',
        label="state-overflows",
    ),
    Answer(200, body=b'{"name": "operations/1", "done": ' + b"9" * 5000 + b"}", label="5000-digits"),
    Answer(200, body=b'{"name": "operations/\xff\xfe"}', label="invalid-utf8"),
    Answer(200, "text/html", b"<html>Sign in to the hotel Wi-Fi</html>", label="captive-portal"),
    Answer(200, body=b'{"name": "operations/1", "done": true, "response": {"@type": 5}}', label="type-url-5"),
    Answer(
        raw=b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"name":',
        label="cut-short",
    ),
    Answer(
        raw=b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: 7\r\n\r\nnotgzip",
        label="bad-gzip",
    ),
    Answer(raw=b"HTTP/1.1 abc Nope\r\n\r\n", label="bad-status-line"),
    Answer(raw=b"", label="closed-at-once"),
]
NO_RETRY = RetryPolicy(max_attempts=1)


def check(error: BaseException, answer: Answer) -> None:
    """Typed; no key; and what our decoders say about a body (not the HTTP libraries' own texts about broken
    framing, which the transports pass on) is short and printable, with the answer's status."""
    assert isinstance(error, (errors.ApiError, errors.TransportError)), repr(error)
    text = str(error)
    assert API_KEY not in text, text
    if isinstance(error, errors.ApiError) and answer.raw is None:
        assert error.http_status == answer.status, text
        assert len(text) <= 1200 and text.isprintable(), text


def call_sync(endpoint: str, method: str) -> Any:
    with Client(endpoint=endpoint, transport="rest", retry=NO_RETRY, timeout=10, api_key=API_KEY) as client:
        if method == "get":
            return client.get_operation("operations/1")
        return client.async_batch_annotate_files(
            types.async_files_request("gs://b/in/doc.pdf", output_uri="gs://b/out/")
        )


def call_async(endpoint: str, method: str) -> Any:
    async def main() -> Any:
        async with AsyncClient(
            endpoint=endpoint, transport="rest", retry=NO_RETRY, timeout=10, api_key=API_KEY
        ) as client:
            if method == "get":
                return await client.get_operation("operations/1")
            request = types.async_files_request("gs://b/in/doc.pdf", output_uri="gs://b/out/")
            return await client.async_batch_annotate_files(request)

    return asyncio.run(main())


@pytest.mark.parametrize("answer", ANSWERS, ids=str)
@pytest.mark.parametrize("call", [call_sync, call_async], ids=["sync", "async"])
@pytest.mark.parametrize("method", ["get", "submit"])
def test_a_hostile_answer_is_a_typed_error(answer: Answer, call: Any, method: str) -> None:
    with HostileServer([answer]) as server:
        with pytest.raises(errors.VisionError) as caught:
            call(server.endpoint, method)
        assert server.served == 1
    check(caught.value, answer)


@pytest.mark.parametrize("call", [call_sync, call_async], ids=["sync", "async"])
def test_a_page_that_echoes_the_request_headers_leaks_no_key(call: Any) -> None:
    def echo(path: str) -> bytes:
        return json.dumps({"error": {"code": 403, "message": f"denied; you sent: {dict(server.seen[-1][2])}"}}).encode()

    with HostileServer([Answer(403, body=echo), Answer(403, "text/plain", echo)]) as server:
        for _ in range(2):
            with pytest.raises(errors.PermissionDenied) as caught:
                call(server.endpoint, "get")
            assert API_KEY in json.dumps(server.seen[-1][2])  # the key was sent, and echoed back
            assert "x-goog-api-key" in str(caught.value).lower()
            check(caught.value, Answer(403))
