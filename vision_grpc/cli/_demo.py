"""``vision-grpc demo``: the main job end to end, on the embedded emulator by default.

It starts the emulator on loopback, stores the bundled sample PDF (3 pages with a text layer) and,
when the OCR engine is installed (the ``ocr`` extra, part of ``demo``), the bundled scan (a page
that is only a picture), submits one files:asyncBatchAnnotate with DOCUMENT_TEXT_DETECTION for
both, shows progress, waits, reads the JSON shards back and prints a short summary: pages, words
and the first lines each page was read as. The emulator reads every page by OCR when it can, as
the service does; without the engine it reads the sample's text layer and the scan is left out
(the summary says so). With ``--endpoint``/credentials and ``--input``/``--output`` gs:// URIs the
same flow runs against the real service, for that one file. ``--emulator-storage DIR`` keeps the
embedded emulator's objects (the results) in DIR, for ``vision-grpc outputs PREFIX --emulator-storage DIR``;
without it they go with the emulator's temporary directory. Pages that carry an error exit 6.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

from vision_grpc.cli._common import UsageError, emit, make_client, storage_for_args
from vision_grpc.cli._exit import ExitCode
from vision_grpc.cli._progress import OperationProgress

__all__ = ["demo"]

DEMO_INPUT = "gs://vision-grpc-demo/sample.pdf"
DEMO_OUTPUT = "gs://vision-grpc-demo/output/"
DEMO_SCAN = "gs://vision-grpc-demo/scan.pdf"
DEMO_SCAN_OUTPUT = "gs://vision-grpc-demo/scan-output/"
OCR_ENGINE = "faster_paddle"  # what the emulator's OCR needs (vision_grpc.emulator._ocr.ENGINE)


def ocr_installed() -> bool:
    """Whether the embedded emulator will read pages by OCR (its engine is importable)."""
    return importlib.util.find_spec(OCR_ENGINE) is not None


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[tuple[list[tuple[str, str]], Any]]:
    """([(input URI, output prefix)...], storage): the emulator's files unless an endpoint was given."""
    if args.endpoint:
        if not (args.input and args.output):
            raise UsageError("demo against a real endpoint needs --input gs://... and --output gs://...")
        yield [(args.input, args.output)], storage_for_args(args)
        return
    from vision_grpc.demo import sample_pdf, scan_pdf
    from vision_grpc.storage import LocalStorage
    from vision_grpc.testing import Emulator

    files = [(DEMO_INPUT, DEMO_OUTPUT)]
    with Emulator(storage_dir=args.emulator_storage, operation_seconds=args.operation_seconds) as emulator:
        emulator.put_object(DEMO_INPUT, sample_pdf())
        if ocr_installed():
            emulator.put_object(DEMO_SCAN, scan_pdf())
            files.append((DEMO_SCAN, DEMO_SCAN_OUTPUT))
        args.endpoint = emulator.grpc_target if args.transport == "grpc" else emulator.rest_url.removeprefix("http://")
        args.anonymous = True
        try:
            yield files, LocalStorage(emulator.storage_dir)
        finally:
            args.endpoint = None


def demo(args: argparse.Namespace) -> int:
    from vision_grpc import types
    from vision_grpc.outputs import raise_for_errors, read_file_results

    embedded = not args.endpoint
    with _target(args) as (files, storage):
        where = "the embedded emulator" if embedded else args.endpoint
        inputs = " and ".join(uri for uri, _ in files)
        if not args.json:
            print(f"Annotating {inputs} with DOCUMENT_TEXT_DETECTION on {where} ({args.transport})")
            if embedded:
                print(f"  {_reader()}")
        request = types.async_files_request(files[0][0], output_uri=files[0][1], batch_size=2)
        for uri, output in files[1:]:
            request.requests.extend(types.async_files_request(uri, output_uri=output, batch_size=2).requests)
        with make_client(args) as client:
            op = client.async_batch_annotate_files(request)
            with OperationProgress(enabled=not args.json, label="operation") as progress:
                progress.update(op)
                op.result(timeout=args.wait_timeout, on_update=progress.update)
        pages = list(read_file_results(op, storage=storage))
    summary = [_page_summary(p) for p in pages]
    outputs = " and ".join(output for _, output in files)
    document = {
        "operation": op.name,
        "input": files[0][0],
        "output": files[0][1],
        "inputs": [uri for uri, _ in files],
        "outputs": [output for _, output in files],
        "ocr": embedded and ocr_installed(),
        "seconds": round(progress.elapsed, 3),
        "pages": summary,
        "words": sum(p["words"] for p in summary),
    }
    lines = [
        f"Operation {op.name} done in {progress.elapsed:.1f}s: {len(pages)} pages, "
        f"{document['words']} words, results in {outputs}{_kept(args, embedded)}"
    ]
    for page in summary:
        lines.append(f"  {page['input'].rsplit('/', 1)[-1]} page {page['page']}: {page['words']} words")
        lines += [f"    | {line}" for line in page["first_lines"]]
        if page["error"] is not None:
            lines.append(f"    ! {page['error']}")
    emit(args, document, "\n".join(lines))
    raise_for_errors(pages)  # ItemErrors (exit 6) when a page failed, as for `vision-grpc outputs`
    return ExitCode.OK


def _reader() -> str:
    if ocr_installed():
        return "(the emulator reads every page by OCR, as the service does: the text PDF and a scanned page)"
    return (
        "(no OCR engine: the emulator reads the PDF's text layer, and the scanned page is left out; "
        "pip install 'vision-grpc[ocr]' to read it)"
    )


def _kept(args: argparse.Namespace, embedded: bool) -> str:
    if not embedded:
        return ""
    if args.emulator_storage:
        return f" (kept under {args.emulator_storage}: read them with --emulator-storage {args.emulator_storage})"
    return " (removed with the embedded emulator; --emulator-storage DIR keeps them)"


def _page_summary(page: Any) -> dict[str, Any]:
    annotation = page.response.full_text_annotation
    words = sum(len(p.words) for pg in annotation.pages for b in pg.blocks for p in b.paragraphs)
    error = page.error.message if page.error is not None else None
    return {
        "input": page.input_uri,
        "page": page.page_number,
        "words": words,
        "first_lines": page.text.splitlines()[:3],
        "error": error,
    }
