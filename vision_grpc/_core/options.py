"""Frozen, validated configuration: where to connect, how to authenticate, retry and polling.

Everything is checked at construction, so a typo fails when the client is built, not on the
first call; ``dataclasses.replace`` makes variants. Secrets (API key, credentials) are kept out
of ``repr``. The retry and polling policies live in ``_core.policies``.

``VISION_EMULATOR_HOST`` (``host:port``, optionally ``http://host:port``) points every client without
an explicit ``endpoint=`` at an emulator, plaintext and anonymous; ``VISION_EMULATOR_REST_HOST`` names
the REST port when the emulator serves REST on a port of its own. The variables are read when the
options are built (``replace`` reads them again); ``_auth.plan_auth`` drops credentials and logs a
WARNING naming each setting the variable overrides.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypedDict

from vision_grpc._core.hooks import RestInterceptor
from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc.errors import ValidationError

__all__ = [
    "ClientOptions",
    "ClientSettings",
    "DEFAULT_ENDPOINT",
    "EMULATOR_HOST_ENV",
    "EMULATOR_REST_HOST_ENV",
    "MAX_RESPONSE_BYTES",
    "SCOPES",
    "emulator_endpoint",
    "positive",
]

DEFAULT_ENDPOINT = "vision.googleapis.com:443"
# Regional endpoints keep data in the region (Cloud Vision "Regionalization").
_REGIONAL_ENDPOINTS = {"us": "us-vision.googleapis.com:443", "eu": "eu-vision.googleapis.com:443"}
SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/cloud-vision")
TransportName = Literal["grpc", "rest", "auto"]  # auto: gRPC, switching to REST for good where HTTP/2 is refused
EMULATOR_HOST_ENV = "VISION_EMULATOR_HOST"  # the emulator's gRPC address (REST too, for a single-port emulator)
EMULATOR_REST_HOST_ENV = "VISION_EMULATOR_REST_HOST"  # its REST address, when REST has a port of its own
# The largest answer read, over every transport: a full-text response of a few dense pages exceeds
# gRPC's 4 MiB default; a REST (JSON) body is held to the same cap, so a broken or hostile server
# cannot make a client buffer without bound.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


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


def emulator_endpoint(transport: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The emulator's ``host:port`` for ``transport`` from the environment, or None when
    ``VISION_EMULATOR_HOST`` is unset or empty.

    gRPC uses ``VISION_EMULATOR_HOST``; REST uses ``VISION_EMULATOR_REST_HOST`` when it is set, else
    ``VISION_EMULATOR_HOST`` (an emulator serving both on one port). A value may start with ``http://``
    (as ``STORAGE_EMULATOR_HOST`` does); anything else that is not ``host:port`` is a ``ValidationError``
    naming the variable, rather than a silent fall back to the real service.
    """
    env = os.environ if environ is None else environ
    grpc_host = env.get(EMULATOR_HOST_ENV, "").strip()
    rest_host = env.get(EMULATOR_REST_HOST_ENV, "").strip()
    if not grpc_host:
        if rest_host:
            raise ValidationError(
                EMULATOR_REST_HOST_ENV,
                f"is set but {EMULATOR_HOST_ENV} is not; set {EMULATOR_HOST_ENV} (the gRPC address) too",
            )
        return None
    if transport == "rest" and rest_host:
        return _emulator_address(EMULATOR_REST_HOST_ENV, rest_host)
    return _emulator_address(EMULATOR_HOST_ENV, grpc_host)


def _emulator_address(variable: str, value: str) -> str:
    address = value.removeprefix("http://").rstrip("/")
    rule = f"must be host:port or http://host:port (the emulator speaks plaintext), got {value!r}"
    if "://" in address or "/" in address:
        raise ValidationError(variable, rule)
    has_port = "]:" in address if address.startswith("[") else address.count(":") == 1
    if not has_port:  # no default port for an emulator
        raise ValidationError(variable, rule)
    try:
        split_endpoint(address)
    except ValidationError:
        raise ValidationError(variable, rule) from None
    return address


