"""Matching and expansion of gRPC transcoding path templates: client values in, server paths out.

Compiles a ``Template`` (``vision_grpc._transcoding.template``) once into a ``TemplateMatcher``
(``matcher(template)``, cached) implementing the encoding and matching rules of
``google.api.HttpRule`` in google/api/http.proto
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
A ``*`` or ``**`` outside any variable matches but cannot be expanded (nothing fills it).

Callers on a per-request path (the client's plan, the server's routes) keep the compiled matcher
rather than calling ``matcher`` per request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from urllib.parse import quote, unquote, unquote_to_bytes

from google.rpc import code_pb2

from vision_grpc import errors
from vision_grpc._transcoding.template import (
    DoubleWildcard,
    Literal,
    PatternSegment,
    Segment,
    Template,
    Variable,
    Wildcard,
)

__all__ = ["TemplateMatcher", "VariableMatcher", "matcher"]

_RAW_SEGMENT = "[^/]+"
# One value segment on the client: non-empty, no "/", and not "." or ".." (they would move the path).
_VALUE_SEGMENT = r"(?!\.\.?(?:/|\Z))[^/]+"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SLASH = re.compile(r"(%2[Ff])")
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")


def matcher(template: Template) -> TemplateMatcher:
    """The compiled matcher of ``template`` (cached; keyed by its source, as ``{x}`` equals ``{x=*}``)."""
    return _compile(template, str(template))


@functools.lru_cache(maxsize=1024)
def _compile(template: Template, source: str) -> TemplateMatcher:
    return TemplateMatcher(template)


class VariableMatcher:
    """How one path variable accepts, encodes and decodes values."""

    __slots__ = ("_accept", "_safe", "name", "variable")

    def __init__(self, variable: Variable) -> None:
        self.variable = variable
        self.name = variable.name
        self._accept = re.compile(_value_regex(variable.pattern, variable.multi_segment), re.DOTALL).fullmatch
        self._safe = "/" if variable.multi_segment else ""

    def __repr__(self) -> str:
        return f"VariableMatcher({self.variable})"

    def accepts(self, value: str) -> bool:
        """Whether a (decoded) field value matches the pattern, segment by segment, with no empty,
        ``.`` or ``..`` segment; so that no value can change the shape of the URL path."""
        return self._accept(value) is not None

    def encode(self, value: str) -> str:
        """Percent-encode all but ``[-_.~0-9a-zA-Z]`` (and ``/`` for a multi-segment variable)."""
        return quote(value, safe=self._safe)

    def decode(self, raw: str) -> str:
        """Reverse ``encode``; a multi-segment variable keeps ``%2F``/``%2f`` as written.

        Raises ``InvalidArgument`` on a malformed escape or bytes that are not UTF-8.
        """
        if "%" not in raw:
            return raw
        try:
            if _BAD_ESCAPE.search(raw):
                raise ValueError("malformed percent-encoding")
            if not self.variable.multi_segment:
                return unquote_to_bytes(raw).decode("utf-8")
            parts = _ENCODED_SLASH.split(raw)
            return "".join(part if i % 2 else unquote_to_bytes(part).decode("utf-8") for i, part in enumerate(parts))
        except ValueError as exc:
            message = f"path variable {self.name!r}: {exc}"
            raise errors.InvalidArgument(message, code=code_pb2.INVALID_ARGUMENT) from None


class _Unfillable:
    """A ``*`` or ``**`` outside any variable, at ``offset`` in the template: it cannot be expanded."""

    __slots__ = ("offset",)

    def __init__(self, offset: int) -> None:
        self.offset = offset


class TemplateMatcher:
    """A template compiled for expansion (client side) and matching (server side)."""

    __slots__ = ("_names", "_parts", "_regex", "template", "variables")

    def __init__(self, template: Template) -> None:
        self.template = template
        self.variables = tuple(VariableMatcher(v) for v in template.variables)
        self._names = tuple(v.name for v in self.variables)
        self._regex = re.compile(_path_regex(template.segments, template.verb)).fullmatch
        self._parts = _expansion_parts(template, iter(self.variables))

    def __repr__(self) -> str:
        return f"TemplateMatcher({self.template})"

    def expand(self, values: Mapping[str, str]) -> str:
        """The URL path for ``values`` (keyed by dotted field path), percent-encoded per the spec.

        Raises ``ValidationError`` when a value is missing or does not match its variable's pattern,
        and ``InvalidTemplateError`` for a ``*`` or ``**`` outside any variable (nothing to fill it).
        """
        out: list[str] = []
        for part in self._parts:
            if type(part) is str:
                out.append(part)
            elif isinstance(part, VariableMatcher):
                value = values.get(part.name)
                if value is None or not part.accepts(value):
                    raise errors.ValidationError(part.name, f"must match {part.variable.pattern_text}")
                out.append(part.encode(value))
            else:
                assert isinstance(part, _Unfillable)
                reason = "a wildcard outside a variable cannot be expanded"
                raise errors.InvalidTemplateError(str(self.template), part.offset, reason)
        return "".join(out)

    def match_raw(self, path: str) -> dict[str, str] | None:
        """The still percent-encoded text captured by each variable, or None if ``path`` does not match."""
        found = self._regex(path)
        if found is None:
            return None
        return dict(zip(self._names, found.groups(""), strict=True))

    def decode(self, captured: Mapping[str, str]) -> dict[str, str]:
        """Percent-decode what ``match_raw`` captured (see ``VariableMatcher.decode``)."""
        return {v.name: v.decode(captured[v.name]) for v in self.variables}

    def match(self, path: str) -> dict[str, str] | None:
        """Variable values (decoded) for a raw URL path (no query), or None if it does not match."""
        captured = self.match_raw(path)
        return None if captured is None else self.decode(captured)


def _expansion_parts(
    template: Template, variables: Iterator[VariableMatcher]
) -> tuple[str | VariableMatcher | _Unfillable, ...]:
    """The template as literal text (adjacent literals, "/" and the verb merged) and what fills the rest."""
    parts: list[str | VariableMatcher | _Unfillable] = []
    text = "/"
    offset = 1  # of the current segment in the template
    for index, segment in enumerate(template.segments):
        if index:
            text += "/"
        if isinstance(segment, Literal):
            text += segment.text
        else:
            parts.append(text)
            text = ""
            parts.append(next(variables) if isinstance(segment, Variable) else _Unfillable(offset))
        offset += len(str(segment)) + 1
    text += f":{template.verb}" if template.verb else ""
    parts.append(text)
    return tuple(part for part in parts if part != "")


def _literal_regex(text: str) -> str:
    """A literal as a regex over raw paths: itself, but ``%2f`` also matches ``%2F``."""
    return "".join(
        "%" + "".join(f"[{c.upper()}{c.lower()}]" for c in part[1:]) if i % 2 else re.escape(part)
        for i, part in enumerate(_ESCAPE.split(text))
    )


def _path_regex(segments: tuple[Segment, ...], verb: str | None) -> str:
    """A regex over raw paths whose only groups are the variables' captures, in order."""
    parts: list[str] = []
    for segment in segments:
        if isinstance(segment, DoubleWildcard):
            parts.append(f"(?:/{_RAW_SEGMENT})*")
        elif not isinstance(segment, Variable):
            parts.append("/" + (_RAW_SEGMENT if isinstance(segment, Wildcard) else _literal_regex(segment.text)))
        elif isinstance(segment.pattern[0], DoubleWildcard):  # {var=**}: zero segments leave no "/"
            parts.append(f"(?:/({_RAW_SEGMENT}(?:/{_RAW_SEGMENT})*))?")
        else:
            inner = "".join(
                f"(?:/{_RAW_SEGMENT})*"
                if isinstance(p, DoubleWildcard)
                else ("/" if k else "") + (_RAW_SEGMENT if isinstance(p, Wildcard) else _literal_regex(p.text))
                for k, p in enumerate(segment.pattern)
            )
            parts.append(f"/({inner})")
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
