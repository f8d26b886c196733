"""Error tables and mapping, and configuration checks."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vision_grpc import errors
from vision_grpc._core.options import ClientOptions, split_endpoint
from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc.emulator.rest_server import http_error_body


@pytest.mark.parametrize(
    ("code", "http", "cls"),
    [
        pytest.param(code_pb2.INVALID_ARGUMENT, 400, errors.InvalidArgument, id="invalid-argument"),
        pytest.param(code_pb2.FAILED_PRECONDITION, 400, errors.ApiError, id="failed-precondition-is-400"),
        pytest.param(code_pb2.OUT_OF_RANGE, 400, errors.ApiError, id="out-of-range"),
        pytest.param(code_pb2.UNAUTHENTICATED, 401, errors.Unauthenticated, id="unauthenticated"),
        pytest.param(code_pb2.PERMISSION_DENIED, 403, errors.PermissionDenied, id="permission-denied"),
        pytest.param(code_pb2.NOT_FOUND, 404, errors.NotFound, id="not-found"),
        pytest.param(code_pb2.ALREADY_EXISTS, 409, errors.ApiError, id="already-exists"),
        pytest.param(code_pb2.ABORTED, 409, errors.ApiError, id="aborted"),
        pytest.param(code_pb2.RESOURCE_EXHAUSTED, 429, errors.ResourceExhausted, id="resource-exhausted"),
        pytest.param(code_pb2.CANCELLED, 499, errors.Cancelled, id="cancelled"),
        pytest.param(code_pb2.UNKNOWN, 500, errors.ApiError, id="unknown"),
        pytest.param(code_pb2.INTERNAL, 500, errors.ApiError, id="internal"),
        pytest.param(code_pb2.DATA_LOSS, 500, errors.ApiError, id="data-loss"),
        pytest.param(code_pb2.UNIMPLEMENTED, 501, errors.Unimplemented, id="unimplemented"),
        pytest.param(code_pb2.UNAVAILABLE, 503, errors.Unavailable, id="unavailable"),
        pytest.param(code_pb2.DEADLINE_EXCEEDED, 504, errors.DeadlineExceeded, id="deadline-exceeded"),
    ],
)
def test_code_table_and_classes(code: int, http: int, cls: type) -> None:
    error = errors.api_error(code, "boom")
    assert type(error) is cls
    assert error.http_status == http == errors.http_status_for(code)
    assert str(error) == f"{errors.code_name(code)} ({http}): boom"


def _rich_status() -> status_pb2.Status:
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="quota")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="RATE_LIMIT_EXCEEDED", domain="googleapis.com"))
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": 2, "nanos": 500_000_000}))
    status.details.add().Pack(error_details_pb2.QuotaFailure(violations=[{"subject": "project:p"}]))
    return status


def test_rich_details_decode_over_json_like_over_grpc() -> None:
    http, body = http_error_body(_rich_status())
    assert http == 429
    for error in (errors.from_status(_rich_status()), errors.from_http(http, body, "application/json")):
        assert isinstance(error, errors.ResourceExhausted)
        assert error.detail(error_details_pb2.ErrorInfo).reason == "RATE_LIMIT_EXCEEDED"
        assert error.retry_delay == 2.5
        assert error.detail(error_details_pb2.QuotaFailure).violations[0].subject == "project:p"


@pytest.mark.parametrize(
    ("status", "body", "cls", "text"),
    [
        pytest.param(502, b"<html><h1>Bad Gateway</h1></html>", errors.Unavailable, "HTTP 502", id="proxy-html"),
        pytest.param(403, b"", errors.PermissionDenied, "HTTP 403", id="empty-403"),
        pytest.param(418, b"teapot", errors.ApiError, "teapot", id="odd-4xx"),
        pytest.param(
            400,
            b'{"error": {"code": 400, "message": "bad field", "status": "INVALID_ARGUMENT"}}',
            errors.InvalidArgument,
            "bad field",
            id="json",
        ),
        pytest.param(500, b'{"error": "not the google shape"}', errors.ApiError, "HTTP 500", id="json-other-shape"),
        pytest.param(302, b"", errors.ApiError, "HTTP 302", id="redirect-is-unknown-not-ok"),
        pytest.param(
            503,
            b'{"error": {"code": 503, "message": "busy", "status": "NEW_STATUS_NAME"}}',
            errors.Unavailable,
            "busy",
            id="unknown-status-name-keeps-message",
        ),
    ],
)
def test_http_errors_without_or_with_json(status: int, body: bytes, cls: type, text: str) -> None:
    error = errors.from_http(status, body, "text/html" if body.startswith(b"<") else "application/json")
    assert isinstance(error, cls)
    assert error.code != 0  # never OK
    assert error.http_status == status
    assert text in str(error)


def test_api_error_pickles_with_details() -> None:
    error = pickle.loads(pickle.dumps(errors.from_status(_rich_status())))
    assert isinstance(error, errors.ResourceExhausted) and error.retry_delay == 2.5


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        pytest.param({"transport": "http3"}, "transport", id="transport"),
        pytest.param({"location": "mars"}, "location", id="location"),
        pytest.param({"project": "a/b"}, "project", id="project"),
        pytest.param({"endpoint": "host:port"}, "endpoint", id="endpoint"),
        pytest.param({"api_key": "k", "anonymous": True}, "credentials", id="two-auth-modes"),
        pytest.param({"timeout": 0}, "timeout", id="timeout"),
        pytest.param({"compression": "br"}, "compression", id="compression"),
    ],
)
def test_bad_options_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        ClientOptions(**settings)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        pytest.param(lambda: RetryPolicy(initial=0), "retry.initial", id="retry-initial"),
        pytest.param(lambda: RetryPolicy(multiplier=0.5), "retry.multiplier", id="retry-multiplier"),
        pytest.param(lambda: PollPolicy(jitter=1.5), "poll.jitter", id="poll-jitter"),
    ],
)
def test_bad_policies_name_the_field(factory: Any, field: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        factory()
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("settings", "endpoint", "plaintext", "parent"),
    [
        pytest.param({}, "vision.googleapis.com:443", False, "", id="default"),
        pytest.param(
            {"location": "eu", "project": "p"},
            "eu-vision.googleapis.com:443",
            False,
            "projects/p/locations/eu",
            id="eu",
        ),
        pytest.param({"location": "us"}, "us-vision.googleapis.com:443", False, "", id="us-no-project"),
        pytest.param({"endpoint": "127.0.0.1:8080"}, "127.0.0.1:8080", True, "", id="loopback-plaintext"),
        pytest.param({"endpoint": "[::1]:9"}, "[::1]:9", True, "", id="ipv6-loopback"),
        pytest.param({"endpoint": "vision.internal:443"}, "vision.internal:443", False, "", id="remote-tls"),
        pytest.param(
            {"endpoint": "vision.internal:80", "plaintext": True},
            "vision.internal:80",
            True,
            "",
            id="explicit-plaintext",
        ),
        pytest.param({"project": "p"}, "vision.googleapis.com:443", False, "projects/p", id="project-only"),
    ],
)
def test_endpoint_resolution(settings: dict[str, Any], endpoint: str, plaintext: bool, parent: str) -> None:
    options = ClientOptions(**settings)
    assert options.resolved_endpoint == endpoint
    assert options.use_plaintext is plaintext
    assert options.parent == parent


def test_plaintext_is_decided_afresh_for_a_replaced_endpoint() -> None:
    loopback = ClientOptions(endpoint="localhost:1")
    assert loopback.use_plaintext
    assert not replace(loopback, endpoint="example.com:443").use_plaintext
    assert replace(ClientOptions(), endpoint="127.0.0.1:9").use_plaintext


def test_no_secret_goes_in_plaintext_to_a_remote_host() -> None:
    from vision_grpc._auth import plan_auth

    with pytest.raises(errors.ValidationError) as caught:
        plan_auth(ClientOptions(endpoint="example.com:80", plaintext=True, api_key="AIzaSECRET"))
    assert caught.value.field == "plaintext" and "SECRET" not in str(caught.value)
    assert plan_auth(ClientOptions(endpoint="example.com:80", plaintext=True, anonymous=True)).mode == "anonymous"


def test_secrets_stay_out_of_repr() -> None:
    options = ClientOptions(api_key="AIzaSECRET", quota_project="q")
    assert "SECRET" not in repr(options)
    assert "auth=api_key" in repr(options)
    assert split_endpoint("[::1]:50051") == ("::1", 50051)
