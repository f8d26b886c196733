"""The command line's user errors, inputs and credentials: exit codes and one-line messages, never a traceback."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests._support import flags, make_pdf, make_tiff, run
from vision_grpc.bulk.journal import Journal
from vision_grpc.cli._commands import listed_inputs
from vision_grpc.testing import Emulator


def one_line_error(err: str) -> str:
    """stderr holds exactly one ``vision-grpc: ...`` line (no traceback); returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vision-grpc: "), err
    assert "Traceback" not in err
    return lines[0]


def test_missing_local_image_exits_2(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "annotate", "images", str(tmp_path / "absent.png"), *flags(emulator))
    assert code == 2 and "No such file or directory" in one_line_error(err)


def test_missing_bulk_list_exits_2(emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys,
        "bulk",
        str(tmp_path / "absent.txt"),
        "--journal",
        str(tmp_path / "j.db"),
        "--output",
        "gs://bucket/o/",
        *flags(emulator),
    )
    assert code == 2 and "absent.txt" in one_line_error(err)


@pytest.mark.parametrize("where", ["missing-dir", "a-directory"])
def test_unusable_journal_path_exits_2(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_text("gs://bucket/x.pdf\n")
    journal = tmp_path / "no" / "such" / "j.db" if where == "missing-dir" else tmp_path
    code, _, err = run(
        capsys, "bulk", str(listing), "--journal", str(journal), "--output", "gs://bucket/o/", *flags(emulator)
    )
    line = one_line_error(err)
    assert code == 2 and ("does not exist" in line if where == "missing-dir" else "journal" in line)


def test_journal_held_by_another_process_exits_2(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_text("gs://bucket/x.pdf\n")
    with closing(Journal(tmp_path / "j.db")):
        code, _, err = run(
            capsys,
            "bulk",
            str(listing),
            "--journal",
            str(tmp_path / "j.db"),
            "--output",
            "gs://bucket/o/",
            *flags(emulator),
        )
    assert code == 2 and "another process" in one_line_error(err)


def test_outputs_without_credentials_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))  # ADC fails, offline
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    code, _, err = run(capsys, "outputs", "gs://bucket/o/")
    assert code == 2 and one_line_error(err).startswith("vision-grpc: credentials: ")


def test_outputs_without_google_cloud_storage_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # as if not installed
    code, _, err = run(capsys, "outputs", "gs://bucket/o/")
    assert code == 2 and "pip install 'vision-grpc[storage]'" in one_line_error(err)


def test_demo_against_an_endpoint_needs_input_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--endpoint", "127.0.0.1:9", "--anonymous")
    assert code == 2 and "--input gs://... and --output gs://..." in one_line_error(err)


