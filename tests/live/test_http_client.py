"""``transports._http_client``, the REST transport's HTTP/1.1 client, against scripted servers on 127.0.0.1.

Each server answers requests with the raw bytes a test scripts (framing the client must handle: lengths,
chunks, read-to-close, 1xx, compression; and broken framing it must refuse), over real sockets, plaintext
and TLS. It counts connections, so reuse and non-reuse are observed, not assumed. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from google.rpc import code_pb2

from vision_grpc import AsyncClient, Client, errors
from vision_grpc.transports import _http_client

LIMIT = 1 << 20


@dataclass(frozen=True)
class Script:
    raw: bytes
    after: str = "keep"  # keep the connection | close it | stall (say nothing more, keep it open)


class ScriptedServer:
    """Answers each request with the next ``Script``; records requests and counts connections."""

    def __init__(self, scripts: list[Script], tls: ssl.SSLContext | None = None) -> None:
        self.scripts = deque(scripts)
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def __enter__(self) -> ScriptedServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        for sock in self._sockets:  # unblocks the threads waiting for a next request
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self._tls is not None:
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                self._sockets.append(conn)  # the wrapped socket now owns the descriptor
            with self._lock:
                self.connections += 1
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                script = (
                    self.scripts.popleft()
                    if self.scripts
                    else Script(b"HTTP/1.1 599 No Script\r\ncontent-length: 0\r\n\r\n")
                )
                conn.sendall(script.raw)
                if script.after == "close":
                    return
                if script.after == "stall":
                    self._stop.wait(10)
                    return
        except OSError:
            return
        finally:
            conn.close()


def ok(body: bytes = b'{"ok": true}', *extra: str) -> bytes:
    headers = "".join(f"{line}\r\n" for line in extra)
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode()
        + body
    )


_POOLS: list[_http_client.ConnectionPool] = []


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    while _POOLS:
        _POOLS.pop().close()


def pool(
    server: ScriptedServer, *, tls: ssl.SSLContext | None = None, maxsize: int = 4, max_body: int = LIMIT
) -> _http_client.ConnectionPool:
    made = _http_client.ConnectionPool("127.0.0.1", server.port, tls=tls, maxsize=maxsize, max_body=max_body)
    _POOLS.append(made)  # closed after the test (an idle connection left open is a ResourceWarning)
    return made


def get(
    p: _http_client.ConnectionPool, timeout: float | None = 5.0, headers: dict[str, str] | None = None
) -> _http_client.Response:
    return p.request("GET", "/v1/operations/x", headers or {}, None, timeout=timeout, connect_timeout=3.0)


def test_a_post_goes_out_as_one_well_formed_request_and_the_connection_is_reused() -> None:
    with ScriptedServer([Script(ok()), Script(ok(b"{}"))]) as server:
        port = server.port
        p = pool(server)
        body = b'{"requests": []}'
        first = p.request(
            "POST",
            "/v1/files:asyncBatchAnnotate?x=1",
            {"content-type": "application/json"},
            body,
            timeout=5,
            connect_timeout=3,
        )
        second = get(p)
        p.close()
    assert (first.status, first.body, first.headers["content-type"]) == (200, b'{"ok": true}', "application/json")
    assert second.body == b"{}"
    assert server.connections == 1
    assert (
        server.requests[0]
        == (
            f"POST /v1/files:asyncBatchAnnotate?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    assert (
        server.requests[1].startswith(b"GET /v1/operations/x HTTP/1.1\r\n")
        and b"content-length" not in server.requests[1]
    )


def test_chunked_bodies_with_extensions_and_trailers_are_joined() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n"
    )
    with ScriptedServer([Script(chunked), Script(ok())]) as server:
        p = pool(server)
        assert get(p).body == b"hello 0123456789"
        assert get(p).status == 200
    assert server.connections == 1  # a chunked answer leaves the connection reusable


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"to": "close"}', id="read-to-close"),
        pytest.param(ok(b'{"to": "close"}', "connection: close"), id="connection-close"),
        pytest.param(b'HTTP/1.0 200 OK\r\ncontent-length: 15\r\n\r\n{"to": "close"}', id="http-1.0"),
        pytest.param(ok(b'{"to": "close"}') + b"HTTP/1.1 200 OK\r\n", id="bytes-after-the-answer"),
    ],
)
def test_an_answer_that_ends_the_connection_is_read_and_the_next_call_connects_again(raw: bytes) -> None:
    with ScriptedServer([Script(raw, "close"), Script(ok())]) as server:
        p = pool(server)
        assert get(p).body == b'{"to": "close"}'
        assert get(p).body == b'{"ok": true}'
    assert server.connections == 2


def test_an_http_1_0_keep_alive_answer_keeps_the_connection() -> None:
    with ScriptedServer(
        [Script(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n{}"), Script(ok())]
    ) as server:
        p = pool(server)
        get(p), get(p)
    assert server.connections == 1


def test_informational_answers_before_the_final_one_are_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + ok()
    with ScriptedServer([Script(raw)]) as server:
        response = get(pool(server))
    assert (response.status, response.body) == (200, b'{"ok": true}')
    assert "link" not in response.headers


def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    with ScriptedServer([Script(ok(b"{}", "X-Thing: a", "x-thing: b", "Content-Length: 2"))]) as server:
        response = get(pool(server))
    assert response.headers["x-thing"] == "a, b"
    assert response.body == b"{}"  # an identical repeated content-length is allowed


def test_gzip_and_deflate_bodies_are_decoded() -> None:
    text = b'{"name": "operations/z"}' * 100
    import zlib

    answers = [
        Script(ok(gzip.compress(text), "content-encoding: gzip")),
        Script(ok(zlib.compress(text), "content-encoding: deflate")),
    ]
    with ScriptedServer(answers) as server:
        p = pool(server)
        assert get(p).body == text
        assert get(p).body == text


TOO_LARGE = [
    pytest.param(f"HTTP/1.1 200 OK\r\ncontent-length: {LIMIT + 1}\r\n\r\n".encode(), id="content-length"),
    pytest.param(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + (b"80000\r\n" + b"a" * 0x80000 + b"\r\n") * 3
        + b"0\r\n\r\n",
        id="chunked",
    ),
    pytest.param(ok(gzip.compress(b"a" * (LIMIT + 1)), "content-encoding: gzip"), id="gzip-bomb"),
    pytest.param(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (LIMIT + 70_000), id="read-to-close"),
]
BROKEN_FRAMING = [
    pytest.param(b"HTTP/1.1 abc Nope\r\n\r\n", id="status-line"),
    pytest.param(b"HTTP/2 200 OK\r\n\r\n", id="version"),
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", id="not-http"),
    pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="header-line"),
    pytest.param(b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", id="folded-header"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n{}", id="two-lengths"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", id="negative-length"),
    pytest.param(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", id="chunk-size"),
    pytest.param(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", id="chunk-end"),
    pytest.param(ok(b"notgzip", "content-encoding: gzip"), id="bad-gzip"),
    pytest.param(ok(b"{}", "content-encoding: br"), id="unknown-coding"),
    pytest.param(b"HTTP/1.1 200 OK\r\n" + b"x-long: " + b"a" * 70_000 + b"\r\n\r\n", id="head-too-long"),
]
CUT_SHORT = [
    pytest.param(b"", id="closed-at-once"),
    pytest.param(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"name":', id="body-cut-short"),
    pytest.param(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc", id="chunk-cut-short"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-", id="head-cut-short"),
]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        # A body over the limit is refused whatever its framing (and not buffered past it).
        *(pytest.param(*case.values, _http_client.ResponseTooLarge, id=f"too-large-{case.id}") for case in TOO_LARGE),
        # Broken framing is a bad response, never a guess.
        *(pytest.param(*case.values, _http_client.BadResponse, id=case.id) for case in BROKEN_FRAMING),
        # A connection closed mid-answer is lost, not a short body.
        *(pytest.param(*case.values, _http_client.ConnectionLost, id=case.id) for case in CUT_SHORT),
    ],
)
def test_a_broken_answer_raises_its_own_error(raw: bytes, error: type[Exception]) -> None:
    with ScriptedServer([Script(raw, "close")]) as server:
        with pytest.raises(error):
            get(pool(server))


def test_an_idle_connection_the_server_closed_is_replaced_without_an_error() -> None:
    with ScriptedServer([Script(ok(), "close"), Script(ok(b"{}"))]) as server:
        p = pool(server)
        get(p)  # the server closes after answering, though the answer allowed keep-alive
        time.sleep(0.05)  # the FIN reaches the client's idle socket
        assert get(p).body == b"{}"
    assert server.connections == 2


def test_a_silent_server_is_a_response_timeout_within_the_call_timeout() -> None:
    with ScriptedServer([Script(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{", "stall")]) as server:
        started = time.monotonic()
        with pytest.raises(_http_client.ResponseTimeout):
            get(pool(server), timeout=0.3)
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0  # the whole call is bounded, not each read


def test_a_call_beyond_maxsize_waits_for_a_free_connection_then_times_out() -> None:
    with ScriptedServer([Script(b"", "stall")]) as server:
        p = pool(server, maxsize=1)
        outcome: list[BaseException] = []

        def hold_the_only_connection() -> None:
            try:
                get(p, 2.0)
            except BaseException as exc:  # noqa: BLE001 - checked below, in the test's thread
                outcome.append(exc)

        busy = threading.Thread(target=hold_the_only_connection, daemon=True)
        busy.start()
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(_http_client.PoolTimeout):
            get(p, timeout=0.2)
    busy.join(timeout=5)  # the server's exit dropped the stalled connection
    assert not busy.is_alive() and len(outcome) == 1 and isinstance(outcome[0], _http_client.ConnectionLost)
    assert server.connections == 1


def test_a_refused_port_is_connect_failed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    p = _http_client.ConnectionPool("127.0.0.1", port, tls=None, maxsize=1, max_body=LIMIT)
    with pytest.raises(_http_client.ConnectFailed) as caught:
        p.request("GET", "/", {}, None, timeout=5, connect_timeout=3)
    assert not caught.value.tls


@pytest.mark.parametrize(
    "headers, target",
    [
        ({"authorization": "Bearer secret\r\nx-injected: 1"}, "/v1/x"),
        ({"x-a\nb": "v"}, "/v1/x"),
        ({"x-nul": "a\x00b"}, "/v1/x"),
        ({"x bad name": "v"}, "/v1/x"),
        ({"x-bad:name": "v"}, "/v1/x"),
        ({}, "/v1/x HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /"),
    ],
)
def test_a_line_break_in_a_header_or_target_is_refused_before_anything_is_sent(
    headers: dict[str, str], target: str
) -> None:
    with ScriptedServer([]) as server:
        with pytest.raises(ValueError) as caught:
            pool(server).request("GET", target, headers, None, timeout=5, connect_timeout=3)
    assert "secret" not in str(caught.value)
    assert server.connections == 0


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    yield cert_path, key_path


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_https_with_a_trusted_certificate_works_and_reuses_its_connection(certificate: tuple[Path, Path]) -> None:
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    with ScriptedServer([Script(ok()), Script(ok(b"{}"))], tls=server_tls(certificate)) as server:
        p = pool(server, tls=client_tls)
        assert get(p).body == b'{"ok": true}'
        assert get(p).body == b"{}"
    assert server.connections == 1


def test_an_untrusted_certificate_is_a_tls_connect_failure(certificate: tuple[Path, Path]) -> None:
    with ScriptedServer([Script(ok())], tls=server_tls(certificate)) as server:
        with pytest.raises(_http_client.ConnectFailed) as caught:
            get(pool(server, tls=ssl.create_default_context()))
    assert caught.value.tls
    assert server.requests == []


def test_the_rest_client_trusts_ssl_cert_file_and_maps_errors_to_the_error_tree(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``Client``: HTTPS to a local server whose certificate SSL_CERT_FILE names (as the
    system store would hold it), and an oversized answer as RESOURCE_EXHAUSTED, nothing buffered."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setattr("vision_grpc.transports.rest.MAX_RESPONSE_BYTES", 1000)
    operation = b'{"name": "operations/tls-1"}'
    answers = [Script(ok(operation)), Script(f"HTTP/1.1 200 OK\r\ncontent-length: {10**9}\r\n\r\n".encode(), "close")]
    with ScriptedServer(answers, tls=server_tls(certificate)) as server:
        with Client(
            endpoint=f"localhost:{server.port}", transport="rest", plaintext=False, anonymous=True, timeout=10
        ) as client:
            assert client.get_operation("operations/tls-1").name == "operations/tls-1"
            with pytest.raises(errors.ApiError) as caught:
                client.get_operation("operations/tls-2")
    assert caught.value.code == code_pb2.RESOURCE_EXHAUSTED
    assert "too large" in str(caught.value)


@pytest.mark.parametrize("framing", ["content-length", "chunked", "gzip"])
def test_the_asyncio_rest_client_holds_answers_to_the_same_cap(framing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's transport: RESOURCE_EXHAUSTED for an answer over the cap, however it is framed."""
    monkeypatch.setattr("vision_grpc.transports.rest_aio.MAX_RESPONSE_BYTES", 1000)
    big = b'{"name": "operations/' + b"a" * 5000 + b'"}'
    raw = {
        "content-length": ok(big),
        "chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big),
        "gzip": ok(gzip.compress(big), "content-encoding: gzip"),
    }[framing]

    async def main(port: int) -> None:
        async with AsyncClient(endpoint=f"127.0.0.1:{port}", transport="rest", timeout=10) as client:
            with pytest.raises(errors.ApiError) as caught:
                await client.get_operation("operations/x")
        assert caught.value.code == code_pb2.RESOURCE_EXHAUSTED

    with ScriptedServer([Script(raw, "close")]) as server:
        asyncio.run(main(server.port))


def test_a_head_request_reads_no_body_whatever_content_length_says() -> None:
    with ScriptedServer([Script(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"), Script(ok(b"{}"))]) as server:
        p = pool(server)
        assert p.request("HEAD", "/v1/x", {}, None, timeout=5, connect_timeout=3).body == b""
        assert get(p).body == b"{}"
    assert server.connections == 1
