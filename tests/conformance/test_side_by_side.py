"""vision_grpc beside google-cloud-vision in one process, whichever is imported first.

Both used to register ``google.cloud.vision.v1.*`` in protobuf's default descriptor pool, and the
second import failed with "duplicate symbol"; ours now live in a pool of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import make_pdf
from vision_grpc.testing import Emulator

PDF = "gs://side-by-side/doc.pdf"


@pytest.mark.parametrize("order", ["ours-first", "official-first"])
def test_both_clients_work_in_one_process(emulator: Emulator, order: str) -> None:
    emulator.put_object(PDF, make_pdf(2))
    out = f"gs://side-by-side/{order}/"
    script = Path(__file__).with_name("side_by_side.py")
    done = subprocess.run(
        [sys.executable, str(script), order, emulator.grpc_target, PDF, out],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"ours": f"{out}ours/", "official": f"{out}official/", "official_as_ours": f"{out}official/"}
    assert emulator.list_objects(f"{out}ours/") and emulator.list_objects(f"{out}official/")
