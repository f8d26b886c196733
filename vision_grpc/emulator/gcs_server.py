"""The emulator's Cloud Storage front: the GCS JSON API over the emulator's storage directory.

With ``STORAGE_EMULATOR_HOST=http://HOST:PORT`` exported, google-cloud-storage (and ``GcsStorage``, and the
CLI) talks to it anonymously: create and get buckets, upload inputs, list and download the emulator's
output shards, delete. Objects are the files of the emulator's ``BucketDir`` (``gs://b/p`` is ``DIR/b/p``,
``_objects.ObjectStore``), the directory the emulator reads its inputs from and writes its outputs to, so
what one side writes the other sees at once, with nothing to index or copy.

Served (what google-cloud-storage sends for Google's samples; anything else gets ``501`` naming it):

- ``POST /storage/v1/b`` (create; ``409`` if it exists), ``GET /storage/v1/b`` (list),
  ``GET`` / ``DELETE /storage/v1/b/{bucket}`` (delete: ``409`` unless empty);
- ``GET /storage/v1/b/{bucket}/o``: ``prefix``, ``delimiter`` (rolled up into ``prefixes``),
  ``maxResults`` (at most 1000, items and prefixes together), ``pageToken``, ``startOffset``, ``endOffset``;
  a ``fields`` selection without ``crc32c``/``md5Hash`` spares hashing files not hashed before;
- ``GET /storage/v1/b/{bucket}/o/{name}`` (metadata; ``?alt=media`` the bytes), ``DELETE`` (``204``);
  ``GET /download/storage/v1/b/{bucket}/o/{name}?alt=media``: ``Range`` (``206``; ``416`` past the end),
  ``X-Goog-Hash: crc32c=...,md5=...`` and ``X-Goog-Generation`` on every download; ``generation=`` must be
  the live one (else ``404``); names may come ``%2F``-encoded or with raw slashes;
- ``POST /upload/storage/v1/b/{bucket}/o``: ``uploadType=multipart`` (JSON metadata and media, the
  client's choice up to 8 MiB), ``media`` (``?name=``), ``resumable`` (``200`` with a ``Location`` built
  from the request's ``Host``, then ``PUT`` chunks with ``Content-Range``: ``308`` with
  ``Range: bytes=0-N`` until the last, which answers the object; ``bytes */TOTAL`` asks where it stands;
  ``DELETE`` cancels, ``499``). Hashes the client declares (``crc32c``/``md5Hash`` in the metadata,
  ``X-Goog-Hash`` on the last chunk) are checked: a mismatch is ``400`` and nothing is stored.
- ``ifGenerationMatch``, ``ifGenerationNotMatch``, ``ifMetagenerationMatch``, ``ifMetagenerationNotMatch``
  on uploads, reads and deletes (``412``).

Errors are Cloud Storage's JSON: ``{"error": {"code": 404, "message": "...", "errors": [{"message",
"domain": "global", "reason": "notFound"}]}}``. Object resources carry ``mediaLink`` built from the
request's ``Host`` (so it is right for whoever asked, and after a restart on another port).

The connections are ``_http_server``'s, as the REST front's: standard library sockets and threads, strict
HTTP/1.1 framing (``_http1``, RFC 9112), keep-alive, and the same bounds (``GcsServer`` arguments): at most
``max_connections`` (256) served at a time, the next answered ``503`` with ``Retry-After: 1`` and closed;
a kept-alive connection idle ``idle_timeout`` (60 s) is closed; a request head not in within
``request_timeout`` (30 s), or a body that stalls that long, gets ``408`` and the connection closed; a JSON
or multipart body over ``max_body`` (64 MiB) gets ``413`` before it is read. Uploads stream to disk, up to
``max_object_size`` (1 GiB) per object (a longer declared body: ``413`` before a byte of it is read), with
at most ``max_upload_sessions`` (64) resumable uploads open. A body whose length is ambiguous
(``Content-Length`` with ``Transfer-Encoding``, lengths that differ, a coding other than ``chunked``), a
folded header, a missing ``Host``...: ``400`` and the connection closed, so no byte after them runs as a
second request. ``Expect: 100-continue`` is answered when the body is first read, so a request refused
before (no such bucket, a bad name) never has its body sent.
"""

from __future__ import annotations

import email.message
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from vision_grpc.emulator._buckets import BucketDir
from vision_grpc.emulator._http1 import HttpError, RequestHead
from vision_grpc.emulator._http_server import (
    MAX_BODY,
    Body,
    Http1Server,
    Limits,
    RequestTimeout,
    Response,
    json_response,
)
from vision_grpc.emulator._objects import (
    DEFAULT_MAX_OBJECT_SIZE,
    MAX_PAGE,
    GcsError,
    ObjectStore,
    Preconditions,
)

