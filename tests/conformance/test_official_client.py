"""The official google-cloud-vision client, in its own process, drives our emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import make_pdf
from vision_grpc.testing import Emulator

TRANSPORTS = ["grpc", "rest"]


@pytest.fixture(scope="module")
def emulator(emulator: Emulator) -> Emulator:
    """The shared emulator, with a three-page PDF at ``gs://bucket/doc.pdf``."""
    emulator.put_object("gs://bucket/doc.pdf", make_pdf(3))
    return emulator


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_official_client_runs_async_files_against_the_emulator(emulator: Emulator, transport: str) -> None:
    if transport == "grpc":
        endpoint = emulator.grpc_target
    else:
        assert emulator.rest_url is not None, "the emulator has no REST front"
        endpoint = emulator.rest_url.removeprefix("http://")
    out = f"gs://bucket/official-{transport}/"
    script = Path(__file__).with_name("official_client.py")
    done = subprocess.run(
        [sys.executable, str(script), transport, endpoint, "gs://bucket/doc.pdf", out],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["output"] == out
    assert seen["state"] == "DONE"
    assert seen["sync_error_code"] == 12  # UNIMPLEMENTED: the emulator computes no image features yet
    assert seen["get_operation_done"] is True
    assert emulator.list_objects(out) == [f"{out}output-1-to-2.json", f"{out}output-3-to-3.json"]
