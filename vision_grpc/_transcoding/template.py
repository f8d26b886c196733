"""The values of parsed gRPC transcoding path templates (``google.api.http``).

What ``vision_grpc._transcoding.parse`` gives for a path template of ``google.api.HttpRule`` in
google/api/http.proto (https://github.com/googleapis/googleapis/blob/master/google/api/http.proto):
frozen segments, variables and templates that print back to their source (``str()``) and know
their variables, their field paths and their specificity. Values only: regexes, expansion,
matching and percent-decoding are ``vision_grpc._transcoding.match``.

- ``*`` (``Wildcard``) stands for one non-empty segment, ``**`` (``DoubleWildcard``) for zero or more;
- ``{var}`` is ``{var=*}``: a single-segment variable; ``{var=foo/*}`` and ``{var=**}`` are
  multi-segment variables (``Variable.multi_segment``), which keep ``/`` on expansion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DoubleWildcard", "Literal", "PatternSegment", "Segment", "Template", "Variable", "Wildcard"]


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

    def __post_init__(self) -> None:
        multi = len(self.pattern) > 1 or isinstance(self.pattern[0], DoubleWildcard)
        object.__setattr__(self, "name", ".".join(self.field_path))
        object.__setattr__(self, "pattern_text", "/".join(str(segment) for segment in self.pattern))
        object.__setattr__(self, "multi_segment", multi)

    def __str__(self) -> str:
        return f"{{{self.name}}}" if self.shorthand else f"{{{self.name}={self.pattern_text}}}"


Segment = Literal | Wildcard | DoubleWildcard | Variable


@dataclass(frozen=True)
class Template:
    """A parsed path template; ``str()`` gives back the source."""

    segments: tuple[Segment, ...]
    verb: str | None = None
    variables: tuple[Variable, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", tuple(s for s in self.segments if isinstance(s, Variable)))

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
