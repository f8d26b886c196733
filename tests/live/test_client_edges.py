"""Smaller edges a backend meets: wrong credential objects, planted symlinks, terminal escapes in
results, and more threads than REST connections."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from google.protobuf import json_format

from tests._support import flags, run
from tests.live.harness import PDF_URI
from vision_grpc import Client, types
from vision_grpc.errors import ValidationError
from vision_grpc.storage import InvalidUri, LocalStorage
from vision_grpc.testing import Emulator


def test_credentials_that_are_not_google_auth_are_refused_clearly() -> None:
    with pytest.raises(ValidationError) as caught:
        Client(endpoint="vision.example.com:443", credentials="ya29.a-token-string")  # type: ignore[arg-type]
    assert caught.value.field == "credentials"
    assert "google.auth.credentials.Credentials" in caught.value.rule and "str" in caught.value.rule
    assert "ya29" not in str(caught.value)


def test_local_storage_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "bucket").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (root / "bucket" / "link.txt").symlink_to(outside / "secret.txt")
    (root / "bucket" / "dir").symlink_to(outside, target_is_directory=True)
    (root / "bucket" / "real.json").write_text("{}")
    storage = LocalStorage(root)
    for uri in ("gs://bucket/link.txt", "gs://bucket/dir/secret.txt"):
        with pytest.raises(InvalidUri, match="symbolic link"):
            storage.read(uri)
    with pytest.raises(InvalidUri):
        storage.write("gs://bucket/dir/planted.json", b"{}")
    assert not (outside / "planted.json").exists()
    assert storage.list("gs://bucket/") == ["gs://bucket/real.json"]


def test_outputs_shows_terminal_escapes_from_shard_text_instead_of_sending_them(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "Total \x1b[2J\x1b]0;pwned\x07 due\x9b"
    response = types.AnnotateFileResponse(
        input_config=types.InputConfig(gcs_source=types.GcsSource(uri="gs://bucket/edges/doc.pdf")),
        responses=[types.AnnotateImageResponse(full_text_annotation=types.TextAnnotation(text=hostile))],
        total_pages=1,
    )
    shard = json_format.MessageToJson(response, descriptor_pool=types.JSON_TYPES).encode()
    emulator.put_object("gs://bucket/edges/out/output-1-to-1.json", shard)
    code, out, _ = run(capsys, "outputs", "gs://bucket/edges/out/", *flags(emulator))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "\\x1b[2J" in out


def test_more_threads_than_rest_connections_wait_their_turn_without_warnings(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    assert emulator.rest_url is not None
    caplog.set_level(logging.WARNING, logger="urllib3")
    with Client(endpoint=emulator.rest_url.removeprefix("http://"), transport="rest", max_connections=4) as client:
        name = client.async_batch_annotate_files(
            types.async_files_request(PDF_URI, output_uri="gs://bucket/edges/pool/")
        ).name
        answers: list[str] = []

        def worker() -> None:
            for _ in range(10):
                answers.append(client.get_operation(name).name)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert answers == [name] * 160
    assert [r for r in caplog.records if r.name.startswith("urllib3")] == []
