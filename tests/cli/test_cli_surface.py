"""The command line's surface: --version, --no-wait for scripts, help everywhere, bulk settings and progress,
a closed stdout, and exit 6 when the call succeeded but pages or images failed."""

from __future__ import annotations

import argparse
import inspect
import os
import pty
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests._support import flags, make_pdf, run
from vision_grpc import __version__
from vision_grpc.bulk import BulkRunner, load_report
from vision_grpc.cli import _parser
from vision_grpc.cli._exit import ExitCode
from vision_grpc.demo import sample_pdf
from vision_grpc.emulator.__main__ import _parser as emulator_parser
from vision_grpc.errors import api_error
from vision_grpc.testing import Emulator

CLI = [sys.executable, "-m", "vision_grpc.cli"]


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def put(emulator: Emulator, name: str, data: bytes) -> str:
    """Store ``data`` under a fresh gs:// URI ending in ``name``; returns the URI."""
    uri = f"gs://bucket/surface/{uuid.uuid4().hex[:8]}/{name}"
    emulator.put_object(uri, data)
    return uri


# -- --version, --no-wait, help ---------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    done = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"vision-grpc {__version__}\n", "")


def test_no_wait_prints_the_bare_operation_name(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    uri = put(emulator, "doc.pdf", sample_pdf())
    code, out, _ = run(capsys, "annotate", "files", uri, "--output", uri + "-out/", "--no-wait", *flags(emulator))
    assert code == 0 and re.fullmatch(r"operations/[0-9a-f]+\n", out), out  # NAME=$(vision-grpc ... --no-wait)
    code, doc, _ = run(capsys, "operation", "wait", out.strip(), "--json", *flags(emulator))
    assert code == 0 and doc["state"] == "DONE"


def test_no_wait_with_json_keeps_the_document(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    uri = put(emulator, "doc.pdf", sample_pdf())
    argv = ["annotate", "files", uri, "--output", uri + "-out/", "--no-wait", "--json", *flags(emulator)]
    code, doc, _ = run(capsys, *argv)
    assert code == 0 and doc["name"].startswith("operations/") and doc["done"] is False


def walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    """Every action of ``parser`` and of its subcommands' parsers, with where it is."""
    found = []
    for action in parser._actions:
        found.append((f"{path} {'/'.join(action.option_strings) or action.dest}", action))
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"{path} {choice.dest}", choice) for choice in action._choices_actions]
            for name, sub in action.choices.items():
                found += walk(sub, f"{path} {name}")
    return found


def test_every_option_and_subcommand_has_help() -> None:
    actions = walk(_parser(), "vision-grpc") + walk(emulator_parser(), "vision-grpc emulator")
    assert len(actions) > 60
    missing = [where for where, action in actions if not action.help or action.help == argparse.SUPPRESS]
    assert missing == []


# -- bulk ------------------------------------------------------------------------------------------

BULK_OPTIONS = {
    "--files-per-request": "files_per_request",
    "--images-per-request": "images_per_request",
    "--max-in-flight": "max_in_flight",
    "--poll-interval": "poll_interval",
    "--max-attempts": "max_attempts",
    "--max-pages-in-flight": "max_pages_in_flight",
    "--max-images-in-flight": "max_images_in_flight",
    "--max-requests-per-minute": "max_requests_per_minute",
    "--pages-per-file": "pages_per_file",
}


def test_bulk_help_tells_bulk_runners_defaults() -> None:
    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    options = {a.option_strings[0]: a for a in commands.choices["bulk"]._actions if a.option_strings}
    defaults = inspect.signature(BulkRunner).parameters
    for flag, setting in BULK_OPTIONS.items():
        action = options[flag]
        assert action.default is None, flag  # not given: BulkRunner's own default applies
        told = re.search(r"\(default: ([\d.]+)\)", action.help or "")
        assert told and float(told[1]) == defaults[setting].default, (flag, action.help)


def bulk_argv(emulator: Emulator, tmp_path: Path, uris: list[str], *extra: str) -> list[str]:
    listing = tmp_path / "inputs.txt"
    listing.write_text("".join(f"{uri}\n" for uri in uris))
    out = f"gs://bucket/surface-bulk/{uuid.uuid4().hex[:8]}/"
    return ["bulk", str(listing), "--journal", str(tmp_path / "j.sqlite"), "--output", out, *extra, *flags(emulator)]


