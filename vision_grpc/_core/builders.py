"""Short builders for the common requests; they return the plain generated messages.

Nothing is hidden: each builder fills the documented fields of one request message and the
result can be inspected or changed like any protobuf message before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from vision_grpc._core.methods import VERSIONS
from vision_grpc.errors import ValidationError

if TYPE_CHECKING:
    from vision_grpc._gen.v1 import image_annotator_pb2 as v1
    from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1

__all__ = ["async_files_request", "async_images_request", "images_request", "files_request"]

FeatureLike = str | int | Any  # a Feature.Type name or number, or a Feature message
_MIME_BY_SUFFIX = {".pdf": "application/pdf", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif"}


def _module(version: str) -> ModuleType:
    try:
        return VERSIONS[version]
    except KeyError:
        raise ValidationError("version", f"must be one of {sorted(VERSIONS)}, got {version!r}") from None


def _features(module: ModuleType, features: Iterable[FeatureLike]) -> list[Any]:
    out = []
    for i, feature in enumerate([features] if isinstance(features, str) else features):
        if isinstance(feature, module.Feature):
            out.append(feature)
            continue
        try:
            kind = module.Feature.Type.Value(feature) if isinstance(feature, str) else int(feature)
        except ValueError:
            raise ValidationError(f"features[{i}]", f"unknown feature type {feature!r}") from None
        out.append(module.Feature(type=kind))
    return out


def guess_mime_type(uri: str) -> str:
    suffix = uri[uri.rfind(".") :].lower() if "." in uri.rsplit("/", 1)[-1] else ""
    try:
        return _MIME_BY_SUFFIX[suffix]
    except KeyError:
        raise ValidationError(
            "input_config.mime_type",
            f"cannot tell the file type of {uri!r}: pass mime_type= (application/pdf, image/tiff or image/gif)",
        ) from None


def _output(module: ModuleType, output_uri: str, batch_size: int | None) -> Any:
    config = module.OutputConfig(gcs_destination=module.GcsDestination(uri=output_uri))
    if batch_size is not None:
        config.batch_size = batch_size
    return config


@overload
def async_files_request(
    uris: str | Sequence[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    batch_size: int | None = None,
    mime_type: str | None = None,
    version: Literal["v1"] = "v1",
) -> v1.AsyncBatchAnnotateFilesRequest: ...
@overload
def async_files_request(
    uris: str | Sequence[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    batch_size: int | None = None,
    mime_type: str | None = None,
    version: Literal["v1p4beta1"],
) -> v1p4beta1.AsyncBatchAnnotateFilesRequest: ...
@overload
def async_files_request(
    uris: str | Sequence[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    batch_size: int | None = None,
    mime_type: str | None = None,
    version: str,
) -> v1.AsyncBatchAnnotateFilesRequest | v1p4beta1.AsyncBatchAnnotateFilesRequest: ...
def async_files_request(
    uris: str | Sequence[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    batch_size: int | None = None,
    mime_type: str | None = None,
    version: str = "v1",
) -> v1.AsyncBatchAnnotateFilesRequest | v1p4beta1.AsyncBatchAnnotateFilesRequest:
    """``AsyncBatchAnnotateFilesRequest`` for gs:// files (PDF, TIFF, GIF) written under ``output_uri``.

    With several files, each one's results go to ``output_uri`` followed by the file's index
    (``out/0/``, ``out/1/``...), so their shards do not overwrite each other.
    """
    module = _module(version)
    items = [uris] if isinstance(uris, str) else list(uris)
    requests = []
    for i, uri in enumerate(items):
        prefix = output_uri if len(items) == 1 else f"{output_uri.rstrip('/')}/{i}/"
        requests.append(
            module.AsyncAnnotateFileRequest(
                input_config=module.InputConfig(
                    gcs_source=module.GcsSource(uri=uri), mime_type=mime_type or guess_mime_type(uri)
                ),
                features=_features(module, features),
                output_config=_output(module, prefix, batch_size),
            )
        )
    request: v1.AsyncBatchAnnotateFilesRequest | v1p4beta1.AsyncBatchAnnotateFilesRequest = (
        module.AsyncBatchAnnotateFilesRequest(requests=requests)
    )
    return request


def _image(module: ModuleType, image: str | bytes) -> Any:
    if isinstance(image, bytes):
        return module.Image(content=image)
    request: v1.Image | v1p4beta1.Image = module.Image(source=module.ImageSource(image_uri=image))
    return request


def _image_requests(module: ModuleType, images: Iterable[str | bytes], features: Iterable[FeatureLike]) -> list[Any]:
    feature_list = _features(module, features)
    return [module.AnnotateImageRequest(image=_image(module, image), features=feature_list) for image in images]


@overload
def async_images_request(
    images: Iterable[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    batch_size: int | None = None,
    version: Literal["v1"] = "v1",
) -> v1.AsyncBatchAnnotateImagesRequest: ...
@overload
def async_images_request(
    images: Iterable[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    batch_size: int | None = None,
    version: Literal["v1p4beta1"],
) -> v1p4beta1.AsyncBatchAnnotateImagesRequest: ...
@overload
def async_images_request(
    images: Iterable[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    batch_size: int | None = None,
    version: str,
) -> v1.AsyncBatchAnnotateImagesRequest | v1p4beta1.AsyncBatchAnnotateImagesRequest: ...
def async_images_request(
    images: Iterable[str],
    *,
    output_uri: str,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    batch_size: int | None = None,
    version: str = "v1",
) -> v1.AsyncBatchAnnotateImagesRequest | v1p4beta1.AsyncBatchAnnotateImagesRequest:
    """``AsyncBatchAnnotateImagesRequest`` for gs:// image URIs; results are written under ``output_uri``."""
    module = _module(version)
    images = list(images)
    if any(isinstance(image, bytes) for image in images):
        raise ValidationError(
            "requests[].image.content",
            "images:asyncBatchAnnotate takes URIs, not bytes: upload them to Cloud Storage first",
        )
    request: v1.AsyncBatchAnnotateImagesRequest | v1p4beta1.AsyncBatchAnnotateImagesRequest = (
        module.AsyncBatchAnnotateImagesRequest(
            requests=_image_requests(module, images, features), output_config=_output(module, output_uri, batch_size)
        )
    )
    return request


