"""Frozen, validated configuration: where to connect, how to authenticate, retry and polling.

Everything is checked at construction, so a typo fails when the client is built, not on the
first call; ``dataclasses.replace`` makes variants. Secrets (API key, credentials) are kept out
of ``repr``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from vision_grpc.errors import ValidationError

__all__ = ["ClientOptions", "PollPolicy", "RetryPolicy", "DEFAULT_ENDPOINT", "SCOPES"]

DEFAULT_ENDPOINT = "vision.googleapis.com:443"
# Regional endpoints keep data in the region (Cloud Vision "Regionalization").
_REGIONAL_ENDPOINTS = {"us": "us-vision.googleapis.com:443", "eu": "eu-vision.googleapis.com:443"}
SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/cloud-vision")
TransportName = Literal["grpc", "rest"]


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValidationError(name, f"must be > 0, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for idempotent calls on UNAVAILABLE / DEADLINE_EXCEEDED (official v1 defaults).

    ``deadline`` bounds the whole call including retries; a server's ``RetryInfo`` delay is
    honoured when it is longer than the backoff.
    """

    initial: float = 0.1
    multiplier: float = 1.3
    maximum: float = 60.0
    deadline: float = 600.0
    max_attempts: int | None = None  # None: the deadline alone bounds the retries

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "deadline"):
            _positive(f"retry.{name}", getattr(self, name))
        if self.multiplier < 1:
            raise ValidationError("retry.multiplier", f"must be >= 1, got {self.multiplier!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValidationError("retry.max_attempts", f"must be None or >= 1, got {self.max_attempts!r}")


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class PollPolicy:
    """How ``Operation.wait()`` polls when the server has no WaitOperation.

    Delays grow from ``initial`` by ``multiplier`` up to ``maximum``, with ``jitter`` (a fraction
    taken off at random), and never exceed ``lag_ratio`` of the operation's age, so that a
    finished operation is noticed within max(initial, lag_ratio x age).
    """

    initial: float = 0.05
    multiplier: float = 1.5
    maximum: float = 20.0
    lag_ratio: float = 0.05
    jitter: float = 0.2
    use_wait_operation: bool = True
    wait_chunk: float = 30.0  # longest single WaitOperation call

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "wait_chunk", "lag_ratio"):
            _positive(f"poll.{name}", getattr(self, name))
        if self.multiplier < 1:
            raise ValidationError("poll.multiplier", f"must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter < 1:
            raise ValidationError("poll.jitter", f"must be in [0, 1), got {self.jitter!r}")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) -> (host, port); the port defaults to 443."""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = endpoint.rpartition(":") if endpoint.count(":") == 1 else (endpoint, "", "")
    if not host or (port and not port.isdigit()):
        raise ValidationError("endpoint", f"must be host[:port], got {endpoint!r}")
    return host, int(port) if port else 443


@dataclass(frozen=True)
class ClientOptions:
    """Connection, auth and behaviour settings shared by ``Client`` and ``AsyncClient``."""

    endpoint: str | None = None
    project: str | None = None
    location: str | None = None
    transport: TransportName = "grpc"
    api_key: str | None = field(default=None, repr=False)
    credentials: Any = field(default=None, repr=False)  # google.auth.credentials.Credentials
    credentials_file: str | None = None
    quota_project: str | None = None
    anonymous: bool = False
    plaintext: bool | None = None  # None: plaintext only for a loopback endpoint (see use_plaintext)
    timeout: float = 60.0  # per RPC
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll: PollPolicy = field(default_factory=PollPolicy)
    compression: Literal["gzip"] | None = None

    def __post_init__(self) -> None:
        if self.transport not in ("grpc", "rest"):
            raise ValidationError("transport", f"must be 'grpc' or 'rest', got {self.transport!r}")
        if self.location is not None and self.location not in _REGIONAL_ENDPOINTS:
            raise ValidationError("location", f"must be one of {sorted(_REGIONAL_ENDPOINTS)}, got {self.location!r}")
        if self.project is not None and (not self.project or "/" in self.project):
            raise ValidationError("project", f"must be a project id without '/', got {self.project!r}")
        if self.endpoint is not None:
            split_endpoint(self.endpoint)
        auth_modes = [
            self.api_key is not None,
            self.credentials is not None,
            self.credentials_file is not None,
            self.anonymous,
        ]
        if sum(auth_modes) > 1:
            raise ValidationError(
                "credentials", "give at most one of api_key, credentials, credentials_file, anonymous"
            )
        if self.compression not in (None, "gzip"):
            raise ValidationError("compression", f"must be None or 'gzip', got {self.compression!r}")
        _positive("timeout", self.timeout)

    @property
    def use_plaintext(self) -> bool:
        """Plaintext when asked for, else only when the endpoint is loopback (the emulator).

        Derived rather than stored, so that ``replace(options, endpoint=...)`` decides afresh.
        """
        if self.plaintext is not None:
            return self.plaintext
        return is_loopback(split_endpoint(self.resolved_endpoint)[0])

    @property
    def resolved_endpoint(self) -> str:
        if self.endpoint is not None:
            return self.endpoint
        if self.location is not None:
            return _REGIONAL_ENDPOINTS[self.location]
        return DEFAULT_ENDPOINT

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{location}`` when both are set, else ``projects/{project}`` or ''."""
        if self.project and self.location:
            return f"projects/{self.project}/locations/{self.location}"
        return f"projects/{self.project}" if self.project else ""

    def __repr__(self) -> str:
        auth = (
            "api_key"
            if self.api_key is not None
            else "credentials"
            if self.credentials is not None
            else "credentials_file"
            if self.credentials_file
            else "anonymous"
            if self.anonymous
            else "adc"
        )
        return (
            f"ClientOptions(endpoint={self.resolved_endpoint!r}, transport={self.transport!r}, "
            f"project={self.project!r}, location={self.location!r}, auth={auth}, plaintext={self.use_plaintext})"
        )
