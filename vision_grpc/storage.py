"""Where output shards live: a three-method object-store interface, a local directory and Cloud Storage.

The asynchronous calls write their results as JSON objects under a ``gs://`` prefix;
``vision_grpc.outputs`` reads them back through ``Storage`` so that the same code reads the real
service's shards from Cloud Storage (``GcsStorage``) and the emulator's from its directory
(``LocalStorage(emulator.storage_dir)``). Anything with ``list``/``read``/``write`` works, e.g. a
dict-backed fake in tests.

``LocalStorage`` maps ``gs://bucket/path`` to ``ROOT/bucket/path``, exactly as the emulator does,
and refuses URIs that could name a file outside ``ROOT`` (``..``, ``.`` or empty segments,
backslashes, control characters, symbolic links planted inside ``ROOT``). ``GcsStorage`` needs the ``storage`` extra
(``pip install 'vision-grpc[storage]'``, i.e. google-cloud-storage), imported only when it is
created. All calls block; from asyncio use ``asyncio.to_thread``.
"""

from __future__ import annotations

import builtins
import errno
import importlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["GcsStorage", "InvalidUri", "LocalStorage", "Storage", "parse_gs_uri", "storage_for"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{0,221}")  # the emulator's rule: laxer than GCS, never "." or ".."
_TMP_DIR = ".tmp"  # bucket names cannot start with ".", so this never collides with a bucket (as the emulator)
_INSTALL_HINT = "GcsStorage needs google-cloud-storage: pip install 'vision-grpc[storage]'"


@runtime_checkable
class Storage(Protocol):
    """An object store addressed by ``gs://bucket/name`` URIs."""

    def list(self, prefix: str) -> builtins.list[str]:
        """URIs of the objects whose URI starts with ``prefix``, in lexicographic order."""
        ...

    def read(self, uri: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when there is no such object."""
        ...

    def write(self, uri: str, data: bytes) -> None:
        """Create or replace the object; readers see the old or the new bytes, never a mix."""
        ...


class InvalidUri(ValueError):
    """Not a usable ``gs://bucket/object`` URI; ``reason`` says why."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"invalid Cloud Storage URI {uri!r}: {reason}")


def _split(uri: str, *, prefix: bool = False) -> tuple[str, str]:
    """The lenient split used for real Cloud Storage, whose object names may hold anything."""
    if not uri.startswith("gs://"):
        raise InvalidUri(uri, "must start with gs://")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidUri(uri, f"bad bucket name {bucket!r}")
    if not name and not prefix:
        raise InvalidUri(uri, "names no object")
    return bucket, name


def parse_gs_uri(uri: str, *, allow_prefix: bool = False) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``, checked so that it cannot leave a local root.

    A prefix (``allow_prefix``) may name no object and end in a partial segment. Refused: other
    schemes, bad bucket names, ``..``, ``.`` or empty segments, backslashes, control characters.
    """
    if not uri.startswith("gs://"):
        raise InvalidUri(uri, "must start with gs://")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidUri(uri, "bucket names are 1-222 characters of a-z, 0-9, '.', '_', '-', not starting with '.'")
    if not name and not allow_prefix:
        raise InvalidUri(uri, "names no object")
    if any(c in name for c in "\\\0\r\n"):
        raise InvalidUri(uri, "contains a backslash or a control character")
    segments = name.split("/")
    inner = segments[:-1] if allow_prefix else segments
    if name and any(s in ("", ".", "..") for s in inner):
        raise InvalidUri(uri, "has an empty, '.' or '..' path segment")
    return bucket, name


class LocalStorage:
    """A directory standing in for Cloud Storage: ``gs://bucket/path`` is ``root/bucket/path``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path_for(self, uri: str) -> Path:
        """The file behind ``uri``; ``InvalidUri`` (a ``ValueError``) for a URI that could leave the root,
        including through a symbolic link planted inside it (objects are files, never links)."""
        bucket, name = parse_gs_uri(uri)
        path = self.root.joinpath(bucket, *name.split("/"))
        if path.resolve() != path:  # some component is a link (the root itself is resolved once)
            raise InvalidUri(uri, "goes through a symbolic link inside the storage root")
        return path

    def list(self, prefix: str) -> builtins.list[str]:
        bucket, name = parse_gs_uri(prefix if "/" in prefix[len("gs://") :] else prefix + "/", allow_prefix=True)
        bucket_dir = self.root / bucket
        start = bucket_dir.joinpath(*name.split("/")[:-1])
        if not start.is_dir():
            return []
        found: builtins.list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):  # does not descend into linked directories
            for filename in filenames:
                if os.path.islink(os.path.join(dirpath, filename)):
                    continue  # not an object: a link could point outside the root
                object_name = (Path(dirpath) / filename).relative_to(bucket_dir).as_posix()
                if object_name.startswith(name):
                    found.append(f"gs://{bucket}/{object_name}")
        return sorted(found)

    def read(self, uri: str) -> bytes:
        path = self.path_for(uri)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise FileNotFoundError(errno.ENOENT, "no such object", uri) from None

    def write(self, uri: str, data: bytes) -> None:
        """Atomic: the bytes go to a temporary file under ``root/.tmp``, then ``os.replace``."""
        path = self.path_for(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / _TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="object-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


class GcsStorage:
    """Cloud Storage through google-cloud-storage (the ``storage`` extra).

    ``client`` is a ready ``google.cloud.storage.Client``; otherwise one is made with
    ``project`` and ``credentials`` (Application Default Credentials when None). When
    ``STORAGE_EMULATOR_HOST`` is set (``http://host:port``) and no credentials are given, the client
    talks to that endpoint anonymously, so a local fake never triggers a credentials lookup.
    ``project`` is only the client's default project; reading and writing objects do not need it.
    """

    def __init__(self, project: str | None = None, credentials: Any = None, client: Any = None) -> None:
        try:
            storage: Any = importlib.import_module("google.cloud.storage")
            api_exceptions: Any = importlib.import_module("google.api_core.exceptions")
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        self._not_found: type[Exception] = api_exceptions.NotFound
        if client is None:
            if credentials is None and os.environ.get("STORAGE_EMULATOR_HOST"):
                credentials = importlib.import_module("google.auth.credentials").AnonymousCredentials()
            client = storage.Client(project=project, credentials=credentials)
        self.client: Any = client

    def __repr__(self) -> str:
        return f"GcsStorage(project={getattr(self.client, 'project', None)!r})"

    def list(self, prefix: str) -> builtins.list[str]:
        bucket, name = _split(prefix, prefix=True)
        blobs = self.client.list_blobs(bucket, prefix=name or None, fields="items(name),nextPageToken")
        try:
            return sorted(f"gs://{bucket}/{blob.name}" for blob in blobs)
        except self._not_found:  # no such bucket: nothing under the prefix, as for LocalStorage
            return []

    def read(self, uri: str) -> bytes:
        bucket, name = _split(uri)
        try:
            return bytes(self.client.bucket(bucket).blob(name).download_as_bytes())
        except self._not_found:
            raise FileNotFoundError(errno.ENOENT, "no such object", uri) from None

    def write(self, uri: str, data: bytes) -> None:
        """One upload request: Cloud Storage replaces objects atomically."""
        bucket, name = _split(uri)
        content_type = "application/json" if name.endswith(".json") else "application/octet-stream"
        self.client.bucket(bucket).blob(name).upload_from_string(data, content_type=content_type)


def storage_for(uri: str | None = None, *, local_root: str | os.PathLike[str] | None = None) -> Storage:
    """``LocalStorage(local_root)`` when a local root is given, else ``GcsStorage()`` for ``gs://`` URIs.

    ``uri`` (an output prefix or object, optional) is checked to be a ``gs://`` URI: the only kind
    the service writes.
    """
    if uri is not None and not uri.startswith("gs://"):
        raise ValueError(f"no storage for {uri!r}: output URIs start with gs://")
    if local_root is not None:
        return LocalStorage(local_root)
    return GcsStorage()
