"""Credentials through google-auth, imported only when a call needs them.

Modes, in order of precedence: anonymous (the emulator), an API key (sent as the
``x-goog-api-key`` header, never in a URL), explicit google-auth credentials, a credentials file
(service account, authorized user, external account), and Application Default Credentials.
Scopes are cloud-platform and cloud-vision; google-auth refreshes tokens. A quota project is
sent as ``x-goog-user-project``. Nothing here ever puts a secret into a message or repr.

With ``VISION_EMULATOR_HOST`` in effect (``ClientOptions.emulator_host``; an explicit ``endpoint=``
wins over the variable) the plan is anonymous whatever was given: no credential or API key is sent
to an emulator, and a WARNING on the ``vision_grpc._auth`` logger names each setting that is
ignored (never its value).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from vision_grpc._core.options import EMULATOR_HOST_ENV, SCOPES, ClientOptions, is_loopback, split_endpoint
from vision_grpc.errors import ValidationError

__all__ = ["AuthPlan", "credentials_from_file", "plan_auth", "token_request"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthPlan:
    """What to attach to every call: google-auth credentials and/or static headers."""

    credentials: Any  # google.auth.credentials.Credentials, or None
    headers: tuple[tuple[str, str], ...]
    mode: str

    def __repr__(self) -> str:
        names = ", ".join(key for key, _ in self.headers)
        return f"AuthPlan(mode={self.mode!r}, headers=[{names}])"


def _google_auth() -> Any:
    try:
        import google.auth
        import google.auth.credentials
        import google.auth.exceptions
    except ImportError as exc:  # pragma: no cover - google-auth is a runtime dependency
        raise ImportError("vision-grpc needs google-auth for credentials: pip install google-auth") from exc
    return google.auth


def plan_auth(options: ClientOptions) -> AuthPlan:
    """Resolve credentials once, at client construction.

    Secrets (an API key, OAuth tokens) never travel in plaintext to a host that is not loopback.
    """
    plan = _credentials_for(options)
    host, _ = split_endpoint(options.resolved_endpoint)
    if plan.mode != "anonymous" and options.use_plaintext and not is_loopback(host):
        raise ValidationError("plaintext", "credentials are never sent in plaintext to a non-loopback host")
    return plan


def _credentials_for(options: ClientOptions) -> AuthPlan:
    quota = (("x-goog-user-project", options.quota_project),) if options.quota_project else ()
    if options.emulator_host is not None:
        _warn_overridden(options)
        return AuthPlan(None, quota, "anonymous")
    host, _ = split_endpoint(options.resolved_endpoint)
    explicit = options.api_key is not None or options.credentials is not None or options.credentials_file
    if options.anonymous or (not explicit and is_loopback(host)):
        # A loopback endpoint (the emulator) with no credentials given: do not go looking for ADC,
        # which would probe the metadata server and stall offline.
        return AuthPlan(None, quota, "anonymous")
    if options.api_key is not None:
        if not options.api_key:
            raise ValidationError("api_key", "must not be empty")
        return AuthPlan(None, (*quota, ("x-goog-api-key", options.api_key)), "api_key")
    auth = _google_auth()
    if options.credentials is not None:
        if not isinstance(options.credentials, auth.credentials.Credentials):
            kind = type(options.credentials).__name__
            raise ValidationError("credentials", f"must be a google.auth.credentials.Credentials, got {kind}")
        credentials, mode = auth.credentials.with_scopes_if_required(options.credentials, SCOPES), "credentials"
    elif options.credentials_file:
        credentials, mode = credentials_from_file(options.credentials_file), "credentials_file"
    else:
        try:
            credentials, _ = auth.default(scopes=SCOPES)
        except auth.exceptions.DefaultCredentialsError as exc:
            raise ValidationError(
                "credentials",
                f"could not load Google credentials ({type(exc).__name__}); "
                "set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth "
                "application-default login`, or pass credentials_file=, "
                "api_key= or anonymous=True",
            ) from exc
        mode = "adc"
    if options.quota_project and hasattr(credentials, "with_quota_project"):
        # google-auth then sends x-goog-user-project itself; adding ours too would send it twice.
        return AuthPlan(credentials.with_quota_project(options.quota_project), (), mode)
    return AuthPlan(credentials, quota, mode)


def _warn_overridden(options: ClientOptions) -> None:
    """One WARNING listing the settings that VISION_EMULATOR_HOST overrides (names, never values)."""
    ignored = [
        name
        for name, given in (
            ("api_key", options.api_key is not None),
            ("credentials", options.credentials is not None),
            ("credentials_file", options.credentials_file is not None),
            ("plaintext=False", options.plaintext is False),
        )
        if given
    ]
    if options.location is not None:
        ignored.append(f"location={options.location!r} (its endpoint; parent still uses it)")
    if ignored:
        _log.warning(
            "%s is set: connecting to the emulator at %s in plaintext without credentials, ignoring %s; "
            "pass endpoint= (--endpoint) to reach another server",
            EMULATOR_HOST_ENV,
            options.emulator_host,
            ", ".join(ignored),
        )
    else:
        _log.info("%s is set: connecting to the emulator at %s", EMULATOR_HOST_ENV, options.emulator_host)


def credentials_from_file(path: str) -> Any:
    """Service-account or authorized-user JSON, by its own type-specific loader.

    google-auth's generic ``load_credentials_from_file`` is deprecated for files from untrusted
    sources (external account configs can run commands); other types: build them with
    google-auth yourself and pass ``credentials=``.
    """
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            kind = json.load(handle).get("type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValidationError(
            "credentials_file", f"cannot read a JSON credentials file at {path!r}: {type(exc).__name__}"
        ) from None
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(path, scopes=SCOPES)  # type: ignore[no-untyped-call]
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_file(path, scopes=SCOPES)  # type: ignore[no-untyped-call]
    raise ValidationError(
        "credentials_file",
        f"type {kind!r} is not loaded from a file here; build it with google-auth and pass credentials=",
    )


def token_request() -> Any:
    """A google-auth HTTP request object for token refresh, over a pooled urllib3 manager."""
    import urllib3
    from google.auth.transport.urllib3 import Request

    return Request(urllib3.PoolManager())  # type: ignore[no-untyped-call]
