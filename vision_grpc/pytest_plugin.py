"""pytest plugin (registered through the ``pytest11`` entry point): the Vision emulator as fixtures.

Installed with vision-grpc, so every pytest run of a project that has it installed loads this module:
it imports nothing but pytest at load time; the emulator and the client are imported by the fixtures
that use them.

* ``vision_emulator`` (session): a running ``vision_grpc.testing.Emulator`` on 127.0.0.1 (free ports,
  a temporary storage directory, operations done after 0.2 s), shared by the session's tests and
  stopped at its end. Stage inputs with ``put_object``, read outputs with ``get_object`` /
  ``list_objects``, inject faults through ``.service.faults``. Shared: give each test its own
  ``gs://`` prefix. For other settings, define a ``vision_emulator`` fixture of your own in a
  conftest.py; the fixtures below use it.
* ``vision_emulator_env`` (function): the same emulator, with ``VISION_EMULATOR_HOST`` (and
  ``VISION_EMULATOR_REST_HOST``) set for the test's duration, so that code under test that builds
  ``Client()`` / ``AsyncClient()`` itself (no ``endpoint=``) reaches it, anonymously; and
  ``STORAGE_EMULATOR_HOST``, so that its ``google.cloud.storage.Client()`` reads and writes the
  emulator's objects through its Cloud Storage API.
* ``vision_client`` (function): a ``vision_grpc.Client`` connected to it over gRPC, closed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vision_grpc.client import Client
    from vision_grpc.testing import Emulator

__all__ = ["vision_client", "vision_emulator", "vision_emulator_env"]

OPERATION_SECONDS = 0.2


@pytest.fixture(scope="session")
def vision_emulator() -> Iterator[Emulator]:
    """A running Vision emulator for the session (gRPC ``.grpc_target``, REST ``.rest_url``, Cloud Storage
    ``.storage_url``)."""
    from vision_grpc.testing import Emulator

    with Emulator(operation_seconds=OPERATION_SECONDS) as emulator:
        yield emulator


@pytest.fixture
def vision_emulator_env(vision_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """``vision_emulator``, with ``VISION_EMULATOR_HOST`` / ``VISION_EMULATOR_REST_HOST`` and
    ``STORAGE_EMULATOR_HOST`` set during the test."""
    from vision_grpc._core.options import EMULATOR_HOST_ENV, EMULATOR_REST_HOST_ENV

    grpc_address = vision_emulator.grpc_target
    rest_address = vision_emulator.rest_url.removeprefix("http://")
    monkeypatch.setenv(EMULATOR_HOST_ENV, grpc_address)
    if rest_address != grpc_address:
        monkeypatch.setenv(EMULATOR_REST_HOST_ENV, rest_address)
    else:
        monkeypatch.delenv(EMULATOR_REST_HOST_ENV, raising=False)
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", vision_emulator.storage_host)
    except RuntimeError:  # a vision_emulator fixture of the user's own, with gcs=False: theirs to set
        pass
    return vision_emulator


@pytest.fixture
def vision_client(vision_emulator: Emulator) -> Iterator[Client]:
    """A ``Client`` on ``vision_emulator`` over gRPC (anonymous, plaintext), closed after the test."""
    from vision_grpc.client import Client

    with Client(endpoint=vision_emulator.grpc_target) as client:
        yield client
