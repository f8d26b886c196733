"""Strict HTTP/1.1 request framing for the emulator's HTTP fronts (RFC 9112), without I/O.

``_http_server`` reads the bytes (for ``rest_server`` and ``gcs_server``); this module says what they mean,
and refuses anything a second reader could frame differently (the root of request smuggling), always with
an ``HttpError`` whose status the server answers before closing the connection:

- request line (section 3): ``method SP target SP HTTP/1.x``; a method is a token, the target origin-form
  (``/path?query``) or absolute-form (``http://host/path``), visible ASCII; another version: 505. Longer
  than ``MAX_LINE``: 414.
- header lines (section 5): ``name: value`` with a token name and no whitespace before the colon, no line
  folding, no control character but tab in values; more than ``MAX_HEADERS`` lines, a line over
  ``MAX_LINE`` or a head over ``MAX_HEAD`` bytes: 431. Exactly one ``Host`` in HTTP/1.1 (section 3.2),
  at most one in HTTP/1.0: else 400.
- the body's length (section 6.3): ``Transfer-Encoding`` and ``Content-Length`` together: 400 (rule 3
  lets a server reject them, and we do); a transfer coding list whose last member is not ``chunked``:
  400 (rule 4); ``chunked`` after another coding: 501 (only ``chunked`` is implemented); any
  ``Transfer-Encoding`` in HTTP/1.0: 400; ``Content-Length`` not all digits, or several values that
  differ (in one line as a list, or in several lines): 400 (rule 5); a body over the cap: 413, said
  before a byte of it is read when the length is declared.
- chunked bodies (section 7.1): hexadecimal sizes (extensions ignored), CRLF after each chunk,
  trailers read and dropped, the running total held to the cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_LINE",
    "Framing",
    "HttpError",
    "RequestHead",
    "check_hosts",
    "chunk_size",
    "framing",
    "header_line",
    "request_line",
]

MAX_LINE = 8192  # bytes in the request line or one header line (the CRLF included)
MAX_HEADERS = 100
MAX_HEAD = 65536  # bytes in the request line and all header lines

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # visible ASCII: no space, control or 8-bit byte
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but HTAB
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(;[^\r\n]*)?\r?\n")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_ABSOLUTE = re.compile(r"https?://[^/?#]*", re.IGNORECASE)


class HttpError(Exception):
    """The request cannot be served as framed: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestHead:
    """A request line and its header fields (names lower-case, in the order received)."""

    method: str
    target: str  # origin-form: "/path?query"
    version: tuple[int, int]
    headers: tuple[tuple[str, str], ...]

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (lower case), or None."""
        return next((value for key, value in self.headers if key == name), None)

    def tokens(self, name: str) -> list[str]:
        """The comma-separated members of every ``name`` line, lower case (``Connection``, ``Transfer-Encoding``)."""
        return [t.strip().lower() for value in self.get_all(name) for t in value.split(",") if t.strip()]

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless ``Connection: close``; HTTP/1.0 never does here."""
        return self.version >= (1, 1) and "close" not in self.tokens("connection")

    @property
    def expects_continue(self) -> bool:
        return self.version >= (1, 1) and (self.get("expect") or "").strip().lower() == "100-continue"


@dataclass(frozen=True)
class Framing:
    """How the body is delimited: ``length`` bytes, or chunked (``length`` None)."""

    length: int | None

    @property
    def chunked(self) -> bool:
        return self.length is None


def request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    """``(method, origin-form target, version)`` of a request line (its CRLF or LF included or not)."""
    if len(line) > MAX_LINE:
        raise HttpError(414, f"the request line is over {MAX_LINE} bytes")
    parts = _strip_eol(line).split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise HttpError(400, "not an HTTP/1.1 request line")
    version = _VERSION.fullmatch(parts[2])
    if version is None:
        raise HttpError(400, "not an HTTP/1.1 request line")
    major, minor = int(version.group(1)), int(version.group(2))
    if major != 1:
        raise HttpError(505, f"HTTP/{major}.{minor} is not supported here: this port speaks HTTP/1.1")
    target = parts[1].decode("ascii")
    if not target.startswith("/"):
        absolute = _ABSOLUTE.match(target)
        if absolute is None:
            raise HttpError(400, "the request target must be a path (origin-form) or an absolute http URL")
        target = target[absolute.end() :] or "/"
        if not target.startswith("/"):
            target = "/" + target
    return parts[0].decode("ascii"), target, (1, minor)


def header_line(line: bytes) -> tuple[str, str]:
    """``(lower-case name, value)`` of one header line (its CRLF or LF included or not)."""
    if len(line) > MAX_LINE:
        raise HttpError(431, f"a header line is over {MAX_LINE} bytes")
    text = _strip_eol(line)
    if text[:1] in (b" ", b"\t"):
        raise HttpError(400, "header line folding (obs-fold) is not accepted")
    name, colon, value = text.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise HttpError(400, "a header line must be a token, a colon and a value (no space before the colon)")
    if _VALUE_BAD.search(value):
        raise HttpError(400, f"the {name.decode('ascii')} header holds a control character")
    return name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")


def _strip_eol(line: bytes) -> bytes:
    """The line without its CRLF (or bare LF, which RFC 9112 section 2.2 lets a recipient accept)."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def check_hosts(head: RequestHead) -> None:
    hosts = head.get_all("host")
    if len(hosts) > 1 or (head.version >= (1, 1) and not hosts):
        raise HttpError(400, "an HTTP/1.1 request carries exactly one Host header")


def framing(head: RequestHead, max_body: int) -> Framing:
    """The body's framing per RFC 9112 section 6.3; ``HttpError`` for anything ambiguous or over ``max_body``."""
    check_hosts(head)
    lengths = head.get_all("content-length")
    if head.get_all("transfer-encoding"):
        if head.version < (1, 1):
            raise HttpError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if lengths:
            raise HttpError(400, "Content-Length and Transfer-Encoding together: the body's length is ambiguous")
        codings = head.tokens("transfer-encoding")
        if not codings or codings[-1] != "chunked":
            raise HttpError(400, "the last transfer coding is not chunked: the body's length is unknown")
        if codings != ["chunked"]:
            raise HttpError(501, "only the chunked transfer coding is implemented")
        return Framing(None)
    if not lengths:
        return Framing(0)
    values = {member.strip(" \t") for value in lengths for member in value.split(",")}
    text = next(iter(values))
    if len(values) != 1 or not _DIGITS.fullmatch(text):
        raise HttpError(400, "Content-Length must be one decimal number")
    if len(text.lstrip("0")) > 18 or int(text) > max_body:  # 18 digits: past any cap, and int() stays cheap
        raise HttpError(413, f"the request body is over {max_body} bytes")
    return Framing(int(text))


def chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (extensions ignored)."""
    if len(line) > MAX_LINE:
        raise HttpError(400, f"a chunk-size line is over {MAX_LINE} bytes")
    found = _CHUNK_SIZE.fullmatch(line)
    if found is None:
        raise HttpError(400, "not a chunk-size line")
    return int(found.group(1), 16)
