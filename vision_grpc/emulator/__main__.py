"""``python -m vision_grpc.emulator``: serve the emulator over gRPC and REST until SIGINT or SIGTERM.

Prints one line with the bound addresses
(``vision-grpc emulator: grpc=127.0.0.1:PORT rest=http://127.0.0.1:PORT storage=DIR``) so that
scripts can start it with ``--port 0`` and read the ports, then serves until interrupted and
exits cleanly (status 0). Without ``--storage`` objects live in a temporary directory that is
removed at exit.
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import FrameType

from vision_grpc.emulator._service import EmulatorService
from vision_grpc.emulator.grpc_server import GrpcServer
from vision_grpc.emulator.rest_server import RestServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vision_grpc.emulator", description="Serve the Cloud Vision emulator over gRPC."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="gRPC port; 0 picks a free one (default: 0)")
    parser.add_argument("--rest-port", type=int, default=0, help="HTTP/1.1 JSON port; 0 picks a free one")
    parser.add_argument("--storage", metavar="DIR", help="directory standing in for gs:// (default: a temp dir)")
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="time an operation takes from CREATED to DONE (default: 2.0)",
    )
    parser.add_argument(
        "--allow-api-keys",
        action="store_true",
        help="accept API keys on AsyncBatchAnnotateFiles (the real service refuses them)",
    )
    return parser


def export_lines(grpc_target: str, rest_url: str) -> list[str]:
    """The shell lines that point clients (``Client()``, ``AsyncClient()``, the CLI) at this emulator:
    ``VISION_EMULATOR_HOST`` is the gRPC address, and ``VISION_EMULATOR_REST_HOST`` the REST one when
    it differs. An unspecified bind address (``0.0.0.0``, ``::``) is shown as loopback, to dial."""
    dialable = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}

    def address(target: str) -> str:
        host, _, port = target.removeprefix("http://").rpartition(":")
        return f"{dialable.get(host, host)}:{port}"

    lines = [f"export VISION_EMULATOR_HOST={address(grpc_target)}"]
    if address(rest_url) != address(grpc_target):
        lines.append(f"export VISION_EMULATOR_REST_HOST={address(rest_url)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (math.isfinite(args.operation_seconds) and args.operation_seconds >= 0):
        print("--operation-seconds must be a finite number >= 0", file=sys.stderr)
        return 2
    temp_dir = None if args.storage else tempfile.mkdtemp(prefix="vision-emulator-")
    storage = str(args.storage or temp_dir)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    service = EmulatorService(
        storage, operation_seconds=args.operation_seconds, reject_api_keys_for_async_files=not args.allow_api_keys
    )
    server = GrpcServer(service, args.host, args.port)
    rest: RestServer | None = None
    try:
        server.start()
        rest = RestServer(service, args.host, args.rest_port)
        rest.start()
        print(f"vision-grpc emulator: grpc={server.target} rest={rest.url} storage={service.storage.root}")
        print("\n".join(export_lines(server.target, rest.url)), flush=True)
        while not stop.wait(0.5):
            pass
    except OSError as exc:
        print(f"vision-grpc emulator: {exc}", file=sys.stderr)
        return 1
    finally:
        if rest is not None:
            rest.stop()
        server.stop(grace=1.0)
        service.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
