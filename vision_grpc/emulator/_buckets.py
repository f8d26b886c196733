"""``BucketDir``: the directory standing in for Cloud Storage: ``gs://bucket/path`` is ``DIR/bucket/path``.

The emulator reads its inputs and writes its output shards here, and tests put and get objects
through the same mapping (``vision_grpc.testing.Emulator.put_object``). Writes are atomic (a temp
file renamed into place), so a reader never sees half a JSON shard, as with real objects. URIs are
checked strictly (no ``..``, no empty segments, valid bucket names) so that no URI can name a file
outside ``DIR``. It is a ``vision_grpc.storage.LocalStorage`` with what a server needs on top:
the directory is created, a missing object is ``ObjectNotFound``, and listings are bounded.

Names a file system cannot hold are ``InvalidUri`` (with a ``reason`` naming the rule), never a raw
``OSError``: object names over 1024 bytes of UTF-8 (the Cloud Storage limit, ``check_name``), a path
segment over ``MAX_SEGMENT_BYTES`` (255, what file systems allow; Cloud Storage has no such limit), and
the one thing a flat namespace allows and files do not: an object that is also the "directory" of
others (``gs://b/a`` and ``gs://b/a/x.json``; ``check_writable``, and ``write`` itself).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from vision_grpc.storage import InvalidUri, LocalStorage, parse_gs_uri

__all__ = [
    "MAX_OBJECT_NAME_BYTES",
    "MAX_SEGMENT_BYTES",
    "BucketDir",
    "InvalidUri",
    "ObjectNotFound",
    "check_name",
    "parse_gs_uri",
]

MAX_OBJECT_NAME_BYTES = 1024  # Cloud Storage: object names are 1-1024 bytes of UTF-8
MAX_SEGMENT_BYTES = 255  # a file name (NAME_MAX on Linux, macOS and Windows file systems)
_NOT_STORABLE = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EEXIST, errno.EISDIR)


def check_name(uri: str, *, prefix: bool = False) -> tuple[str, str]:
    """``parse_gs_uri``, plus the limits on names: ``InvalidUri`` past 1024 bytes or with a segment
    over 255 bytes. A ``prefix`` is checked as the start of names (it may end with ``/``)."""
    bucket, name = parse_gs_uri(uri, allow_prefix=prefix)
    reason = _too_long(name)
    if reason is not None:
        raise InvalidUri(uri, reason)
    return bucket, name


def _too_long(name: str) -> str | None:
    if len(name.encode("utf-8")) > MAX_OBJECT_NAME_BYTES:
        return f"object names are at most {MAX_OBJECT_NAME_BYTES} bytes of UTF-8 (Cloud Storage)"
    if any(len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES for segment in name.split("/")):
        return f"the emulator keeps objects as files: a path segment is at most {MAX_SEGMENT_BYTES} bytes"
    return None


class ObjectNotFound(LookupError):
    """No object at ``uri``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"object not found: {uri}")


class BucketDir(LocalStorage):
    """``vision_grpc.storage.LocalStorage`` (same mapping, atomic writes, strict URIs) that creates
    its root, says ``ObjectNotFound`` for a missing object and bounds listings."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, uri: str) -> Path:
        """The file behind ``uri``; ``InvalidUri`` for a URI that could leave the root or names too long."""
        check_name(uri)
        return super().path_for(uri)

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).is_file()

    def read(self, uri: str) -> bytes:
        """The object's bytes; ``ObjectNotFound`` when there is none."""
        try:
            return super().read(uri)
        except FileNotFoundError:
            raise ObjectNotFound(uri) from None

    def write(self, uri: str, data: bytes) -> None:
        """``LocalStorage.write``; a name the directory cannot hold is ``InvalidUri``, not an ``OSError``."""
        self.check_writable(uri)
        try:
            super().write(uri, data)
        except OSError as exc:  # an object created under our feet since the check
            if exc.errno not in _NOT_STORABLE:
                raise
            self.check_writable(uri)
            raise InvalidUri(uri, f"the emulator cannot store it as a file ({os.strerror(exc.errno)})") from None

    def check_writable(self, uri: str, *, prefix: bool = False) -> None:
        """``InvalidUri`` unless objects can be written at ``uri`` (or, with ``prefix``, under it): no
        object may stand where a "directory" of the name is, nor objects under the object's own name."""
        bucket, name = check_name(uri, prefix=prefix)
        segments = name.split("/")
        parents = segments[:-1]  # a prefix's last segment is only the start of names
        path = self.root / bucket
        for depth, segment in enumerate(parents):
            path = path / segment
            if path.is_file():
                taken = "/".join(parents[: depth + 1])
                rule = (
                    f"gs://{bucket}/{taken} is an object; the emulator keeps objects as files, "
                    "so it cannot store others under it"
                )
                raise InvalidUri(uri, rule)
            if not path.is_dir():
                return  # nothing exists further down
        if not prefix and (path / segments[-1]).is_dir():
            rule = "objects exist under this name; the emulator keeps objects as files, so it cannot store it"
            raise InvalidUri(uri, rule)

    def list(self, prefix: str, *, limit: int = 10_000) -> list[str]:
        """Sorted URIs of the objects whose URI starts with ``prefix`` (at most ``limit``)."""
        _, name = parse_gs_uri(prefix if "/" in prefix[len("gs://") :] else prefix + "/", allow_prefix=True)
        if _too_long(name) is not None:
            return []  # no object can have such a name
        return super().list(prefix)[:limit]
