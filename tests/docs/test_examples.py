"""Every code example in docs/ runs, against the emulator, as a user would run it.

Each page of ``docs/**/*.md`` with ``python`` blocks is one test. Its untitled ``python`` blocks run in a
subprocess (``_runner.py``), in order and in one namespace, with the environment a user of the page would
have set up:

- a fresh ``vision_grpc.testing.Emulator`` for the page, and ``VISION_EMULATOR_HOST`` /
  ``VISION_EMULATOR_REST_HOST`` naming it, so ``Client(project="my-project", location="eu")`` and every other
  client built without ``endpoint=`` reach it, anonymously (no credentials, no network);
- the inputs the examples name, staged in it (``STAGED``: ``gs://my-bucket/invoice.pdf`` is the bundled
  3-page sample PDF, ...);
- a temporary working directory holding the files they read (``WORKDIR_FILES``: ``inputs.txt``);
- ``STORAGE_EMULATOR_HOST`` naming the emulator's Cloud Storage JSON API, so ``GcsStorage()`` (and
  google-cloud-storage) read its objects.

That emulator reads PDF text layers rather than running its OCR engine (``AnnotatorRegistry(ocr=False)``):
the text is the same for the sample PDFs, and the pages' examples, about the client, take ~40 s instead of
~2 min (OCR has its own tests in tests/emulator). Examples that start an ``Emulator`` of their own get the
default, OCR when the engine is installed, as a user would.

A block with a title (```` ```python title="myapp.py" ````) is a file: it is written to the working directory
first. A ``test_*.py`` file is run with pytest in a subprocess (the pytest plugin page), and must pass; any
other titled file must be imported by another block of its page, so it runs too. Nothing is skipped: a block
meant as a fragment, shell or output gets another fence (``text``, ``sh``, ...), and an unknown or missing
fence language fails ``test_every_fence_is_known``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vision_grpc.demo import sample_pdf
from vision_grpc.emulator import AnnotatorRegistry
from vision_grpc.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNER = Path(__file__).with_name("_runner.py")
PAGE_TIMEOUT = 240.0  # seconds for one page's blocks (or its pytest run); ~2-6 s each on 2 idle cores
OPERATION_SECONDS = 0.2

# Fence languages that are not run (shell, output, config); "python" is the only one that is.
NOT_RUN = {"text", "sh", "console", "toml", "yaml", "json", "ini"}

# The objects the examples name, staged in each page's emulator.
STAGED: dict[str, bytes] = {
    "gs://my-bucket/invoice.pdf": sample_pdf(),
    "gs://my-bucket/scans/scan-01.pdf": sample_pdf(),
    "gs://my-bucket/scans/scan-02.pdf": sample_pdf(),
    "gs://my-bucket/scans/scan-03.pdf": sample_pdf(),
}
# Files in each page's working directory; scan-17.pdf is listed but missing, as the bulk page shows.
WORKDIR_FILES: dict[str, str] = {
    "inputs.txt": "".join(
        f"gs://my-bucket/scans/{name}\n" for name in ("scan-01.pdf", "scan-02.pdf", "scan-17.pdf", "scan-03.pdf")
    ),
}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@dataclass
class Block:
    path: Path
    line: int  # of the block's first code line, 1-based
    language: str
    title: str | None
    code: str


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(DOCS if self.path.is_relative_to(DOCS) else ROOT).as_posix()

    def runnable(self) -> list[Block]:
        return [block for block in self.blocks if block.language == "python"]


def fenced_blocks(path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown file, dedented by their fence's indentation (list items)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        language = info.split(None, 1)[0] if info else ""
        title = _TITLE.search(info)
        first, body = index, []
        while index < len(lines):
            line = lines[index]
            index += 1
            if line.strip().startswith(fence[0] * len(fence)) and line.strip().strip(fence[0]) == "":
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        else:
            raise AssertionError(f"{path}:{first}: unclosed code fence")
        yield Block(path, first + 1, language, title["title"] if title else None, "\n".join(body) + "\n")


def pages() -> list[Page]:
    # README's examples too: it is the front page, and every block in it runs as written.
    sources = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [Page(path, list(fenced_blocks(path))) for path in sources]


PAGES_WITH_EXAMPLES = [page for page in pages() if page.runnable()]


def test_the_docs_have_examples() -> None:
    """A guard against a parser that finds nothing: the pages below hold examples."""
    assert (DOCS / "index.md").is_file(), (
        f"{DOCS} is missing: a source tree (an sdist too) must ship docs/ and mkdocs.yml"
    )
    names = {page.name for page in PAGES_WITH_EXAMPLES}
    assert {"getting-started.md", "concepts/operations.md", "concepts/outputs.md", "concepts/emulator.md"} <= names
    assert sum(len(page.runnable()) for page in PAGES_WITH_EXAMPLES) >= 20


def test_every_fence_is_known() -> None:
    """Every block is either run (``python``) or declared not to be (``text``, ``sh``, ...): none slips by."""
    unknown = [
        f"{block.path.relative_to(ROOT)}:{block.line - 1}: fence {block.language!r}"
        for page in pages()
        for block in page.blocks
        if block.language != "python" and block.language not in NOT_RUN
    ]
    assert not unknown, "use ```python (run by tests/docs) or one of " + ", ".join(sorted(NOT_RUN))


@pytest.fixture
def page_emulator(tmp_path: Path) -> Iterator[Emulator]:
    annotators = AnnotatorRegistry(ocr=False)  # PDF text layers: see the module docstring
    with Emulator(
        operation_seconds=OPERATION_SECONDS, storage_dir=tmp_path / "storage", annotators=annotators
    ) as emulator:
        for uri, data in STAGED.items():
            emulator.put_object(uri, data)
        yield emulator


def example_env(emulator: Emulator, *, with_emulator_host: bool = True) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VISION_EMULATOR_", "STORAGE_EMULATOR_", "PYTEST_"))
    }
    if with_emulator_host:
        env["VISION_EMULATOR_HOST"] = emulator.grpc_target
        env["VISION_EMULATOR_REST_HOST"] = emulator.rest_url.removeprefix("http://")
    env["STORAGE_EMULATOR_HOST"] = emulator.storage_host
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=PAGE_TIMEOUT)
    output = done.stdout + done.stderr
    print(f"--- {what}:\n{output}")  # shown by pytest -s or -rP
    assert done.returncode == 0, f"{what} failed (exit {done.returncode}):\n{output}"
    return output


@pytest.mark.timeout(2 * PAGE_TIMEOUT + 30)  # a page's script, then its pytest files
@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda page: page.name)
def test_page_examples_run(page: Page, page_emulator: Emulator, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name, text in WORKDIR_FILES.items():
        (workdir / name).write_text(text, encoding="utf-8")

    files = {block.title: block for block in page.runnable() if block.title}  # file name -> its block
    scripts = [block for block in page.runnable() if not block.title]
    for title, block in files.items():
        assert "/" not in title and title.endswith(".py"), f"{page.name}:{block.line}: title {title!r}"
        (workdir / title).write_text(block.code, encoding="utf-8")
        module = title.removesuffix(".py")
        if not module.startswith("test_"):
            importers = [other for other in page.runnable() if re.search(rf"\b(from|import) {module}\b", other.code)]
            assert importers, f"{page.name}:{block.line}: {title} is imported by no block, so it would not run"

    if scripts:
        blocks_file = tmp_path / "blocks.json"
        payload = {"path": str(page.path), "blocks": [{"line": b.line, "code": b.code} for b in scripts]}
        blocks_file.write_text(json.dumps(payload), encoding="utf-8")
        env = example_env(page_emulator)
        # Titled modules (myapp.py) import as a user's package would.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
        run([sys.executable, str(RUNNER), str(blocks_file)], workdir, env, f"{page.name} examples")

    for title, block in files.items():
        if title.startswith("test_"):
            # The pytest plugin sets VISION_EMULATOR_HOST itself (vision_emulator_env): not from us.
            env = example_env(page_emulator, with_emulator_host=False)
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", title]
            output = run(command, workdir, env, f"pytest {page.name}:{block.line} ({title})")
            assert re.search(r"\b\d+ passed\b", output) and " failed" not in output, output
