"""What every subcommand shares: connection flags, the client, storage for outputs, printing."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision_grpc._core.policies import PollPolicy, RetryPolicy
from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc.errors import ValidationError

if TYPE_CHECKING:
    from vision_grpc.storage import Storage

__all__ = [
    "UsageError",
    "add_connection_flags",
    "add_verbosity_flag",
    "emit",
    "logging_to_stderr",
    "make_client",
    "stage_inputs",
    "storage_for_args",
    "terminal_safe",
]

API_KEY_ENV = "VISION_GRPC_API_KEY"
STAGING_BUCKET = "local-inputs"


class UsageError(Exception):
    """The command line asks for something that cannot be done (exit 2, nothing sent)."""


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        help="host:port (default: $VISION_EMULATOR_HOST when set, plaintext and anonymous; "
        "else vision.googleapis.com:443, or the regional one)",
    )
    group.add_argument(
        "--transport",
        choices=("grpc", "rest", "auto"),
        default="grpc",
        help="grpc; rest (HTTP/1.1 JSON) where gRPC is blocked; or auto: gRPC, switching to REST "
        "if the endpoint refuses HTTP/2 (default: grpc)",
    )
    group.add_argument("--project", help="project id; with --location fills parent")
    group.add_argument("--location", choices=("us", "eu"), help="regional endpoint and parent location")
    group.add_argument("--credentials", metavar="FILE", help="service-account or authorized-user JSON file")
    group.add_argument("--api-key", help=f"API key (prefer the {API_KEY_ENV} environment variable)")
    group.add_argument("--quota-project", help="project billed for quota (x-goog-user-project)")
    group.add_argument("--anonymous", action="store_true", help="send no credentials")
    group.add_argument(
        "--timeout", type=float, default=60.0, help="deadline of each call in seconds, retries included (default: 60)"
    )
    group.add_argument(
        "--wait-timeout",
        type=float,
        default=3600.0,
        help="how long to wait for an operation in seconds (default: 3600)",
    )
    group.add_argument(
        "--emulator-storage",
        metavar="DIR",
        help="the emulator's storage directory: local input paths are staged there and outputs are read from it",
    )
    group.add_argument("--json", action="store_true", help="print one JSON document, for scripts")


def add_verbosity_flag(parser: argparse.ArgumentParser, dest: str = "verbose") -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        dest=dest,
        action="count",
        default=0,
        help="log to stderr: -v INFO (retries, the fall back to polling), -vv DEBUG (one line per RPC "
        "attempt); never a credential (default: warnings only)",
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]  # subscriptable at run time from 3.11 only
    """Writes to the current ``sys.stderr``: rich's progress display swaps it while it draws, and the
    log lines then appear above the progress line rather than through it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


@contextlib.contextmanager
def logging_to_stderr(verbosity: int) -> Iterator[None]:
    """The ``vision_grpc`` logger tree on stderr while the command runs: WARNING (a setting that
    ``VISION_EMULATOR_HOST`` overrides), with -v INFO, with -vv DEBUG. Restored afterwards, so that
    ``main()`` called in a process leaves its logging as it was."""
    logger = logging.getLogger("vision_grpc")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(_LEVELS[min(verbosity, len(_LEVELS) - 1)])
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def make_client(args: argparse.Namespace, **overrides: Any) -> Any:
    from vision_grpc.client import Client

    settings: dict[str, Any] = {
        "endpoint": args.endpoint,
        "transport": args.transport,
        "project": args.project,
        "location": args.location,
        "credentials_file": args.credentials,
        "quota_project": args.quota_project,
        "api_key": args.api_key or os.environ.get(API_KEY_ENV) or None,
        "timeout": args.timeout,
        # Short WaitOperation chunks: the progress line shows CREATED -> RUNNING -> DONE promptly.
        "poll": PollPolicy(wait_chunk=0.5),
        # A command line gives up within --timeout (a refused connection is not retried for minutes).
        "retry": RetryPolicy(deadline=args.timeout) if args.timeout > 0 else None,
    }
    if args.anonymous:
        settings["anonymous"] = True
    settings.update(overrides)
    return Client(**{k: v for k, v in settings.items() if v is not None})


# The demo's install ("[demo]") has no google-cloud-storage: say both ways out.
NO_CLOUD_STORAGE = (
    "reading gs:// objects from Cloud Storage needs google-cloud-storage: pip install 'vision-grpc[storage]'. "
    "For an emulator's objects pass --emulator-storage DIR instead, DIR being its storage directory "
    "(vision-grpc emulator --storage DIR; vision-grpc demo --emulator-storage DIR keeps the demo's results there)"
)


def storage_for_args(args: argparse.Namespace) -> Storage:
    """The emulator's directory, or Cloud Storage with the Vision client's credentials."""
    from vision_grpc.storage import GcsStorage, LocalStorage

    if args.emulator_storage:
        return LocalStorage(args.emulator_storage)
    try:
        return GcsStorage(project=args.project, credentials=storage_credentials(args))
    except ImportError:
        raise UsageError(NO_CLOUD_STORAGE) from None


def storage_credentials(args: argparse.Namespace) -> Any:
    """google-auth credentials for Cloud Storage, as for Vision: anonymous, a credentials file, or
    None (Application Default Credentials; anonymous when STORAGE_EMULATOR_HOST is set)."""
    if args.anonymous:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if args.credentials:
        from vision_grpc._auth import credentials_from_file

        return credentials_from_file(args.credentials)  # the same loader as the Vision client's
    return None


def stage_inputs(args: argparse.Namespace, inputs: list[str]) -> list[str]:
    """gs:// URIs pass through; local paths are copied into the emulator's storage, each under a
    directory named after its content (``gs://local-inputs/<sha256[:16]>/<name>``), so two files
    with the same name never overwrite each other."""
    staged = []
    for item in inputs:
        if item.startswith("gs://"):
            staged.append(item)
            continue
        path = Path(item)
        if not path.is_file():
            raise ValidationError("inputs", f"{item!r} is neither a gs:// URI nor a readable file")
        if not args.emulator_storage:
            raise ValidationError(
                "inputs", f"local file {item!r} needs --emulator-storage (the service reads only gs:// objects)"
            )
        key = f"{_sha256(path)[:16]}/{path.name}"
        target = Path(args.emulator_storage) / STAGING_BUCKET / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        staged.append(f"gs://{STAGING_BUCKET}/{key}")
    return staged


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Control characters a terminal would act on (C0 but tab and newline, DEL, C1): text from the service
# or from output shards is untrusted and must not move the cursor, retitle the window or hide lines.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every terminal control character shown as an escape (``\\x1b``), not acted on."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    """One JSON document with --json (control characters escaped by JSON), else terminal-safe text."""
    if args.json:
        json.dump(document, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(terminal_safe(text))


def operation_document(operation: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    from vision_grpc.cli._progress import state_name

    document: dict[str, Any] = {"name": operation.name, "done": operation.done, "state": state_name(operation)}
    if operation.done and operation.proto.HasField("error"):
        document["error"] = json_format.MessageToDict(operation.proto.error, descriptor_pool=JSON_TYPES)
    elif operation.done:
        document["response"] = json_format.MessageToDict(operation._result(), descriptor_pool=JSON_TYPES)
    return document
