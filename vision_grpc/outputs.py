"""Reading asynchronous results back: output shards as typed per-page and per-image results.

``files:asyncBatchAnnotate`` and ``images:asyncBatchAnnotate`` answer with output prefixes only;
the results are JSON objects the service writes under each prefix, ``output-{first}-to-{last}.json``,
``batch_size`` pages (or images) each: an ``AnnotateFileResponse`` per file shard, a
``BatchAnnotateImagesResponse`` per image shard. Reading them back correctly means listing them,
ordering them numerically (``output-10-to-11`` comes after ``output-2-to-3``, unlike the listing),
checking that no page is missing or duplicated, parsing them, and tying every page to its input
file. ``read_file_results`` and ``read_image_results`` do that and fail loudly with
``OutputError`` (naming the object and what is wrong) rather than return partial text::

    storage = GcsStorage()                       # or LocalStorage(emulator.storage_dir)
    pages = list(read_file_results(operation, storage=storage))
    print(document_text(pages))

Shards are listed and their names checked (gaps, overlaps) before anything of an input is
yielded; each shard is then read and parsed when the iteration reaches it, so memory stays at one
shard and a corrupt shard raises mid-way (``list()`` the iterator for all-or-nothing). A page or image
that failed is still a result, with its ``error`` set; ``raise_for_errors(results)`` turns any such
failure into ``ItemErrors`` for code that wants all or nothing. Storage reads
block and there is no async twin: from asyncio, iterate in a thread, e.g.
``pages = await asyncio.to_thread(lambda: list(read_file_results(op, storage=storage)))``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from google.protobuf import json_format

from vision_grpc._client_base import OperationBase
from vision_grpc._core.methods import VERSIONS
from vision_grpc._flows.lro import result_of
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc.errors import ItemErrors, VisionError
from vision_grpc.storage import Storage

__all__ = [
    "ImageResult",
    "OutputError",
    "PageResult",
    "document_text",
    "page_text",
    "raise_for_errors",
    "read_file_results",
    "read_image_results",
]

SHARD_NAME = re.compile(r"output-(\d+)-to-(\d+)\.json")
_FILE_ONLY_KEYS = {"inputConfig", "input_config", "totalPages", "total_pages"}


class OutputError(VisionError):
    """An output shard (or the set of shards under a prefix) is missing, corrupt or not what it should be.

    ``uri`` is the gs:// object (or prefix) at fault and ``reason`` says what is wrong.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class _Annotated:
    """``text`` and ``error`` of a result's ``AnnotateImageResponse``."""

    response: Any

    @property
    def text(self) -> str:
        """``full_text_annotation.text``; ``''`` when there is none (no text, or it failed)."""
        return str(self.response.full_text_annotation.text)

    @property
    def error(self) -> Any:
        """The ``google.rpc.Status`` when annotating failed (fully or for some features), else None."""
        error = self.response.error
        return error if self.response.HasField("error") and error.code else None


@dataclass(frozen=True)
class PageResult(_Annotated):
    """One page of one input file: its ``AnnotateImageResponse`` and the shard it came from."""

    input_uri: str
    page_number: int  # 1-based
    response: Any  # AnnotateImageResponse of the API version read (v1 or v1p4beta1)
    shard_uri: str

    @property
    def label(self) -> str:
        """``gs://b/doc.pdf page 2``: how messages name this page."""
        return f"{self.input_uri} page {self.page_number}"


@dataclass(frozen=True)
class ImageResult(_Annotated):
    """One image of an async images request: ``index`` is its 0-based position in ``requests``."""

    index: int
    image_uri: str  # context.uri when the service set it, else ''
    response: Any  # AnnotateImageResponse
    shard_uri: str

    @property
    def label(self) -> str:
        """``image 0 gs://b/a.png`` (``image 0`` when the service did not say the URI): how messages name it."""
        return f"image {self.index} {self.image_uri}".rstrip()


@dataclass(frozen=True)
class _Shard:
    uri: str
    first: int
    last: int


# -- sources ---------------------------------------------------------------------------------------


def _resolve(source: object, kind: str, version: str | None) -> tuple[ModuleType, list[str]]:
    """The API module and the output prefixes of ``source`` (``kind``: "Files" or "Images")."""
    if version is not None and version not in VERSIONS:
        raise ValueError(f"version must be one of {sorted(VERSIONS)}, got {version!r}")
    if isinstance(source, str):
        if not source.startswith("gs://"):
            raise ValueError(f"output prefixes are gs:// URIs, got {source!r}")
        return VERSIONS[version or "v1"], [source]
    message: Any = result_of(source.proto) if isinstance(source, OperationBase) else source
    for name, module in VERSIONS.items():
        if isinstance(message, getattr(module, f"AsyncBatchAnnotate{kind}Response")):
            if version is not None and version != name:
                raise ValueError(f"version={version!r} but the source is a {name} response")
            if kind == "Files":
                return module, [r.output_config.gcs_destination.uri for r in message.responses]
            return module, [message.output_config.gcs_destination.uri]
    what = type(message).__name__
    raise TypeError(f"expected a done Operation, an AsyncBatchAnnotate{kind}Response or a gs:// prefix, got {what}")


