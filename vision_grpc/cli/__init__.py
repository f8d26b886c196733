"""``vision-grpc``: the command line: annotate, follow operations, read outputs, bulk runs, demo.

Exit codes (``ExitCode``): 0 success; 2 bad usage (a missing file, a bad journal path, no
credentials, a missing extra...) or a request that breaks a documented rule (nothing sent); 3 the
service answered with an error, or an operation (or a bulk input) failed; 4 a wait timed out (the
operation may still finish: ``vision-grpc operation wait NAME``; a bulk run with inputs still
pending: run it again with the same journal); 5 the connection failed; 6 the call succeeded but
some (or all) pages or images carry an error; 130 interrupted; 141 stdout was closed early.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from vision_grpc import __version__
from vision_grpc.cli._common import add_connection_flags, add_verbosity_flag, logging_to_stderr, terminal_safe
from vision_grpc.cli._exit import ExitCode

__all__ = ["ExitCode", "main"]


def _features(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feature",
        action="append",
        metavar="TYPE",
        help="a Feature.Type name, repeatable (default: DOCUMENT_TEXT_DETECTION for files, TEXT_DETECTION for images)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vision-grpc", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version")
    add_verbosity_flag(parser, dest="verbose_before")  # `vision-grpc -vv COMMAND ...`
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    common = argparse.ArgumentParser(add_help=False)
    add_connection_flags(common)
    add_verbosity_flag(common)  # `vision-grpc COMMAND ... -vv`

    annotate = commands.add_parser("annotate", help="submit annotation").add_subparsers(
        dest="kind", required=True, metavar="KIND", help="files or images"
    )
    files = annotate.add_parser("files", parents=[common], help="files:asyncBatchAnnotate (PDF, TIFF, GIF)")
    files.add_argument("inputs", nargs="+", metavar="INPUT", help="gs:// URIs (local paths with --emulator-storage)")
    files.add_argument("--output", required=True, metavar="GS_PREFIX", help="where the JSON shards go")
    images = annotate.add_parser("images", parents=[common], help="images:asyncBatchAnnotate, or images:annotate")
    images.add_argument("inputs", nargs="+", metavar="INPUT", help="gs:// or https:// URIs, or local files")
    images.add_argument(
        "--output",
        metavar="GS_PREFIX",
        help="asynchronous, results to this prefix (default: synchronous, results printed)",
    )
    for sub in (files, images):
        _features(sub)
        sub.add_argument("--batch-size", type=int, help="responses per output shard, 1-100 (default: 20)")
        sub.add_argument(
            "--no-wait",
            action="store_true",
            help="print the bare operation name on stdout and exit (with --json: the operation's JSON document)",
        )

    op = commands.add_parser("operation", parents=[common], help="get, wait for, cancel or delete an operation")
    op.add_argument(
        "action", choices=("get", "wait", "cancel", "delete"), help="get prints it; wait waits like annotate does"
    )
    op.add_argument("name", help="operations/... or projects/.../operations/...")

    out = commands.add_parser("outputs", parents=[common], help="read an operation's results back")
    out.add_argument("source", help="an operation name or a gs:// output prefix")
    out.add_argument(
        "--images",
        action="store_true",
        help="the gs:// prefix is an images:asyncBatchAnnotate output (an operation's kind is detected)",
    )
    out.add_argument("--save", metavar="DIR", help="write one file per page/image")
    out.add_argument("--format", choices=("json", "text"), default="text", help="with --save (default: text)")

    bulk = commands.add_parser("bulk", parents=[common], help="annotate many inputs, resumable after a crash")
    bulk.add_argument(
        "inputs",
        help="a file with one gs:// URI per line, or a gs:// prefix to list (objects "
        "under --output and of other types than --kind are skipped)",
    )
    bulk.add_argument("--journal", required=True, help="SQLite journal; run again with it to resume")
    bulk.add_argument(
        "--output", required=True, metavar="GS_PREFIX", help="results go under GS_PREFIXbatch-ID/, one prefix per batch"
    )
    bulk.add_argument(
        "--kind",
        choices=("files", "images"),
        default="files",
        help="files:asyncBatchAnnotate (PDF, TIFF, GIF) or images:asyncBatchAnnotate (default: files)",
    )
    # BulkRunner's settings: None leaves its default (the numbers in the help; a test keeps them equal).
    bulk.add_argument(
        "--files-per-request", type=int, metavar="N", help="with --kind files: files per request, 1-2000 (default: 8)"
    )
    bulk.add_argument(
        "--images-per-request",
        type=int,
        metavar="N",
        help="with --kind images: images per request, 1-2000 (default: 2000)",
    )
    bulk.add_argument("--max-in-flight", type=int, metavar="N", help="operations running at once, 1-2000 (default: 4)")
    bulk.add_argument(
        "--poll-interval",
        type=float,
        metavar="SECONDS",
        help="longest wait between two polls of one operation (default: 2.0)",
    )
    bulk.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="submits of a batch, across runs, before its inputs fail, 1-2000 (default: 3)",
    )
    # The project's quotas, shared by everything that uses the project: lower them to leave room.
    bulk.add_argument(
        "--max-pages-in-flight",
        type=int,
        metavar="N",
        help="with --kind files: pages in processing at once, the project's quota (default: 10000)",
    )
    bulk.add_argument(
        "--max-images-in-flight",
        type=int,
        metavar="N",
        help="with --kind images: images in processing at once, the project's quota (default: 8000)",
    )
    bulk.add_argument(
        "--max-requests-per-minute",
        type=int,
        metavar="N",
        help="submits and polls per minute, the project's quota (default: 1800)",
    )
    bulk.add_argument(
        "--pages-per-file",
        type=int,
        metavar="N",
        help="with --kind files: pages assumed per file until results tell (default: 10)",
    )
    _features(bulk)

    demo = commands.add_parser("demo", parents=[common], help="run the main job on the embedded emulator")
    demo.add_argument("--input", help="with --endpoint: a gs:// PDF to annotate")
    demo.add_argument("--output", help="with --endpoint: a gs:// prefix for the results")
    demo.add_argument("--operation-seconds", type=float, default=1.5, help="emulated processing time")

    commands.add_parser("emulator", add_help=False, help="run the emulator (see `vision-grpc emulator --help`)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vision-grpc argv...`` (default: ``sys.argv[1:]``); returns the exit code (``ExitCode``)."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a closed stdout shows here, not as "Exception ignored" at exit
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """The reader of stdout went away (``vision-grpc demo | head -1``): end quietly, as a command
    killed by SIGPIPE does. Python's documented recipe: stdout now points at /dev/null, so the
    interpreter's last flush has nothing to fail on. (SIGPIPE stays ignored: restoring its default
    would also kill the process on a socket its server closed.)"""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file descriptor (captured in tests)
        pass
    return ExitCode.BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbosity, rest = _leading_verbosity(argv)
    if rest[:1] == ["emulator"]:
        from vision_grpc.emulator.__main__ import main as emulator_main

        with logging_to_stderr(verbosity):
            return emulator_main(rest[1:])
    args = _parser().parse_args(argv)
    with logging_to_stderr(args.verbose_before + args.verbose):
        return int(_run(args))


def _leading_verbosity(argv: list[str]) -> tuple[int, list[str]]:
    """``-v``/``-vv``/``--verbose`` before the command: their count and the rest of ``argv``."""
    count = 0
    for k, token in enumerate(argv):
        if token == "--verbose":
            count += 1
        elif re.fullmatch(r"-v+", token):
            count += len(token) - 1
        else:
            return count, argv[k:]
    return count, []


def _run(args: argparse.Namespace) -> int:
    import sqlite3

    from vision_grpc import errors
    from vision_grpc._core.options import EMULATOR_HOST_ENV, EMULATOR_REST_HOST_ENV
    from vision_grpc.bulk.journal import JournalError
    from vision_grpc.cli import _commands, _demo
    from vision_grpc.cli._common import UsageError

    handlers = {
        "files": _commands.annotate_files,
        "images": _commands.annotate_images,
        "operation": _commands.operation,
        "outputs": _commands.outputs,
        "bulk": _commands.bulk,
        "demo": _demo.demo,
    }
    handler = handlers[args.kind if args.command == "annotate" else args.command]
    try:
        return handler(args)
    except errors.ValidationError as exc:
        if exc.field in (EMULATOR_HOST_ENV, EMULATOR_REST_HOST_ENV):  # the environment, not the request
            return _fail(ExitCode.USAGE, str(exc))
        return _fail(ExitCode.USAGE, f"invalid request: {exc}")
    except errors.ItemErrors as exc:  # raised after the results were printed
        return _fail(ExitCode.ITEM_ERRORS, str(exc))
    except (UsageError, JournalError) as exc:
        return _fail(ExitCode.USAGE, str(exc))
    except errors.OperationTimeout as exc:
        return _fail(ExitCode.TIMEOUT, f"{exc} (vision-grpc operation wait {exc.name})")
    except errors.ConnectError as exc:
        return _fail(ExitCode.TRANSPORT, str(exc))
    except errors.ApiError as exc:
        return _fail(ExitCode.API, str(exc))
    except errors.OperationError as exc:
        return _fail(ExitCode.API, str(exc))
    except errors.TransportError as exc:
        return _fail(ExitCode.TRANSPORT, str(exc))
    except errors.VisionError as exc:
        return _fail(ExitCode.API, str(exc))
    except KeyboardInterrupt:
        return _fail(ExitCode.INTERRUPTED, "interrupted")
    # User errors that are not the library's: one line on stderr, exit 2, no traceback.
    except ImportError as exc:
        return _fail(ExitCode.USAGE, _install_hint(exc))
    except BrokenPipeError:  # stdout closed early: main() ends quietly
        raise
    except OSError as exc:  # a missing input, list or journal directory; an unreadable file
        what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        return _fail(ExitCode.USAGE, what)
    except sqlite3.Error as exc:
        return _fail(ExitCode.USAGE, f"journal {getattr(args, 'journal', '')}: {exc}")
    except _auth_errors() as exc:
        return _fail(ExitCode.USAGE, f"credentials: {exc}")
    except (ValueError, TypeError) as exc:
        # Not ours: its text could quote anything it was given, a credential included.
        return _fail(
            ExitCode.USAGE,
            f"{type(exc).__name__} from a library call (details withheld: its text could hold a credential)",
        )


# Optional dependencies and the extra that installs each.
_EXTRAS = {
    "google.cloud.storage": "storage",
    "google.api_core": "storage",
    "rich": "cli",
    "pypdfium2": "emulator",
    "aiohttp": "rest-async",
}


def _install_hint(exc: ImportError) -> str:
    message = str(exc)
    if "pip install" in message:
        return message
    name = exc.name or ""
    extra = next((e for module, e in _EXTRAS.items() if name == module or name.startswith(module + ".")), None)
    return f"{message}: pip install 'vision-grpc[{extra}]'" if extra else f"{message}: a dependency is missing"


def _auth_errors() -> tuple[type[Exception], ...]:
    """google-auth's errors (no credentials found, a bad credentials file, a failed token refresh)."""
    try:
        from google.auth.exceptions import GoogleAuthError
    except ImportError:  # pragma: no cover - google-auth is a runtime dependency
        return ()
    return (GoogleAuthError,)


def _fail(code: int, message: str) -> int:
    print(f"vision-grpc: {terminal_safe(' '.join(message.split()))}", file=sys.stderr)
    return code
