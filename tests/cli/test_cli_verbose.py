"""``-v``/``-vv`` (logging of the ``vision_grpc`` tree on stderr) and ``VISION_EMULATOR_HOST`` on the command line.

The command runs as a user runs it, in a subprocess with a real stderr, against the shared emulator (a real
server on 127.0.0.1), except where a test checks that ``main()`` leaves the process's logging as it was.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests._support import make_pdf
from vision_grpc import Client, types
from vision_grpc.cli import main
from vision_grpc.testing import Emulator

SECRET = "AIza-cli-secret-0123456789"
DEBUG_LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} DEBUG vision_grpc\.rpc: /google\.longrunning\.Operations/GetOperation "
    r"127\.0\.0\.1:\d+ attempt 1: OK in [\d.]+ ms$",
    re.MULTILINE,
)


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_EMULATOR", "VISION_GRPC_API_KEY"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vision_grpc.cli", *argv], capture_output=True, text=True, timeout=60, env=environ
    )


@pytest.fixture
def operation(emulator: Emulator) -> str:
    """A finished operation's name on the shared emulator."""
    emulator.put_object("gs://bucket/verbose/in.pdf", make_pdf(1))
    request = types.async_files_request("gs://bucket/verbose/in.pdf", output_uri="gs://bucket/verbose/out/")
    with Client(endpoint=emulator.grpc_target) as client:
        op = client.async_batch_annotate_files(request)
        op.result(timeout=10)
    return op.name


@pytest.mark.parametrize("where", ["env", "flag"])
def test_vv_logs_each_attempt_and_never_the_api_key(emulator: Emulator, operation: str, where: str) -> None:
    key_flags = ["--api-key", SECRET] if where == "flag" else []
    env = {"VISION_GRPC_API_KEY": SECRET} if where == "env" else {}
    result = _cli("operation", "get", operation, "--endpoint", emulator.grpc_target, "-vv", *key_flags, env=env)
    assert result.returncode == 0, result.stderr
    assert DEBUG_LINE.search(result.stderr), result.stderr
    assert SECRET not in result.stderr and SECRET not in result.stdout
    # the key did go to the (loopback) emulator: -vv shows the call, not its credentials
    calls = [call for call in emulator.service.calls if call.method == "GetOperation"]
    assert calls[-1].metadata.get("x-goog-api-key") == SECRET


def test_verbosity_before_the_command_and_its_levels(emulator: Emulator, operation: str) -> None:
    base = ["operation", "get", operation, "--endpoint", emulator.grpc_target]
    assert DEBUG_LINE.search(_cli("-vv", *base).stderr)
    assert DEBUG_LINE.search(_cli("-v", *base, "-v").stderr)  # counted wherever they are
    emulator.service.faults.fail_next("GetOperation", "UNAVAILABLE")
    info = _cli(*base, "--verbose")
    assert info.returncode == 0
    assert re.search(r" INFO vision_grpc\._flows\.retry: GetOperation: UNAVAILABLE on attempt 1; retrying", info.stderr)
    assert " DEBUG " not in info.stderr
    quiet = _cli(*base)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_emulator_host_variable_reaches_the_emulator_and_warns_about_ignored_credentials(
    emulator: Emulator, operation: str
) -> None:
    env = {"VISION_EMULATOR_HOST": emulator.grpc_target, "VISION_GRPC_API_KEY": SECRET}
    result = _cli("operation", "get", operation, "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert '"done": true' in result.stdout
    (warning,) = result.stderr.splitlines()
    assert "WARNING vision_grpc._auth: VISION_EMULATOR_HOST is set" in warning and "ignoring api_key" in warning
    assert SECRET not in result.stderr
    assert "x-goog-api-key" not in emulator.service.calls[-1].metadata
    # --endpoint wins over the variable: a closed port there is never dialled
    closed = {"VISION_EMULATOR_HOST": "127.0.0.1:9"}
    assert _cli("operation", "get", operation, "--endpoint", emulator.grpc_target, env=closed).returncode == 0


def test_a_malformed_emulator_host_exits_2_naming_the_variable() -> None:
    result = _cli("operation", "get", "operations/x", env={"VISION_EMULATOR_HOST": "https://127.0.0.1:8470"})
    assert result.returncode == 2
    assert result.stderr.startswith("vision-grpc: VISION_EMULATOR_HOST: must be host:port or http://host:port")


@pytest.fixture
def standalone() -> Iterator[list[str]]:
    """``vision-grpc -v emulator``: its output lines after the banner (the export lines)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vision_grpc.cli", "-v", "emulator", "--operation-seconds", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        banner = lines.get(timeout=30)
        assert banner.startswith("vision-grpc emulator: grpc=127.0.0.1:")
        yield [lines.get(timeout=10).strip() for _ in range(2)]
    finally:
        process.terminate()
        process.communicate(timeout=15)
        assert process.returncode == 0


def test_standalone_emulator_prints_the_lines_to_export(standalone: list[str]) -> None:
    grpc_line, rest_line = standalone
    assert re.fullmatch(r"export VISION_EMULATOR_HOST=127\.0\.0\.1:\d+", grpc_line)
    assert re.fullmatch(r"export VISION_EMULATOR_REST_HOST=127\.0\.0\.1:\d+", rest_line)
    env = dict(line.removeprefix("export ").split("=", 1) for line in standalone)
    for transport in ("grpc", "rest"):
        result = _cli("operation", "get", "operations/nope", "--transport", transport, env=env)
        assert result.returncode == 3 and "NOT_FOUND" in result.stderr, result.stderr  # the emulator answered


def test_main_leaves_the_process_logging_as_it_was(
    emulator: Emulator, operation: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("vision_grpc")
    before = (logger.level, list(logger.handlers))
    assert main(["operation", "get", operation, "--endpoint", emulator.grpc_target, "-vv"]) == 0
    assert DEBUG_LINE.search(capsys.readouterr().err)
    assert (logger.level, list(logger.handlers)) == before