def test_outputs_of_an_images_operation_need_no_flag(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    emulator.put_object("gs://bucket/img/a.png", b"\x89PNG\r\n\x1a\n")
    code, doc, _ = run(
        capsys,
        "annotate",
        "images",
        "gs://bucket/img/a.png",
        "gs://bucket/img/absent.png",
        "--output",
        "gs://bucket/img-out/",
        "--json",
        *flags(emulator),
    )
    assert code == 0
    code, out, err = run(capsys, "outputs", doc["name"], *flags(emulator))  # no --images: found from the response
    assert code == 6, err  # read fine, but every image carries an error
    assert one_line_error(err).startswith("vision-grpc: 2 of 2 image(s) failed: image 0: UNIMPLEMENTED (501): ")
    assert "== image 0 " in out and "== image 1 " in out
    assert "Error opening file: gs://bucket/img/absent.png." in out  # a missing image is its own error
    assert out.rstrip().splitlines()[-1] == "2 image(s), 2 with errors"  # the emulator has no image OCR either


def test_bulk_exit_4_while_operations_are_still_running(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emulator.put_object("gs://bucket/slow/a.pdf", make_pdf(1))
    listing = tmp_path / "inputs.txt"
    listing.write_text("gs://bucket/slow/a.pdf\n")
    argv = [
        "bulk",
        str(listing),
        "--journal",
        str(tmp_path / "j.db"),
        "--output",
        "gs://bucket/slow-out/",
        "--json",
        *flags(emulator),
    ]
    code, doc, _ = run(capsys, *argv, "--wait-timeout", "0.01")
    assert code == 4 and doc["counts"]["pending"] == 1
    code, doc, _ = run(capsys, *argv)
    assert code == 0 and doc["counts"]["done"] == 1


def test_bulk_of_a_prefix_skips_its_outputs_and_other_kinds(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prefix = "gs://bucket/scan/"
    for name in ("a.pdf", "B.PDF", "sub/c.tiff"):
        emulator.put_object(prefix + name, make_tiff(1) if name.endswith("tiff") else make_pdf(1))
    emulator.put_object(prefix + "notes.txt", b"not a document")
    emulator.put_object(prefix + "photo.png", b"\x89PNG\r\n\x1a\n")
    argv = ["bulk", prefix, "--journal", str(tmp_path / "j.db"), "--output", f"{prefix}ocr", "--json", *flags(emulator)]
    code, doc, err = run(capsys, *argv)
    assert code == 0, err
    assert doc["counts"] == {"done": 3, "failed": 0, "pending": 0, "total": 3}
    assert emulator.list_objects(f"{prefix}ocr/")  # the outputs are under the listed prefix...
    code, doc, err = run(capsys, *argv)  # ...and a resumed run does not take them for inputs
    assert code == 0 and doc["counts"]["total"] == 3, err


def test_listed_inputs_fit_the_kind() -> None:
    uris = [
        "gs://b/p/a.JPG",
        "gs://b/p/b.heic",
        "gs://b/p/c.pdf",
        "gs://b/p/d.tif",
        "gs://b/p/out/x.png",
        "gs://b/p/e.json",
        "gs://b/p/f",
    ]
    assert listed_inputs(uris, "gs://b/p/out/", "images") == ["gs://b/p/a.JPG", "gs://b/p/b.heic", "gs://b/p/d.tif"]
    assert listed_inputs(uris, "gs://b/p/out", "files") == ["gs://b/p/c.pdf", "gs://b/p/d.tif"]


def test_same_named_local_files_are_staged_apart(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second = tmp_path / "one" / "doc.pdf", tmp_path / "two" / "doc.pdf"
    for path, pages in ((first, 1), (second, 2)):
        path.parent.mkdir()
        path.write_bytes(make_pdf(pages))
    code, doc, err = run(
        capsys,
        "annotate",
        "files",
        str(first),
        str(second),
        "--output",
        "gs://bucket/same/",
        "--json",
        *flags(emulator),
    )
    assert code == 0, err
    staged = [u for u in emulator.list_objects("gs://local-inputs/") if u.endswith("/doc.pdf")]
    contents = {emulator.get_object(uri) for uri in staged}
    assert make_pdf(1) in contents and make_pdf(2) in contents  # neither overwrote the other
    code, out, _ = run(capsys, "outputs", doc["name"], *flags(emulator))
    assert out.rstrip().splitlines()[-1].startswith("3 page(s) of 2 file(s), ")  # blank pages: no text


def _args(**settings: Any) -> Any:
    from argparse import Namespace

    return Namespace(**{"emulator_storage": None, "project": None, "anonymous": False, "credentials": None, **settings})


def test_cloud_storage_uses_the_vision_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2.credentials import Credentials

    from vision_grpc.cli._common import storage_for_args

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    anonymous = storage_for_args(_args(anonymous=True))
    assert isinstance(anonymous.client._credentials, AnonymousCredentials)  # type: ignore[attr-defined]
    user_file = tmp_path / "user.json"
    user_file.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "id",
                "client_secret": "secret",
                "refresh_token": "refresh-token-for-tests",
            }
        )
    )
    user = storage_for_args(_args(credentials=str(user_file)))
    credentials = user.client._credentials  # type: ignore[attr-defined]
    assert isinstance(credentials, Credentials) and credentials.refresh_token == "refresh-token-for-tests"
