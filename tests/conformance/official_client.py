"""Run in a subprocess: the official google-cloud-vision client drives our emulator.

Usage: official_client.py TRANSPORT ENDPOINT PDF_URI OUTPUT_PREFIX; prints one JSON line with what
the official client saw. It must not import vision_grpc (the schemas cannot share a process).
"""

from __future__ import annotations

import json
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import vision_v1


def main() -> None:
    transport, endpoint, pdf_uri, out = sys.argv[1:5]
    if transport == "grpc":
        import grpc
        from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport

        channel = grpc.insecure_channel(endpoint)
        client = vision_v1.ImageAnnotatorClient(transport=ImageAnnotatorGrpcTransport(channel=channel))
    else:
        client = vision_v1.ImageAnnotatorClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=f"http://{endpoint}"),
        )
    request = vision_v1.AsyncBatchAnnotateFilesRequest(
        requests=[
            vision_v1.AsyncAnnotateFileRequest(
                input_config=vision_v1.InputConfig(
                    gcs_source=vision_v1.GcsSource(uri=pdf_uri), mime_type="application/pdf"
                ),
                features=[vision_v1.Feature(type_=vision_v1.Feature.Type.DOCUMENT_TEXT_DETECTION)],
                output_config=vision_v1.OutputConfig(gcs_destination=vision_v1.GcsDestination(uri=out), batch_size=2),
            )
        ]
    )
    operation = client.async_batch_annotate_files(request=request)
    response = operation.result(timeout=30)
    meta = operation.metadata
    sync = client.batch_annotate_images(
        requests=[
            vision_v1.AnnotateImageRequest(
                image=vision_v1.Image(content=b"\x89PNG"), features=[vision_v1.Feature(type_=5)]
            )
        ]
    )
    raw = client.get_operation({"name": operation.operation.name})
    print(
        json.dumps(
            {
                "name": operation.operation.name,
                "output": response.responses[0].output_config.gcs_destination.uri,
                "state": vision_v1.OperationMetadata.State(meta.state).name,
                "sync_error_code": sync.responses[0].error.code,
                "get_operation_done": raw.done,
            }
        )
    )


if __name__ == "__main__":
    main()