def _check_header_value(name: str, value: str | None) -> None:
    """A header value must be visible ASCII; the error says what is wrong, never the value (a secret)."""
    if value is None:
        return
    if value != value.strip():
        raise ValidationError(name, "starts or ends with whitespace or a line break (value not shown): strip it")
    if not value or not all(" " < char < "\x7f" for char in value):
        raise ValidationError(
            name, "must be non-empty visible ASCII, without spaces or control characters (value not shown)"
        )


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
    # gRPC interceptors for the channel (``grpc.*ClientInterceptor`` for Client, ``grpc.aio`` ones
    # for AsyncClient), e.g. OpenTelemetry's; and the REST transports' equivalent (``_core.hooks``).
    interceptors: Sequence[Any] = ()
    rest_interceptors: Sequence[RestInterceptor] = ()
    # REST: keep-alive connections per client; more concurrent calls wait for one (within their
    # timeout) rather than open and discard extra ones. gRPC multiplexes every call on one channel.
    max_connections: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "interceptors", tuple(self.interceptors))
        object.__setattr__(self, "rest_interceptors", tuple(self.rest_interceptors))
        for k, hook in enumerate(self.rest_interceptors):
            if not callable(hook):
                raise ValidationError(f"rest_interceptors[{k}]", "must be callable: RestCall -> context manager")
        if self.transport not in ("grpc", "rest", "auto"):
            raise ValidationError("transport", f"must be 'grpc', 'rest' or 'auto', got {self.transport!r}")
        if self.location is not None and self.location not in _REGIONAL_ENDPOINTS:
            raise ValidationError("location", f"must be one of {sorted(_REGIONAL_ENDPOINTS)}, got {self.location!r}")
        if self.project is not None and (not self.project or "/" in self.project):
            raise ValidationError("project", f"must be a project id without '/', got {self.project!r}")
        if self.endpoint is not None:
            split_endpoint(self.endpoint)
        # VISION_EMULATOR_HOST, read once per options (a transport made later cannot switch servers); an
        # explicit endpoint wins over it.
        object.__setattr__(
            self, "_emulator_endpoint", None if self.endpoint is not None else emulator_endpoint(self.transport)
        )
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
        for name in ("api_key", "quota_project"):  # sent as header values: checked here, never echoed
            _check_header_value(name, getattr(self, name))
        if self.compression not in (None, "gzip"):
            raise ValidationError("compression", f"must be None or 'gzip', got {self.compression!r}")
        positive("timeout", self.timeout)
        if not (isinstance(self.max_connections, int) and 1 <= self.max_connections <= 10_000):
            raise ValidationError("max_connections", f"must be an int in [1, 10000], got {self.max_connections!r}")

    # Set per instance by __post_init__ (not a field: nobody passes it); the class value is the default.
    _emulator_endpoint: ClassVar[str | None] = None

    @property
    def emulator_host(self) -> str | None:
        """The emulator address taken from ``VISION_EMULATOR_HOST`` (or ``VISION_EMULATOR_REST_HOST``),
        or None: set only when no ``endpoint=`` was given."""
        return self._emulator_endpoint

    @property
    def use_plaintext(self) -> bool:
        """Plaintext when asked for, else only when the endpoint is loopback (the emulator); always
        for ``VISION_EMULATOR_HOST``.

        Derived rather than stored, so that ``replace(options, endpoint=...)`` decides afresh.
        """
        if self._emulator_endpoint is not None:
            return True
        if self.plaintext is not None:
            return self.plaintext
        return is_loopback(split_endpoint(self.resolved_endpoint)[0])

    @property
    def resolved_endpoint(self) -> str:
        if self.endpoint is not None:
            return self.endpoint
        if self._emulator_endpoint is not None:
            return self._emulator_endpoint
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
        if self._emulator_endpoint is not None:
            auth = f"anonymous ({EMULATOR_HOST_ENV})"
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
    interceptors: Sequence[Any]
    rest_interceptors: Sequence[RestInterceptor]
    max_connections: int