def test_bulk_settings_reach_the_runner(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    uris = [put(emulator, f"{n}.pdf", make_pdf(1)) for n in range(3)]
    argv = bulk_argv(emulator, tmp_path, uris, "--files-per-request", "1", "--max-in-flight", "2", "--json")
    argv += ["--poll-interval", "0.2", "--max-attempts", "2"]
    argv += ["--max-pages-in-flight", "50", "--max-requests-per-minute", "600", "--pages-per-file", "1"]
    code, doc, err = run(capsys, *argv)
    assert code == 0 and doc["counts"]["done"] == 3, err
    report = load_report(tmp_path / "j.sqlite")
    assert len({item.batch for item in report.done}) == len(report.operations) == 3  # one file per request


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--files-per-request", "0"], "--files-per-request: must be in [1, 2000], got 0"),
        (["--kind", "images", "--images-per-request", "2001"], "--images-per-request: must be in [1, 2000], got 2001"),
        (["--max-in-flight", "0"], "--max-in-flight: must be in [1, 2000], got 0"),
        (["--max-attempts", "0"], "--max-attempts: must be in [1, 2000], got 0"),
        (["--poll-interval", "0"], "--poll-interval, --wait-timeout: poll_interval and poll_timeout must be > 0"),
        (["--images-per-request", "5"], "--images-per-request is for --kind images; this run is --kind files"),
        # The quota settings: BulkRunner's own checks, named by flag (so the values reach it).
        (["--max-pages-in-flight", "0"], "--max-pages-in-flight: must be an int >= 1, got 0"),
        (["--max-requests-per-minute", "0"], "--max-requests-per-minute: must be an int >= 1, got 0"),
        (["--pages-per-file", "0"], "--pages-per-file: must be an int >= 1, got 0"),
        (["--kind", "images", "--max-images-in-flight", "0"], "--max-images-in-flight: must be an int >= 1, got 0"),
        (["--max-images-in-flight", "5"], "--max-images-in-flight is for --kind images; this run is --kind files"),
        (
            ["--kind", "images", "--pages-per-file", "3"],
            "--pages-per-file is for --kind files; this run is --kind images",
        ),
    ],
)
def test_bulk_settings_are_checked_by_the_runner(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    code, _, err = run(capsys, *bulk_argv(emulator, tmp_path, ["gs://bucket/surface/x.pdf"], *extra))
    assert (code, one_line_error(err)) == (2, f"vision-grpc: {message}")


def on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` with stderr on a pseudo-terminal: exit code, stdout, everything drawn on the terminal."""
    main_end, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    drawn = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(main_end, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=90)
    finally:
        process.kill()
        reader.join(timeout=10)
        os.close(main_end)
    return process.returncode, stdout.decode(), drawn.decode(errors="replace")


def test_bulk_shows_progress_on_a_terminal(emulator: Emulator, tmp_path: Path) -> None:
    uris = [put(emulator, f"{n}.pdf", make_pdf(1)) for n in range(2)]
    code, out, drawn = on_a_terminal([*CLI, *bulk_argv(emulator, tmp_path, uris, "--files-per-request", "1")])
    assert code == 0, drawn
    assert "bulk: 2 batch(es) submitted, " in drawn and ", 2 done, 0 failed" in drawn
    assert out.strip() == "done: 2, failed: 0, pending: 0, total: 2"  # the report stays on stdout, undrawn


def test_bulk_draws_nothing_with_json_on_a_terminal(emulator: Emulator, tmp_path: Path) -> None:
    uris = [put(emulator, "a.pdf", make_pdf(1))]
    code, out, drawn = on_a_terminal([*CLI, *bulk_argv(emulator, tmp_path, uris, "--json")])
    assert code == 0 and drawn == "" and '"done": 1' in out


# -- a closed stdout --------------------------------------------------------------------------------


def test_stdout_closed_early_ends_quietly() -> None:
    """``vision-grpc demo | head -1`` where head has already gone: no error, no traceback; 141 as for SIGPIPE."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader went away before the first write: every write fails (EPIPE)
    try:
        done = subprocess.run(
            [*CLI, "demo", "--operation-seconds", "0.1"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (ExitCode.BROKEN_PIPE, "")


def test_head_reads_the_first_line() -> None:
    pipeline = f"{' '.join(CLI)} demo --operation-seconds 0.1 | head -1"
    done = subprocess.run(["sh", "-c", pipeline], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("Annotating gs://vision-grpc-demo/sample.pdf") and done.stdout.count("\n") == 1


# -- exit 6: the call succeeded, pages or images failed ---------------------------------------------


def label_only_ok_images(image: Any, feature: Any, response: Any) -> None:
    """LABEL_DETECTION for the test: images whose bytes are b'ok' get a label, the others fail."""
    if image.content != b"ok":
        raise api_error(3, "not an image the test knows")
    response.label_annotations.add(description="ok", score=1.0)


@pytest.fixture
def labels(emulator: Emulator) -> Any:
    emulator.service.annotators.register("LABEL_DETECTION", label_only_ok_images)
    yield
    emulator.service.annotators.unregister("LABEL_DETECTION")


@pytest.mark.usefixtures("labels")
def test_sync_images_exit_6_when_some_fail_and_0_when_none_do(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(b"ok")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    argv = ["annotate", "images", "--feature", "LABEL_DETECTION", *flags(emulator)]
    code, out, err = run(capsys, *argv, str(good), str(bad))
    assert code == ExitCode.ITEM_ERRORS == 6
    assert f"{bad}: not an image the test knows" in out  # every image is still printed
    assert one_line_error(err) == (
        f"vision-grpc: 1 of 2 image(s) failed: {bad}: INVALID_ARGUMENT (400): not an image the test knows"
    )
    code, doc, err = run(capsys, *argv, str(good), str(good), "--json")
    assert (code, err) == (0, "") and len(doc["responses"]) == 2


def test_outputs_exit_6_when_pages_failed(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    good, blank = put(emulator, "good.pdf", sample_pdf()), put(emulator, "blank.pdf", make_pdf(1))
    code, doc, _ = run(capsys, "annotate", "files", good, blank, "--output", good + "-out/", "--json", *flags(emulator))
    assert code == 0  # the operation succeeded: annotate reads no shards (`outputs` does)
    code, doc, err = run(capsys, "outputs", doc["name"], "--json", *flags(emulator))
    assert code == 6 and doc["errors"] == 1 and doc["pages"] == 4  # the document still holds every page
    assert one_line_error(err).startswith(f"vision-grpc: 1 of 4 page(s) failed: {blank} page 1: UNIMPLEMENTED")


def test_demo_exit_6_when_pages_failed(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blank = put(emulator, "blank.pdf", make_pdf(2))
    argv = ["demo", "--anonymous", "--input", blank, "--output", blank + "-out/", *flags(emulator)]
    code, out, err = run(capsys, *argv)
    assert code == 6 and out.count("\n    ! ") == 2  # each failed page says why
    assert one_line_error(err).startswith(f"vision-grpc: 2 of 2 page(s) failed: {blank} page 1: ")


# -- missing extras ---------------------------------------------------------------------------------


def test_outputs_without_cloud_storage_says_what_to_pass(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo's install (``[demo]``) has no google-cloud-storage: say the extra and --emulator-storage."""
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # as if not installed
    code, _, err = run(capsys, "outputs", "gs://vision-grpc-demo/output/", "--save", str(tmp_path / "pages"))
    line = one_line_error(err)
    assert code == 2 and "pip install 'vision-grpc[storage]'" in line
    assert "pass --emulator-storage DIR instead" in line and "vision-grpc demo --emulator-storage DIR" in line


def test_demo_results_kept_with_emulator_storage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    code, out, _ = run(capsys, "demo", "--operation-seconds", "0.1", "--emulator-storage", str(storage))
    assert code == 0 and f"kept under {storage}" in out
    argv = ["outputs", "gs://vision-grpc-demo/output/", "--emulator-storage", str(storage)]
    code, doc, _ = run(capsys, *argv, "--save", str(tmp_path / "pages"), "--json")
    assert code == 0 and doc["pages"] == 3
    assert sorted(p.name for p in (tmp_path / "pages").iterdir()) == ["00001.txt", "00002.txt", "00003.txt"]
