"""Cloud Storage objects over the emulator's directory (``BucketDir``), for the GCS JSON API front.

The directory stays the only source of truth: an object is a file, whoever wrote it (the GCS front, the
emulator's own jobs, ``Emulator.put_object``, a shell), so nothing written beside the API is missing from
it, and there is no index to rewrite or to lose. What a file cannot say is derived or kept beside it:

- ``generation``: the file's ``st_mtime_ns``. Our own writes set it (``os.utime`` before the file is moved
  into place) to more than the replaced object's, so it grows with each upload of a name; ``metageneration``
  is always 1 (metadata cannot be patched).
- ``crc32c`` and ``md5Hash``: computed from the bytes and cached by the file's identity (path, inode, size,
  mtime), so a file replaced behind our back is hashed again. crc32c comes from google-crc32c (the
  ``emulator`` extra; google-cloud-storage needs it too) or, without it, a table in pure Python (correct,
  about 100 times slower).
- ``contentType`` and custom ``metadata`` given at upload: a sidecar, ``ROOT/.gcs/meta/<sha256>.json``,
  naming the identity of the file it describes; a file replaced by another writer no longer matches it, and
  its type is then guessed from its extension (a fixed table: ``.json`` is ``application/json``, ``.pdf``
  ``application/pdf``...; anything else ``application/octet-stream``). Bucket names cannot start with ``.``,
  so ``.gcs`` never collides with a bucket.
- resumable uploads: a file under ``ROOT/.gcs/uploads`` per session, moved into place by the last chunk.
  Sessions live in memory (at most ``max_sessions``; the least recently used is dropped, as is any idle
  for ``session_ttl`` seconds); after a restart a client starts its upload again.

Listings walk the directory in Cloud Storage's order (names compared as UTF-8 bytes: a directory ``d``
sorts as ``d/``), from the directory of the prefix, skipping subtrees before the page token, and stop one
entry past the page, so a page costs about its own size. The page token is the last name (or prefix)
returned, so pages stay consistent while objects come and go.

Names: Cloud Storage's rules (1-1024 bytes of UTF-8, no CR or LF, not ``.`` or ``..``) are 400 everywhere;
what a directory cannot hold (empty, ``.`` or ``..`` segments, a backslash, a name ending in ``/``, a
segment over 255 bytes, an object under another object's name) is 400 on upload and 404 on read.
Errors are ``GcsError(status, reason, message)``, which the front turns into Cloud Storage's JSON error.
"""

from __future__ import annotations

import base64
import builtins
import errno
import hashlib
import importlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import quote

from vision_grpc.emulator._buckets import BucketDir, InvalidUri, parse_gs_uri

__all__ = [
    "DEFAULT_MAX_OBJECT_SIZE",
    "MAX_NAME_BYTES",
    "MAX_PAGE",
    "GcsError",
    "ListPage",
    "ObjectInfo",
    "ObjectStore",
    "Preconditions",
    "UploadState",
    "check_object_name",
    "crc32c_available",
    "decode_page_token",
    "encode_page_token",
    "guess_content_type",
    "parse_content_range",
    "valid_new_bucket_name",
]

MAX_NAME_BYTES = 1024  # Cloud Storage: object names are 1-1024 bytes of UTF-8
MAX_PAGE = 1000  # Cloud Storage's largest (and default) page of a listing
DEFAULT_MAX_OBJECT_SIZE = 1 << 30  # 1 GiB per object (uploads past it: 413)
_GCS_DIR = ".gcs"
_CACHE_SIZE = 8192  # file identities whose hashes and sidecar are remembered
_READ = 1 << 20
_UNSTORABLE = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY)
_TYPES = {  # fixed, so that a guessed type does not depend on the machine's mime.types
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".html": "text/html",
    ".xml": "application/xml",
    ".zip": "application/zip",
    ".gz": "application/gzip",
}
_OCTET_STREAM = "application/octet-stream"


