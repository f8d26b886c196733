"""The options googleapis' Vision protos set, as facts to check our descriptors against.

google-cloud-vision is built on proto-plus, whose descriptors lose field, message, enum-value and
file options (``deprecated``, ``google.api.field_behavior``, ``google.api.resource_reference``,
``google.api.resource``, ``java_outer_classname``, ...), so the comparison with the official package
cannot see them. This table holds them instead: every option set on a message, field, oneof, enum,
enum value or file of ``google/cloud/vision/v1/*.proto`` and ``google/cloud/vision/v1p4beta1/*.proto``
in googleapis/googleapis at commit ``SOURCE_COMMIT``, read by compiling those files with protoc and
writing each options message as ``json_format.MessageToDict(..., preserving_proto_field_name=True)``
does. An element that is not listed sets no option. Service and method options (``google.api.http``,
method signatures, operation types, host and scopes) are compared with the official package itself,
in test_schema.py.

There, ``deprecated = true`` is set on exactly three fields: ``EntityAnnotation.confidence`` (both
versions) and v1's ``WebDetectionParams.include_geo_results``; on no message, enum or enum value.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ELEMENT_OPTIONS", "FILE_OPTIONS", "SOURCE", "SOURCE_COMMIT"]

SOURCE_COMMIT = "f8291d2b89f0017ab078a4c7378069bae5686f6f"
SOURCE = f"googleapis/googleapis@{SOURCE_COMMIT}: google/cloud/vision/{{v1,v1p4beta1}}/*.proto"

DEPRECATED: dict[str, Any] = {"deprecated": True}


def _behavior(*values: str) -> dict[str, Any]:
    return {"[google.api.field_behavior]": list(values)}


def _reference(resource_type: str) -> dict[str, Any]:
    return {"[google.api.resource_reference]": {"type": resource_type}}


def _resource(resource_type: str, *patterns: str) -> dict[str, Any]:
    return {"[google.api.resource]": {"type": resource_type, "pattern": list(patterns)}}


_EVERY_FILE = {"java_multiple_files": True, "cc_enable_arenas": True, "objc_class_prefix": "GCVN"}
_V1_FILE = {
    **_EVERY_FILE,
    "java_package": "com.google.cloud.vision.v1",
    "go_package": "cloud.google.com/go/vision/v2/apiv1/visionpb;visionpb",
}
_V1P4BETA1_FILE = {
    **_EVERY_FILE,
    "java_package": "com.google.cloud.vision.v1p4beta1",
    "go_package": "cloud.google.com/go/vision/apiv1p4beta1/visionpb;visionpb",
}

# File path -> its options.
FILE_OPTIONS: dict[str, dict[str, Any]] = {
    "google/cloud/vision/v1/geometry.proto": {**_V1_FILE, "java_outer_classname": "GeometryProto"},
    "google/cloud/vision/v1/image_annotator.proto": {**_V1_FILE, "java_outer_classname": "ImageAnnotatorProto"},
    "google/cloud/vision/v1/product_search.proto": {**_V1_FILE, "java_outer_classname": "ProductSearchProto"},
    "google/cloud/vision/v1/product_search_service.proto": {
        **_V1_FILE,
        "java_outer_classname": "ProductSearchServiceProto",
    },
    "google/cloud/vision/v1/text_annotation.proto": {**_V1_FILE, "java_outer_classname": "TextAnnotationProto"},
    "google/cloud/vision/v1/web_detection.proto": {**_V1_FILE, "java_outer_classname": "WebDetectionProto"},
    "google/cloud/vision/v1p4beta1/face.proto": {**_V1P4BETA1_FILE, "java_outer_classname": "CelebrityProto"},
    "google/cloud/vision/v1p4beta1/geometry.proto": {**_V1P4BETA1_FILE, "java_outer_classname": "GeometryProto"},
    "google/cloud/vision/v1p4beta1/image_annotator.proto": {
        **_V1P4BETA1_FILE,
        "java_outer_classname": "ImageAnnotatorProto",
    },
    "google/cloud/vision/v1p4beta1/product_search.proto": {
        **_V1P4BETA1_FILE,
        "java_outer_classname": "ProductSearchProto",
    },
    "google/cloud/vision/v1p4beta1/product_search_service.proto": {
        **_V1P4BETA1_FILE,
        "java_outer_classname": "ProductSearchServiceProto",
    },
    "google/cloud/vision/v1p4beta1/text_annotation.proto": {
        **_V1P4BETA1_FILE,
        "java_outer_classname": "TextAnnotationProto",
    },
    "google/cloud/vision/v1p4beta1/web_detection.proto": {
        **_V1P4BETA1_FILE,
        "java_outer_classname": "WebDetectionProto",
    },
}

# Full name of a message, field, oneof, enum or enum value -> its options.
ELEMENT_OPTIONS: dict[str, dict[str, Any]] = {
    "google.cloud.vision.v1.AddProductToProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.AddProductToProductSetRequest.product": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.AsyncBatchAnnotateFilesRequest.labels": _behavior("OPTIONAL"),
    "google.cloud.vision.v1.AsyncBatchAnnotateFilesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1.AsyncBatchAnnotateImagesRequest.labels": _behavior("OPTIONAL"),
    "google.cloud.vision.v1.AsyncBatchAnnotateImagesRequest.output_config": _behavior("REQUIRED"),
    "google.cloud.vision.v1.AsyncBatchAnnotateImagesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1.BatchAnnotateFilesRequest.labels": _behavior("OPTIONAL"),
    "google.cloud.vision.v1.BatchAnnotateFilesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1.BatchAnnotateImagesRequest.labels": _behavior("OPTIONAL"),
    "google.cloud.vision.v1.BatchAnnotateImagesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1.CreateProductRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.CreateProductRequest.product": _behavior("REQUIRED"),
    "google.cloud.vision.v1.CreateProductSetRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.CreateProductSetRequest.product_set": _behavior("REQUIRED"),
    "google.cloud.vision.v1.CreateReferenceImageRequest.parent": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.CreateReferenceImageRequest.reference_image": _behavior("REQUIRED"),
    "google.cloud.vision.v1.DeleteProductRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.DeleteProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.DeleteReferenceImageRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ReferenceImage"),
    "google.cloud.vision.v1.EntityAnnotation.confidence": DEPRECATED,
    "google.cloud.vision.v1.GetProductRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.GetProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.GetReferenceImageRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ReferenceImage"),
    "google.cloud.vision.v1.ImportProductSetsRequest.input_config": _behavior("REQUIRED"),
    "google.cloud.vision.v1.ImportProductSetsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.ListProductSetsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.ListProductsInProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.ListProductsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.ListReferenceImagesRequest.parent": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.Product": _resource(
        "vision.googleapis.com/Product", "projects/{project}/locations/{location}/products/{product}"
    ),
    "google.cloud.vision.v1.Product.product_category": _behavior("IMMUTABLE"),
    "google.cloud.vision.v1.ProductSearchParams.product_set": _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.ProductSet": _resource(
        "vision.googleapis.com/ProductSet", "projects/{project}/locations/{location}/productSets/{product_set}"
    ),
    "google.cloud.vision.v1.ProductSet.index_error": _behavior("OUTPUT_ONLY"),
    "google.cloud.vision.v1.ProductSet.index_time": _behavior("OUTPUT_ONLY"),
    "google.cloud.vision.v1.PurgeProductsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1.ReferenceImage": _resource(
        "vision.googleapis.com/ReferenceImage",
        "projects/{project}/locations/{location}/products/{product}/referenceImages/{reference_image}",
    ),
    "google.cloud.vision.v1.ReferenceImage.bounding_polys": _behavior("OPTIONAL"),
    "google.cloud.vision.v1.ReferenceImage.uri": _behavior("REQUIRED"),
    "google.cloud.vision.v1.RemoveProductFromProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1.RemoveProductFromProductSetRequest.product": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1.UpdateProductRequest.product": _behavior("REQUIRED"),
    "google.cloud.vision.v1.UpdateProductSetRequest.product_set": _behavior("REQUIRED"),
    "google.cloud.vision.v1.WebDetectionParams.include_geo_results": DEPRECATED,
    "google.cloud.vision.v1p4beta1.AddProductToProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.AddProductToProductSetRequest.product": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateFilesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateImagesRequest.output_config": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.AsyncBatchAnnotateImagesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.BatchAnnotateFilesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.BatchAnnotateImagesRequest.requests": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.CreateProductRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.CreateProductRequest.product": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.CreateProductSetRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.CreateProductSetRequest.product_set": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.CreateReferenceImageRequest.parent": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.CreateReferenceImageRequest.reference_image": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.DeleteProductRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.DeleteProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.DeleteReferenceImageRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ReferenceImage"),
    "google.cloud.vision.v1p4beta1.EntityAnnotation.confidence": DEPRECATED,
    "google.cloud.vision.v1p4beta1.GetProductRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.GetProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.GetReferenceImageRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ReferenceImage"),
    "google.cloud.vision.v1p4beta1.ImportProductSetsRequest.input_config": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.ImportProductSetsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.ListProductSetsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.ListProductsInProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.ListProductsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.ListReferenceImagesRequest.parent": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.Product": _resource(
        "vision.googleapis.com/Product", "projects/{project}/locations/{location}/products/{product}"
    ),
    "google.cloud.vision.v1p4beta1.Product.product_category": _behavior("IMMUTABLE"),
    "google.cloud.vision.v1p4beta1.ProductSearchParams.product_set": _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.ProductSet": _resource(
        "vision.googleapis.com/ProductSet", "projects/{project}/locations/{location}/productSets/{product_set}"
    ),
    "google.cloud.vision.v1p4beta1.ProductSet.index_error": _behavior("OUTPUT_ONLY"),
    "google.cloud.vision.v1p4beta1.ProductSet.index_time": _behavior("OUTPUT_ONLY"),
    "google.cloud.vision.v1p4beta1.PurgeProductsRequest.parent": _behavior("REQUIRED")
    | _reference("locations.googleapis.com/Location"),
    "google.cloud.vision.v1p4beta1.ReferenceImage": _resource(
        "vision.googleapis.com/ReferenceImage",
        "projects/{project}/locations/{location}/products/{product}/referenceImages/{reference_image}",
    ),
    "google.cloud.vision.v1p4beta1.ReferenceImage.bounding_polys": _behavior("OPTIONAL"),
    "google.cloud.vision.v1p4beta1.ReferenceImage.uri": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.RemoveProductFromProductSetRequest.name": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/ProductSet"),
    "google.cloud.vision.v1p4beta1.RemoveProductFromProductSetRequest.product": _behavior("REQUIRED")
    | _reference("vision.googleapis.com/Product"),
    "google.cloud.vision.v1p4beta1.UpdateProductRequest.product": _behavior("REQUIRED"),
    "google.cloud.vision.v1p4beta1.UpdateProductSetRequest.product_set": _behavior("REQUIRED"),
}
