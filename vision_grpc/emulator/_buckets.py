"""``BucketDir``: the directory standing in for Cloud Storage: ``gs://bucket/path`` is ``DIR/bucket/path``.

The emulator reads its inputs and writes its output shards here, and tests put and get objects
through the same mapping (``vision_grpc.testing.Emulator.put_object``). Writes are atomic (a temp
file renamed into place), so a reader never sees half a JSON shard, as with real objects. URIs are
checked strictly (no ``..``, no empty segments, valid bucket names) so that no URI can name a file
outside ``DIR``. It is a ``vision_grpc.storage.LocalStorage`` with what a server needs on top:
the directory is created, a missing object is ``ObjectNotFound``, and listings are bounded.
"""

from __future__ import annotations

import os

from vision_grpc.storage import InvalidUri, LocalStorage, parse_gs_uri

__all__ = ["BucketDir", "InvalidUri", "ObjectNotFound", "parse_gs_uri"]


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

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).is_file()

    def read(self, uri: str) -> bytes:
        """The object's bytes; ``ObjectNotFound`` when there is none."""
        try:
            return super().read(uri)
        except FileNotFoundError:
            raise ObjectNotFound(uri) from None

    def list(self, prefix: str, *, limit: int = 10_000) -> list[str]:
        """Sorted URIs of the objects whose URI starts with ``prefix`` (at most ``limit``)."""
        return super().list(prefix)[:limit]