class GcsError(Exception):
    """A Cloud Storage error: HTTP ``status``, ``reason`` (``notFound``, ``invalid``, ``conflict``...), message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _bad(message: str) -> GcsError:
    return GcsError(400, "invalid", message)


# -- checksums ------------------------------------------------------------------------------------


class _Checksum(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...

    def copy(self) -> _Checksum: ...


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return tuple(table)


class _PyCrc32c:
    """CRC-32C in pure Python, for when google-crc32c is not installed."""

    _table = _crc_table()

    def __init__(self, state: int = 0xFFFFFFFF) -> None:
        self._state = state

    def update(self, data: bytes) -> None:
        crc, table = self._state, self._table
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._state = crc

    def digest(self) -> bytes:
        return (self._state ^ 0xFFFFFFFF).to_bytes(4, "big")

    def copy(self) -> _PyCrc32c:
        return _PyCrc32c(self._state)


def _load_crc32c() -> Any:
    try:
        return importlib.import_module("google_crc32c")
    except ImportError:
        return None


_GOOGLE_CRC32C = _load_crc32c()


def crc32c_available() -> bool:
    """Whether google-crc32c computes crc32c (else the pure-Python table does, slowly)."""
    return _GOOGLE_CRC32C is not None


def _new_crc32c() -> _Checksum:
    if _GOOGLE_CRC32C is not None:
        return cast(_Checksum, _GOOGLE_CRC32C.Checksum())
    return _PyCrc32c()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Hashes:
    """An object's ``crc32c`` and ``md5Hash`` as Cloud Storage writes them (base64 of the big-endian digest)."""

    crc32c: str
    md5: str


class _Digest:
    """crc32c and md5 of bytes fed so far; ``copy`` keeps a state to go back to."""

    def __init__(self, crc: _Checksum | None = None, md5: Any = None) -> None:
        self._crc = crc if crc is not None else _new_crc32c()
        self._md5 = md5 if md5 is not None else hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self._crc.update(data)
        self._md5.update(data)

    def copy(self) -> _Digest:
        return _Digest(self._crc.copy(), self._md5.copy())

    def result(self) -> Hashes:
        return Hashes(_b64(self._crc.digest()), _b64(self._md5.digest()))


# -- names ----------------------------------------------------------------------------------------


def check_object_name(name: str) -> None:
    """Cloud Storage's rules for object names: ``GcsError`` 400 for an empty name, one over 1024 bytes of
    UTF-8, with a carriage return or line feed, ``.`` or ``..``, or under ``.well-known/acme-challenge/``."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad("The object name is not valid UTF-8.") from None
    if not 0 < size <= MAX_NAME_BYTES:
        raise _bad(f"Object names are 1 to {MAX_NAME_BYTES} bytes of UTF-8; this one has {size}.")
    if "\r" in name or "\n" in name:
        raise _bad("Object names cannot contain carriage return or line feed characters.")
    if name in (".", "..") or name.startswith(".well-known/acme-challenge/"):
        raise _bad(f"The object name {name!r} is not allowed.")


def _listable(name: str) -> bool:
    """A file's name that can be a Cloud Storage object's (others, written beside the API, are not listed)."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a file name that is not UTF-8 (surrogate-escaped)
        return False
    return size <= MAX_NAME_BYTES and "\r" not in name and "\n" not in name


def valid_new_bucket_name(name: str) -> bool:
    """Cloud Storage's rules for creating a bucket: 3-63 characters of ``a-z 0-9 - _ .`` starting and
    ending with a letter or digit (up to 222 with dots, each dot-separated part at most 63), not an IP
    address, not starting with ``goog`` nor containing ``google``."""
    if not 3 <= len(name) <= 222 or (len(name) > 63 and "." not in name):
        return False
    if not (name[0].isascii() and name[0].isalnum() and name[-1].isascii() and name[-1].isalnum()):
        return False
    if any(not (c in "-_." or (c.isascii() and (c.isdigit() or c.islower()))) for c in name):
        return False
    parts = name.split(".")
    if any(not part or len(part) > 63 for part in parts):
        return False
    if len(parts) == 4 and all(part.isdigit() for part in parts):
        return False
    return not (name.startswith("goog") or "google" in name or "g00gle" in name)


def guess_content_type(name: str) -> str:
    """The content type of an object nobody described, from its name's extension (a fixed table)."""
    _, dot, extension = name.rpartition(".")
    return _TYPES.get("." + extension.lower(), _OCTET_STREAM) if dot and "/" not in extension else _OCTET_STREAM


