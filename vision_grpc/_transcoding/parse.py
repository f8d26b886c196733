"""Path templates of gRPC transcoding (``google.api.http``): the parser.

Implements the "Path template syntax" of ``google.api.HttpRule`` in google/api/http.proto
(https://github.com/googleapis/googleapis/blob/master/google/api/http.proto)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

``parse`` (cached) gives a frozen ``Template`` (``vision_grpc._transcoding.template``) that prints
back to its source; ``vision_grpc._transcoding.match`` expands it (client side) and matches it
(server side) per the spec.

Where the grammar is silent: a LITERAL (and the verb) is a non-empty run of RFC 3986 path
characters (unreserved, sub-delims but ``*`` and ``=``, ``@``) and ``%XX`` escapes, so never
``:``, ``/``, ``{``, ``}``; an IDENT is ``[A-Za-z_][A-Za-z0-9_]*``; a variable must not contain
another and a field path appears once; ``**`` must be the last segment of the whole template
(only the verb may follow); the template ``/`` alone is the root. A malformed template raises
``InvalidTemplateError(template, position, reason)`` with the 0-based offset of the culprit.
"""

from __future__ import annotations

import functools
import re
from typing import NoReturn

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

__all__ = ["parse"]

_LITERAL = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()+,;@]|%[0-9A-Fa-f]{2})+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def parse(template: str) -> Template:
    """Parse a path template once; raises ``InvalidTemplateError(template, position, reason)``."""
    return _Parser(template).template()


class _Parser:
    """Recursive descent over the grammar above; ``pos`` is the offset of the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.double_at = -1  # offset of a "**" already parsed: nothing but the verb may follow it
        self.names: set[str] = set()

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise errors.InvalidTemplateError(self.text, self.pos if position is None else position, reason)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def template(self) -> Template:
        if not self.text.startswith("/"):
            self.fail("a template must start with '/'", 0)
        if self.text == "/":
            return Template(())
        self.pos = 1
        segments = self.segments(in_variable=False)
        verb = None
        if self.peek() == ":":
            self.pos += 1
            verb = self.literal("verb")
            if self.pos < len(self.text):
                self.fail("the verb must end the template" if self.peek() == "/" else self.unexpected())
        return Template(tuple(segments), verb)

    def segments(self, *, in_variable: bool) -> list[Segment]:
        out = [self.segment(in_variable)]
        while self.peek() == "/":
            self.pos += 1
            out.append(self.segment(in_variable))
        return out

    def segment(self, in_variable: bool) -> Segment:
        if self.double_at >= 0:
            self.fail("'**' must be the last segment", self.double_at)
        segment: Segment
        if self.text.startswith("**", self.pos):
            self.double_at = self.pos
            self.pos += 2
            segment = DoubleWildcard()
        elif self.peek() == "*":
            self.pos += 1
            segment = Wildcard()
        elif self.peek() == "{":
            if in_variable:
                self.fail("variables cannot be nested")
            segment = self.variable()
        else:
            segment = Literal(self.literal("segment"))
        self.boundary(in_variable)
        return segment

    def boundary(self, in_variable: bool) -> None:
        """After a segment: "/" or the end of the variable, or of the segments (verb or end)."""
        char = self.peek()
        if char == "/" or (in_variable and char == "}") or (not in_variable and char in (":", "")):
            return
        self.fail("unbalanced '{': missing '}'" if char == "" else self.unexpected())

    def unexpected(self) -> str:
        char = self.peek()
        reasons = {
            "}": "unbalanced '}'",
            "{": "'{' must start a segment",
            "*": "'*' and '**' must be whole segments",
            "%": "'%' must start an escape '%XX'",
            ":": "':' may only start the verb, after the last segment",
        }
        return reasons.get(char, f"unexpected character {char!r}")

    def literal(self, what: str) -> str:
        found = _LITERAL.match(self.text, self.pos)
        if found is None:
            self.fail(f"empty {what}" if self.peek() in ("/", ":", "}", "") else self.unexpected())
        self.pos = found.end()
        return found.group()

    def variable(self) -> Variable:
        start = self.pos
        self.pos += 1
        path = [self.ident()]
        while self.peek() == ".":
            self.pos += 1
            path.append(self.ident())
        name = ".".join(path)
        if name in self.names:
            self.fail(f"field {name!r} is bound twice", start)
        self.names.add(name)
        pattern: tuple[PatternSegment, ...] = (Wildcard(),)
        shorthand = self.peek() != "="
        if not shorthand:
            self.pos += 1
            pattern = tuple(self.pattern_segments())
        elif self.peek() != "}":
            self.fail("unbalanced '{': missing '}'" if self.peek() == "" else "expected '.', '=' or '}'")
        self.pos += 1
        return Variable(tuple(path), pattern, shorthand=shorthand, position=start)

    def pattern_segments(self) -> list[PatternSegment]:
        out: list[PatternSegment] = []
        for segment in self.segments(in_variable=True):
            assert not isinstance(segment, Variable)  # segment() refuses nested variables
            out.append(segment)
        return out

    def ident(self) -> str:
        found = _IDENT.match(self.text, self.pos)
        if found is None:
            self.fail("expected a field name ([A-Za-z_][A-Za-z0-9_]*)")
        self.pos = found.end()
        return found.group()
