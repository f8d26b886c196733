"""Run in a subprocess: vision_grpc and google-cloud-vision in ONE process, imported in the order given.

Usage: side_by_side.py ORDER GRPC_ENDPOINT PDF_URI OUTPUT_PREFIX, ORDER being "ours-first" or
"official-first". Both clients submit an async PDF request to the emulator and read their operation
back; the requests convert both ways with identical bytes. Prints one JSON line of what was seen.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    order, endpoint, pdf_uri, out = sys.argv[1:5]
    modules = ["vision_grpc.types", "google.cloud.vision_v1"]
    for name in modules if order == "ours-first" else reversed(modules):
        importlib.import_module(name)  # the order under test (import statements would be re-sorted)
    import grpc
    from google.cloud import vision_v1
    from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport

    from vision_grpc import Client, types

    ours = types.async_files_request(pdf_uri, output_uri=f"{out}ours/")
    official = types.to_official(ours)  # one line each way, same bytes
    assert type(official).serialize(official) == ours.SerializeToString()
    assert types.from_official(official) == ours
    official.requests[0].output_config.gcs_destination.uri = f"{out}official/"

    with Client(endpoint=endpoint) as client:
        operation = client.async_batch_annotate_files(ours)
        our_result = operation.result(timeout=30)
    theirs = vision_v1.ImageAnnotatorClient(
        transport=ImageAnnotatorGrpcTransport(channel=grpc.insecure_channel(endpoint))
    )
    their_operation = theirs.async_batch_annotate_files(request=official)
    their_result = their_operation.result(timeout=30)
    print(
        json.dumps(
            {
                "ours": our_result.responses[0].output_config.gcs_destination.uri,
                "official": their_result.responses[0].output_config.gcs_destination.uri,
                "official_as_ours": types.from_official(their_result).responses[0].output_config.gcs_destination.uri,
            }
        )
    )


if __name__ == "__main__":
    main()