def encode_page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    try:
        last = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        last = ""
    if not last:
        raise _bad("Invalid page token.")
    return last


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``Content-Range`` of a resumable upload's request: ``bytes FIRST-LAST/TOTAL``, ``bytes */TOTAL``,
    ``bytes FIRST-LAST/*``, ``bytes */*``; ``(first, last, total)`` with None for ``*``."""
    if value is None:
        raise _bad("A resumable upload request needs a Content-Range header.")
    unit, _, spec = value.strip().partition(" ")
    span, slash, total_text = spec.partition("/")
    if unit != "bytes" or not slash:
        raise _bad(f"Invalid Content-Range: {value!r}")
    total = None if total_text == "*" else _non_negative(total_text, value)
    if span == "*":
        return None, None, total
    first_text, dash, last_text = span.partition("-")
    first, last = _non_negative(first_text, value), _non_negative(last_text, value) if dash else -1
    if last < first or (total is not None and last >= total):
        raise _bad(f"Invalid Content-Range: {value!r}")
    return first, last, total


def _non_negative(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _bad(f"Invalid Content-Range: {whole!r}")
    return int(text)


# -- objects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    """What Cloud Storage says about an object (``hashes`` None when not asked for)."""

    bucket: str
    name: str
    size: int
    generation: int
    content_type: str
    metadata: Mapping[str, str]
    hashes: Hashes | None

    def resource(self, media_base: str | None = None) -> dict[str, Any]:
        """The JSON API's ``storage#object``; ``media_base`` (``http://host:port``) adds ``mediaLink``."""
        stamp = _rfc3339(self.generation)
        generation = str(self.generation)
        resource: dict[str, Any] = {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{generation}",
            "name": self.name,
            "bucket": self.bucket,
            "generation": generation,
            "metageneration": "1",
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": str(self.size),
            "etag": _b64(f"{generation}/1".encode()),
            "timeCreated": stamp,
            "updated": stamp,
            "timeStorageClassUpdated": stamp,
        }
        if self.hashes is not None:
            resource["md5Hash"] = self.hashes.md5
            resource["crc32c"] = self.hashes.crc32c
        if self.metadata:
            resource["metadata"] = dict(self.metadata)
        if media_base is not None:
            quoted = _quote_name(self.name)
            resource["mediaLink"] = (
                f"{media_base}/download/storage/v1/b/{self.bucket}/o/{quoted}?generation={generation}&alt=media"
            )
        return resource


def _quote_name(name: str) -> str:
    return quote(name, safe="")


