"""Run in a subprocess: Google's async PDF/TIFF OCR sample flow, with the official clients only.

Usage: official_sample.py PDF_PATH BUCKET TRANSPORT=ENDPOINT...; ``STORAGE_EMULATOR_HOST`` names the
emulator's Cloud Storage API. For each transport (``grpc`` or ``rest``) it does what the documentation's
sample does with google-cloud-vision and google-cloud-storage: upload the PDF, start
``async_batch_annotate_files`` with DOCUMENT_TEXT_DETECTION and ``batch_size=2``, wait with
``operation.result``, list the output objects under the prefix (skipping "folders"), download them,
parse them (``json.loads`` as the sample does, and ``AnnotateFileResponse.from_json``) and take the first
page's ``full_text_annotation.text``. Prints one JSON line with what it saw per transport. Nothing here
imports vision_grpc: the official packages see only our servers.

The only changes from the sample are the ones any emulator needs: the Vision client is built for a
plaintext endpoint (an insecure gRPC channel, or ``transport="rest"`` with ``api_endpoint="http://..."``
and anonymous credentials), since google-cloud-vision reads no emulator variable. ``storage.Client()`` is
built exactly as in the sample; ``STORAGE_EMULATOR_HOST`` does the rest.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage, vision
from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport


def vision_client(transport: str, endpoint: str) -> vision.ImageAnnotatorClient:
    if transport == "grpc":
        channel = grpc.insecure_channel(endpoint)
        return vision.ImageAnnotatorClient(transport=ImageAnnotatorGrpcTransport(channel=channel))
    return vision.ImageAnnotatorClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=f"http://{endpoint}"),
    )


def ocr_pdf(client: vision.ImageAnnotatorClient, source_uri: str, destination_uri: str) -> None:
    """Start the asynchronous OCR of a PDF in Cloud Storage and wait for it (the sample's first half)."""
    request = vision.AsyncAnnotateFileRequest(
        features=[vision.Feature(type_=vision.Feature.Type.DOCUMENT_TEXT_DETECTION)],
        input_config=vision.InputConfig(gcs_source=vision.GcsSource(uri=source_uri), mime_type="application/pdf"),
        output_config=vision.OutputConfig(
            gcs_destination=vision.GcsDestination(uri=destination_uri),
            batch_size=2,  # pages per output file
        ),
    )
    operation = client.async_batch_annotate_files(requests=[request])
    operation.result(timeout=60)


def read_outputs(storage_client: storage.Client, destination_uri: str, *, through_bucket: bool) -> dict[str, Any]:
    """List and read the output files (the sample's second half), both ways the samples list them."""
    found = re.match(r"gs://([^/]+)/(.+)", destination_uri)
    assert found is not None
    bucket_name, prefix = found.group(1), found.group(2)
    if through_bucket:
        listed = storage_client.get_bucket(bucket_name).list_blobs(prefix=prefix)
    else:
        listed = storage_client.list_blobs(bucket_name, prefix=prefix)
    blobs = [blob for blob in listed if not blob.name.endswith("/")]  # skip folder placeholders
    texts, parsed_texts, pages = [], [], []
    for blob in blobs:
        raw = blob.download_as_bytes().decode("utf-8")
        as_dict = json.loads(raw)
        texts.append(as_dict["responses"][0]["fullTextAnnotation"]["text"])
        as_message = vision.AnnotateFileResponse.from_json(raw)
        parsed_texts.append(as_message.responses[0].full_text_annotation.text)
        pages.append([response.context.page_number for response in as_message.responses])
    return {
        "outputs": [blob.name for blob in blobs],
        "content_types": [blob.content_type for blob in blobs],
        "first_text": texts[0] if texts else None,
        "first_text_parsed": parsed_texts[0] if parsed_texts else None,
        "pages": pages,
    }


def main() -> None:
    pdf_path, bucket_name, *targets = sys.argv[1:]
    storage_client = storage.Client()  # as in the sample: STORAGE_EMULATOR_HOST makes it anonymous
    bucket = storage_client.create_bucket(bucket_name)
    seen: dict[str, Any] = {}
    for target in targets:
        transport, _, endpoint = target.partition("=")
        source = bucket.blob(f"{transport}/input/report.pdf")
        source.upload_from_filename(pdf_path)
        destination = f"gs://{bucket_name}/{transport}/output/"
        ocr_pdf(vision_client(transport, endpoint), f"gs://{bucket_name}/{source.name}", destination)
        seen[transport] = read_outputs(storage_client, destination, through_bucket=transport == "rest")
        seen[transport]["input_content_type"] = bucket.get_blob(source.name).content_type
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
