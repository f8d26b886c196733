"""``python -m vision_grpc.emulator``: serve the emulator over gRPC and REST until SIGINT or SIGTERM.

Prints one line with the bound addresses
(``vision-grpc emulator: grpc=127.0.0.1:PORT rest=http://127.0.0.1:PORT storage=DIR``) so that
scripts can start it with ``--port 0`` and read the ports, then serves until interrupted and
exits cleanly (status 0). Without ``--storage`` objects live in a temporary directory that is
removed at exit.

The Cloud Storage JSON API (``gcs_server``) serves the storage directory on ``--storage-port`` (0: a free
one; ``--no-gcs`` turns it off); the export lines end with ``export STORAGE_EMULATOR_HOST=http://HOST:PORT``
for google-cloud-storage (and ``vision-grpc outputs``) to use it.

``--single-port`` serves gRPC and REST on ``--port`` alone, as Google's endpoints do (a front,
``single_port``, relays each connection to the gRPC or REST server on internal loopback ports); the
line then starts ``endpoint=HOST:PORT``. ``--no-http2`` makes that port refuse HTTP/2, like a proxy
that strips it, to try ``transport="auto"``.
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
from vision_grpc.emulator.gcs_server import GcsServer
from vision_grpc.emulator.grpc_server import GrpcServer
from vision_grpc.emulator.rest_server import RestServer
from vision_grpc.emulator.single_port import SinglePortFront


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vision_grpc.emulator", description="Serve the Cloud Vision emulator over gRPC."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="gRPC port; 0 picks a free one (default: 0)")
    parser.add_argument("--rest-port", type=int, default=0, help="HTTP/1.1 JSON port; 0 picks a free one")
    parser.add_argument("--storage", metavar="DIR", help="directory standing in for gs:// (default: a temp dir)")
    parser.add_argument(
        "--storage-port",
        type=int,
        default=0,
        help="port of the Cloud Storage JSON API over that directory (STORAGE_EMULATOR_HOST); 0 picks a free one",
    )
    parser.add_argument(
        "--no-gcs", action="store_true", help="do not serve the Cloud Storage JSON API (the directory only)"
    )
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
    parser.add_argument(
        "--single-port",
        action="store_true",
        help="serve gRPC and REST on --port alone, as Google's endpoints do (the two servers get internal ports)",
    )
    parser.add_argument(
        "--no-http2",
        action="store_true",
        help="with --single-port: refuse HTTP/2 (gRPC) there, like a proxy that strips it; REST still works",
    )
    parser.add_argument(
        "--http2-refusal",
        choices=("400", "reset"),
        default="400",
        help="with --no-http2: answer the HTTP/2 preface with an HTTP/1.1 400 (default) or reset the connection",
    )
    return parser


def export_lines(grpc_target: str, rest_url: str, storage_url: str | None = None) -> list[str]:
    """The shell lines that point clients (``Client()``, ``AsyncClient()``, the CLI) at this emulator:
    ``VISION_EMULATOR_HOST`` is the gRPC address, and ``VISION_EMULATOR_REST_HOST`` the REST one when
    it differs; ``STORAGE_EMULATOR_HOST`` (``http://host:port``, as google-cloud-storage wants it) the
    Cloud Storage API's, when served. An unspecified bind address (``0.0.0.0``, ``::``) is shown as
    loopback, to dial."""
    dialable = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}

    def address(target: str) -> str:
        host, _, port = target.removeprefix("http://").rpartition(":")
        return f"{dialable.get(host, host)}:{port}"

    lines = [f"export VISION_EMULATOR_HOST={address(grpc_target)}"]
    if address(rest_url) != address(grpc_target):
        lines.append(f"export VISION_EMULATOR_REST_HOST={address(rest_url)}")
    if storage_url is not None:
        lines.append(f"export STORAGE_EMULATOR_HOST=http://{address(storage_url)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (math.isfinite(args.operation_seconds) and args.operation_seconds >= 0):
        print("--operation-seconds must be a finite number >= 0", file=sys.stderr)
        return 2
    if not args.single_port and (args.no_http2 or args.http2_refusal != "400"):
        print("--no-http2 and --http2-refusal need --single-port", file=sys.stderr)
        return 2
    if args.single_port and args.rest_port:
        print("--rest-port does not go with --single-port: REST is served on --port", file=sys.stderr)
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
    single = args.single_port  # then the two servers listen on internal loopback ports, the front on --port
    server = GrpcServer(service, "127.0.0.1" if single else args.host, 0 if single else args.port)
    rest: RestServer | None = None
    front: SinglePortFront | None = None
    gcs: GcsServer | None = None
    try:
        server.start()
        if not args.no_gcs:
            try:
                gcs = GcsServer(service.storage, args.host, args.storage_port)
            except OSError as exc:
                raise OSError(f"cannot bind the Cloud Storage API to {args.host}:{args.storage_port}: {exc}") from None
            gcs.start()
        storage_url = gcs.url if gcs is not None else None
        rest = RestServer(service, "127.0.0.1" if single else args.host, 0 if single else args.rest_port)
        rest.start()
        if single:
            rest_backend = ("127.0.0.1", int(rest.url.rsplit(":", 1)[1]))
            front = SinglePortFront(
                ("127.0.0.1", server.port),
                rest_backend,
                args.host,
                args.port,
                http2=not args.no_http2,
                refusal=args.http2_refusal,
            )
            front.start()
            print(
                f"vision-grpc emulator: endpoint={front.endpoint} grpc={server.target} rest={rest.url} "
                f"storage={service.storage.root}"
            )
            print("\n".join(export_lines(front.endpoint, f"http://{front.endpoint}", storage_url)), flush=True)
        else:
            print(f"vision-grpc emulator: grpc={server.target} rest={rest.url} storage={service.storage.root}")
            print("\n".join(export_lines(server.target, rest.url, storage_url)), flush=True)
        while not stop.wait(0.5):
            pass
    except OSError as exc:
        print(f"vision-grpc emulator: {exc}", file=sys.stderr)
        return 1
    finally:
        if front is not None:
            front.stop()
        if gcs is not None:
            gcs.stop()
        if rest is not None:
            rest.stop()
        server.stop(grace=1.0)
        service.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
