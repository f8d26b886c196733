"""The values of parsed gRPC transcoding path templates, and how they expand and match.

Types for ``vision_grpc._transcoding.parse`` (which parses; import from there), implementing the encoding
and matching rules of ``google.api.HttpRule`` in google/api/http.proto
(https://github.com/googleapis/googleapis/blob/master/google/api/http.proto):

- a single-segment variable (``{var}``, ``{var=*}``) expands with every character but
  ``[-_.~0-9a-zA-Z]`` percent-encoded and matches with everything decoded;
- a multi-segment variable (``{var=foo/*}``, ``{var=**}``) also keeps ``/`` on expansion and
  leaves ``%2F``/``%2f`` encoded when matching;
- ``*`` matches one non-empty segment, ``**`` zero or more.

Where the spec is silent: literals match raw path segments (hex digits of escapes in any case);
a template with a verb requires the last path segment to end with ``:verb``, one without matches
the whole last segment (``:`` included); a client value must match its variable's pattern with
no empty, ``.`` or ``..`` segment, so that no field value can change the shape of the path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_to_bytes

from google.rpc import code_pb2

from vision_grpc import errors

__all__ = ["DoubleWildcard", "Literal", "PatternSegment", "Segment", "Template", "Variable", "Wildcard"]

_RAW_SEGMENT = "[^/]+"
# One value segment on the client: non-empty, no "/", and not "." or ".." (they would move the path).
_VALUE_SEGMENT = r"(?!\.\.?(?:/|\Z))[^/]+"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SLASH = re.compile(r"(%2[Ff])")
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Literal:
    """Literal text of one path segment (or the verb), as written in the template."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Wildcard:
    """``*``: exactly one path segment."""

    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True)
class DoubleWildcard:
    """``**``: zero or more path segments; only ever the last segment of a template."""

    def __str__(self) -> str:
        return "**"


PatternSegment = Literal | Wildcard | DoubleWildcard


@dataclass(frozen=True)
class Variable:
    """``{field.path=pattern}``; ``{name}`` is ``{name=*}`` (equal to it, printed as written)."""

    field_path: tuple[str, ...]
    pattern: tuple[PatternSegment, ...] = (Wildcard(),)
    shorthand: bool = field(default=False, compare=False)
    position: int = field(default=0, compare=False, repr=False)  # offset of "{" in the template
    # Derived once: the dotted field path ("book.name"), the pattern as written ("shelves/*"), and
    # whether it spans several segments ({var=foo/*}, {var=**}: "/" kept on expansion, "%2F" on matching).
    name: str = field(init=False, compare=False, repr=False)
    pattern_text: str = field(init=False, compare=False, repr=False)
    multi_segment: bool = field(init=False, compare=False, repr=False)
    _accept: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        multi = len(self.pattern) > 1 or isinstance(self.pattern[0], DoubleWildcard)
        object.__setattr__(self, "name", ".".join(self.field_path))
        object.__setattr__(self, "pattern_text", "/".join(str(segment) for segment in self.pattern))
        object.__setattr__(self, "multi_segment", multi)
        object.__setattr__(self, "_accept", re.compile(_value_regex(self.pattern, multi), re.DOTALL))

    def __str__(self) -> str:
        return f"{{{self.name}}}" if self.shorthand else f"{{{self.name}={self.pattern_text}}}"

    def accepts(self, value: str) -> bool:
        """Whether a (decoded) field value matches the pattern, segment by segment, with no empty,
        ``.`` or ``..`` segment; so that no value can change the shape of the URL path."""
        return self._accept.fullmatch(value) is not None

    def encode(self, value: str) -> str:
        """Percent-encode all but ``[-_.~0-9a-zA-Z]`` (and ``/`` for a multi-segment variable)."""
        return quote(value, safe="/" if self.multi_segment else "")

    def decode(self, raw: str) -> str:
        """Reverse ``encode``; a multi-segment variable keeps ``%2F``/``%2f`` as written.

        Raises ``InvalidArgument`` on a malformed escape or bytes that are not UTF-8.
        """
        if "%" not in raw:
            return raw
        try:
            if _BAD_ESCAPE.search(raw):
                raise ValueError("malformed percent-encoding")
            if not self.multi_segment:
                return unquote_to_bytes(raw).decode("utf-8")
            parts = _ENCODED_SLASH.split(raw)
            return "".join(part if i % 2 else unquote_to_bytes(part).decode("utf-8") for i, part in enumerate(parts))
        except ValueError as exc:
            message = f"path variable {self.name!r}: {exc}"
            raise errors.InvalidArgument(message, code=code_pb2.INVALID_ARGUMENT) from None


Segment = Literal | Wildcard | DoubleWildcard | Variable


