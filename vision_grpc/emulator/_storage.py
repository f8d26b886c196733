"""A directory standing in for Cloud Storage: ``gs://bucket/path`` is the file ``DIR/bucket/path``.

The emulator reads its inputs and writes its output shards here, and tests put and get objects
through the same mapping (``vision_grpc.testing.Emulator.put_object``). Writes are atomic (a temp
file renamed into place), so a reader never sees half a JSON shard, as with real objects. URIs are
checked strictly (no ``..``, no empty segments, valid bucket names) so that no URI can name a file
outside ``DIR``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

__all__ = ["InvalidUri", "ObjectNotFound", "Storage", "parse_gs_uri"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{0,221}")  # laxer than GCS (3-63): short test names pass
_TMP_DIR = ".tmp"  # bucket names cannot start with ".", so this never collides with a bucket


class InvalidUri(ValueError):
    """Not a usable ``gs://bucket/object`` URI; ``reason`` says why."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"invalid Cloud Storage URI {uri!r}: {reason}")


class ObjectNotFound(LookupError):
    """No object at ``uri``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"object not found: {uri}")


def parse_gs_uri(uri: str, *, allow_prefix: bool = False) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``; a prefix may have an empty or ``/``-ended object."""
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


class Storage:
    """Objects under ``root``; thread-safe because every write is a rename."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, uri: str) -> Path:
        bucket, name = parse_gs_uri(uri)
        return self.root.joinpath(bucket, *name.split("/"))

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).is_file()

    def read(self, uri: str) -> bytes:
        """The object's bytes; ``ObjectNotFound`` when there is none."""
        path = self.path_for(uri)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(uri) from None

    def write(self, uri: str, data: bytes) -> None:
        """Create or replace the object atomically (temp file in ``root``, then rename)."""
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

    def list(self, prefix: str, *, limit: int = 10_000) -> list[str]:
        """Sorted URIs of the objects whose URI starts with ``prefix`` (at most ``limit``)."""
        bucket, name = parse_gs_uri(prefix if "/" in prefix[5:] else prefix + "/", allow_prefix=True)
        bucket_dir = self.root / bucket
        start = bucket_dir.joinpath(*name.split("/")[:-1])
        if not start.is_dir():
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for filename in sorted(filenames):
                object_name = (Path(dirpath) / filename).relative_to(bucket_dir).as_posix()
                if object_name.startswith(name):
                    found.append(f"gs://{bucket}/{object_name}")
        return sorted(found)[:limit]
