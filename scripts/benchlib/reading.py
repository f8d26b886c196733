"""Reading results: N pages of realistic OCR output shards, read in fresh processes, time and peak RSS.

The shards are written once per size into a temporary directory, as the service lays them out
(``output-{first}-to-{last}.json``, 20 pages each, one ``AnnotateFileResponse`` per shard, JSON as
``json_format`` writes it); every page is a dense OCR page (full_text_annotation down to symbols with
normalized bounding boxes, and text_annotations per word, like the emulator's PDF text layer writes).

Each way reads every page once, streaming (nothing kept but a running count), in its own process
(``python -m benchlib.reading WAY DIR``), so that its peak RSS (``ru_maxrss``) is its own:

* ``official``: google-cloud-vision's proto-plus ``AnnotateFileResponse.from_json`` per shard (it
  calls ``json_format.Parse``), pages touched through ``.responses``;
* ``ours``: ``vision_grpc.outputs.read_file_results`` (typed ``PageResult`` per page);
* ``ours_text``: ``vision_grpc.outputs.read_file_text`` (``PageText``: text and words only).

A child reports its CPU time (``time.process_time``) and wall time for the reading, its RSS before
it and its peak RSS during it (Linux: the peak is reset before reading, ``/proc/self/clear_refs``).
Repetitions rotate the order of the ways; ratios are medians of per-repetition ratios of CPU time
per page.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .processes import CHILD_ENV, PYTHON, SCRIPTS, BenchError, Rig
from .results import ReadingRow
from .rounds import rotated
from .stats import median, round_ratio

WAYS = ("official", "ours", "ours_text")
PAGES_PER_SHARD = 20
INPUT_URI = "gs://bench-in/doc.pdf"
PREFIX = "gs://bench-out/reading/"
_WORDS = (
    "Juniper Valley Orchards Quarterly Report This report covers the third quarter of the year for the "
    "cooperative All names figures and places in it are invented Harvest volumes rose by percent compared "
    "with the same quarter last year mostly thanks to the late apple varieties planted"
).split()


def page_json(number: int, words: int = 34) -> dict[str, Any]:
    """One dense OCR page as json_format writes it (camelCase), ~50 KB of JSON: lines of words, each
    word with its symbols, every element with a normalized bounding box and a confidence."""

    def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return {"normalizedVertices": [{"x": round(x, 7), "y": round(y, 7)} for x, y in points]}

    paragraphs, text_annotations, text = [], [], []
    x, y = 0.1176, 0.0813
    line: list[dict[str, Any]] = []
    for i in range(words):
        token = _WORDS[(i + number) % len(_WORDS)]
        width = 0.0123 * len(token)
        end_of_line = i % 11 == 10 or i == words - 1
        symbols = []
        for j, char in enumerate(token):
            symbol: dict[str, Any] = {
                "boundingBox": box(x + j * 0.0123, y, x + (j + 1) * 0.0123, y + 0.0236),
                "text": char,
                "confidence": 0.9857597,
            }
            if j == len(token) - 1:
                symbol["property"] = {"detectedBreak": {"type": "LINE_BREAK" if end_of_line else "SPACE"}}
            symbols.append(symbol)
        word = {"boundingBox": box(x, y, x + width, y + 0.0236), "symbols": symbols, "confidence": 0.9857597}
        line.append(word)
        text_annotations.append({"description": token, "boundingPoly": box(x, y, x + width, y + 0.0236)})
        text.append(token + ("\n" if end_of_line else " "))
        x += width + 0.008
        if end_of_line:
            paragraphs.append({"boundingBox": box(0.1176, y, x, y + 0.0236), "words": line, "confidence": 0.98})
            line, x, y = [], 0.1176, y + 0.0313
    full_text = "".join(text)
    block = {"boundingBox": box(0.1176, 0.0813, 0.7, y), "paragraphs": paragraphs, "blockType": "TEXT"}
    return {
        "textAnnotations": [{"locale": "en", "description": full_text, "boundingPoly": box(0.1176, 0.0813, 0.7, y)}]
        + text_annotations,
        "fullTextAnnotation": {
            "pages": [
                {
                    "property": {"detectedLanguages": [{"languageCode": "en", "confidence": 0.99}]},
                    "width": 612,
                    "height": 792,
                    "blocks": [block],
                    "confidence": 0.98,
                }
            ],
            "text": full_text,
        },
        "context": {"uri": INPUT_URI, "pageNumber": number},
    }


def write_shards(root: Path, pages: int) -> tuple[int, int]:
    """The shards of ``pages`` pages under ``root`` (a LocalStorage root); (total bytes, largest shard bytes)."""
    directory = root / PREFIX.removeprefix("gs://")
    directory.mkdir(parents=True, exist_ok=True)
    total = largest = 0
    for first in range(1, pages + 1, PAGES_PER_SHARD):
        last = min(first + PAGES_PER_SHARD - 1, pages)
        shard = {
            "inputConfig": {"gcsSource": {"uri": INPUT_URI}, "mimeType": "application/pdf"},
            "responses": [page_json(n) for n in range(first, last + 1)],
        }
        data = json.dumps(shard).encode()
        (directory / f"output-{first}-to-{last}.json").write_bytes(data)
        total, largest = total + len(data), max(largest, len(data))
    return total, largest


# -- the child ---------------------------------------------------------------------------------------


def _memory() -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB, from /proc/self/status (ru_maxrss where there is none)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _reset_peak() -> int:
    """Reset the peak RSS to the current one (Linux: 5 > /proc/self/clear_refs); the current RSS in KiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _memory()[0]


