"""The subcommands: annotate, operation, outputs, bulk. Each returns an exit code.

Per-page (per-image) errors: a command that prints results prints them all, then raises
``ItemErrors`` when any of them failed (exit 6). ``annotate --output`` reads no results, so it
exits 0 once the operation succeeded; ``outputs NAME`` reads them (reading needs storage access
that submitting does not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vision_grpc._gen._pool import JSON_TYPES
from vision_grpc.cli._common import UsageError, emit, make_client, operation_document, stage_inputs, storage_for_args
from vision_grpc.cli._exit import ExitCode
from vision_grpc.cli._progress import BulkProgress, OperationProgress

__all__ = ["annotate_files", "annotate_images", "operation", "outputs", "bulk"]

# What a listed gs:// prefix may hold for each --kind (compared case-insensitively).
KIND_EXTENSIONS = {
    "files": (".pdf", ".tif", ".tiff", ".gif"),
    "images": (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".ico", ".tif", ".tiff", ".raw", ".heic"),
}


def wait_and_report(args: argparse.Namespace, client: Any, op: Any) -> int:
    if args.no_wait:
        emit(args, operation_document(op), op.name)  # the bare name: NAME=$(vision-grpc annotate ... --no-wait)
        return ExitCode.OK
    with OperationProgress(enabled=not args.json) as progress:
        progress.update(op)
        op.wait(timeout=args.wait_timeout, on_update=progress.update)
    document = operation_document(op)
    if "error" in document:
        if args.json:
            emit(args, document, "")
        from vision_grpc.errors import OperationError

        print(f"vision-grpc: {OperationError(op.name, op.proto.error)}", file=sys.stderr)
        return ExitCode.API
    uris = _output_prefixes(op)
    emit(args, document, f"{op.name} done in {progress.elapsed:.1f}s; results under:\n  " + "\n  ".join(uris))
    return ExitCode.OK


def _output_prefixes(op: Any) -> list[str]:
    response = op._result()
    if hasattr(response, "responses"):
        return [r.output_config.gcs_destination.uri for r in response.responses]
    return [response.output_config.gcs_destination.uri]


def annotate_files(args: argparse.Namespace) -> int:
    from vision_grpc import types

    inputs = stage_inputs(args, args.inputs)
    request = types.async_files_request(
        inputs, output_uri=args.output, features=args.feature or ["DOCUMENT_TEXT_DETECTION"], batch_size=args.batch_size
    )
    with make_client(args) as client:
        return wait_and_report(args, client, client.async_batch_annotate_files(request))


def annotate_images(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    from vision_grpc import types
    from vision_grpc.errors import ItemErrors

    features = args.feature or ["TEXT_DETECTION"]
    with make_client(args) as client:
        if args.output:
            request = types.async_images_request(
                stage_inputs(args, args.inputs), output_uri=args.output, features=features, batch_size=args.batch_size
            )
            return wait_and_report(args, client, client.async_batch_annotate_images(request))
        images: list[str | bytes] = [i if "://" in i else Path(i).read_bytes() for i in args.inputs]
        response = client.batch_annotate_images(types.images_request(images, features=features))
        document = json_format.MessageToDict(response, descriptor_pool=JSON_TYPES)
        lines = [
            f"{name}: {r.full_text_annotation.text or r.error.message or '(no text)'}"
            for name, r in zip(args.inputs, response.responses, strict=True)
        ]
        emit(args, document, "\n".join(lines))
        failed = [(n, r.error) for n, r in zip(args.inputs, response.responses, strict=True) if r.error.code]
        if failed:
            raise ItemErrors(failed, len(response.responses), "image")
        return ExitCode.OK


def operation(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        if args.action == "cancel":
            client.cancel_operation(args.name)
            emit(args, {"name": args.name, "cancelled": True}, f"cancel requested for {args.name}")
            return ExitCode.OK
        if args.action == "delete":
            client.delete_operation(args.name)
            emit(args, {"name": args.name, "deleted": True}, f"deleted {args.name}")
            return ExitCode.OK
        op = client.get_operation(args.name)
        if args.action == "wait":
            args.no_wait = False
            return wait_and_report(args, client, op)
        document = operation_document(op)
        emit(args, document, json.dumps(document, indent=2))
        return ExitCode.OK


def outputs(args: argparse.Namespace) -> int:
    """Read results back; given an operation name, whether they are images or files comes from its response."""
    from vision_grpc.outputs import raise_for_errors, read_file_results, read_image_results

    storage = storage_for_args(args)
    source: Any = args.source
    images = args.images
    if not source.startswith("gs://"):
        with make_client(args) as client:
            source = client.get_operation(source).wait(timeout=args.wait_timeout)
        response = source.result(timeout=0)  # OperationError (exit 3) if the operation failed
        images = type(response).__name__ == "AsyncBatchAnnotateImagesResponse"
    reader = read_image_results if images else read_file_results
    results: list[Any] = list(reader(source, storage=storage))
    if args.save:
        _save(args, results)
    unit = "image" if images else "page"
    errors = sum(1 for r in results if r.error is not None)
    inputs = len({r.input_uri for r in results}) if not images else len(results)
    summary = f"{len(results)} {unit}(s)" + (f" of {inputs} file(s)" if not images else "") + f", {errors} with errors"
    document = {"results": [_result_document(r) for r in results], f"{unit}s": len(results), "errors": errors}
    blocks = [f"== {r.label} ==\n{r.text or (r.error.message if r.error else '')}" for r in results]
    emit(args, document, "\n\n".join([*blocks, summary]))
    raise_for_errors(results)  # ItemErrors (exit 6) when any page or image failed
    return ExitCode.OK


def _result_document(result: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"label": result.label, "text": result.text}
    if result.error is not None:
        document["error"] = {"code": result.error.code, "message": result.error.message}
    return document


def _save(args: argparse.Namespace, results: list[Any]) -> None:
    from google.protobuf import json_format

    target = Path(args.save)
    target.mkdir(parents=True, exist_ok=True)
    for n, result in enumerate(results, start=1):
        stem = f"{n:05d}"
        if args.format == "json":
            (target / f"{stem}.json").write_text(json_format.MessageToJson(result.response, descriptor_pool=JSON_TYPES))
        else:
            (target / f"{stem}.txt").write_text(result.text)


# BulkRunner's settings the command line passes when given, and the flag that sets each.
BULK_SETTINGS = {
    "files_per_request": "--files-per-request",
    "images_per_request": "--images-per-request",
    "max_in_flight": "--max-in-flight",
    "poll_interval": "--poll-interval",
    "max_attempts": "--max-attempts",
    "max_pages_in_flight": "--max-pages-in-flight",
    "max_images_in_flight": "--max-images-in-flight",
    "max_requests_per_minute": "--max-requests-per-minute",
    "pages_per_file": "--pages-per-file",
}
# The settings that mean something for one kind of run only.
_KIND_SETTINGS = {
    "files": ("files_per_request", "max_pages_in_flight", "pages_per_file"),
    "images": ("images_per_request", "max_images_in_flight"),
}


def bulk(args: argparse.Namespace) -> int:
    from vision_grpc.bulk import BulkRunner
    from vision_grpc.errors import ValidationError

    journal_dir = Path(args.journal).resolve().parent
    if not journal_dir.is_dir():
        raise UsageError(f"--journal {args.journal}: directory {journal_dir} does not exist")
    other = "images" if args.kind == "files" else "files"
    for setting in _KIND_SETTINGS[other]:
        if getattr(args, setting) is not None:
            raise UsageError(f"{BULK_SETTINGS[setting]} is for --kind {other}; this run is --kind {args.kind}")
    settings = {name: getattr(args, name) for name in BULK_SETTINGS if getattr(args, name) is not None}
    inputs = _bulk_inputs(args)
    progress = BulkProgress(enabled=not args.json)
    with make_client(args) as client:
        try:
            runner = BulkRunner(
                client,
                args.journal,
                output_prefix=args.output,
                kind=args.kind,
                features=args.feature or (["DOCUMENT_TEXT_DETECTION"] if args.kind == "files" else ["TEXT_DETECTION"]),
                poll_timeout=args.wait_timeout,
                on_event=progress.event,
                **settings,
            )
        except ValidationError as exc:  # BulkRunner's own checks, told in the command line's terms
            flag = _flag_of(exc.field, args.kind)
            if flag is None:
                raise
            raise UsageError(f"{flag}: {exc.rule}") from None
        with progress:
            report = runner.run(inputs)
    document = {
        "counts": report.counts,
        "failed": [{"uri": r.uri, "reason": r.reason} for r in report.failed],
        "pending": [{"uri": r.uri, "reason": r.reason} for r in report.pending],
    }
    lines = [", ".join(f"{k}: {v}" for k, v in report.counts.items())]
    lines += [f"FAILED {r.uri}: {r.reason}" for r in report.failed]
    lines += [f"PENDING {r.uri}: {r.reason}" for r in report.pending]
    emit(args, document, "\n".join(lines))
    if report.pending:  # the wait timed out (or submits are to be retried): run again with the same journal
        return ExitCode.TIMEOUT
    return ExitCode.API if report.failed else ExitCode.OK


def _flag_of(field: str, kind: str) -> str | None:
    """The flag behind a ``BulkRunner`` ``ValidationError.field``, or None when no flag is."""
    if field == "per_request":
        return f"--{kind}-per-request"
    if field == "poll_interval":  # BulkRunner checks poll_interval and poll_timeout together
        return "--poll-interval, --wait-timeout"
    return BULK_SETTINGS.get(field)


def _bulk_inputs(args: argparse.Namespace) -> list[str]:
    if args.inputs.startswith("gs://"):
        return listed_inputs(storage_for_args(args).list(args.inputs), args.output, args.kind)
    lines = Path(args.inputs).read_text().splitlines()
    return stage_inputs(args, [line.strip() for line in lines if line.strip() and not line.startswith("#")])


def listed_inputs(uris: list[str], output: str, kind: str) -> list[str]:
    """The objects of a listed prefix worth annotating: not under the run's output prefix (its own
    results, on a resumed run) and with an extension that fits ``kind``."""
    out = output if output.endswith("/") else output + "/"
    return [uri for uri in uris if not uri.startswith(out) and uri.lower().endswith(KIND_EXTENSIONS[kind])]
