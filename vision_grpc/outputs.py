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

Speed: a shard's responses are located by msgspec's C scanner (the ``fast`` extra; without it, by the
windowed locator below) and each page is built by ``jsonpb``'s precompiled walk and the message
constructor (exactly json_format's message; json_format itself for what that walk declines), several
times faster than ``json_format``. ``read_file_text`` reads only the text and words of each page
(``PageText``), without building messages: many times faster again (docs/concepts/outputs.md).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

from google.protobuf import json_format

from vision_grpc._client_base import OperationBase
from vision_grpc._core.methods import VERSIONS
from vision_grpc._core.validate import MAX_ASYNC_FILE_PAGES, MAX_REQUESTS
from vision_grpc._flows.lro import result_of
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc._transcoding import jsonpb
from vision_grpc.errors import ItemErrors, VisionError, describe
from vision_grpc.storage import Storage

__all__ = [
    "ImageResult",
    "OutputError",
    "PageResult",
    "PageText",
    "Word",
    "document_text",
    "page_text",
    "raise_for_errors",
    "read_file_results",
    "read_file_text",
    "read_image_results",
]

SHARD_NAME = re.compile(r"output-(\d+)-to-(\d+)\.json")
_FILE_ONLY_KEYS = frozenset({"inputConfig", "input_config", "totalPages", "total_pages"})
# The most pages (images) one prefix can hold: files:asyncBatchAnnotate reads at most 2000 pages per
# file, images:asyncBatchAnnotate takes at most 2000 images. A shard name beyond that is refused.
_MOST = {"page": MAX_ASYNC_FILE_PAGES, "image": MAX_REQUESTS["AsyncBatchAnnotateImages"]}
_WINDOW = 1 << 20  # bytes of a shard decoded to text at a time while its responses are located


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


class Word(NamedTuple):
    """One word of ``full_text_annotation``: its symbols' text, and the break its last symbol ends with."""

    text: str
    break_after: str  # the DetectedBreak.BreakType name (SPACE, EOL_SURE_SPACE, LINE_BREAK...), '' for none


@dataclass(frozen=True)
class PageText:
    """One page read by ``read_file_text``: its text and words, without the whole ``AnnotateImageResponse``."""

    input_uri: str
    page_number: int  # 1-based
    text: str  # full_text_annotation.text; '' when there is none (no text, or it failed)
    words: tuple[Word, ...]  # in the order of pages, blocks, paragraphs and words
    error: Any  # the google.rpc.Status when annotating failed (fully or for some features), else None
    shard_uri: str

    @property
    def label(self) -> str:
        """``gs://b/doc.pdf page 2``: how messages name this page."""
        return f"{self.input_uri} page {self.page_number}"


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
    """The shards under ``prefix`` in numeric order, checked to cover 1..N once each, N at most ``_MOST[unit]``."""
    if not prefix.startswith("gs://"):
        raise OutputError(prefix or "''", "is not a gs:// output prefix")
    shards, deeper = [], set()
    for uri in storage.list(prefix):
        match = SHARD_NAME.fullmatch(uri[len(prefix) :]) if uri.startswith(prefix) else None
        if match:
            if len(match[1]) > 9 or len(match[2]) > 9:  # int() of such a name would be slow or refused
                raise OutputError(uri, f"names no valid {unit} range (numbers of more than 9 digits)")
            shards.append(_Shard(uri, int(match[1]), int(match[2])))
        elif deeper_match := SHARD_NAME.search(uri):
            deeper.add(uri[: deeper_match.start()])
    if not shards:
        hint = f"; shards are under {', '.join(sorted(deeper)[:3])}: read each prefix" if deeper else ""
        raise OutputError(prefix, f"no output shards (output-N-to-M.json) directly under this prefix{hint}")
    shards.sort(key=lambda s: (s.first, s.last))
    expected, most = 1, _MOST[unit]
    for shard in shards:
        if not 1 <= shard.first <= shard.last:
            raise OutputError(shard.uri, f"names no valid {unit} range ({shard.first} to {shard.last})")
        if shard.last > most:
            whole = "a file has" if unit == "page" else "a request has"
            raise OutputError(shard.uri, f"names {_span(unit, shard.first, shard.last)}, but {whole} at most {most}")
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


@dataclass(frozen=True)
class _Parsed:
    """One shard, parsed but for its ``responses``: those are parsed one at a time, when read."""

    shard: _Shard
    header: Any  # the shard's message with every field but ``responses``
    spans: list[Any]  # where each response's JSON is: (start, end) in ``data``, or msgspec's view of it
    data: bytes
    response_cls: Any

    def _json(self, index: int) -> Any:
        """The decoded JSON of response ``index``: it was located, so it is JSON (but may nest too deeply)."""
        span = self.spans[index]
        return jsonpb.loads(self.data[span[0] : span[1]] if type(span) is tuple else span)

    def response(self, index: int) -> Any:
        try:
            js = self._json(index)
            return jsonpb.message_builder(self.response_cls)(
                js
            )  # the fast way: exactly json_format's message, or Fallback
        except jsonpb.Fallback:
            pass
        except Exception as exc:  # a file's content: nested too deeply for the decoder
            self._invalid(index, exc)
        message = self.response_cls()
        try:
            json_format.ParseDict(js, message, ignore_unknown_fields=True, descriptor_pool=JSON_TYPES)
        except Exception as exc:  # a file's content: json_format raises ParseError and, on odd input, others
            self._invalid(index, exc)
        return message

    def _invalid(self, index: int, exc: Exception) -> None:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else describe(str(exc), 300)
        name = f"{self.header.DESCRIPTOR.name}: responses[{index}]"
        raise OutputError(self.shard.uri, f"is not a valid {name}: {reason or type(exc).__name__}") from None

    def responses(self) -> Iterator[Any]:
        return (self.response(index) for index in range(len(self.spans)))

    def text(self, index: int) -> tuple[int, str, tuple[Word, ...], Any]:
        """Response ``index``'s context.page_number, text, words and error (as ``_Annotated.error``), read from
        its JSON without building the message; from the message (``response``) when the JSON is odd there."""
        try:
            span = self.spans[index]
            if _TEXT_DECODER is not None and type(span) is not tuple:  # msgspec: only the fields read
                return _text_from_structs(_TEXT_DECODER(span), self.response_cls)
            return _text_of(self._json(index), self.response_cls)
        except Exception:  # noqa: BLE001 - odd JSON (or nested too deeply): the message's way decides
            pass
        message = self.response(index)
        return message.context.page_number, str(message.full_text_annotation.text), _words(message), _error(message)


def _parse(
    storage: Storage,
    shard: _Shard,
    unit: str,
    module: ModuleType,
    name: str,
    keys: set[str],
    foreign: frozenset[str] = frozenset(),
) -> _Parsed:
    """Read one shard and parse it as ``module.<name>``, all but its responses (``AnnotateImageResponse``),
    which are only located (and counted).

    ``keys``: top-level JSON keys of which one must be present; ``foreign``: keys that betray
    another message (an ``AnnotateFileResponse`` where images were expected). The shard must hold
    as many responses as its name says pages (images), or none (a range that failed as a whole).
    """
    uri, cls = shard.uri, getattr(module, name)
    try:
        data = storage.read(uri)
    except FileNotFoundError:
        raise OutputError(uri, "was listed but cannot be read any more (deleted or replaced meanwhile?)") from None
    except OSError as exc:
        raise OutputError(uri, f"cannot be read ({type(exc).__name__}: {describe(exc.strerror or '', 200)})") from None
    fields = {key for fd in cls.DESCRIPTOR.fields for key in (fd.name, fd.json_name)}
    expected = shard.last - shard.first + 1
    split = jsonpb.split_array(data, "responses", fields)  # msgspec's C scanner, when installed and it can
    found: type
    try:
        if split is not None:
            found, (members, spans) = dict, split
            if len(spans) > expected:
                raise _TooMany
        else:
            found, members, spans = _locate(data, "responses", fields, expected)
    except _NotJson as exc:
        raise OutputError(uri, f"is not valid JSON, so it is truncated or corrupt ({exc})") from None
    except _TooMany:
        raise OutputError(uri, f"holds more {unit} responses than the {expected} its name says") from None
    if found is not dict or not keys & members.keys():
        what = f"keys {describe(str(sorted(members)[:5]), 200)}" if found is dict else f"a JSON {found.__name__}"
        raise OutputError(
            uri, f"is not the expected {name}: expected a JSON object with {' or '.join(sorted(keys))}, found {what}"
        )
    if foreign and foreign & members.keys():
        raise OutputError(
            uri,
            f"is not the expected {name}: it has {sorted(foreign & members.keys())}, fields of an "
            "AnnotateFileResponse (a files output)",
        )
    header = cls()
    try:
        json_format.ParseDict(
            {key: value for key, value in members.items() if key in fields},
            header,
            ignore_unknown_fields=True,
            descriptor_pool=JSON_TYPES,
        )
    except Exception as exc:  # ParseError and, on odd input, TypeError, RecursionError...: the file's fault
        reason = "nested too deeply" if isinstance(exc, RecursionError) else describe(str(exc), 300)
        raise OutputError(uri, f"is not a valid {name}: {reason or type(exc).__name__}") from None
    return _Parsed(shard, header, spans, data, module.AnnotateImageResponse)


def _check_count(shard: _Shard, count: int, unit: str) -> None:
    expected = shard.last - shard.first + 1
    if count != expected:
        raise OutputError(
            shard.uri,
            f"holds {count} {unit} response(s) but its name says {expected} "
            f"({unit}s {shard.first}-{shard.last}): partial or not a Vision output shard",
        )


# -- streaming JSON: a shard's responses located, not all decoded at once ---------------------------

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


class _NotJson(Exception):
    """What is wrong with a shard's JSON, and where."""


class _TooMany(Exception):
    """The array holds more elements than the shard's name allows."""


def _locate(data: bytes, array: str, keep: set[str], most: int) -> tuple[type, dict[str, Any], list[tuple[int, int]]]:
    """The top level of the JSON document in ``data``, without decoding ``array``'s elements at once.

    Returns the document's type (``dict``, or that of another JSON value), its members (those not in
    ``keep`` as None, decoded and dropped) but an ``array`` that is a JSON array, and the byte spans
    of that array's elements (at most ``most``: ``_TooMany`` beyond). ``_NotJson`` for invalid JSON.
    Memory: ``data``, a decoded window of it, and one element at a time.
    """
    cursor = _Cursor(data)
    members: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []
    if cursor.peek() != "{":
        found = type(cursor.value())
        cursor.end()
        return found, members, spans
    cursor.take("{")
    char = cursor.peek()
    while char != "}":
        if char != '"':
            raise _NotJson(f"expected a member name in double quotes at byte {cursor.pos}")
        key = cursor.value()
        cursor.take(":")
        if key == array and cursor.peek() == "[":
            members[key] = None  # the last of duplicate members wins, as with json.loads
            spans = cursor.elements(most)
        else:
            value = cursor.value()
            members[key] = value if key in keep else None
            spans = [] if key == array else spans
        char = cursor.peek()
        if char == ",":
            cursor.take(",")
            char = cursor.peek()
            if char == "}":
                raise _NotJson(f"expected a member name in double quotes at byte {cursor.pos}")
        elif char != "}":
            raise _NotJson(f"expected ',' or '}}' at byte {cursor.pos}")
    cursor.take("}")
    cursor.end()
    return dict, members, spans


class _Cursor:
    """A position in UTF-8 JSON held as bytes, decoding ``_WINDOW`` bytes of it to text at a time,
    so that a large shard is never held twice (as bytes and as one str) nor as one decoded object."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # byte offset of the cursor
        self.text, self.index, self.ascii, self.final = "", 0, True, False  # the window, the cursor in it
        self.size = _WINDOW

    def _load(self) -> None:
        """Decode ``size`` bytes from the cursor on (at least one character, or all that is left)."""
        size = self.size
        while True:
            end = min(len(self.data), self.pos + max(size, 1))
            final = end == len(self.data)
            try:
                text, _ = codecs.utf_8_decode(memoryview(self.data)[self.pos : end], "strict", final)
            except UnicodeDecodeError as exc:
                raise _NotJson(f"invalid UTF-8 at byte {self.pos + exc.start}") from None
            if text or final:
                break
            size *= 2  # the window ends inside a character
        self.text, self.index, self.ascii, self.final = text, 0, text.isascii(), final

    def _advance(self, index: int) -> None:
        text = self.text[self.index : index]
        self.pos += len(text) if self.ascii else len(text.encode())
        self.index = index

    def _byte(self, index: int) -> int:
        """The byte offset of character ``index`` of the window."""
        text = self.text[self.index : index]
        return self.pos + (len(text) if self.ascii else len(text.encode()))

    def peek(self) -> str:
        """The next character that is not JSON whitespace, the cursor moved to it; ``''`` at the end."""
        while True:
            space = _SPACE.match(self.text, self.index)
            assert space is not None  # matches the empty string
            self._advance(space.end())
            if self.index < len(self.text):
                return self.text[self.index]
            if self.final:
                return ""
            self._load()

    def take(self, char: str) -> None:
        if self.peek() != char:
            found = "the end" if self.peek() == "" else repr(self.peek())
            raise _NotJson(f"expected {char!r} at byte {self.pos}, found {found}")
        self._advance(self.index + 1)

    def end(self) -> None:
        if self.peek() != "":
            raise _NotJson(f"extra data at byte {self.pos}")

    def value(self) -> Any:
        """Decode the JSON value at the cursor and move past it."""
        if self.peek() == "":
            raise _NotJson(f"expected a value at byte {self.pos}, found the end")
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.index)
            except json.JSONDecodeError as exc:
                if self.final or not (exc.msg.startswith("Unterminated string") or exc.pos >= len(self.text) - 10):
                    raise _NotJson(f"{exc.msg} at byte {self._byte(exc.pos)}") from None
                end = -1  # the window may have cut the value: decode it again from a window that starts there
            except RecursionError:
                raise _NotJson(f"nested too deeply at byte {self.pos}") from None
            except ValueError as exc:  # a number of more than 4300 digits (sys.get_int_max_str_digits)
                raise _NotJson(f"{describe(str(exc), 120)} at byte {self.pos}") from None
            if end != -1 and (self.final or not self._may_go_on(value, end)):
                self._advance(end)
                return value
            if self.index == 0:
                self.size *= 2  # larger than a window
            self._load()

    def _may_go_on(self, value: Any, end: int) -> bool:
        """Whether a number that ends at ``end`` may be the start of a longer one the window cut: it ends
        the window, or only ``.``, ``e``/``E`` (and a sign) that the decoder could not take yet are left
        (``0.`` of ``0.5``, ``1e+`` of ``1e+9``). Strings, arrays, objects and literals end themselves."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return end == len(self.text) or (len(self.text) - end <= 2 and self.text[end] in ".eE")

    def elements(self, most: int) -> list[tuple[int, int]]:
        """The byte spans of the elements of the JSON array at the cursor (each decoded once, then dropped)."""
        self.take("[")
        spans: list[tuple[int, int]] = []
        if self.peek() == "]":
            self.take("]")
            return spans
        while True:
            if len(spans) == most:
                raise _TooMany
            self.peek()
            start = self.pos
            self.value()
            spans.append((start, self.pos))
            char = self.peek()
            if char == "]":
                self.take("]")
                return spans
            self.take(",")


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


def _read_file_prefix(module: ModuleType, prefix: str, storage: Storage, text: bool = False) -> Iterator[Any]:
    """The prefix's pages: ``PageResult``, or ``PageText`` when ``text``."""
    shards = _ordered_shards(prefix, storage, "page")
    input_uri: str | None = None
    for shard in shards:
        parsed = _parse(storage, shard, "page", module, "AnnotateFileResponse", {"responses", "error"})
        message = parsed.header
        uri = _input_uri_of(parsed)
        if input_uri is not None and uri != input_uri:
            shown, before = describe(uri, 200), describe(input_uri, 200)  # text of the file: shown as text only
            raise OutputError(shard.uri, f"is for {shown}, but the shards before it under {prefix} are for {before}")
        input_uri = uri
        if message.total_pages and shards[-1].last != message.total_pages:
            raise OutputError(
                prefix,
                f"{describe(uri, 200)} has {message.total_pages} pages but the shards cover pages 1-{shards[-1].last}",
            )
        yield from (_file_texts if text else _file_pages)(module, parsed, uri)


def _input_uri_of(parsed: _Parsed) -> str:
    uri = parsed.header.input_config.gcs_source.uri or next(
        (r.context.uri for r in parsed.responses() if r.context.uri), ""
    )
    if not uri:
        raise OutputError(
            parsed.shard.uri,
            "names no input file (neither inputConfig.gcsSource.uri nor context.uri): "
            "not an AnnotateFileResponse shard",
        )
    return str(uri)


def _file_pages(module: ModuleType, parsed: _Parsed, input_uri: str) -> Iterator[PageResult]:
    shard, error = parsed.shard, parsed.header.error
    if not parsed.spans and error.code:
        # The whole range failed: one result per page (at most 2000: _ordered_shards), each with the file's error.
        for number in range(shard.first, shard.last + 1):
            failed = module.AnnotateImageResponse(error=error)
            failed.context.uri, failed.context.page_number = input_uri, number
            yield PageResult(input_uri, number, failed, shard.uri)
        return
    _check_count(shard, len(parsed.spans), "page")
    for number, response in enumerate(parsed.responses(), start=shard.first):
        if response.context.page_number and response.context.page_number != number:
            raise OutputError(
                shard.uri, f"holds page {response.context.page_number} where its name says page {number} should be"
            )
        yield PageResult(input_uri, number, response, shard.uri)


# -- text only -------------------------------------------------------------------------------------


def read_file_text(source: object, *, storage: Storage, version: str | None = None) -> Iterator[PageText]:
    """``read_file_results``, but each page as a ``PageText``: its text, words (with breaks) and error only.

    Shards are listed, checked and located as for ``read_file_results`` (same order, same ``OutputError``
    for missing, overlapping or corrupt shards), but a page's JSON is only read for what ``PageText`` holds
    (``full_text_annotation`` text, pages, blocks, paragraphs, words, symbols and their breaks;
    ``context.page_number``; ``error``), never turned into a whole message: many times faster (see
    docs/concepts/outputs.md). Those fields are read as ``json_format`` reads them; the other fields of a
    page are not checked (``read_file_results`` checks them all).
    """
    module, prefixes = _resolve(source, "Files", version)
    return (page for prefix in prefixes for page in _read_file_prefix(module, prefix, storage, text=True))


_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate: json_format refuses such a string


def _text_of(js: Any, response_cls: Any) -> tuple[int, str, tuple[Word, ...], Any]:
    """(context.page_number, full_text_annotation.text, words, error) from a response's decoded JSON, as the
    message json_format builds from it would give them; ``jsonpb.Fallback`` when it is odd there."""
    if type(js) is not dict:
        raise jsonpb.Fallback
    number, text, words, error = 0, "", [], None
    context = _member(js, "context", "context", dict)
    if context is not None:
        number = _member(context, "pageNumber", "page_number", int) or 0
        if not -(2**31) <= number < 2**31:
            raise jsonpb.Fallback
    annotation = _member(js, "fullTextAnnotation", "full_text_annotation", dict)
    if annotation is not None:
        text = _member(annotation, "text", "text", str) or ""
        names = _break_names(response_cls)
        for page in _member(annotation, "pages", "pages", list) or ():
            for block in _member(_object(page), "blocks", "blocks", list) or ():
                for paragraph in _member(_object(block), "paragraphs", "paragraphs", list) or ():
                    for word in _member(_object(paragraph), "words", "words", list) or ():
                        words.append(_word(_object(word), names))
    if _SURROGATE.search(text) or any(_SURROGATE.search(word.text) for word in words):
        raise jsonpb.Fallback
    status = _member(js, "error", "error", dict)
    if status is not None:
        error = _error(jsonpb.message_builder(response_cls)({"error": status}))
    return number, text, tuple(words), error


def _text_from_structs(response: Any, response_cls: Any) -> tuple[int, str, tuple[Word, ...], Any]:
    """``_text_of`` from msgspec's decoding into the ``_Text*`` structs: what ``PageText`` holds, the rest of
    the page (bounding boxes, text_annotations...) skipped by the decoder. ``Fallback`` when odd there."""
    if response.full_text_annotation is not _UNSET:
        raise jsonpb.Fallback  # the proto name: the dict way reads it (and sees a duplicate)
    number, text, words, error = 0, "", [], None
    context = response.context
    if context is not _UNSET and context is not None:
        number = _member(_object(context), "pageNumber", "page_number", int) or 0
        if not -(2**31) <= number < 2**31:
            raise jsonpb.Fallback
    annotation = response.fullTextAnnotation
    if annotation:
        found = annotation.text
        if found is not _UNSET and found is not None:
            if type(found) is not str:
                raise jsonpb.Fallback
            text = found
        names = _break_names(response_cls)
        for page in annotation.pages or ():
            for block in page.blocks or ():
                for paragraph in block.paragraphs or ():
                    for word in paragraph.words or ():
                        chars, after = [], ""
                        for symbol in word.symbols or ():
                            char = symbol.text
                            chars.append("" if char is _UNSET or char is None else char)
                            prop = symbol.property
                            kind = None
                            if prop is not _UNSET and prop is not None:
                                found = _member(_object(prop), "detectedBreak", "detected_break", dict)
                                kind = None if found is None else found.get("type")
                            if kind is not None and (type(kind) not in (str, int) or kind not in names):
                                raise jsonpb.Fallback
                            after = "" if kind is None else names[kind]
                        words.append(Word("".join(chars), after))
    if _SURROGATE.search(text) or any(_SURROGATE.search(word.text) for word in words):
        raise jsonpb.Fallback
    status = response.error
    if status is not _UNSET and status is not None:
        error = _error(jsonpb.message_builder(response_cls)({"error": _object(status)}))
    return number, text, tuple(words), error


_UNSET: Any = None  # msgspec.UNSET, when msgspec is there
_TEXT_DECODER: Any = None  # msgspec's decoder of a page into the _Text* structs: only the fields PageText reads

if jsonpb.FAST_JSON:  # typed where the type decides (strings, lists of messages): else it fails, other ways decide
    import msgspec
    from msgspec import UNSET as _UNSET
    from msgspec import UnsetType as _Unset

    class _TextSymbol(msgspec.Struct):
        text: str | None | _Unset = _UNSET
        property: Any = _UNSET

    class _TextWord(msgspec.Struct):
        symbols: list[_TextSymbol] | None | _Unset = _UNSET

    class _TextParagraph(msgspec.Struct):
        words: list[_TextWord] | None | _Unset = _UNSET

    class _TextBlock(msgspec.Struct):
        paragraphs: list[_TextParagraph] | None | _Unset = _UNSET

    class _TextPage(msgspec.Struct):
        blocks: list[_TextBlock] | None | _Unset = _UNSET

    class _TextAnnotation(msgspec.Struct):
        text: Any = _UNSET
        pages: list[_TextPage] | None | _Unset = _UNSET

    class _TextResponse(msgspec.Struct):
        fullTextAnnotation: _TextAnnotation | None | _Unset = _UNSET  # noqa: N815 - the JSON name
        full_text_annotation: Any = _UNSET
        context: Any = _UNSET
        error: Any = _UNSET

    _TEXT_DECODER = msgspec.json.Decoder(_TextResponse).decode


def _member(js: dict[str, Any], json_name: str, name: str, kind: type) -> Any:
    """``js``'s field under either name (None when absent or null), checked to be of JSON type ``kind``."""
    value = js.get(json_name)
    if name != json_name and name in js:
        if value is not None or json_name in js:
            raise jsonpb.Fallback  # under both names: json_format merges or refuses
        value = js[name]
    if value is None or type(value) is kind:
        return value
    raise jsonpb.Fallback


def _object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise jsonpb.Fallback  # null in a list, or not a message: json_format refuses or reads it its own way
    return value


def _word(word: dict[str, Any], names: dict[Any, str]) -> Word:
    chars, after = [], ""
    for item in _member(word, "symbols", "symbols", list) or ():
        symbol = _object(item)
        chars.append(_member(symbol, "text", "text", str) or "")
        prop = _member(symbol, "property", "property", dict)
        found = None if prop is None else _member(prop, "detectedBreak", "detected_break", dict)
        kind = None if found is None else found.get("type")
        if kind is not None and (type(kind) not in (str, int) or kind not in names):
            raise jsonpb.Fallback  # unknown names (json_format drops them), numbers as floats or strings...
        after = "" if kind is None else names[kind]
    return Word("".join(chars), after)


_BREAK_NAMES: dict[Any, dict[Any, str]] = {}


def _break_names(response_cls: Any) -> dict[Any, str]:
    """DetectedBreak.BreakType names and numbers -> names, per API version; 0 is ''."""
    names = _BREAK_NAMES.get(response_cls)
    if names is None:
        page = response_cls.DESCRIPTOR.fields_by_name["full_text_annotation"].message_type
        symbol = page.fields_by_name["pages"].message_type.fields_by_name["blocks"].message_type
        symbol = symbol.fields_by_name["paragraphs"].message_type.fields_by_name["words"].message_type
        symbol = symbol.fields_by_name["symbols"].message_type
        prop = symbol.fields_by_name["property"].message_type
        kind = prop.fields_by_name["detected_break"].message_type.fields_by_name["type"].enum_type
        names = {}
        for value in kind.values:
            shown = value.name if value.number else ""
            names[value.name] = names[value.number] = shown
        _BREAK_NAMES[response_cls] = names
    return names


def _words(message: Any) -> tuple[Word, ...]:
    """The words of a built ``AnnotateImageResponse`` (the odd-JSON way of ``_Parsed.text``)."""
    names = _break_names(type(message))
    out = []
    for page in message.full_text_annotation.pages:
        for block in page.blocks:
            for paragraph in block.paragraphs:
                for word in paragraph.words:
                    symbols = word.symbols
                    after = names.get(symbols[-1].property.detected_break.type, "") if symbols else ""
                    out.append(Word("".join(symbol.text for symbol in symbols), after))
    return tuple(out)


def _error(message: Any) -> Any:
    """``_Annotated.error`` of a built ``AnnotateImageResponse``."""
    return message.error if message.HasField("error") and message.error.code else None


def _file_texts(module: ModuleType, parsed: _Parsed, input_uri: str) -> Iterator[PageText]:
    """``_file_pages``, as ``PageText``."""
    shard, error = parsed.shard, parsed.header.error
    if not parsed.spans and error.code:
        for number in range(shard.first, shard.last + 1):
            yield PageText(input_uri, number, "", (), module.AnnotateImageResponse(error=error).error, shard.uri)
        return
    _check_count(shard, len(parsed.spans), "page")
    for index, number in enumerate(range(shard.first, shard.last + 1)):
        found, text, words, failed = parsed.text(index)
        if found and found != number:
            raise OutputError(shard.uri, f"holds page {found} where its name says page {number} should be")
        yield PageText(input_uri, number, text, words, failed, shard.uri)


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
        parsed = _parse(storage, shard, "image", module, "BatchAnnotateImagesResponse", {"responses"}, _FILE_ONLY_KEYS)
        _check_count(shard, len(parsed.spans), "image")
        for index, response in enumerate(parsed.responses(), start=shard.first - 1):
            yield ImageResult(index, str(response.context.uri), response, shard.uri)


# -- errors ----------------------------------------------------------------------------------------

Result = TypeVar("Result", PageResult, ImageResult, PageText)


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
        unit = "image" if isinstance(failed[0], ImageResult) else "page"
        raise ItemErrors([(result.label, result.error) for result in failed], len(items), unit, failed)
    return items


# -- text ------------------------------------------------------------------------------------------


def _one_input(results: Iterable[PageResult | PageText], input_uri: str | None) -> list[PageResult | PageText]:
    pages = [page for page in results if input_uri is None or page.input_uri == input_uri]
    inputs = list(dict.fromkeys(page.input_uri for page in pages))
    if len(inputs) > 1:
        shown = ", ".join(inputs[:3]) + (", ..." if len(inputs) > 3 else "")
        raise ValueError(f"the results cover {len(inputs)} input files ({shown}); pass input_uri= to choose one")
    return sorted(pages, key=lambda page: page.page_number)


def document_text(
    results: Iterable[PageResult | PageText], *, separator: str = "\n", input_uri: str | None = None
) -> str:
    """The text of one input file: its pages' ``text`` in page order, joined by ``separator``.

    Pages without text (blank, or failed: check ``PageResult.error``) contribute ``''``; a page
    can carry text and an error when only some of its features failed. Results covering several
    input files need ``input_uri=`` to pick one (``ValueError`` otherwise).
    """
    return separator.join(page.text for page in _one_input(results, input_uri))


def page_text(results: Iterable[PageResult | PageText], page_number: int, *, input_uri: str | None = None) -> str:
    """The text of page ``page_number`` (1-based); ``LookupError`` when the results have no such page.

    Consumes ``results`` entirely (to notice several input files: pass ``input_uri=`` then).
    """
    for page in _one_input(results, input_uri):
        if page.page_number == page_number:
            return page.text
    raise LookupError(f"no page {page_number} in the results" + (f" for {input_uri}" if input_uri else ""))
