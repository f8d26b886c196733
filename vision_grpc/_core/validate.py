"""Pre-flight checks of ImageAnnotator requests against the service's documented rules.

A request that the service would reject is rejected here, before any network call, with a
``ValidationError`` that names the proto field path (``requests[3].input_config.gcs_source.uri``)
and the rule. The emulator runs the same checks, so tests see what the service says.

Limits (Cloud Vision documentation): ``images:annotate`` takes at most 16 images;
``files:annotate`` one file and at most 5 pages; ``images:asyncBatchAnnotate`` at most 2000
images; ``files:asyncBatchAnnotate`` reads at most 2000 pages per file (counted by the service,
which has the file). Labels: keys and values of at most 63 characters, lowercase letters
(international ones too), digits, ``_`` and ``-``; keys start with a letter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vision_grpc.errors import ValidationError

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from vision_grpc._core.methods import MethodInfo

__all__ = ["validate", "MAX_REQUESTS", "FILE_MIME_TYPES"]

MAX_REQUESTS: dict[str, int] = {
    "BatchAnnotateImages": 16,
    "BatchAnnotateFiles": 1,
    "AsyncBatchAnnotateImages": 2000,
}
MAX_SYNC_FILE_PAGES = 5
MAX_ASYNC_FILE_PAGES = 2000
FILE_MIME_TYPES = ("application/pdf", "image/tiff", "image/gif")
_BATCH_SIZE_RANGE = (1, 100)
_LABEL_MAX = 63


def validate(method: MethodInfo, request: Message) -> None:
    """Raise ``ValidationError`` for the first broken rule of an ImageAnnotator request."""
    requests: Any = getattr(request, "requests", None)
    if requests is None:
        return  # not an annotate call (operations requests carry only a name)
    if len(requests) == 0:
        raise ValidationError("requests", "must hold at least one request")
    limit = MAX_REQUESTS.get(method.name)
    if limit is not None and len(requests) > limit:
        raise ValidationError("requests", f"{method.name} accepts at most {limit}, got {len(requests)}")
    _check_parent(getattr(request, "parent", ""))
    if hasattr(request, "labels"):
        _check_labels(request.labels)
    if method.name in ("BatchAnnotateImages", "AsyncBatchAnnotateImages"):
        is_async = method.name == "AsyncBatchAnnotateImages"
        for i, item in enumerate(requests):
            _check_image_request(item, i, is_async=is_async)
    else:
        is_async = method.name == "AsyncBatchAnnotateFiles"
        for i, item in enumerate(requests):
            _check_file_request(item, i, is_async=is_async)
    if method.name == "AsyncBatchAnnotateImages":
        _check_output_config(request, None)


def _check_parent(parent: str) -> None:
    if not parent:
        return  # the service picks the region
    parts = parent.split("/")
    shaped = (len(parts) == 2 and parts[0] == "projects") or (
        len(parts) == 4 and parts[0] == "projects" and parts[2] == "locations"
    )
    if not shaped or not all(parts) or any(p in (".", "..") for p in parts):
        raise ValidationError("parent", "must be projects/{project} or projects/{project}/locations/{location}")


def _check_labels(labels: Any) -> None:
    for key, value in labels.items():
        if not key or not (key[0].isalpha() and key[0] == key[0].lower()):
            raise ValidationError(f"labels[{key!r}]", "label keys must start with a lowercase letter")
        for kind, text in (("key", key), ("value", value)):
            if len(text) > _LABEL_MAX:
                raise ValidationError(f"labels[{key!r}]", f"label {kind} longer than {_LABEL_MAX} characters")
            bad = next((c for c in text if not _label_char(c)), None)
            if bad is not None:
                raise ValidationError(
                    f"labels[{key!r}]",
                    f"label {kind} may hold only lowercase letters, digits, '_' and '-', not {bad!r}",
                )


def _label_char(char: str) -> bool:
    return char in "_-" or char.isdigit() or (char.isalpha() and char == char.lower())


def _at(index: int | None, suffix: str) -> str:
    """The field path of a rule broken at ``requests[index]`` (None: the request itself): built only then."""
    return suffix.lstrip(".") if index is None else f"requests[{index}]{suffix}"


def _check_features(item: Any, index: int) -> None:
    features = item.features
    if len(features) == 0:
        raise ValidationError(_at(index, ".features"), "must name at least one feature")
    for j, feature in enumerate(features):
        if feature.type == 0:
            raise ValidationError(_at(index, f".features[{j}].type"), "must be set (TYPE_UNSPECIFIED is not a feature)")
        if feature.max_results < 0:
            raise ValidationError(_at(index, f".features[{j}].max_results"), "must not be negative")


def _check_image_request(item: Any, index: int, *, is_async: bool) -> None:
    image = item.image
    source = image.source
    if is_async and image.content:
        raise ValidationError(
            _at(index, ".image.content"),
            "inline content is not accepted by images:asyncBatchAnnotate; give image.source.image_uri (gs://)",
        )
    if not image.content and not (source.image_uri or source.gcs_image_uri):
        raise ValidationError(_at(index, ".image"), "needs content or source.image_uri")
    uri = source.gcs_image_uri
    if uri and not image.content:
        _check_gs_uri(uri, index, ".image.source.gcs_image_uri", object_needed=True)
    if is_async and source.image_uri:
        # The synchronous call may fetch a public https:// image; the asynchronous one reads its
        # inputs from Cloud Storage, as it writes its outputs there.
        _check_gs_uri(source.image_uri, index, ".image.source.image_uri", object_needed=True)
    _check_features(item, index)


def _check_file_request(item: Any, index: int, *, is_async: bool) -> None:
    config = item.input_config
    uri = config.gcs_source.uri
    if config.content:
        if is_async:
            raise ValidationError(
                _at(index, ".input_config.content"),
                "inline content is accepted only by files:annotate; give input_config.gcs_source.uri (gs://)",
            )
    elif not uri:
        raise ValidationError(_at(index, ".input_config.gcs_source.uri"), "is required (gs://bucket/object)")
    else:
        _check_gs_uri(uri, index, ".input_config.gcs_source.uri", object_needed=True)
    if config.mime_type not in FILE_MIME_TYPES:
        raise ValidationError(_at(index, ".input_config.mime_type"), f"must be one of {', '.join(FILE_MIME_TYPES)}")
    _check_features(item, index)
    if is_async:
        _check_output_config(item, index)
    elif item.pages:
        _check_pages(list(item.pages), _at(index, ".pages"))


def _check_pages(pages: list[int], path: str) -> None:
    if len(pages) > MAX_SYNC_FILE_PAGES:
        raise ValidationError(path, f"files:annotate reads at most {MAX_SYNC_FILE_PAGES} pages, got {len(pages)}")
    for k, page in enumerate(pages):
        if page == 0 or abs(page) > MAX_ASYNC_FILE_PAGES:
            raise ValidationError(
                f"{path}[{k}]", f"page numbers are 1-based (negative counts from the end), not {page}"
            )


def _check_output_config(owner: Any, index: int | None) -> None:
    """``index``: that of the file request holding it; None for the request's own (images)."""
    if not owner.HasField("output_config"):
        raise ValidationError(_at(index, ".output_config"), "is required: results are written to Cloud Storage")
    config = owner.output_config
    _check_gs_uri(config.gcs_destination.uri, index, ".output_config.gcs_destination.uri", object_needed=False)
    low, high = _BATCH_SIZE_RANGE
    if config.batch_size != 0 and not low <= config.batch_size <= high:
        path = _at(index, ".output_config.batch_size")
        raise ValidationError(path, f"must be in [{low}, {high}], got {config.batch_size}")


def _check_gs_uri(uri: str, index: int | None, suffix: str, *, object_needed: bool) -> None:
    if uri.startswith("gs://") and "/" in uri[5:] and uri[5] != "/" and (uri[-1] != "/" or not object_needed):
        return  # the common case, decided without building the field path
    path = _at(index, suffix)
    if not uri:
        raise ValidationError(path, "is required (gs://bucket/...)")
    if not uri.startswith("gs://"):
        raise ValidationError(path, f"must be a Cloud Storage URI starting with gs://, got {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    if not bucket:
        raise ValidationError(path, f"must name a bucket: {uri!r}")
    if object_needed and not name:
        raise ValidationError(path, f"must name an object in the bucket: {uri!r}")
