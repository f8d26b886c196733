"""Google's async PDF OCR sample flow, with the official clients in their own process, against our emulator.

google-cloud-storage uploads the PDF through the emulator's Cloud Storage API; google-cloud-vision (gRPC,
then REST) runs ``async_batch_annotate_files``; google-cloud-storage lists, downloads and parses the
output shards. What the official side read must be what the emulator wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from vision_grpc.demo import sample_pdf
from vision_grpc.testing import Emulator

TRANSPORTS = ["grpc", "rest"]


@pytest.fixture(scope="module")
def bucket() -> str:
    return f"official-sample-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def played(emulator: Emulator, bucket: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The official sample's flow, played once over both transports in one subprocess."""
    pdf = tmp_path_factory.mktemp("official-sample") / "report.pdf"
    pdf.write_bytes(sample_pdf())
    targets = [f"grpc={emulator.grpc_target}", f"rest={emulator.rest_url.removeprefix('http://')}"]
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")}
    env.update(STORAGE_EMULATOR_HOST=emulator.storage_host, NO_PROXY="127.0.0.1,localhost")
    script = Path(__file__).with_name("official_sample.py")
    done = subprocess.run(
        [sys.executable, str(script), str(pdf), bucket, *targets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_official_sample_reads_the_emulators_ocr_through_cloud_storage(
    played: dict[str, Any], emulator: Emulator, bucket: str, transport: str
) -> None:
    seen = played[transport]
    prefix = f"{transport}/output/"
    # the upload went through the Cloud Storage API into the directory the emulator read it from
    assert emulator.get_object(f"gs://{bucket}/{transport}/input/report.pdf") == sample_pdf()
    assert seen["input_content_type"] == "application/pdf"
    # the listing the sample takes its first file from: the shards the emulator wrote, in order
    assert seen["outputs"] == [f"{prefix}output-1-to-2.json", f"{prefix}output-3-to-3.json"]
    assert [uri.removeprefix(f"gs://{bucket}/") for uri in emulator.list_objects(f"gs://{bucket}/{prefix}")] == (
        seen["outputs"]
    )
    assert seen["content_types"] == ["application/json", "application/json"]
    assert seen["pages"] == [[1, 2], [3]]
    # the first page's text, as the sample prints it, is the emulator's
    shard = json.loads(emulator.get_object(f"gs://{bucket}/{prefix}output-1-to-2.json"))
    expected = shard["responses"][0]["fullTextAnnotation"]["text"]
    assert seen["first_text"] == seen["first_text_parsed"] == expected
    assert len(expected.split()) >= 3
