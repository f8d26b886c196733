"""Each documented request rule, one row each: the field path and the rule are named."""

from __future__ import annotations

from typing import Any

import pytest

from vision_grpc._core.methods import method_for_request
from vision_grpc._core.validate import validate
from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1
from vision_grpc.errors import ValidationError

DOC = v1.Feature(type=v1.Feature.DOCUMENT_TEXT_DETECTION)


def async_file(uri: str = "gs://b/in.pdf", **overrides: Any) -> v1.AsyncAnnotateFileRequest:
    item = v1.AsyncAnnotateFileRequest(
        input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri=uri), mime_type="application/pdf"),
        features=[DOC],
        output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="gs://b/out/"), batch_size=2),
    )
    for key, value in overrides.items():
        if value is None:
            item.ClearField(key)
        else:
            getattr(item, key).CopyFrom(value)
    return item


def image(uri: str = "gs://b/a.png") -> v1.AnnotateImageRequest:
    return v1.AnnotateImageRequest(image=v1.Image(source=v1.ImageSource(image_uri=uri)), features=[DOC])


def files(*items: v1.AsyncAnnotateFileRequest, **kw: Any) -> v1.AsyncBatchAnnotateFilesRequest:
    return v1.AsyncBatchAnnotateFilesRequest(requests=list(items), **kw)


OUT = v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="gs://b/out/"))

VALID = [
    pytest.param(files(async_file()), id="async-files"),
    pytest.param(
        files(async_file(), parent="projects/p/locations/eu", labels={"team": "ocr-1", "é": ""}),
        id="async-files-parent-labels",
    ),
    pytest.param(files(async_file(), parent="projects/p"), id="parent-project-only"),
    pytest.param(v1.AsyncBatchAnnotateImagesRequest(requests=[image()] * 2000, output_config=OUT), id="2000-images"),
    pytest.param(v1.BatchAnnotateImagesRequest(requests=[image()] * 16), id="16-images"),
    pytest.param(
        v1.BatchAnnotateImagesRequest(
            requests=[v1.AnnotateImageRequest(image=v1.Image(content=b"\x89PNG"), features=[DOC])]
        ),
        id="inline-image",
    ),
    pytest.param(
        v1.BatchAnnotateFilesRequest(
            requests=[
                v1.AnnotateFileRequest(
                    input_config=v1.InputConfig(content=b"%PDF", mime_type="application/pdf"),
                    features=[DOC],
                    pages=[1, 2, -1],
                )
            ]
        ),
        id="sync-file-inline",
    ),
    pytest.param(
        v1p4beta1.AsyncBatchAnnotateImagesRequest(
            requests=[
                v1p4beta1.AnnotateImageRequest(
                    image=v1p4beta1.Image(source=v1p4beta1.ImageSource(gcs_image_uri="gs://b/x.jpg")),
                    features=[v1p4beta1.Feature(type=v1p4beta1.Feature.TEXT_DETECTION)],
                )
            ],
            output_config=v1p4beta1.OutputConfig(gcs_destination=v1p4beta1.GcsDestination(uri="gs://b/o/")),
        ),
        id="v1p4beta1-images",
    ),
]


@pytest.mark.parametrize("request_", VALID)
def test_valid_requests_pass(request_: Any) -> None:
    validate(method_for_request(request_), request_)


def _sync_file(**kw: Any) -> v1.BatchAnnotateFilesRequest:
    item = v1.AnnotateFileRequest(
        input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri="gs://b/f.pdf"), mime_type="application/pdf"),
        features=[DOC],
        **kw,
    )
    return v1.BatchAnnotateFilesRequest(requests=[item])


