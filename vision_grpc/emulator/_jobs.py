"""The ImageAnnotator work: annotating images and file pages, and writing asynchronous outputs.

Inputs come from the storage directory (``gs://``) or inline ``content`` (image calls and the
synchronous file call only). Asynchronous results are written where the service writes them:
``{prefix}output-{first}-to-{last}.json`` shards of ``output_config.batch_size`` (default 20)
pages or images, each a proto3 JSON ``AnnotateFileResponse`` (files) or
``BatchAnnotateImagesResponse`` (images). A job reads every input before writing anything, so
a failed job leaves no partial output. Errors are ``ApiError``; the caller decides whether they
fail the call (synchronous) or the operation (asynchronous). An image that cannot be read (a
missing object) is not such an error: as on the service, only its own ``responses[i].error`` says
so (NOT_FOUND, "Error opening file: gs://bucket/name.") and the other images are annotated; a
missing *file* of a files request fails the whole operation, as on the service.

An asynchronous job (``run_async``, on a finisher worker) annotates one image or page at a time,
checks ``stop()`` before each one (a cancelled operation: ``JobStopped``, nothing written) and
keeps each finished shard as compressed JSON until the last one is done, so its memory is one
page's pixels plus its outputs, compressed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from vision_grpc._core.methods import VERSIONS, MethodInfo
from vision_grpc._core.validate import MAX_ASYNC_FILE_PAGES
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc.emulator._annotate import AnnotatorRegistry
from vision_grpc.emulator._buckets import BucketDir, InvalidUri, ObjectNotFound, check_name, parse_gs_uri
from vision_grpc.emulator._image import ImageInput
from vision_grpc.emulator._pages import MIME_TYPES, UnreadableDocument, count_pages
from vision_grpc.emulator._status import copy_across, invalid_argument, not_found, status
from vision_grpc.errors import api_error

__all__ = ["DEFAULT_BATCH_SIZE", "JobStopped", "Jobs"]

T = TypeVar("T")
DEFAULT_BATCH_SIZE = 20
MAX_BATCH_SIZE = 100
DEFAULT_SYNC_PAGES = 5


def _module(method: MethodInfo) -> ModuleType:
    return VERSIONS[method.version or "v1"]


class JobStopped(Exception):
    """``run_async`` 's ``stop()`` said so (the operation was cancelled) before its outputs were written."""


def _never() -> bool:
    return False


def _packed(shard: Message) -> bytes:
    """A shard's proto3 JSON, compressed until it is written (OCR output compresses about tenfold)."""
    json_text = json_format.MessageToJson(shard, indent=None, descriptor_pool=JSON_TYPES)
    return zlib.compress(json_text.encode("utf-8"), 1)


