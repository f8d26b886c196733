"""The command line against a real emulator: subcommands, JSON output, exit codes, the demo."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import flags, run
from vision_grpc.demo import sample_pdf
from vision_grpc.testing import Emulator


@pytest.fixture(scope="module")
def emulator(emulator: Emulator) -> Emulator:
    """The shared emulator, with the bundled sample at ``gs://bucket/sample.pdf``."""
    emulator.put_object("gs://bucket/sample.pdf", sample_pdf())
    return emulator


def test_annotate_files_waits_and_reports_json(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(
        capsys,
        "annotate",
        "files",
        "gs://bucket/sample.pdf",
        "--output",
        "gs://bucket/cli/a/",
        "--batch-size",
        "2",
        "--json",
        *flags(emulator),
    )
    assert code == 0
    assert doc["done"] is True and doc["state"] == "DONE"
    assert doc["response"]["responses"][0]["outputConfig"]["gcsDestination"]["uri"] == "gs://bucket/cli/a/"
    code, out, _ = run(capsys, "outputs", doc["name"], *flags(emulator))
    assert code == 0
    assert "gs://bucket/sample.pdf page 3" in out and "Juniper Valley Orchards" in out
    assert out.rstrip().splitlines()[-1] == "3 page(s) of 1 file(s), 0 with errors"


def test_local_file_is_staged_for_the_emulator(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    local = tmp_path / "local.pdf"
    local.write_bytes(sample_pdf())
    code, doc, _ = run(
        capsys, "annotate", "files", str(local), "--output", "gs://bucket/cli/local/", "--json", *flags(emulator)
    )
    assert code == 0
    digest = hashlib.sha256(sample_pdf()).hexdigest()[:16]
    assert emulator.get_object(f"gs://local-inputs/{digest}/local.pdf") == sample_pdf()
    code, doc, _ = run(
        capsys, "outputs", "gs://bucket/cli/local/", "--save", str(tmp_path / "pages"), "--json", *flags(emulator)
    )
    assert code == 0 and len(doc["results"]) == 3
    assert sorted(p.name for p in (tmp_path / "pages").iterdir()) == ["00001.txt", "00002.txt", "00003.txt"]


def test_operation_subcommands(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(
        capsys,
        "annotate",
        "files",
        "gs://bucket/sample.pdf",
        "--output",
        "gs://bucket/cli/op/",
        "--no-wait",
        "--json",
        *flags(emulator),
    )
    assert code == 0 and doc["done"] is False
    name = doc["name"]
    code, doc, _ = run(capsys, "operation", "wait", name, "--json", *flags(emulator))
    assert code == 0 and doc["state"] == "DONE"
    code, doc, _ = run(capsys, "operation", "get", name, "--json", *flags(emulator))
    assert code == 0 and doc["done"] is True
    code, doc, _ = run(capsys, "operation", "delete", name, "--json", *flags(emulator))
    assert code == 0
    code, _, err = run(capsys, "operation", "get", name, *flags(emulator))
    assert code == 3 and "NOT_FOUND" in err


def test_cancelled_operation_exits_3(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(
        capsys,
        "annotate",
        "files",
        "gs://bucket/sample.pdf",
        "--output",
        "gs://bucket/cli/c/",
        "--no-wait",
        "--json",
        *flags(emulator),
    )
    run(capsys, "operation", "cancel", doc["name"], *flags(emulator))
    code, doc, _ = run(capsys, "operation", "wait", doc["name"], "--json", *flags(emulator))
    assert code == 3 and doc["error"]["code"] == 1


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        pytest.param(
            ["annotate", "files", "gs://bucket/sample.pdf", "--output", "s3://x/"],
            2,
            "requests[0].output_config.gcs_destination.uri",
            id="validation-2",
        ),
        pytest.param(
            ["annotate", "files", "gs://bucket/absent.pdf", "--output", "gs://bucket/cli/x/"],
            3,
            "NOT_FOUND",
            id="operation-failed-3",
        ),
        pytest.param(
            ["annotate", "files", "gs://bucket/sample.pdf", "--output", "gs://bucket/cli/t/", "--wait-timeout", "0.01"],
            4,
            "operation wait",
            id="timeout-4",
        ),
    ],
)
def test_exit_codes(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, text: str
) -> None:
    got, _, err = run(capsys, *argv, *flags(emulator))
    assert got == code
    assert text in err


def test_connection_refused_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    got, _, err = run(
        capsys,
        "annotate",
        "files",
        "gs://b/x.pdf",
        "--output",
        "gs://b/o/",
        "--endpoint",
        "127.0.0.1:9",
        "--timeout",
        "1",
    )
    assert got == 5 and "UNAVAILABLE" in err


def test_sync_images_print_per_image(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    code, out, err = run(capsys, "annotate", "images", str(image), *flags(emulator))
    assert code == 6 and out.startswith(f"{image}: ")  # no image OCR in the emulator: the image failed, exit 6
    assert err.startswith(f"vision-grpc: 1 of 1 image(s) failed: {image}: UNIMPLEMENTED (501): ")


def test_bulk_from_a_list_file(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for n in range(4):
        emulator.put_object(f"gs://bucket/bulk/{n}.pdf", sample_pdf())
    listing = tmp_path / "inputs.txt"
    listing.write_text("".join(f"gs://bucket/bulk/{n}.pdf\n" for n in range(4)) + "gs://bucket/bulk/absent.pdf\n")
    argv = [
        "bulk",
        str(listing),
        "--journal",
        str(tmp_path / "j.sqlite"),
        "--output",
        "gs://bucket/bulkout/",
        "--json",
        *flags(emulator),
    ]
    code, doc, _ = run(capsys, *argv)
    assert code == 3  # one input failed
    assert doc["counts"]["done"] == 4 and doc["failed"][0]["uri"] == "gs://bucket/bulk/absent.pdf"


def test_demo_command_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vision_grpc.cli", "demo", "--json", "--operation-seconds", "0.2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    pages = [(p["input"].rsplit("/", 1)[-1], p["page"]) for p in document["pages"]]
    scanned = [("scan.pdf", 1)] if document["ocr"] else []  # the scanned page needs the OCR engine
    assert pages == [("sample.pdf", 1), ("sample.pdf", 2), ("sample.pdf", 3), *scanned]
    assert document["words"] > 100
    assert document["pages"][0]["first_lines"][0] == "Juniper Valley Orchards Quarterly Report"
    if document["ocr"]:
        assert document["pages"][3]["first_lines"][0] == "Delivery Note DN-2031-118"  # read from its pixels
