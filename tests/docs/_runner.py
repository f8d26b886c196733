"""Runs one documentation page's ``python`` blocks in this process, in order, as one script.

Started by ``test_examples.py`` in a subprocess (``python _runner.py BLOCKS.json``) whose environment points
every client at the test's emulator. The blocks share one ``__main__`` namespace, as a reader following the
page would (and so that ``multiprocessing`` can pickle functions a block defines). Each block is compiled
under the Markdown file's path with its own line numbers, so a traceback names the page and the line.
"""

from __future__ import annotations

import json
import sys
import types


def main(blocks_file: str) -> None:
    with open(blocks_file, encoding="utf-8") as handle:
        page = json.load(handle)
    module = types.ModuleType("__main__")
    module.__file__ = page["path"]
    sys.modules["__main__"] = module
    for block in page["blocks"]:
        source = "\n" * (block["line"] - 1) + block["code"]  # line numbers as in the Markdown file
        exec(compile(source, page["path"], "exec"), module.__dict__)


if __name__ == "__main__":
    main(sys.argv[1])
