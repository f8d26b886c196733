"""README.md is the front page: two quick-start commands (the second is CI's), and links into docs/.

Its ``python`` block runs with the docs' examples (``test_examples.py``); this file checks the rest of what
the front page promises: the quick start is exactly the two commands, the test command is the line
``.ci/run`` runs, every page of the documentation site is linked by a relative path that exists (so the
links work on a code host and in the sdist), and the benchmark's generated tables live on the
performance page, not in the README.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

DEMO_COMMAND = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[demo]" && .venv/bin/vision-grpc demo'
TEST_COMMAND = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test,compare]" && .venv/bin/python -m pytest'
SIZE_BUDGET = 16_000  # bytes: a front page, the manual is docs/

_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_SECTION = re.compile(r"^## (?P<title>.+)$", re.M)


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    heads = list(_SECTION.finditer(text))
    for index, head in enumerate(heads):
        if head["title"] == title:
            end = heads[index + 1].start() if index + 1 < len(heads) else len(text)
            return text[head.end() : end]
    raise AssertionError(f"README.md has no '## {title}' section")


def test_quick_start_is_exactly_the_two_commands() -> None:
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section("Quick start"), re.M | re.S)
    assert [(language, code.strip()) for language, code in blocks] == [("sh", DEMO_COMMAND), ("sh", TEST_COMMAND)]


def test_the_test_command_is_the_one_ci_runs() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TEST_COMMAND in ci_lines


def test_every_docs_page_is_linked_and_every_relative_link_resolves() -> None:
    text = README.read_text(encoding="utf-8")
    targets = [match["target"] for match in _LINK.finditer(text)]
    local = {target.split("#", 1)[0] for target in targets if not re.match(r"[a-z]+:", target)}
    missing = sorted(target for target in local if not (ROOT / target).exists())
    assert not missing, f"README.md links to files that do not exist: {missing}"
    pages = {path.relative_to(ROOT).as_posix() for path in DOCS.rglob("*.md")}
    unlinked = sorted(pages - local)
    assert not unlinked, f"README.md does not link these docs pages: {unlinked}"


def test_readme_says_how_to_build_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert "mkdocs build --strict" in text and "mkdocs serve" in text


def test_readme_is_a_front_page() -> None:
    size = len(README.read_bytes())
    assert size <= SIZE_BUDGET, f"README.md is {size} bytes: move the details into docs/ and link them"


def test_bench_markers_are_on_the_performance_page_only() -> None:
    for marker in ("<!-- bench:start -->", "<!-- bench:end -->"):
        assert marker not in README.read_text(encoding="utf-8")
        assert (DOCS / "performance.md").read_text(encoding="utf-8").count(marker) == 1, marker
