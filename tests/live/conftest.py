"""One test body, four runs: {grpc, rest} x {sync, asyncio} clients against the shared emulator.

``emulator`` here is tests/conftest.py's, with the three-page PDF at ``PDF_URI`` staged once; ``harness``
is parametrized over the four clients (see tests/live/harness.py) and closes them after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support import make_pdf
from tests.live.harness import MODES, PDF_URI, TRANSPORTS, Harness
from vision_grpc.testing import Emulator


@pytest.fixture(scope="session")
def emulator(emulator: Emulator) -> Emulator:
    """The shared emulator, with ``PDF_URI`` staged."""
    emulator.put_object(PDF_URI, make_pdf(3))
    return emulator


@pytest.fixture(params=[(t, m) for t in TRANSPORTS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def harness(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Harness]:
    transport, mode = request.param
    if transport == "rest" and emulator.rest_url is None:
        pytest.fail("the emulator has no REST front")
    h = Harness(emulator, transport, mode)
    try:
        yield h
    finally:
        h.close()