class Jobs:
    """Annotates requests of either API version against ``storage`` with ``annotators``."""

    def __init__(self, storage: BucketDir, annotators: AnnotatorRegistry) -> None:
        self.storage = storage
        self.annotators = annotators

    # -- reading inputs -------------------------------------------------------------------------

    def read(self, uri: str, field: str) -> bytes:
        """The object's bytes; NOT_FOUND naming the URI, or INVALID_ARGUMENT for a bad URI."""
        try:
            return self.storage.read(uri)
        except InvalidUri as exc:
            raise invalid_argument(field, exc.reason) from None
        except ObjectNotFound:
            raise not_found(f"No such object: {uri}") from None

    def _image(self, image: Any, field: str) -> ImageInput | status_pb2.Status:
        """The image's bytes, or this image's error: an http(s) URL (the emulator does not fetch
        them) or a missing object (as the service: "Error opening file: gs://b/name.", the other
        images of the request are still annotated)."""
        if image.content:
            return ImageInput(content=image.content)
        uri = image.source.image_uri or image.source.gcs_image_uri
        source_field = f"{field}.image.source.{'image_uri' if image.source.image_uri else 'gcs_image_uri'}"
        if not uri:
            raise invalid_argument(f"{field}.image", "must have content or a source URI")
        if not uri.startswith("gs://"):
            message = "the emulator does not fetch http(s) image URLs; send content or a gs:// URI"
            return status(code_pb2.UNIMPLEMENTED, message)
        try:
            return ImageInput(content=self.storage.read(uri), uri=uri)
        except InvalidUri as exc:
            raise invalid_argument(source_field, exc.reason) from None
        except ObjectNotFound:
            return status(code_pb2.NOT_FOUND, f"Error opening file: {uri}.")

    def annotate_image(self, module: ModuleType, item: Any, field: str) -> Any:
        """One image's ``AnnotateImageResponse``; a per-image failure is in its ``error``."""
        image = self._image(item.image, field)
        if isinstance(image, status_pb2.Status):
            response: Any = module.AnnotateImageResponse()
            copy_across(response.error, image)
            return response
        return self.annotators.annotate(image, item.features, module.AnnotateImageResponse)

    def _pages(
        self, module: ModuleType, data: bytes, mime: str, uri: str, item: Any, pages: Sequence[int]
    ) -> list[Any]:
        return [
            self.annotators.annotate(ImageInput(data, mime, uri, page), item.features, module.AnnotateImageResponse)
            for page in pages
        ]

    # -- synchronous calls ----------------------------------------------------------------------

    def batch_annotate_images(self, method: MethodInfo, request: Any) -> Any:
        module = _module(method)
        reply: Any = method.response_type()
        for index, item in enumerate(request.requests):
            reply.responses.append(self.annotate_image(module, item, f"requests[{index}]"))
        return reply

    def batch_annotate_files(self, method: MethodInfo, request: Any) -> Any:
        module = _module(method)
        reply: Any = method.response_type()
        for index, item in enumerate(request.requests):
            reply.responses.append(self._annotate_file(module, item, f"requests[{index}]"))
        return reply

    def _annotate_file(self, module: ModuleType, item: Any, field: str) -> Any:
        config = item.input_config
        _check_mime(config.mime_type, f"{field}.input_config.mime_type")
        if len(item.pages) > DEFAULT_SYNC_PAGES:
            raise invalid_argument(f"{field}.pages", f"at most {DEFAULT_SYNC_PAGES} pages per file")
        uri = config.gcs_source.uri
        if config.content:
            data = config.content
        elif uri:
            data = self.read(uri, f"{field}.input_config.gcs_source.uri")
        else:
            raise invalid_argument(f"{field}.input_config", "must have content or gcs_source.uri")
        reply: Any = module.AnnotateFileResponse()
        reply.input_config.CopyFrom(config)
        reply.input_config.ClearField("content")  # not echoed: it can be megabytes
        try:
            total = count_pages(data, config.mime_type)
            pages = select_pages(item.pages, total)
        except UnreadableDocument as exc:
            copy_across(reply.error, status(code_pb2.INVALID_ARGUMENT, f"{uri or 'inline content'}: {exc}"))
            return reply
        reply.total_pages = total
        reply.responses.extend(self._pages(module, data, config.mime_type, uri, item, pages))
        return reply

    # -- asynchronous calls ---------------------------------------------------------------------

    def check_async(self, method: MethodInfo, request: Any) -> None:
        """Errors the service reports at submit time, before creating an operation; and what the emulator's
        directory could not store (names too long, an output under an existing object)."""
        if method.name == "AsyncBatchAnnotateImages":
            self._check_output(request.output_config, "output_config", len(request.requests))
            return
        for index, item in enumerate(request.requests):
            field = f"requests[{index}]"
            config = item.input_config
            if config.content:
                rule = "inline content is not accepted by AsyncBatchAnnotateFiles; use gcs_source.uri"
                raise invalid_argument(f"{field}.input_config.content", rule)
            _check_uri(config.gcs_source.uri, f"{field}.input_config.gcs_source.uri", prefix=False)
            _check_mime(config.mime_type, f"{field}.input_config.mime_type")
            self._check_output(item.output_config, f"{field}.output_config", None)

    def _check_output(self, output_config: Any, field: str, items: int | None) -> None:
        """The output prefix, and the shards' names: all of them for ``items`` images; for a file (page count
        unknown yet) the longest name it could have."""
        _check_output(output_config, field)
        uri_field = f"{field}.gcs_destination.uri"
        try:
            self.storage.check_writable(output_config.gcs_destination.uri, prefix=True)
            if items is None:
                check_name(_shard_uri(output_config, MAX_ASYNC_FILE_PAGES, MAX_ASYNC_FILE_PAGES))
                return
            for first, last in _ranges(items, output_config.batch_size):
                self.storage.check_writable(_shard_uri(output_config, first, last))
        except InvalidUri as exc:
            raise invalid_argument(uri_field, exc.reason) from None

    def run_async(self, method: MethodInfo, request: Any, *, stop: Callable[[], bool] = _never) -> Any:
        """Annotate everything, write the output shards, return the operation's response message.

        ``stop()`` is asked before each image or page and before writing; ``JobStopped`` when it says so.
        """
        module = _module(method)
        result: Any = method.lro_response_type() if method.lro_response_type else None
        shards: list[tuple[str, str, bytes]] = []  # (field of the output URI, shard URI, packed shard)
        if method.name == "AsyncBatchAnnotateImages":
            output = request.output_config
            responses = (
                self.annotate_image(module, r, f"requests[{i}]") for i, r in _checked(enumerate(request.requests), stop)
            )
            for first, last, chunk in _chunks(responses, output.batch_size):
                packed = _packed(module.BatchAnnotateImagesResponse(responses=chunk))
                shards.append(("output_config.gcs_destination.uri", _shard_uri(output, first, last), packed))
            result.output_config.CopyFrom(output)
        else:
            for index, item in enumerate(request.requests):
                shards.extend(self._file_shards(module, item, f"requests[{index}]", stop))
                result.responses.add().output_config.CopyFrom(item.output_config)
        if stop():
            raise JobStopped()
        for field, uri, _ in shards:  # every name checked before the first write: no partial output
            self._store(field, uri, None)
        for field, uri, packed in shards:
            self._store(field, uri, zlib.decompress(packed))
        return result

    def _store(self, field: str, uri: str, data: bytes | None) -> None:
        """Write ``data`` at ``uri`` (None: only check that it could be); INVALID_ARGUMENT naming ``field``
        for a name the directory cannot hold (e.g. an object created at a "directory" of it since submit)."""
        try:
            if data is None:
                self.storage.check_writable(uri)
            else:
                self.storage.write(uri, data)
        except InvalidUri as exc:
            raise invalid_argument(field, exc.reason) from None

    def _file_shards(
        self, module: ModuleType, item: Any, field: str, stop: Callable[[], bool]
    ) -> list[tuple[str, str, bytes]]:
        config = item.input_config
        uri = config.gcs_source.uri
        data = self.read(uri, f"{field}.input_config.gcs_source.uri")
        try:
            total = count_pages(data, config.mime_type)
        except UnreadableDocument as exc:
            raise api_error(code_pb2.INVALID_ARGUMENT, f"{uri}: {exc}") from None
        if total > MAX_ASYNC_FILE_PAGES:
            message = f"{uri} has {total} pages; files:asyncBatchAnnotate reads at most {MAX_ASYNC_FILE_PAGES}"
            raise api_error(code_pb2.INVALID_ARGUMENT, message)
        responses = (
            self.annotators.annotate(
                ImageInput(data, config.mime_type, uri, page), item.features, module.AnnotateImageResponse
            )
            for page in _checked(range(1, total + 1), stop)
        )
        return [
            (
                f"{field}.output_config.gcs_destination.uri",
                _shard_uri(item.output_config, first, last),
                _packed(module.AnnotateFileResponse(input_config=config, responses=chunk)),
            )
            for first, last, chunk in _chunks(responses, item.output_config.batch_size)
        ]