__all__ = ["MAX_BODY", "GcsServer"]

_log = logging.getLogger(__name__)

_MAX_JSON = 1024 * 1024  # a bucket or upload-session description
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _json(status: int, payload: Mapping[str, Any], headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, json.dumps(payload).encode(), headers or [])


def _error(status: int, reason: str, message: str) -> Response:
    detail = {"message": message, "domain": "global", "reason": reason}
    return _json(status, {"error": {"code": status, "message": message, "errors": [detail]}})


def _refusal(error: HttpError) -> Response:
    """A request the connection cannot serve (framing, 408, 413, 503...), as Cloud Storage's JSON."""
    if isinstance(error, RequestTimeout):
        what = "The request body" if error.in_body else "The request"
        return _error(408, "requestTimeout", f"{what} did not arrive in time.")
    reason = {413: "requestTooLarge", 503: "backendError"}.get(error.status, "invalid")
    return _error(error.status, reason, error.message)


def _read_all(body: Body, limit: int) -> bytes:
    """The whole body; ``GcsError(413)`` when it is (or is announced as) over ``limit`` bytes."""
    if body.remaining is not None and body.remaining > limit:
        raise GcsError(413, "requestTooLarge", f"The request body is over {limit} bytes.")
    data = bytearray()
    for piece in body.pieces():
        data += piece
        if len(data) > limit:
            raise GcsError(413, "requestTooLarge", f"The request body is over {limit} bytes.")
    return bytes(data)