@dataclass(frozen=True)
class Template:
    """A parsed path template; ``str()`` gives back the source."""

    segments: tuple[Segment, ...]
    verb: str | None = None
    variables: tuple[Variable, ...] = field(init=False, compare=False, repr=False)
    _regex: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        variables = tuple(s for s in self.segments if isinstance(s, Variable))
        object.__setattr__(self, "variables", variables)
        object.__setattr__(self, "_regex", re.compile(_path_regex(self.segments, self.verb)))

    def __str__(self) -> str:
        return "/" + "/".join(str(s) for s in self.segments) + (f":{self.verb}" if self.verb else "")

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sort key among templates matching one path, smaller is more specific: segment by segment,
        left to right, a literal beats ``*`` which beats ``**``; then a verb beats none."""
        ranks: list[int] = []
        for segment in self.segments:
            for part in segment.pattern if isinstance(segment, Variable) else (segment,):
                ranks.append(0 if isinstance(part, Literal) else 1 if isinstance(part, Wildcard) else 2)
        return (*ranks, 0 if self.verb else 1)

    def expand(self, values: Mapping[str, str]) -> str:
        """The URL path for ``values`` (keyed by dotted field path), percent-encoded per the spec.

        Raises ``ValidationError`` when a value is missing or does not match its variable's pattern,
        and ``InvalidTemplateError`` for a ``*`` or ``**`` outside any variable (nothing to fill it).
        """
        out: list[str] = []
        for index, segment in enumerate(self.segments):
            if isinstance(segment, Variable):
                value = values.get(segment.name)
                if value is None or not segment.accepts(value):
                    raise errors.ValidationError(segment.name, f"must match {segment.pattern_text}")
                out.append(segment.encode(value))
            elif isinstance(segment, Literal):
                out.append(segment.text)
            else:
                offset = 1 + sum(len(str(s)) + 1 for s in self.segments[:index])
                raise errors.InvalidTemplateError(str(self), offset, "a wildcard outside a variable cannot be expanded")
        return "/" + "/".join(out) + (f":{self.verb}" if self.verb else "")

    def match_raw(self, path: str) -> dict[str, str] | None:
        """The still percent-encoded text captured by each variable, or None if ``path`` does not match."""
        found = self._regex.fullmatch(path)
        if found is None:
            return None
        return {v.name: found.group(f"v{i}") or "" for i, v in enumerate(self.variables)}

    def decode(self, captured: Mapping[str, str]) -> dict[str, str]:
        """Percent-decode what ``match_raw`` captured (see ``Variable.decode``)."""
        return {v.name: v.decode(captured[v.name]) for v in self.variables}

    def match(self, path: str) -> dict[str, str] | None:
        """Variable values (decoded) for a raw URL path (no query), or None if it does not match."""
        captured = self.match_raw(path)
        return None if captured is None else self.decode(captured)


def _literal_regex(text: str) -> str:
    """A literal as a regex over raw paths: itself, but ``%2f`` also matches ``%2F``."""
    return "".join(
        "%" + "".join(f"[{c.upper()}{c.lower()}]" for c in part[1:]) if i % 2 else re.escape(part)
        for i, part in enumerate(_ESCAPE.split(text))
    )


def _path_regex(segments: tuple[Segment, ...], verb: str | None) -> str:
    parts: list[str] = []
    index = 0  # groups are named v0, v1, ... in variable order
    for segment in segments:
        if isinstance(segment, DoubleWildcard):
            parts.append(f"(?:/{_RAW_SEGMENT})*")
        elif not isinstance(segment, Variable):
            parts.append("/" + (_RAW_SEGMENT if isinstance(segment, Wildcard) else _literal_regex(segment.text)))
        elif isinstance(segment.pattern[0], DoubleWildcard):  # {var=**}: zero segments leave no "/"
            parts.append(f"(?:/(?P<v{index}>{_RAW_SEGMENT}(?:/{_RAW_SEGMENT})*))?")
            index += 1
        else:
            inner = "".join(
                f"(?:/{_RAW_SEGMENT})*"
                if isinstance(p, DoubleWildcard)
                else ("/" if k else "") + (_RAW_SEGMENT if isinstance(p, Wildcard) else _literal_regex(p.text))
                for k, p in enumerate(segment.pattern)
            )
            parts.append(f"/(?P<v{index}>{inner})")
            index += 1
    if verb is not None:
        parts.append(":" + _literal_regex(verb))
    return "".join(parts) or "/"


def _value_regex(pattern: tuple[PatternSegment, ...], multi_segment: bool) -> str:
    """A regex over decoded field values that accepts exactly what ``pattern`` can match."""
    if not multi_segment:
        only = pattern[0]
        return re.escape(unquote(only.text)) if isinstance(only, Literal) else r"(?!\.\.?\Z).+"
    parts: list[str] = []
    for k, part in enumerate(pattern):
        if isinstance(part, DoubleWildcard):
            parts.append(f"(?:/{_VALUE_SEGMENT})*" if k else f"{_VALUE_SEGMENT}(?:/{_VALUE_SEGMENT})*")
        else:
            text = _VALUE_SEGMENT if isinstance(part, Wildcard) else re.escape(unquote(part.text))
            parts.append(("/" if k else "") + text)
    return "".join(parts)