def _child(way: str, root: str) -> dict[str, Any]:
    if way == "official":
        from google.cloud import vision_v1

        files = sorted(Path(root, PREFIX.removeprefix("gs://")).iterdir(), key=lambda p: int(p.name.split("-")[1]))
        rss0 = _reset_peak()
        cpu, wall, pages, chars = time.process_time(), time.perf_counter(), 0, 0
        for path in files:
            shard = vision_v1.AnnotateFileResponse.from_json(path.read_bytes(), ignore_unknown_fields=True)
            for response in shard.responses:
                pages += 1
                chars += len(response.full_text_annotation.text)
            del shard
    else:
        from vision_grpc.outputs import read_file_results, read_file_text
        from vision_grpc.storage import LocalStorage

        reader = read_file_text if way == "ours_text" else read_file_results
        storage = LocalStorage(root)
        rss0 = _reset_peak()
        cpu, wall, pages, chars = time.process_time(), time.perf_counter(), 0, 0
        for page in reader(PREFIX, storage=storage):
            pages += 1
            chars += len(page.text)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rss1 = _memory()[1]
    return {"pages": pages, "chars": chars, "cpu_s": cpu, "wall_s": wall, "rss_before_kb": rss0, "rss_peak_kb": rss1}


def main() -> None:
    print(json.dumps(_child(sys.argv[1], sys.argv[2])))


# -- the orchestrator --------------------------------------------------------------------------------


def measure_reading(rig: Rig, sizes: tuple[int, ...], reps: int, official_max_pages: int) -> list[ReadingRow]:
    """Every way on every size, ``reps`` times in fresh processes (the official way only up to
    ``official_max_pages`` pages: ~10-30 ms a page); rows in size then way order."""
    rows: list[ReadingRow] = []
    root = Path(tempfile.mkdtemp(prefix="vision-bench-reading-"))
    try:
        for pages in sizes:
            shutil.rmtree(root, ignore_errors=True)
            total, largest = write_shards(root, pages)
            ways = [way for way in WAYS if way != "official" or pages <= official_max_pages]
            runs: dict[str, list[dict[str, Any] | None]] = {way: [] for way in ways}
            for r in range(reps):
                rig.say(f"reading: {pages} pages, repetition {r + 1}")
                for way in rotated(ways, r):
                    runs[way].append(_run_child(rig, way, root, pages))
            rows.extend(_row(way, pages, total, largest, runs) for way in ways)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def _run_child(rig: Rig, way: str, root: Path, pages: int) -> dict[str, Any] | None:
    argv = [PYTHON, "-m", "benchlib.reading", way, str(root)]
    try:
        done = subprocess.run(argv, cwd=SCRIPTS, env=CHILD_ENV, capture_output=True, timeout=60 + pages * 0.2)
        if done.returncode != 0:
            raise BenchError(f"reading {way} {pages} pages: exit {done.returncode}: {done.stderr.decode()[-500:]}")
        result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        if result["pages"] != pages:
            raise BenchError(f"reading {way}: read {result['pages']} pages of {pages}")
        return result
    except (BenchError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        rig.errors.append(f"reading {way} {pages} pages: {exc}")
        return None


def _row(way: str, pages: int, total: int, largest: int, runs: dict[str, list[dict[str, Any] | None]]) -> ReadingRow:
    def per_page(run: dict[str, Any] | None, key: str) -> float | None:
        return None if run is None else run[key] * 1e3 / pages

    mine = runs[way]
    done = [run for run in mine if run is not None]
    cpu = [per_page(run, "cpu_s") for run in mine]
    official = runs.get("official")
    vs_official = (
        None
        if official is None or way == "official"
        else round_ratio([per_page(run, "cpu_s") for run in official], cpu)
    )
    growth = [(run["rss_peak_kb"] - run["rss_before_kb"]) * 1024 for run in done]
    return ReadingRow(
        way=way,
        pages=pages,
        shards=math.ceil(pages / PAGES_PER_SHARD),
        json_mb=total / 1e6,
        largest_shard_mb=largest / 1e6,
        reps=len(done),
        cpu_ms_per_page=median([value for value in cpu if value is not None]),
        cpu_ms_per_page_runs=[value for value in cpu if value is not None],
        wall_ms_per_page=median([run["wall_s"] * 1e3 / pages for run in done]),
        speedup_vs_official=vs_official,
        rss_peak_mb=median([run["rss_peak_kb"] / 1024 for run in done]),
        rss_growth_mb=median(growth) / 1e6 if growth else math.nan,
        growth_per_shard=median(growth) / largest if growth else math.nan,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
