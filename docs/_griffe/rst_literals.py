"""A griffe extension for the API reference: reST literal blocks in docstrings become fenced code.

The library's docstrings introduce examples the reST way, a paragraph ending in ``::`` and an indented
block. Markdown would show the ``::`` and guess at the block; this turns each into a paragraph ending in
``:`` and a fenced block, ``python`` when the block parses as Python, else ``text`` (the exception tree,
without its reST ````inline literal```` marks).
Only the rendered docs change: the sources are read, never edited.
"""

from __future__ import annotations

import ast
import textwrap
from typing import Any

import griffe


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def convert(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.rstrip()
        if not stripped.endswith("::") or index >= len(lines) or lines[index].strip():
            out.append(line)
            continue
        block_start = index + 1
        while block_start < len(lines) and not lines[block_start].strip():
            block_start += 1
        if block_start >= len(lines) or _indent(lines[block_start]) <= _indent(line):
            out.append(line)
            continue
        end = block_start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(line)):
            end += 1
        while end > block_start and not lines[end - 1].strip():
            end -= 1
        block = textwrap.dedent("\n".join(lines[block_start:end]))
        try:
            ast.parse(block)
            language = "python"
        except SyntaxError:
            language = "text"
            block = block.replace("``", "")  # reST inline literals mean nothing inside a text block
        lead = stripped[:-2]
        pad = " " * _indent(line)
        if lead.strip():
            out.append(lead.rstrip() if lead.endswith(" ") else lead + ":")
            out.append("")
        out += [pad + "```" + language, *(pad + row if row else "" for row in block.split("\n")), pad + "```"]
        index = end
    return "\n".join(out)


class RstLiterals(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