def select_pages(pages: Sequence[int], total: int) -> list[int]:
    """1-based pages to annotate: ``pages`` (negative counts from the end) or the first five."""
    if not pages:
        return list(range(1, min(total, DEFAULT_SYNC_PAGES) + 1))
    selected: list[int] = []
    for page in pages:
        resolved = page if page > 0 else total + 1 + page
        if page == 0 or not 1 <= resolved <= total:
            raise UnreadableDocument(f"page {page} is out of range: the file has {total} page(s)")
        selected.append(resolved)
    return selected


def _ranges(count: int, batch_size: int) -> list[tuple[int, int]]:
    """1-based ``(first, last)`` of each shard of ``count`` items."""
    size = batch_size or DEFAULT_BATCH_SIZE
    return [(first + 1, min(first + size, count)) for first in range(0, count, size)]


def _checked(items: Iterable[T], stop: Callable[[], bool]) -> Iterator[T]:
    """``items``, asking ``stop()`` before each; ``JobStopped`` when it says so."""
    for item in items:
        if stop():
            raise JobStopped()
        yield item


def _chunks(items: Iterable[Any], batch_size: int) -> Iterator[tuple[int, int, list[Any]]]:
    """1-based ``(first, last, items)`` of each shard, as the items come (one shard held at a time)."""
    size = batch_size or DEFAULT_BATCH_SIZE
    chunk: list[Any] = []
    first = 1
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield first, first + size - 1, chunk
            first, chunk = first + size, []
    if chunk:
        yield first, first + len(chunk) - 1, chunk


def _shard_uri(output_config: Any, first: int, last: int) -> str:
    return f"{output_config.gcs_destination.uri}output-{first}-to-{last}.json"


def _check_uri(uri: str, field: str, *, prefix: bool) -> None:
    if not uri:
        raise invalid_argument(field, "is required")
    try:
        check_name(uri, prefix=prefix)
    except InvalidUri as exc:
        raise invalid_argument(field, exc.reason) from None


def _check_output(output_config: Any, field: str) -> None:
    uri_field = f"{field}.gcs_destination.uri"
    _check_uri(output_config.gcs_destination.uri, uri_field, prefix=True)
    try:
        parse_gs_uri(_shard_uri(output_config, 1, 1))
    except InvalidUri:
        raise invalid_argument(uri_field, "must name a bucket and an object prefix, like gs://bucket/out/") from None
    if not 0 <= output_config.batch_size <= MAX_BATCH_SIZE:
        rule = f"must be in [1, {MAX_BATCH_SIZE}] (0 means {DEFAULT_BATCH_SIZE})"
        raise invalid_argument(f"{field}.batch_size", rule)


def _check_mime(mime_type: str, field: str) -> None:
    if mime_type not in MIME_TYPES:
        raise invalid_argument(field, f"must be one of {', '.join(MIME_TYPES)}")
