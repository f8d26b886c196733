"""``python -m vision_grpc.emulator`` starts, prints its address, serves, and exits cleanly on signals."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

_BANNER = re.compile(r"^vision-grpc emulator: grpc=(127\.0\.0\.1:\d+) rest=(http://127\.0\.0\.1:\d+) storage=(.+)$")


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no banner within {timeout}s") from None


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_entry_point_serves_until_signalled(tmp_path: Path, stop_signal: signal.Signals) -> None:
    command = [
        sys.executable,
        "-m",
        "vision_grpc.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--storage",
        str(tmp_path),
        "--operation-seconds",
        "0.1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        match = _BANNER.match(_first_line(process, timeout=30).strip())
        assert match, "unexpected banner"
        assert Path(match.group(3)) == tmp_path.resolve()
        with grpc.insecure_channel(match.group(1)) as channel:
            stub = operations_pb2_grpc.OperationsStub(channel)
            reply = stub.ListOperations(operations_pb2.ListOperationsRequest(name="operations"), timeout=10)
            assert list(reply.operations) == []
        with urllib.request.urlopen(match.group(2) + "/v1/operations", timeout=10) as response:
            assert json.loads(response.read()) == {}
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_entry_point_rejects_a_busy_port(tmp_path: Path) -> None:
    from vision_grpc.testing import Emulator

    with Emulator() as running:
        port = running.grpc_target.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "vision_grpc.emulator", "--port", port, "--storage", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1 and "cannot bind" in result.stderr
