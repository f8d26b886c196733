"""``VISION_EMULATOR_HOST``: clients built without ``endpoint=`` reach the emulator, plaintext and anonymous.

Against the shared emulator (gRPC and REST on separate ports, so REST finds its port through
``VISION_EMULATOR_REST_HOST``): the variable's endpoint, the precedence of an explicit ``endpoint=``, the
WARNING naming each setting the variable overrides (never a secret), and what the emulator received.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tests.live.harness import PDF_URI
from vision_grpc import AsyncClient, Client, types
from vision_grpc._auth import plan_auth
from vision_grpc._core.options import ClientOptions
from vision_grpc.errors import ValidationError
from vision_grpc.testing import Emulator

SECRET = "AIza-not-a-real-key-0123456789"


@pytest.fixture
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("VISION_EMULATOR_HOST", emulator.grpc_target)
    monkeypatch.setenv("VISION_EMULATOR_REST_HOST", emulator.rest_url)  # with http://, as STORAGE_EMULATOR_HOST
    return emulator


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _files_request(prefix: str) -> types.AsyncBatchAnnotateFilesRequest:
    return types.async_files_request(PDF_URI, output_uri=f"gs://bucket/env/{prefix}/", batch_size=3)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_client_without_endpoint_uses_the_emulator(env: Emulator, transport: str) -> None:
    with Client(transport=transport) as client:  # type: ignore[arg-type]
        assert client.options.emulator_host is not None
        assert client.options.use_plaintext
        response = client.async_batch_annotate_files(_files_request(f"sync-{transport}")).result(timeout=10)
    assert response.responses[0].output_config.gcs_destination.uri == f"gs://bucket/env/sync-{transport}/"
    assert env.list_objects(f"gs://bucket/env/sync-{transport}/") == [
        f"gs://bucket/env/sync-{transport}/output-1-to-3.json"
    ]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_async_client_without_endpoint_uses_the_emulator(env: Emulator, transport: str) -> None:
    async def main() -> None:
        async with AsyncClient(transport=transport) as client:  # type: ignore[arg-type]
            operation = await client.async_batch_annotate_files(_files_request(f"async-{transport}"))
            await operation.result(timeout=10)

    asyncio.run(main())
    assert env.list_objects(f"gs://bucket/env/async-{transport}/")


def test_rest_without_its_own_variable_uses_vision_emulator_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A single-port emulator: one variable for both transports."""
    monkeypatch.setenv("VISION_EMULATOR_HOST", "http://127.0.0.1:8470")
    monkeypatch.delenv("VISION_EMULATOR_REST_HOST", raising=False)
    assert ClientOptions(transport="rest").resolved_endpoint == "127.0.0.1:8470"
    assert ClientOptions(transport="grpc").resolved_endpoint == "127.0.0.1:8470"


def test_explicit_endpoint_wins(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_EMULATOR_HOST", _closed_port())
    with Client(endpoint=emulator.grpc_target, timeout=5) as client:
        assert client.options.emulator_host is None
        assert list(client.list_operations()) == []


def test_credentials_are_ignored_with_a_warning_and_never_sent(env: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """The emulator refuses API keys on files:asyncBatchAnnotate; with the variable none reaches it."""
    env.service.clear_calls()
    with caplog.at_level(logging.DEBUG, logger="vision_grpc"):
        with Client(api_key=SECRET, project="p", location="eu", quota_project="q") as client:
            client.async_batch_annotate_files(_files_request("key")).result(timeout=10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("vision_grpc")]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "VISION_EMULATOR_HOST" in message and "api_key" in message and "location='eu'" in message
    assert SECRET not in caplog.text
    calls = env.service.calls
    assert calls and all("x-goog-api-key" not in call.metadata for call in calls)
    submit = next(call for call in calls if call.method == "AsyncBatchAnnotateFiles")
    # location still fills parent; the quota project (no secret) is still sent
    assert submit.metadata["x-goog-request-params"] == "parent=projects/p/locations/eu"
    assert submit.metadata["x-goog-user-project"] == "q"


@pytest.mark.parametrize(
    "settings",
    [{"credentials_file": "/nonexistent/key.json"}, {"credentials": object()}, {"plaintext": False}],
    ids=["credentials_file", "credentials", "plaintext"],
)
def test_each_overridden_setting_is_named(
    env: Emulator, caplog: pytest.LogCaptureFixture, settings: dict[str, object]
) -> None:
    with caplog.at_level(logging.WARNING, logger="vision_grpc"):
        plan = plan_auth(ClientOptions(**settings))  # type: ignore[arg-type]
    assert plan.mode == "anonymous" and plan.credentials is None and plan.headers == ()
    assert len(caplog.records) == 1 and next(iter(settings)) in caplog.records[0].getMessage()


def test_nothing_overridden_no_warning(env: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vision_grpc"):
        Client(project="p").close()
    assert [r.levelname for r in caplog.records if r.name == "vision_grpc._auth"] == ["INFO"]


def test_a_remote_emulator_gets_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plaintext to a host that is not loopback (an emulator in another container): anonymous only."""
    monkeypatch.setenv("VISION_EMULATOR_HOST", "vision-emulator.internal:8470")
    options = ClientOptions(api_key=SECRET)
    assert options.resolved_endpoint == "vision-emulator.internal:8470" and options.use_plaintext
    plan = plan_auth(options)
    assert plan.mode == "anonymous" and plan.headers == ()
    assert SECRET not in repr(options)


@pytest.mark.parametrize("value", ["https://127.0.0.1:8470", "127.0.0.1", "[::1]", "host:port", "h:1/v1", "::1"])
def test_a_malformed_value_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VISION_EMULATOR_HOST", value)
    with pytest.raises(ValidationError) as caught:
        ClientOptions()
    assert caught.value.field == "VISION_EMULATOR_HOST"


def test_rest_variable_alone_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISION_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("VISION_EMULATOR_REST_HOST", "127.0.0.1:8471")
    with pytest.raises(ValidationError, match="VISION_EMULATOR_HOST"):
        ClientOptions(transport="rest")


def test_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_EMULATOR_HOST", "")
    monkeypatch.delenv("VISION_EMULATOR_REST_HOST", raising=False)
    assert ClientOptions().emulator_host is None
    assert ClientOptions().resolved_endpoint == "vision.googleapis.com:443"


def test_the_variable_is_read_when_options_are_built(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client keeps its server: setting the variable later does not move it (nor its credentials)."""
    monkeypatch.delenv("VISION_EMULATOR_HOST", raising=False)
    options = ClientOptions(location="eu")
    monkeypatch.setenv("VISION_EMULATOR_HOST", emulator.grpc_target)
    assert options.resolved_endpoint == "eu-vision.googleapis.com:443" and not options.use_plaintext
    assert ClientOptions(location="eu").resolved_endpoint == emulator.grpc_target
