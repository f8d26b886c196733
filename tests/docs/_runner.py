"""Runs one documentation page's ``python`` blocks in this process, in order, as one script.

Started by ``test_examples.py`` in a subprocess (``python _runner.py BLOCKS.json``) whose environment points
every client at the test's emulator. The blocks share one ``__main__`` namespace, as a reader following the
page would (and so that ``multiprocessing`` can pickle functions a block defines). Each block is compiled
under the Markdown file's path with its own line numbers, so a traceback names the page and the line.

``DOCS_STORAGE_ROOT``, when set, stands in for Cloud Storage until the emulator serves its JSON API:
``vision_grpc.storage.GcsStorage`` becomes a ``LocalStorage`` over the emulator's directory, so examples can
be written as users run them (``GcsStorage()``) and still read the emulator's objects.
"""

from __future__ import annotations

import json
import os
import sys
import types


def _stand_in_for_cloud_storage(root: str) -> None:
    from vision_grpc import storage

    class EmulatorDirStorage(storage.LocalStorage):
        """``GcsStorage``'s signature over the emulator's directory."""

        def __init__(self, project: object = None, credentials: object = None, client: object = None) -> None:
            super().__init__(root)

    storage.GcsStorage = EmulatorDirStorage  # type: ignore[misc, assignment]


def main(blocks_file: str) -> None:
    with open(blocks_file, encoding="utf-8") as handle:
        page = json.load(handle)
    root = os.environ.get("DOCS_STORAGE_ROOT")
    if root:
        _stand_in_for_cloud_storage(root)
    module = types.ModuleType("__main__")
    module.__file__ = page["path"]
    sys.modules["__main__"] = module
    for block in page["blocks"]:
        source = "\n" * (block["line"] - 1) + block["code"]  # line numbers as in the Markdown file
        exec(compile(source, page["path"], "exec"), module.__dict__)


if __name__ == "__main__":
    main(sys.argv[1])