def _ordered_shards(prefix: str, storage: Storage, unit: str) -> list[_Shard]:
    """The shards under ``prefix`` in numeric order, checked to cover 1..N once each."""
    if not prefix.startswith("gs://"):
        raise OutputError(prefix or "''", "is not a gs:// output prefix")
    shards, deeper = [], set()
    for uri in storage.list(prefix):
        match = SHARD_NAME.fullmatch(uri[len(prefix) :]) if uri.startswith(prefix) else None
        if match:
            shards.append(_Shard(uri, int(match[1]), int(match[2])))
        elif deeper_match := SHARD_NAME.search(uri):
            deeper.add(uri[: deeper_match.start()])
    if not shards:
        hint = f"; shards are under {', '.join(sorted(deeper)[:3])}: read each prefix" if deeper else ""
        raise OutputError(prefix, f"no output shards (output-N-to-M.json) directly under this prefix{hint}")
    shards.sort(key=lambda s: (s.first, s.last))
    expected = 1
    for shard in shards:
        if not 1 <= shard.first <= shard.last:
            raise OutputError(shard.uri, f"names no valid {unit} range ({shard.first} to {shard.last})")
        if shard.first > expected:
            missing = _span(unit, expected, shard.first - 1)
            raise OutputError(prefix, f"missing {missing}: no shard covers it (the next one is {shard.uri})")
        if shard.first < expected:
            twice = _span(unit, shard.first, min(shard.last, expected - 1))
            raise OutputError(shard.uri, f"overlaps an earlier shard under {prefix} on {twice}")
        expected = shard.last + 1
    return shards


def _span(unit: str, first: int, last: int) -> str:
    return f"{unit} {first}" if first == last else f"{unit}s {first}-{last}"