INVALID = [
    pytest.param(files(), "requests", "at least one", id="empty-batch"),
    pytest.param(v1.BatchAnnotateImagesRequest(requests=[image()] * 17), "requests", "at most 16", id="17-images"),
    pytest.param(
        v1.AsyncBatchAnnotateImagesRequest(requests=[image()] * 2001, output_config=OUT),
        "requests",
        "at most 2000",
        id="2001-async-images",
    ),
    pytest.param(
        v1.BatchAnnotateFilesRequest(requests=[_sync_file().requests[0]] * 2),
        "requests",
        "at most 1",
        id="two-sync-files",
    ),
    pytest.param(_sync_file(pages=[1, 2, 3, 4, 5, 6]), "requests[0].pages", "at most 5", id="six-pages"),
    pytest.param(_sync_file(pages=[1, 0]), "requests[0].pages[1]", "1-based", id="page-zero"),
    pytest.param(
        files(async_file(), async_file("http://example.com/x.pdf")),
        "requests[1].input_config.gcs_source.uri",
        "gs://",
        id="not-gs",
    ),
    pytest.param(
        files(async_file("gs://bucket-only")), "requests[0].input_config.gcs_source.uri", "object", id="no-object"
    ),
    pytest.param(files(async_file("")), "requests[0].input_config.gcs_source.uri", "required", id="no-input"),
    pytest.param(
        files(async_file(input_config=v1.InputConfig(content=b"%PDF", mime_type="application/pdf"))),
        "requests[0].input_config.content",
        "only by files:annotate",
        id="async-inline-content",
    ),
    pytest.param(
        files(
            async_file(input_config=v1.InputConfig(gcs_source=v1.GcsSource(uri="gs://b/x.png"), mime_type="image/png"))
        ),
        "requests[0].input_config.mime_type",
        "application/pdf, image/tiff, image/gif",
        id="mime",
    ),
    pytest.param(files(async_file(output_config=None)), "requests[0].output_config", "required", id="no-output"),
    pytest.param(
        files(async_file(output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="/tmp/o")))),
        "requests[0].output_config.gcs_destination.uri",
        "gs://",
        id="output-not-gs",
    ),
    pytest.param(
        files(
            async_file(
                output_config=v1.OutputConfig(gcs_destination=v1.GcsDestination(uri="gs://b/o/"), batch_size=101)
            )
        ),
        "requests[0].output_config.batch_size",
        "[1, 100]",
        id="batch-size-101",
    ),
    pytest.param(files(async_file(features=None)), "requests[0].features", "at least one", id="no-features"),
    pytest.param(
        v1.BatchAnnotateImagesRequest(requests=[v1.AnnotateImageRequest(features=[DOC])]),
        "requests[0].image",
        "content or source",
        id="image-without-content-or-source",
    ),
    pytest.param(
        v1.AsyncBatchAnnotateImagesRequest(requests=[image()]), "output_config", "required", id="async-images-no-output"
    ),
    pytest.param(
        v1.AsyncBatchAnnotateImagesRequest(
            requests=[v1.AnnotateImageRequest(image=v1.Image(content=b"\x89PNG"), features=[DOC])], output_config=OUT
        ),
        "requests[0].image.content",
        "not accepted by images:asyncBatchAnnotate",
        id="async-images-inline-content",
    ),
    pytest.param(
        files(async_file(), labels={"Team": "x"}), "labels['Team']", "start with a lowercase", id="label-key-upper"
    ),
    pytest.param(
        files(async_file(), labels={"team": "a" * 64}), "labels['team']", "longer than 63", id="label-value-long"
    ),
    pytest.param(files(async_file(), labels={"team": "a b"}), "labels['team']", "' '", id="label-space"),
    pytest.param(files(async_file(), labels={"1team": "x"}), "labels['1team']", "start with", id="label-digit"),
    pytest.param(files(async_file(), parent="projects/p/locations"), "parent", "projects/{project}", id="parent-shape"),
    pytest.param(
        files(async_file(), parent="projects/../locations/eu"), "parent", "projects/{project}", id="parent-dotdot"
    ),
]


@pytest.mark.parametrize(("request_", "field", "rule"), INVALID)
def test_invalid_requests_name_field_and_rule(request_: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(method_for_request(request_), request_)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert str(caught.value).startswith(field + ": ")
    assert isinstance(caught.value, ValueError)