@overload
def images_request(
    images: Iterable[str | bytes],
    *,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    version: Literal["v1"] = "v1",
) -> v1.BatchAnnotateImagesRequest: ...
@overload
def images_request(
    images: Iterable[str | bytes],
    *,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    version: Literal["v1p4beta1"],
) -> v1p4beta1.BatchAnnotateImagesRequest: ...
@overload
def images_request(
    images: Iterable[str | bytes],
    *,
    features: Iterable[FeatureLike] = ("TEXT_DETECTION",),
    version: str,
) -> v1.BatchAnnotateImagesRequest | v1p4beta1.BatchAnnotateImagesRequest: ...
def images_request(
    images: Iterable[str | bytes], *, features: Iterable[FeatureLike] = ("TEXT_DETECTION",), version: str = "v1"
) -> v1.BatchAnnotateImagesRequest | v1p4beta1.BatchAnnotateImagesRequest:
    """``BatchAnnotateImagesRequest`` (synchronous, at most 16 images) for URIs or bytes."""
    module = _module(version)
    request: v1.BatchAnnotateImagesRequest | v1p4beta1.BatchAnnotateImagesRequest = module.BatchAnnotateImagesRequest(
        requests=_image_requests(module, images, features)
    )
    return request


@overload
def files_request(
    source: str | bytes,
    *,
    mime_type: str | None = None,
    pages: Sequence[int] = (),
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    version: Literal["v1"] = "v1",
) -> v1.BatchAnnotateFilesRequest: ...
@overload
def files_request(
    source: str | bytes,
    *,
    mime_type: str | None = None,
    pages: Sequence[int] = (),
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    version: Literal["v1p4beta1"],
) -> v1p4beta1.BatchAnnotateFilesRequest: ...
@overload
def files_request(
    source: str | bytes,
    *,
    mime_type: str | None = None,
    pages: Sequence[int] = (),
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    version: str,
) -> v1.BatchAnnotateFilesRequest | v1p4beta1.BatchAnnotateFilesRequest: ...
def files_request(
    source: str | bytes,
    *,
    mime_type: str | None = None,
    pages: Sequence[int] = (),
    features: Iterable[FeatureLike] = ("DOCUMENT_TEXT_DETECTION",),
    version: str = "v1",
) -> v1.BatchAnnotateFilesRequest | v1p4beta1.BatchAnnotateFilesRequest:
    """``BatchAnnotateFilesRequest`` (synchronous, one file, at most 5 pages): gs:// URI or bytes."""
    module = _module(version)
    if isinstance(source, bytes):
        config = module.InputConfig(content=source, mime_type=mime_type or "application/pdf")
    else:
        config = module.InputConfig(
            gcs_source=module.GcsSource(uri=source), mime_type=mime_type or guess_mime_type(source)
        )
    item = module.AnnotateFileRequest(input_config=config, features=_features(module, features), pages=list(pages))
    request: v1.BatchAnnotateFilesRequest | v1p4beta1.BatchAnnotateFilesRequest = module.BatchAnnotateFilesRequest(
        requests=[item]
    )
    return request
