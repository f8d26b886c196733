"""Runs the official google-cloud-vision package once, in its own process, for this folder: ``official``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.googleapis_options import ELEMENT_OPTIONS
from tests.conformance.ours import ROUND_TRIP, our_populated


@pytest.fixture(scope="session")
def official() -> dict[str, Any]:
    request = {
        "schema": True,
        "methods": True,
        "populate": ROUND_TRIP,
        "exists": list(ELEMENT_OPTIONS),
        "parse": [
            {"type": name, "b64": base64.b64encode(our_populated(name).SerializeToString(deterministic=True)).decode()}
            for name in ROUND_TRIP
        ],
    }
    script = Path(__file__).with_name("official_side.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
