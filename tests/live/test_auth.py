"""Credentials reach the server as headers; secrets never reach reprs or errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.oauth2 import credentials as oauth2

from tests.live.harness import Harness
from vision_grpc import Client, errors, types
from vision_grpc._auth import plan_auth
from vision_grpc._core.options import ClientOptions


def test_bearer_token_from_google_auth_credentials(harness: Harness) -> None:
    token = oauth2.Credentials(token="ya29.test-token")  # already valid: no refresh, no network
    client = harness.new_client(credentials=token)
    harness.do(lambda c: c.batch_annotate_images(types.images_request([b"x"])), client)
    assert harness.emulator.service.calls[-1].metadata["authorization"] == "Bearer ya29.test-token"
    assert "ya29" not in repr(client) and "ya29" not in repr(client._auth)


def test_credentials_file_is_loaded_with_vision_scopes(tmp_path: Path) -> None:
    path = tmp_path / "user.json"
    path.write_text(
        json.dumps(
            {"type": "authorized_user", "client_id": "id", "client_secret": "s3cret", "refresh_token": "r3fresh"}
        )
    )
    plan = plan_auth(ClientOptions(credentials_file=str(path)))
    assert plan.mode == "credentials_file"
    assert plan.credentials.refresh_token == "r3fresh"
    assert "s3cret" not in repr(plan) and "r3fresh" not in repr(plan)


def test_adc_is_used_by_default_for_remote_endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps({"type": "authorized_user", "client_id": "id", "client_secret": "s", "refresh_token": "r"})
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    assert plan_auth(ClientOptions()).mode == "adc"


def test_missing_adc_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(errors.ValidationError) as caught:
        plan_auth(ClientOptions())
    assert caught.value.field == "credentials"
    assert "GOOGLE_APPLICATION_CREDENTIALS" in caught.value.rule


def test_loopback_without_credentials_is_anonymous() -> None:
    assert plan_auth(ClientOptions(endpoint="127.0.0.1:1")).mode == "anonymous"


def test_credentials_are_never_sent_in_plaintext_to_a_remote_host() -> None:
    with pytest.raises(errors.ValidationError) as caught:
        Client(
            endpoint="vision.example.internal:80", plaintext=True, credentials=oauth2.Credentials(token="ya29.secret")
        )
    assert caught.value.field == "plaintext"
    assert "ya29" not in str(caught.value)
