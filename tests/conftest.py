"""The suite's one shared emulator, and the reset that keeps tests sharing it apart.

``emulator`` (session): one in-process ``vision_grpc.testing.Emulator`` (gRPC and REST on 127.0.0.1, free ports,
a temporary storage dir, operations done after ``OPERATION_SECONDS``, text read from PDF text layers: exact and
fast, where OCR takes a second or two a page) for every test package. A test that needs
other settings (OCR: tests/emulator/test_ocr*.py), a storage dir of its own or a process to kill starts its own
``Emulator`` explicitly.

``emulator_reset`` (function, autouse): around each test that uses ``emulator`` (directly or through another
fixture): before it, waits (bounded) until the stored operations of earlier tests have finished, so none of
them finishes during this test (taking an operation fault meant for it), then deletes them all and clears the
injected faults and the recorded calls; after it, clears the faults again. Tests that do not use the emulator
neither start nor wait for it.

Objects are not cleared: each test works under its own ``gs://`` prefix or bucket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from vision_grpc.emulator import AnnotatorRegistry
from vision_grpc.testing import Emulator

OPERATION_SECONDS = 0.2
QUIET_TIMEOUT = 10.0  # seconds to wait for earlier tests' operations to finish


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(operation_seconds=OPERATION_SECONDS, annotators=AnnotatorRegistry(ocr=False)) as running:
        yield running


def _reset(emulator: Emulator) -> None:
    store = emulator.service.store
    deadline = time.monotonic() + QUIET_TIMEOUT
    while any(not record.finished for record in store.snapshot()) and time.monotonic() < deadline:
        time.sleep(0.01)
    for record in store.snapshot():
        store.delete(record.name)
    emulator.service.faults.clear()
    emulator.service.clear_calls()


@pytest.fixture(autouse=True)
def emulator_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    if "emulator" not in request.fixturenames:
        yield
        return
    running: Emulator = request.getfixturevalue("emulator")
    _reset(running)
    yield
    running.service.faults.clear()


@pytest.fixture(autouse=True)
def _no_emulator_host_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported VISION_EMULATOR_HOST would redirect every client built without endpoint=."""
    monkeypatch.delenv("VISION_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("VISION_EMULATOR_REST_HOST", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)


@pytest.fixture(autouse=True)
def _no_bucket_metadata_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-cloud-storage 3.x fetches a bucket's metadata in a daemon thread on its first use. When the test's
    server stops first, that thread retries for up to two minutes with ``random.uniform`` backoff, and a later
    Hypothesis test sees the global random state change under it (HypothesisDeprecationWarning, then flaky
    data generation). The fetch only serves the library's OpenTelemetry attributes: switch it off."""
    monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "1")