def _rfc3339(nanoseconds: int) -> str:
    moment = datetime.fromtimestamp(nanoseconds // 1_000_000_000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanoseconds // 1_000_000 % 1000:03d}Z"


def bucket_resource(name: str, created_ns: int) -> dict[str, Any]:
    stamp = _rfc3339(created_ns)
    return {
        "kind": "storage#bucket",
        "id": name,
        "name": name,
        "projectNumber": "0",
        "metageneration": "1",
        "location": "US",
        "locationType": "multi-region",
        "storageClass": "STANDARD",
        "etag": "CAE=",
        "timeCreated": stamp,
        "updated": stamp,
    }


@dataclass(frozen=True)
class Preconditions:
    """``ifGenerationMatch`` & co. of a request (None: not given); ``check`` raises 412 when one fails."""

    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    if_metageneration_match: int | None = None
    if_metageneration_not_match: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Preconditions:
        def number(key: str) -> int | None:
            text = query.get(key)
            if text is None:
                return None
            if not text.isascii() or not text.isdigit() or len(text) > 19:
                raise _bad(f"Invalid value for {key}: {text!r}")
            return int(text)

        return cls(
            number("ifGenerationMatch"),
            number("ifGenerationNotMatch"),
            number("ifMetagenerationMatch"),
            number("ifMetagenerationNotMatch"),
        )

    def check(self, generation: int | None) -> None:
        """``generation``: the live object's, None when there is none (as Cloud Storage: ``ifGenerationMatch=0``
        asks for no live object; the other three fail when there is none)."""
        failed = (
            (self.if_generation_match is not None and (generation or 0) != self.if_generation_match)
            or (
                self.if_generation_not_match is not None
                and (generation is None or generation == self.if_generation_not_match)
            )
            or (self.if_metageneration_match is not None and (generation is None or self.if_metageneration_match != 1))
            or (
                self.if_metageneration_not_match is not None
                and (generation is None or self.if_metageneration_not_match == 1)
            )
        )
        if failed:
            raise GcsError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")


@dataclass(frozen=True)
class ListPage:
    items: list[ObjectInfo]
    prefixes: list[str]
    next_page_token: str | None


@dataclass(frozen=True)
class UploadState:
    """Where a resumable upload stands: ``size`` bytes persisted; ``done`` the object once complete."""

    size: int
    done: ObjectInfo | None = None


@dataclass
class _Known:
    """What we remember of one file identity: its hashes, and what its sidecar said."""

    hashes: Hashes | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Session:
    bucket: str
    name: str
    content_type: str | None
    metadata: Mapping[str, str]
    declared: Mapping[str, str]  # "crc32c" / "md5Hash" given at the start
    preconditions: Preconditions
    path: Path
    total: int | None
    touched: float
    size: int = 0
    digest: _Digest = field(default_factory=_Digest)
    done: ObjectInfo | None = None
    dropped: bool = False  # evicted: its file goes with it
    lock: threading.Lock = field(default_factory=threading.Lock)


_Identity = tuple[str, int, int, int]  # path, inode, size, mtime_ns


class ObjectStore:
    """Buckets and objects over ``storage`` (a ``BucketDir``): thread-safe."""

    def __init__(
        self,
        storage: BucketDir,
        *,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        max_sessions: int = 64,
        session_ttl: float = 3600.0,
    ) -> None:
        if max_object_size < 0 or max_sessions < 1 or not session_ttl > 0:
            raise ValueError("max_object_size must be >= 0, max_sessions >= 1 and session_ttl > 0")
        self.storage = storage
        self.root = storage.root
        self.max_object_size = max_object_size
        self._max_sessions = max_sessions
        self._session_ttl = session_ttl
        self._meta_dir = self.root / _GCS_DIR / "meta"
        self._upload_dir = self.root / _GCS_DIR / "uploads"
        self._lock = threading.Lock()  # the caches and the sessions
        self._commit = threading.Lock()  # precondition checks with the writes and deletes they guard
        self._known: OrderedDict[_Identity, _Known] = OrderedDict()
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._drop_stale_uploads()

    def _drop_stale_uploads(self) -> None:
        """Upload files left by an emulator that stopped uncleanly on this directory (sessions live in
        memory, so none can be resumed); only those idle for ``session_ttl``, in case another emulator
        shares the directory."""
        cutoff = time.time() - self._session_ttl
        try:
            with os.scandir(self._upload_dir) as entries:
                stale = [entry.path for entry in entries if entry.stat(follow_symlinks=False).st_mtime < cutoff]
        except OSError:
            return
        for path in stale:
            Path(path).unlink(missing_ok=True)

    # -- buckets ----------------------------------------------------------------------------------

    def bucket_dir(self, bucket: str) -> Path:
        """The bucket's directory; 400 for a name the emulator cannot hold, 404 when there is none."""
        path = self._bucket_path(bucket)
        if not path.is_dir() or path.is_symlink():
            raise GcsError(404, "notFound", "The specified bucket does not exist.")
        return path

    def _bucket_path(self, bucket: str) -> Path:
        try:
            parsed, _ = parse_gs_uri(f"gs://{bucket}/x")
        except InvalidUri:
            parsed = ""
        if parsed != bucket:
            raise _bad(f"Invalid bucket name: {bucket!r}")
        return self.root / bucket

    def bucket(self, bucket: str) -> dict[str, Any]:
        return bucket_resource(bucket, self.bucket_dir(bucket).stat().st_mtime_ns)

    def create_bucket(self, bucket: str) -> dict[str, Any]:
        if not valid_new_bucket_name(bucket):
            raise _bad(f"Invalid bucket name: {bucket!r}")
        path = self._bucket_path(bucket)
        try:
            path.mkdir()
        except FileExistsError:
            raise GcsError(
                409, "conflict", "Your previous request to create the named bucket succeeded and you already own it."
            ) from None
        return bucket_resource(bucket, path.stat().st_mtime_ns)

    def delete_bucket(self, bucket: str) -> None:
        """Only an empty bucket (no object; empty directories left by deletes do not count)."""
        path = self.bucket_dir(bucket)
        if self._has_object(str(path), ""):
            raise GcsError(409, "conflict", "The bucket you tried to delete is not empty.")
        shutil.rmtree(path, ignore_errors=True)

    def list_buckets(self, prefix: str = "") -> list[dict[str, Any]]:
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
                    try:
                        self._bucket_path(entry.name)
                    except GcsError:
                        continue  # .tmp, .gcs and other directories that cannot be buckets
                    found.append(bucket_resource(entry.name, entry.stat(follow_symlinks=False).st_mtime_ns))
        return sorted(found, key=lambda resource: str(resource["name"]))

    # -- reading ----------------------------------------------------------------------------------

    def _object_path(self, bucket: str, name: str, *, writing: bool) -> Path:
        check_object_name(name)
        self.bucket_dir(bucket)
        reason = _layout_problem(name)
        if reason is None:
            try:
                return self.storage.path_for(f"gs://{bucket}/{name}")
            except InvalidUri as exc:
                reason = exc.reason
        if writing:
            raise _bad(f"The emulator cannot store the object {name!r}: {reason}.")
        raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")

    def open(self, bucket: str, name: str, *, generation: int | None = None) -> tuple[BinaryIO, ObjectInfo]:
        """The object's bytes, open (the caller closes), and its description with hashes of those bytes."""
        path = self._object_path(bucket, name, writing=False)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:  # missing, a directory, a link, a name too long for the file system...
            raise GcsError(404, "notFound", f"No such object: {bucket}/{name}") from None
        handle = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not _is_regular(st.st_mode) or (generation is not None and generation != st.st_mtime_ns):
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")
            info = self._describe(bucket, name, path, st, handle)
            handle.seek(0)
            return handle, info
        except BaseException:
            handle.close()
            raise

    def stat(self, bucket: str, name: str, *, generation: int | None = None, hashes: bool = True) -> ObjectInfo:
        if not hashes:
            path = self._object_path(bucket, name, writing=False)
            st = _stat(path)
            if st is None or (generation is not None and generation != st.st_mtime_ns):
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")
            return self._describe(bucket, name, path, st, None)
        handle, info = self.open(bucket, name, generation=generation)
        handle.close()
        return info

    def _describe(self, bucket: str, name: str, path: Path, st: os.stat_result, handle: BinaryIO | None) -> ObjectInfo:
        """``handle`` (open on the file ``st`` describes) is read for hashes unknown so far; without it, the
        hashes are those already known (or None)."""
        identity = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._remember(identity, bucket, name)
        if known.hashes is None and handle is not None:
            digest = _Digest()
            while chunk := handle.read(_READ):
                digest.update(chunk)
            known.hashes = digest.result()
        return ObjectInfo(
            bucket=bucket,
            name=name,
            size=st.st_size,
            generation=st.st_mtime_ns,
            content_type=known.content_type or guess_content_type(name),
            metadata=known.metadata,
            hashes=known.hashes,
        )

    def _remember(self, identity: _Identity, bucket: str, name: str) -> _Known:
        with self._lock:
            known = self._known.get(identity)
            if known is not None:
                self._known.move_to_end(identity)
                return known
        known = self._read_sidecar(identity, bucket, name)
        with self._lock:
            self._known[identity] = known
            while len(self._known) > _CACHE_SIZE:
                self._known.popitem(last=False)
        return known

    def _sidecar(self, bucket: str, name: str) -> Path:
        key = hashlib.sha256(f"{bucket}/{name}".encode()).hexdigest()
        return self._meta_dir / key[:2] / f"{key}.json"

    def _read_sidecar(self, identity: _Identity, bucket: str, name: str) -> _Known:
        try:
            saved = json.loads(self._sidecar(bucket, name).read_bytes())
            if saved.get("identity") != list(identity[1:]) or saved.get("name") != f"{bucket}/{name}":
                return _Known()  # it describes a file that has been replaced since
            hashes = Hashes(str(saved["crc32c"]), str(saved["md5Hash"]))
            metadata = {str(k): str(v) for k, v in dict(saved.get("metadata") or {}).items()}
            return _Known(hashes, str(saved["contentType"]), metadata)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return _Known()

    # -- listing ----------------------------------------------------------------------------------

    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        max_results: int = MAX_PAGE,
        page_token: str | None = None,
        start_offset: str | None = None,
        end_offset: str | None = None,
        hashes: bool = True,
    ) -> ListPage:
        """One page of the objects whose names start with ``prefix``, in name order; with a ``delimiter``,
        names holding it after the prefix are rolled up into ``prefixes``. ``max_results`` counts both."""
        bucket_dir = self.bucket_dir(bucket)
        max_results = max(1, min(max_results, MAX_PAGE))
        after = decode_page_token(page_token) if page_token else None
        lower = max((bound for bound in (after, start_offset) if bound), default=None)
        entries = self._entries(bucket_dir, prefix, delimiter or None, lower)
        page: list[tuple[bool, str, str]] = []
        more = False
        for is_prefix, text, path in entries:
            if after is not None and text <= after:
                continue
            if not is_prefix and start_offset and text < start_offset:
                continue
            if end_offset and text >= end_offset:
                break
            if len(page) == max_results:
                more = True
                break
            page.append((is_prefix, text, path))
        items = [
            info
            for is_prefix, text, path in page
            if not is_prefix and (info := self._listed(bucket, text, path, hashes)) is not None
        ]
        prefixes = [text for is_prefix, text, _ in page if is_prefix]
        return ListPage(items, prefixes, encode_page_token(page[-1][1]) if more and page else None)

    def _listed(self, bucket: str, name: str, path: str, hashes: bool) -> ObjectInfo | None:
        """A listed file's description (None if it went away meanwhile); the walk already checked its name."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not _is_regular(st.st_mode):
                return None
            return self._describe(bucket, name, Path(path), st, handle if hashes else None)

    def _entries(
        self, bucket_dir: Path, prefix: str, delimiter: str | None, lower: str | None
    ) -> Iterator[tuple[bool, str, str]]:
        """``(is_prefix, text, path)`` in order: object names (and their files), or the prefixes they roll
        up into (each once)."""
        folder = prefix.rpartition("/")[0]
        if folder:
            try:
                self.storage.path_for(f"gs://{bucket_dir.name}/{folder}")
            except InvalidUri:
                return  # no object can have a name under it

        start = bucket_dir.joinpath(*folder.split("/")) if folder else bucket_dir
        if start.resolve() != start:  # through a link: not ours to list
            return
        last_prefix = None
        walk = self._walk(str(start), folder + "/" if folder else "", prefix, delimiter == "/", lower)
        for rolled_up, name, path in walk:
            is_prefix, text = True, name
            if not rolled_up:
                cut = name.find(delimiter, len(prefix)) if delimiter else -1
                is_prefix, text = (True, name[: cut + len(delimiter)]) if delimiter and cut >= 0 else (False, name)
            if is_prefix:
                if text == last_prefix:
                    continue
                last_prefix = text
            yield is_prefix, text, path

    def _walk(
        self, path: str, base: str, prefix: str, roll_up: bool, lower: str | None
    ) -> Iterator[tuple[bool, str, str]]:
        """Object names under directory ``path`` (named ``base``) in byte order; with ``roll_up`` (the
        delimiter is ``/``), a directory just past the prefix is yielded as one prefix, if it holds an object."""
        for key, entry_path, is_dir in _sorted_entries(path):
            full = base + key
            if not is_dir:
                if full.startswith(prefix) and _listable(full):
                    yield False, full, entry_path
                continue
            if not (full.startswith(prefix) or prefix.startswith(full)):
                continue
            if lower is not None and full < lower and not lower.startswith(full):
                continue  # every name below sorts before the page token
            if roll_up and full.startswith(prefix) and "/" not in full[len(prefix) : -1]:
                if self._has_object(entry_path, full):
                    yield True, full, entry_path
                continue
            yield from self._walk(entry_path, full, prefix, roll_up, lower)

    def _has_object(self, path: str, base: str) -> bool:
        return any(True for _ in self._walk(path, base, "", False, None))

    # -- writing ----------------------------------------------------------------------------------

    def write(
        self,
        bucket: str,
        name: str,
        chunks: Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        declared: Mapping[str, str] | None = None,
        preconditions: Preconditions = Preconditions(),
    ) -> ObjectInfo:
        """Create or replace an object from ``chunks`` (a simple or multipart upload), atomically.
        ``declared`` hashes (``crc32c``, ``md5Hash``) must match the bytes: else 400 and nothing is written."""
        self._object_path(bucket, name, writing=True)
        tmp = self._new_upload_file()
        try:
            digest, size = _Digest(), 0
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_object_size:
                        raise GcsError(413, "uploadTooLarge", f"Objects are at most {self.max_object_size} bytes here.")
                    out.write(chunk)
                    digest.update(chunk)
            return self._place(bucket, name, tmp, digest.result(), content_type, metadata, declared, preconditions)
        finally:
            tmp.unlink(missing_ok=True)

    def _new_upload_file(self) -> Path:
        self._upload_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._upload_dir, prefix="upload-", suffix=".part")
        os.close(fd)
        return Path(name)

    def _place(
        self,
        bucket: str,
        name: str,
        tmp: Path,
        hashes: Hashes,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        declared: Mapping[str, str] | None,
        preconditions: Preconditions,
    ) -> ObjectInfo:
        """Check ``declared`` hashes, then (holding the commit lock) the preconditions; give ``tmp`` its
        generation, write the sidecar and move ``tmp`` into place."""
        for key, computed in (("crc32c", hashes.crc32c), ("md5Hash", hashes.md5)):
            given = (declared or {}).get(key)
            if given is not None and given != computed:
                label = "CRC32C" if key == "crc32c" else "MD5"
                raise _bad(f"Provided {label} hash {given!r} doesn't match calculated {label} hash {computed!r}.")
        path = self._object_path(bucket, name, writing=True)
        self._check_writable(bucket, name)
        with self._commit:
            current = _stat(path)
            if current is not None and not _is_regular(current.st_mode):
                raise _bad(
                    f"The emulator cannot store the object {name!r}: objects exist under this name (as a folder)."
                )
            preconditions.check(current.st_mtime_ns if current is not None else None)
            generation = max(time.time_ns(), current.st_mtime_ns + 1 if current is not None else 0)
            os.utime(tmp, ns=(generation, generation))
            st = os.stat(tmp)
            identity = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
            known = _Known(hashes, content_type or None, dict(metadata or {}))
            self._write_sidecar(bucket, name, identity, known)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
            except OSError as exc:
                if exc.errno not in _UNSTORABLE:
                    raise
                raise _bad(f"The emulator cannot store the object {name!r}: {os.strerror(exc.errno or 0)}.") from None
            with self._lock:
                self._known[identity] = known
        return ObjectInfo(
            bucket,
            name,
            st.st_size,
            st.st_mtime_ns,
            content_type or guess_content_type(name),
            dict(metadata or {}),
            hashes,
        )

    def _check_writable(self, bucket: str, name: str) -> None:
        """No object may stand where a folder of ``name`` is, nor objects under ``name`` (``a`` and ``a/b``
        cannot both be files): ``BucketDir.check_writable``, as 400."""
        try:
            self.storage.check_writable(f"gs://{bucket}/{name}")
        except InvalidUri as exc:
            raise _bad(f"The emulator cannot store the object {name!r}: {exc.reason}.") from None

    def _write_sidecar(self, bucket: str, name: str, identity: _Identity, known: _Known) -> None:
        sidecar = self._sidecar(bucket, name)
        if known.content_type is None and not known.metadata:
            sidecar.unlink(missing_ok=True)  # the guess and the computed hashes say it all
            return
        assert known.hashes is not None
        record = {
            "name": f"{bucket}/{name}",
            "identity": list(identity[1:]),
            "contentType": known.content_type or guess_content_type(name),
            "metadata": dict(known.metadata),
            "crc32c": known.hashes.crc32c,
            "md5Hash": known.hashes.md5,
        }
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".sidecar-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out)
            os.replace(tmp, sidecar)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(
        self, bucket: str, name: str, *, generation: int | None = None, preconditions: Preconditions = Preconditions()
    ) -> None:
        path = self._object_path(bucket, name, writing=False)
        with self._commit:
            st = _stat(path)
            if st is None or not _is_regular(st.st_mode) or (generation is not None and generation != st.st_mtime_ns):
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")
            preconditions.check(st.st_mtime_ns)
            try:
                path.unlink()
            except FileNotFoundError:
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}") from None
            self._sidecar(bucket, name).unlink(missing_ok=True)

    # -- resumable uploads ------------------------------------------------------------------------

    def start_upload(
        self,
        bucket: str,
        name: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        declared: Mapping[str, str] | None = None,
        total: int | None = None,
        preconditions: Preconditions = Preconditions(),
    ) -> str:
        """A new resumable upload session; its id."""
        self._object_path(bucket, name, writing=True)
        self._check_writable(bucket, name)
        if total is not None and total > self.max_object_size:
            raise GcsError(413, "uploadTooLarge", f"Objects are at most {self.max_object_size} bytes here.")
        session = _Session(
            bucket=bucket,
            name=name,
            content_type=content_type,
            metadata=dict(metadata or {}),
            declared=dict(declared or {}),
            preconditions=preconditions,
            path=self._new_upload_file(),
            total=total,
            touched=time.monotonic(),
        )
        upload_id = secrets.token_hex(16)
        dropped = []
        with self._lock:
            now = time.monotonic()
            for key, old in list(self._sessions.items()):
                if now - old.touched > self._session_ttl:
                    dropped.append(self._sessions.pop(key))
            while len(self._sessions) >= self._max_sessions:
                dropped.append(self._sessions.popitem(last=False)[1])
            self._sessions[upload_id] = session
        for old in dropped:
            old.dropped = True
            if old.lock.acquire(blocking=False):  # else the request under way drops it when it ends
                try:
                    old.path.unlink(missing_ok=True)
                finally:
                    old.lock.release()
        return upload_id

    def _session(self, upload_id: str) -> _Session:
        with self._lock:
            session = self._sessions.get(upload_id)
            if session is None:
                raise GcsError(404, "notFound", "No such upload session (it finished long ago, expired or never was).")
            self._sessions.move_to_end(upload_id)
            session.touched = time.monotonic()
            return session

    def cancel_upload(self, upload_id: str) -> None:
        session = self._session(upload_id)
        with self._lock:
            self._sessions.pop(upload_id, None)
        with session.lock:
            session.path.unlink(missing_ok=True)

    def upload_chunk(
        self,
        upload_id: str,
        content_range: str | None,
        chunks: Iterable[bytes],
        *,
        declared: Mapping[str, str] | None = None,
    ) -> UploadState:
        """One request of a resumable upload. Without ``content_range`` the body is the whole object.
        A chunk is kept whole or not at all (a broken request leaves the session as it was); bytes the
        session already has are skipped; a chunk past them is 400. The last byte completes the object
        (``declared``: the ``X-Goog-Hash`` hashes of the whole object, checked)."""
        session = self._session(upload_id)
        first, last, total = (0, None, None) if content_range is None else parse_content_range(content_range)
        with session.lock:
            try:
                return self._chunk(session, content_range, first, last, total, chunks, declared)
            finally:
                if session.dropped or (session.done is None and not session.path.exists()):
                    session.path.unlink(missing_ok=True)
                    with self._lock:
                        self._sessions.pop(upload_id, None)

    def _chunk(
        self,
        session: _Session,
        content_range: str | None,
        first: int | None,
        last: int | None,
        total: int | None,
        chunks: Iterable[bytes],
        declared: Mapping[str, str] | None,
    ) -> UploadState:
        if session.dropped:
            raise GcsError(404, "notFound", "No such upload session (it was dropped for newer ones).")
        if session.done is not None:
            _drain(chunks)
            return UploadState(session.size, session.done)
        if total is not None:
            if session.total is not None and session.total != total:
                raise _bad(f"The total size changed from {session.total} to {total} during the upload.")
            if total > self.max_object_size:
                raise GcsError(413, "uploadTooLarge", f"Objects are at most {self.max_object_size} bytes here.")
            if total < session.size:
                raise _bad(f"The total size {total} is less than the {session.size} bytes uploaded so far.")
            session.total = total
        if first is None:
            if any(chunks):
                raise _bad("A Content-Range of bytes */TOTAL comes without a body.")
        elif first > session.size:
            raise _bad(f"The upload offset is {first} bytes, past the {session.size} bytes uploaded so far.")
        else:
            self._append(session, first, None if last is None else last - first + 1, chunks)
        if content_range is None:  # the body was the whole object
            if session.total is not None and session.total != session.size:
                raise _bad(f"The upload has {session.size} bytes, not the {session.total} announced.")
            session.total = session.size
        if session.total is not None and session.size == session.total:
            self._finish(session, declared)
        return UploadState(session.size, session.done)

    def _append(self, session: _Session, first: int, length: int | None, chunks: Iterable[bytes]) -> None:
        """Bytes from offset ``first`` (``length`` of them, when the range says), all kept or none."""
        skip = session.size - first
        size, digest, received = session.size, session.digest.copy(), 0
        try:
            with open(session.path, "r+b") as out:
                out.seek(size)
                for chunk in chunks:
                    received += len(chunk)
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                    limit = self.max_object_size if session.total is None else session.total
                    if size + len(chunk) > min(self.max_object_size, limit):
                        if size + len(chunk) > self.max_object_size:
                            raise GcsError(
                                413, "uploadTooLarge", f"Objects are at most {self.max_object_size} bytes here."
                            )
                        raise _bad(f"The upload is longer than the {session.total} bytes announced.")
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                if length is not None and received != length:
                    raise _bad(f"The Content-Range announces {length} bytes; the request carried {received}.")
                out.truncate(size)
        except BaseException:
            try:
                os.truncate(session.path, session.size)  # the chunk is dropped whole
            except OSError:
                pass
            raise
        session.size, session.digest = size, digest

    def _finish(self, session: _Session, declared: Mapping[str, str] | None) -> None:
        """Complete the object; when it cannot be (a hash or a precondition fails), the session ends too."""
        given = {**session.declared, **(declared or {})}
        try:
            session.done = self._place(
                session.bucket,
                session.name,
                session.path,
                session.digest.result(),
                session.content_type,
                session.metadata,
                given,
                session.preconditions,
            )
        except GcsError:
            session.dropped = True
            raise

    def close(self) -> None:
        """Drop the upload sessions and their files."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.path.unlink(missing_ok=True)


def _drain(chunks: Iterable[bytes]) -> None:
    for _ in chunks:
        pass


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _stat(path: Path) -> os.stat_result | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st


def _layout_problem(name: str) -> str | None:
    """Why a directory cannot hold an object of this name, beyond ``BucketDir``'s own rules, or None."""
    if name.endswith("/"):
        return (
            "names ending in '/' (folder placeholders) cannot be stored: the emulator keeps objects as files "
            "and folders as directories"
        )
    return None


def _sorted_entries(path: str) -> builtins.list[tuple[str, str, bool]]:
    """``(sort key, path, is_dir)`` of a directory's files and subdirectories (links skipped), in the
    order of the names they hold: a directory ``d`` sorts as ``d/``."""
    try:
        with os.scandir(path) as scan:
            found = []
            for entry in scan:
                try:
                    if entry.is_symlink():
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        found.append((entry.name + "/", entry.path, True))
                    elif entry.is_file(follow_symlinks=False):
                        found.append((entry.name, entry.path, False))
                except OSError:
                    continue
    except OSError:
        return []
    found.sort(key=lambda item: item[0])
    return found