class GcsServer:
    """The GCS JSON API over ``storage`` on ``host:port`` (0 picks a free port); ``start()``, ``stop()``."""

    def __init__(
        self,
        storage: BucketDir,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = 256,
        idle_timeout: float = 60.0,
        request_timeout: float = 30.0,
        max_body: int = MAX_BODY,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        max_upload_sessions: int = 64,
    ) -> None:
        limits = Limits(max_connections, idle_timeout, request_timeout, max_body)
        self.objects = ObjectStore(storage, max_object_size=max_object_size, max_sessions=max_upload_sessions)
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._max_body = max_body
        self._http = Http1Server(
            host, port, limits, name="GCS", respond=self._respond, refusal=_refusal, body_limit=self._body_limit
        )

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the value for ``STORAGE_EMULATOR_HOST`` (a dialable host for 0.0.0.0 / ::)."""
        host, port = self._http.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def port(self) -> int:
        return self._http.address[1]

    def open_connections(self) -> int:
        return self._http.open_connections()

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        """Close the port and every connection, join the accept thread, drop unfinished uploads. Idempotent."""
        self._http.stop()
        self.objects.close()

    # -- one request ------------------------------------------------------------------------------

    def _body_limit(self, head: RequestHead) -> int:
        upload = head.target.partition("?")[0].startswith("/upload/")
        return self.objects.max_object_size if upload else self._max_body

    def _respond(self, head: RequestHead, body: Body) -> Response:
        """The response to one request (errors included, as Cloud Storage's JSON)."""
        method, target = head.method, head.target
        try:
            return self._route(method, target, head, body)
        except GcsError as error:
            return _error(error.status, error.reason, error.message)
        except (HttpError, EOFError, ConnectionError):
            raise  # the request's own framing (RequestTimeout included) or connection: the server answers or ends it
        except OSError as exc:
            _log.warning("emulator GCS front: %s %s failed: %s", method, target, exc)
            return _error(500, "backendError", f"The emulator could not do it: {type(exc).__name__}: {exc.strerror}")
        except Exception as exc:  # a bug answers 500 for this request rather than killing the connection
            _log.exception("emulator GCS front: %s %s failed", method, target)
            return _error(500, "backendError", f"{type(exc).__name__}: {exc}")

    def _route(self, method: str, target: str, headers: RequestHead, body: Body) -> Response:
        if not target.startswith("/"):  # absolute-form: http://host/path
            target = "/" + target.split("://", 1)[-1].partition("/")[2]
        raw_path, _, query_text = target.partition("?")
        try:
            query = dict(parse_qsl(query_text, keep_blank_values=True, errors="strict", max_num_fields=100))
        except ValueError:  # UnicodeDecodeError included
            raise GcsError(400, "invalid", "The query string is not valid.") from None
        base = self._media_base(headers.get("host"))
        for root, kind in (("/upload/storage/v1/b/", "upload"), ("/download/storage/v1/b/", "download")):
            if raw_path.startswith(root):
                bucket, tail = _bucket_and_tail(raw_path[len(root) :])
                if kind == "upload" and tail == "/o":
                    return self._upload(method, bucket, query, headers, body, base)
                if kind == "download" and tail.startswith("/o/") and method in ("GET", "HEAD"):
                    return self._download(bucket, _name(tail[3:]), query, headers)
                return _not_served(method, raw_path)
        if raw_path.rstrip("/") == "/storage/v1/b":
            if method == "POST":
                return self._create_bucket(query, body)
            if method == "GET":
                items = self.objects.list_buckets(query.get("prefix", ""))
                return _json(200, {"kind": "storage#buckets", **({"items": items} if items else {})})
            return _not_served(method, raw_path)
        if not raw_path.startswith("/storage/v1/b/"):
            return _error(404, "notFound", f"Not Found: {raw_path} is not a Cloud Storage JSON API path.")
        bucket, tail = _bucket_and_tail(raw_path[len("/storage/v1/b/") :])
        if tail in ("", "/"):
            if method == "GET":
                return _json(200, self.objects.bucket(bucket))
            if method == "DELETE":
                self.objects.delete_bucket(bucket)
                return Response(204)
        elif tail == "/o":
            if method == "GET":
                return self._list(bucket, query, base)
        elif tail.startswith("/o/"):
            name = _name(tail[3:])
            if method in ("GET", "HEAD"):
                if query.get("alt") == "media":
                    return self._download(bucket, name, query, headers)
                info = self.objects.stat(bucket, name, generation=_generation(query))
                Preconditions.from_query(query).check(info.generation)
                return _json(200, info.resource(base))
            if method == "DELETE":
                self.objects.delete(
                    bucket, name, generation=_generation(query), preconditions=Preconditions.from_query(query)
                )
                return Response(204)
        return _not_served(method, raw_path)

    def _media_base(self, host: str | None) -> str:
        """``http://`` + the ``Host`` the client used (so links work through any address of ours), or our own."""
        if host and _HOST.fullmatch(host.strip()):
            return f"http://{host.strip()}"
        return self.url

    # -- buckets and listings ---------------------------------------------------------------------

    def _create_bucket(self, query: Mapping[str, str], body: Body) -> Response:
        described = _json_body(body)
        name = described.get("name")
        if not isinstance(name, str):
            raise GcsError(400, "required", "Required: the bucket's name.")
        return _json(200, self.objects.create_bucket(name))

    def _list(self, bucket: str, query: Mapping[str, str], base: str) -> Response:
        if "matchGlob" in query:
            raise GcsError(501, "notImplemented", "The emulator does not implement matchGlob.")
        if query.get("includeTrailingDelimiter", "false").lower() == "true":
            raise GcsError(501, "notImplemented", "The emulator does not implement includeTrailingDelimiter.")
        size_text = query.get("maxResults", str(MAX_PAGE))
        if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 9:
            raise GcsError(400, "invalid", f"Invalid value for maxResults: {size_text!r}")
        fields = query.get("fields")
        hashes = (
            fields is None
            or any(key in fields for key in ("crc32c", "md5Hash"))
            or bool(re.search(r"items(?!\s*\()", fields))
        )
        page = self.objects.list(
            bucket,
            prefix=query.get("prefix", ""),
            delimiter=query.get("delimiter") or None,
            max_results=int(size_text) or MAX_PAGE,
            page_token=query.get("pageToken") or None,
            start_offset=query.get("startOffset") or None,
            end_offset=query.get("endOffset") or None,
            hashes=hashes,
        )
        listing: dict[str, Any] = {"kind": "storage#objects"}
        if page.items:
            listing["items"] = [info.resource(base) for info in page.items]
        if page.prefixes:
            listing["prefixes"] = page.prefixes
        if page.next_page_token:
            listing["nextPageToken"] = page.next_page_token
        return _json(200, listing)

    # -- downloads --------------------------------------------------------------------------------

    def _download(self, bucket: str, name: str, query: Mapping[str, str], headers: RequestHead) -> Response:
        preconditions = Preconditions.from_query(query)
        handle, info = self.objects.open(bucket, name, generation=_generation(query))
        try:
            preconditions.check(info.generation)
            assert info.hashes is not None
            common = [
                ("Content-Type", info.content_type),
                ("X-Goog-Generation", str(info.generation)),
                ("X-Goog-Metageneration", "1"),
                ("X-Goog-Stored-Content-Length", str(info.size)),
                ("X-Goog-Stored-Content-Encoding", "identity"),
                ("X-Goog-Storage-Class", "STANDARD"),
                ("X-Goog-Hash", f"crc32c={info.hashes.crc32c},md5={info.hashes.md5}"),
                ("ETag", f'"{info.hashes.md5}"'),
                ("Accept-Ranges", "bytes"),
            ]
            span = _range(headers.get("range"), info.size)
            if span is None:
                return Response(200, common, file=handle, length=info.size)
            first, last = span
            if first >= info.size:
                handle.close()
                response = _error(416, "requestedRangeNotSatisfiable", "The requested range cannot be satisfied.")
                response.headers.append(("Content-Range", f"bytes */{info.size}"))
                return response
            ranged = [*common, ("Content-Range", f"bytes {first}-{last}/{info.size}")]
            return Response(206, ranged, file=handle, offset=first, length=last - first + 1)
        except BaseException:
            handle.close()
            raise

    # -- uploads ----------------------------------------------------------------------------------

    def _upload(
        self, method: str, bucket: str, query: Mapping[str, str], headers: RequestHead, body: Body, base: str
    ) -> Response:
        kind = query.get("uploadType")
        upload_id = query.get("upload_id")
        if upload_id is not None:
            if method == "PUT" or (method == "POST" and kind == "resumable"):
                return self._chunk(upload_id, headers, body, base)
            if method == "DELETE":
                self.objects.cancel_upload(upload_id)
                return Response(499)
            return _not_served(method, "/upload/storage/v1/b/{bucket}/o?upload_id=...")
        if method != "POST":
            return _not_served(method, "/upload/storage/v1/b/{bucket}/o")
        preconditions = Preconditions.from_query(query)
        if kind == "multipart":
            metadata, media_type, media = _multipart(headers.get("content-type"), _read_all(body, self._max_body))
            name = _object_name(metadata, query)
            info = self.objects.write(
                bucket,
                name,
                [media],
                content_type=_text(metadata, "contentType") or media_type,
                metadata=_custom(metadata),
                declared=_declared(metadata),
                preconditions=preconditions,
            )
            return _json(200, info.resource(base))
        if kind == "media":
            media_name = query.get("name")
            if not media_name:
                raise GcsError(400, "required", "Required: the object's name (?name=).")
            info = self.objects.write(
                bucket, media_name, body.pieces(), content_type=headers.get("content-type"), preconditions=preconditions
            )
            return _json(200, info.resource(base))
        if kind == "resumable":
            metadata = _json_body(body)
            total_text = headers.get("x-upload-content-length")
            if total_text is not None and (
                not total_text.isascii() or not total_text.isdigit() or len(total_text) > 18
            ):
                raise GcsError(400, "invalid", "X-Upload-Content-Length must be a number.")
            upload_id = self.objects.start_upload(
                bucket,
                _object_name(metadata, query),
                content_type=_text(metadata, "contentType") or headers.get("x-upload-content-type"),
                metadata=_custom(metadata),
                declared=_declared(metadata),
                total=int(total_text) if total_text is not None else None,
                preconditions=preconditions,
            )
            location = (
                f"{base}/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=resumable&upload_id={upload_id}"
            )
            return Response(200, [("Location", location), ("X-GUploader-UploadID", upload_id)])
        raise GcsError(400, "invalid", f"Unknown uploadType {kind!r}: multipart, media or resumable.")

    def _chunk(self, upload_id: str, headers: RequestHead, body: Body, base: str) -> Response:
        state = self.objects.upload_chunk(
            upload_id, headers.get("content-range"), body.pieces(), declared=_hash_header(headers.get("x-goog-hash"))
        )
        if state.done is not None:
            return _json(200, state.done.resource(base), [("X-GUploader-UploadID", upload_id)])
        progress = [("Range", f"bytes=0-{state.size - 1}")] if state.size else []
        return Response(308, [*progress, ("X-GUploader-UploadID", upload_id)])


# -- helpers ----------------------------------------------------------------------------------------


def _not_served(method: str, path: str) -> Response:
    return _error(501, "notImplemented", f"The emulator does not implement {method} {path}.")


def _bucket_and_tail(rest: str) -> tuple[str, str]:
    raw_bucket, slash, tail = rest.partition("/")
    return _unquote(raw_bucket), slash + tail


def _unquote(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise GcsError(400, "invalid", "The path is not valid UTF-8 once decoded.") from None


def _name(raw: str) -> str:
    """An object name from the path: ``%2F``-encoded or with raw slashes alike; ``+`` is a plus."""
    return _unquote(raw)


def _generation(query: Mapping[str, str]) -> int | None:
    text = query.get("generation")
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise GcsError(400, "invalid", f"Invalid generation: {text!r}")
    return int(text)


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``bytes=`` range; None to send everything (no header, several ranges,
    a malformed one, or an empty object), as HTTP servers do. ``first >= size`` is unsatisfiable."""
    if not header or size == 0:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not first_text:  # the last N bytes
        count = int(last_text)
        return (max(0, size - count), size - 1) if count else None
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text.isdigit() else size - 1
    if last_text and last_text.isdigit() and int(last_text) < first:
        return None
    return first, last


def _json_body(body: Body) -> dict[str, Any]:
    raw = _read_all(body, _MAX_JSON)
    if not raw.strip():
        return {}
    try:
        described = json.loads(raw)
    except ValueError:
        raise GcsError(400, "parseError", "The request body is not valid JSON.") from None
    if not isinstance(described, dict):
        raise GcsError(400, "parseError", "The request body must be a JSON object.")
    return described


def _text(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GcsError(400, "invalid", f"Invalid value for {key}: a string is expected.")
    return value


def _object_name(metadata: Mapping[str, Any], query: Mapping[str, str]) -> str:
    name = _text(metadata, "name") or query.get("name")
    if not name:
        raise GcsError(400, "required", "Required: the object's name.")
    return name


def _custom(metadata: Mapping[str, Any]) -> dict[str, str]:
    custom = metadata.get("metadata") or {}
    if not isinstance(custom, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in custom.items()):
        raise GcsError(400, "invalid", "Invalid value for metadata: an object of strings is expected.")
    return dict(custom)


def _declared(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {key: value for key in ("crc32c", "md5Hash") if (value := _text(metadata, key)) is not None}


def _hash_header(value: str | None) -> dict[str, str]:
    """``X-Goog-Hash: crc32c=...,md5=...`` -> ``{"crc32c": ..., "md5Hash": ...}``."""
    declared = {}
    for member in (value or "").split(","):
        kind, equals, digest = member.strip().partition("=")
        if equals and kind in ("crc32c", "md5"):
            declared["crc32c" if kind == "crc32c" else "md5Hash"] = digest.strip()
    return declared


def _multipart(content_type: str | None, body: bytes) -> tuple[dict[str, Any], str | None, bytes]:
    """The metadata (JSON) and the media of a ``multipart/related`` upload, and the media part's type."""
    message = email.message.Message()
    message["Content-Type"] = content_type or ""
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/related" or not isinstance(boundary, str) or not boundary:
        raise GcsError(400, "invalid", "A multipart upload needs Content-Type: multipart/related; boundary=...")
    dash = b"--" + boundary.encode("latin-1")
    position = body.find(dash)
    parts: list[bytes] = []
    while position >= 0:
        after = position + len(dash)
        if body[after : after + 2] == b"--":
            break  # the closing delimiter
        line_end = body.find(b"\n", after)
        following = body.find(b"\r\n" + dash, line_end)
        if line_end < 0 or following < 0:
            raise GcsError(400, "invalid", "The multipart body is not closed by its boundary.")
        parts.append(body[line_end + 1 : following])
        position = following + 2
    else:
        raise GcsError(400, "invalid", "The multipart body is not closed by its boundary.")
    if len(parts) != 2:
        raise GcsError(400, "invalid", f"A multipart upload has two parts (metadata, media), not {len(parts)}.")
    (_, meta), (media_headers, media) = (_part(part) for part in parts)
    try:
        metadata = json.loads(meta) if meta.strip() else {}
    except ValueError:
        raise GcsError(400, "parseError", "The metadata part is not valid JSON.") from None
    if not isinstance(metadata, dict):
        raise GcsError(400, "parseError", "The metadata part must be a JSON object.")
    return metadata, media_headers.get("content-type"), media


def _part(part: bytes) -> tuple[dict[str, str], bytes]:
    head, separator, content = part.partition(b"\r\n\r\n")
    if not separator:
        if part.startswith(b"\r\n"):  # no header lines
            return {}, part[2:]
        raise GcsError(400, "invalid", "A multipart part has no blank line after its headers.")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("content-transfer-encoding", "binary").lower() not in ("binary", "8bit", "7bit"):
        raise GcsError(400, "invalid", "Only binary multipart parts are implemented.")
    return headers, content
