"""Frozen, validated configuration: where to connect, how to authenticate, retry and polling.

Everything is checked at construction, so a typo fails when the client is built, not on the
first call; ``dataclasses.replace`` makes variants. Secrets (API key, credentials) are kept out
of ``repr``. The retry and polling policies live in ``_core.policies``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc.errors import ValidationError

__all__ = ["ClientOptions", "ClientSettings", "DEFAULT_ENDPOINT", "SCOPES", "positive"]

DEFAULT_ENDPOINT = "vision.googleapis.com:443"
# Regional endpoints keep data in the region (Cloud Vision "Regionalization").
_REGIONAL_ENDPOINTS = {"us": "us-vision.googleapis.com:443", "eu": "eu-vision.googleapis.com:443"}
SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/cloud-vision")
TransportName = Literal["grpc", "rest"]


def positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValidationError(name, f"must be > 0, got {value!r}")


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
    timeout: float = 60.0  # each call's budget, retries and backoff included
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
        positive("timeout", self.timeout)

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


class ClientSettings(TypedDict, total=False):
    """The ``ClientOptions`` fields as keyword arguments of ``Client(...)`` / ``AsyncClient(...)``.

    Spelled out so that a type checker rejects a misspelt setting (``projcet=``); a test keeps the
    two field lists equal.
    """

    endpoint: str | None
    project: str | None
    location: str | None
    transport: TransportName
    api_key: str | None
    credentials: Any
    credentials_file: str | None
    quota_project: str | None
    anonymous: bool
    plaintext: bool | None
    timeout: float
    retry: RetryPolicy
    poll: PollPolicy
    compression: Literal["gzip"] | None