def _parse(storage: Storage, uri: str, cls: Any, keys: set[str], foreign: set[str] | None = None) -> Any:
    """Read and parse one shard into ``cls``.

    ``keys``: top-level JSON keys of which one must be present; ``foreign``: keys that betray
    another message (an ``AnnotateFileResponse`` where images were expected).
    """
    try:
        data = storage.read(uri)
    except FileNotFoundError:
        raise OutputError(uri, "was listed but cannot be read any more (deleted or replaced meanwhile?)") from None
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise OutputError(uri, f"is not valid JSON, so it is truncated or corrupt ({exc})") from None
    name = cls.DESCRIPTOR.name
    if not isinstance(obj, dict) or not keys & obj.keys():
        found = f"keys {sorted(obj)[:5]}" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}"
        raise OutputError(
            uri, f"is not the expected {name}: expected a JSON object with {' or '.join(sorted(keys))}, found {found}"
        )
    if foreign and foreign & obj.keys():
        raise OutputError(
            uri,
            f"is not the expected {name}: it has {sorted(foreign & obj.keys())}, fields of an "
            "AnnotateFileResponse (a files output)",
        )
    message = cls()
    try:
        json_format.ParseDict(obj, message, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
    except json_format.ParseError as exc:
        raise OutputError(uri, f"is not a valid {name}: {exc}") from None
    return message


def _check_count(shard: _Shard, count: int, unit: str) -> None:
    expected = shard.last - shard.first + 1
    if count != expected:
        raise OutputError(
            shard.uri,
            f"holds {count} {unit} response(s) but its name says {expected} "
            f"({unit}s {shard.first}-{shard.last}): partial or not a Vision output shard",
        )


# -- files -----------------------------------------------------------------------------------------


def read_file_results(source: object, *, storage: Storage, version: str | None = None) -> Iterator[PageResult]:
    """Every page of every input file of an async files request, in input then page order.

    ``source``: a done ``Operation``/``AsyncOperation`` of ``async_batch_annotate_files`` (a failed
    one raises its ``OperationError``), its ``AsyncBatchAnnotateFilesResponse`` (v1 or v1p4beta1),
    or one gs:// output prefix. Shards are parsed as the response's API version; for a prefix,
    ``version`` (default "v1"). ``OutputError`` for missing, overlapping, corrupt or foreign shards.
    """
    module, prefixes = _resolve(source, "Files", version)
    return (page for prefix in prefixes for page in _read_file_prefix(module, prefix, storage))


def _read_file_prefix(module: ModuleType, prefix: str, storage: Storage) -> Iterator[PageResult]:
    shards = _ordered_shards(prefix, storage, "page")
    input_uri: str | None = None
    for shard in shards:
        message = _parse(storage, shard.uri, module.AnnotateFileResponse, {"responses", "error"})
        uri = _input_uri_of(message, shard)
        if input_uri is not None and uri != input_uri:
            raise OutputError(shard.uri, f"is for {uri}, but the shards before it under {prefix} are for {input_uri}")
        input_uri = uri
        if message.total_pages and shards[-1].last != message.total_pages:
            raise OutputError(
                prefix, f"{uri} has {message.total_pages} pages but the shards cover pages 1-{shards[-1].last}"
            )
        yield from _file_pages(module, message, shard, uri)


def _input_uri_of(message: Any, shard: _Shard) -> str:
    uri = message.input_config.gcs_source.uri or next((r.context.uri for r in message.responses if r.context.uri), "")
    if not uri:
        raise OutputError(
            shard.uri,
            "names no input file (neither inputConfig.gcsSource.uri nor context.uri): "
            "not an AnnotateFileResponse shard",
        )
    return str(uri)


def _file_pages(module: ModuleType, message: Any, shard: _Shard, input_uri: str) -> Iterator[PageResult]:
    if not message.responses and message.error.code:
        # The whole range failed: one result per page, each carrying the file's error.
        for number in range(shard.first, shard.last + 1):
            failed = module.AnnotateImageResponse(error=message.error)
            failed.context.uri, failed.context.page_number = input_uri, number
            yield PageResult(input_uri, number, failed, shard.uri)
        return
    _check_count(shard, len(message.responses), "page")
    for number, response in enumerate(message.responses, start=shard.first):
        if response.context.page_number and response.context.page_number != number:
            raise OutputError(
                shard.uri, f"holds page {response.context.page_number} where its name says page {number} should be"
            )
        yield PageResult(input_uri, number, response, shard.uri)


# -- images ----------------------------------------------------------------------------------------


def read_image_results(source: object, *, storage: Storage, version: str | None = None) -> Iterator[ImageResult]:
    """Every image of an async images request, in request order (``ImageResult.index`` 0, 1, ...).

    ``source``: a done ``Operation``/``AsyncOperation`` of ``async_batch_annotate_images``, its
    ``AsyncBatchAnnotateImagesResponse`` (v1 or v1p4beta1), or the gs:// output prefix (parsed as
    ``version``, default "v1"). ``OutputError`` as for ``read_file_results``.
    """
    module, prefixes = _resolve(source, "Images", version)
    return _iter_images(module, prefixes[0], storage)


def _iter_images(module: ModuleType, prefix: str, storage: Storage) -> Iterator[ImageResult]:
    for shard in _ordered_shards(prefix, storage, "image"):
        message = _parse(storage, shard.uri, module.BatchAnnotateImagesResponse, {"responses"}, _FILE_ONLY_KEYS)
        _check_count(shard, len(message.responses), "image")
        for index, response in enumerate(message.responses, start=shard.first - 1):
            yield ImageResult(index, str(response.context.uri), response, shard.uri)


# -- errors ----------------------------------------------------------------------------------------

Result = TypeVar("Result", PageResult, ImageResult)


def raise_for_errors(results: Iterable[Result]) -> list[Result]:
    """All of ``results`` as a list, or ``ItemErrors`` when any of them carries an ``error``.

    ``pages = raise_for_errors(read_file_results(operation, storage=storage))``: every page (image)
    is read first, then ``vision_grpc.errors.ItemErrors`` names each failed one with its mapped
    ``ApiError`` (``.failed``), and carries the failed results (``.items``) and how many were read
    (``.total``). A page whose features failed only in part (text, but an error too) counts as failed.
    """
    items = list(results)
    failed = [result for result in items if result.error is not None]
    if failed:
        unit = "page" if isinstance(failed[0], PageResult) else "image"
        raise ItemErrors([(result.label, result.error) for result in failed], len(items), unit, failed)
    return items


# -- text ------------------------------------------------------------------------------------------


def _one_input(results: Iterable[PageResult], input_uri: str | None) -> list[PageResult]:
    pages = [page for page in results if input_uri is None or page.input_uri == input_uri]
    inputs = list(dict.fromkeys(page.input_uri for page in pages))
    if len(inputs) > 1:
        shown = ", ".join(inputs[:3]) + (", ..." if len(inputs) > 3 else "")
        raise ValueError(f"the results cover {len(inputs)} input files ({shown}); pass input_uri= to choose one")
    return sorted(pages, key=lambda page: page.page_number)


def document_text(results: Iterable[PageResult], *, separator: str = "\n", input_uri: str | None = None) -> str:
    """The text of one input file: its pages' ``text`` in page order, joined by ``separator``.

    Pages without text (blank, or failed: check ``PageResult.error``) contribute ``''``; a page
    can carry text and an error when only some of its features failed. Results covering several
    input files need ``input_uri=`` to pick one (``ValueError`` otherwise).
    """
    return separator.join(page.text for page in _one_input(results, input_uri))


def page_text(results: Iterable[PageResult], page_number: int, *, input_uri: str | None = None) -> str:
    """The text of page ``page_number`` (1-based); ``LookupError`` when the results have no such page.

    Consumes ``results`` entirely (to notice several input files: pass ``input_uri=`` then).
    """
    for page in _one_input(results, input_uri):
        if page.page_number == page_number:
            return page.text
    raise LookupError(f"no page {page_number} in the results" + (f" for {input_uri}" if input_uri else ""))
