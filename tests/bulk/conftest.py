"""Fixtures of the bulk tests: a real client on the shared emulator, and ``bed`` (a fresh bucket and journal).

``Bed`` and ``check_consistent`` are in tests/bulk/bed.py; the emulator and its reset between tests are
tests/conftest.py's ``emulator`` and ``emulator_reset``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bulk.bed import Bed
from vision_grpc import Client
from vision_grpc.testing import Emulator


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> Iterator[Client]:
    with Client(endpoint=emulator.grpc_target) as c:
        yield c


@pytest.fixture
def bed(emulator: Emulator, client: Client, tmp_path: Path) -> Bed:
    bucket = f"gs://bulk-{uuid.uuid4().hex[:10]}/"
    return Bed(emulator, client, bucket, tmp_path / "journal.db", f"{bucket}out/")
