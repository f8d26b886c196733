"""The RPC table: every method we call or serve, read from the compiled service descriptors.

Routes, request/response classes, ``google.api.http`` rules and long-running operation types
come from the descriptors (``MethodDescriptor.GetOptions()``), never from hand-typed URL tables,
so both API versions and any rule added to the protos are picked up by the gRPC transport, the
REST transport and the emulator alike.

The one exception is ``google.longrunning.Operations``: Vision exposes its REST bindings through
the service configuration, not through annotations, so they are kept here as ``HttpRule``
messages, in this one place, for the client and the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf import descriptor, empty_pb2, message_factory
from google.protobuf.message import Message

from vision_grpc._gen.v1 import image_annotator_pb2 as v1
from vision_grpc._gen.v1p4beta1 import image_annotator_pb2 as v1p4beta1

__all__ = [
    "MethodInfo",
    "METHODS",
    "OPERATIONS",
    "VERSIONS",
    "method_for_call",
    "method_for_request",
    "operations_http_rule",
]

VERSIONS: dict[str, ModuleType] = {"v1": v1, "v1p4beta1": v1p4beta1}
OPERATIONS_SERVICE = "google.longrunning.Operations"

# Idempotent RPCs: sending one twice does no harm. An Async* submit is not (it starts a second,
# billed operation).
_IDEMPOTENT = {"BatchAnnotateImages", "BatchAnnotateFiles", "GetOperation", "ListOperations", "WaitOperation"}
# API versions whose official retry settings retry nothing, idempotent or not.
_NEVER_RETRIED_VERSIONS = {"v1p4beta1"}


def _rule(verb: str, path: str, body: str = "", *more: tuple[str, str]) -> http_pb2.HttpRule:
    rule = http_pb2.HttpRule(body=body)
    setattr(rule, verb, path)
    for extra_verb, extra_path in more:
        extra = rule.additional_bindings.add()
        setattr(extra, extra_verb, extra_path)
    return rule


# Vision's service configuration (not annotations) binds these operations methods over REST.
_OPERATIONS_RULES: dict[str, http_pb2.HttpRule] = {
    "GetOperation": _rule(
        "get",
        "/v1/{name=projects/*/operations/*}",
        "",
        ("get", "/v1/{name=projects/*/locations/*/operations/*}"),
        ("get", "/v1/{name=operations/*}"),
        ("get", "/v1/{name=locations/*/operations/*}"),
    ),
    "ListOperations": _rule("get", "/v1/{name=operations}"),
    "CancelOperation": _rule("post", "/v1/{name=operations/**}:cancel", "*"),
    "DeleteOperation": _rule("delete", "/v1/{name=operations/**}"),
    # WaitOperation has no REST binding: REST clients poll GetOperation instead.
}


@dataclass(frozen=True)
class MethodInfo:
    """One RPC: how to route it over gRPC and REST, and what its operation resolves to."""

    service: str
    name: str
    version: str | None  # "v1" / "v1p4beta1"; None for google.longrunning.Operations
    request_type: type[Message]
    response_type: type[Message]
    http_rule: http_pb2.HttpRule | None
    lro_response_type: type[Message] | None = None
    lro_metadata_type: type[Message] | None = None
    path: str = field(init=False)  # the gRPC method path, ``/package.Service/Method``
    idempotent: bool = field(init=False)  # sending it twice does no harm
    # Whether a transient failure (``policies.TRANSIENT_CODES``) is retried: idempotent, and
    # the API version's official settings retry at all.
    retry_transient: bool = field(init=False)

    def __post_init__(self) -> None:
        # Read on every call by the transports and the retry flow: computed once.
        object.__setattr__(self, "path", f"/{self.service}/{self.name}")
        object.__setattr__(self, "idempotent", self.name in _IDEMPOTENT)
        object.__setattr__(self, "retry_transient", self.idempotent and self.version not in _NEVER_RETRIED_VERSIONS)

    @property
    def returns_operation(self) -> bool:
        return self.response_type is operations_pb2.Operation


def _class(desc: descriptor.Descriptor) -> type[Message]:
    if desc.full_name == "google.protobuf.Empty":
        return empty_pb2.Empty
    if desc.full_name == "google.longrunning.Operation":
        operation: type[Message] = operations_pb2.Operation
        return operation
    cls: type[Message] = message_factory.GetMessageClass(desc)
    return cls


def _from_descriptor(method: descriptor.MethodDescriptor, version: str | None, module: Any) -> MethodInfo:
    options = method.GetOptions()
    rule = options.Extensions[annotations_pb2.http] if options.HasExtension(annotations_pb2.http) else None
    lro_response = lro_metadata = None
    if options.HasExtension(operations_pb2.operation_info):
        info = options.Extensions[operations_pb2.operation_info]
        lro_response = getattr(module, info.response_type)
        lro_metadata = getattr(module, info.metadata_type)
    if version is None:
        rule = _OPERATIONS_RULES.get(method.name)
    return MethodInfo(
        service=method.containing_service.full_name,
        name=method.name,
        version=version,
        request_type=_class(method.input_type),
        response_type=_class(method.output_type),
        http_rule=rule,
        lro_response_type=lro_response,
        lro_metadata_type=lro_metadata,
    )


def _build() -> tuple[dict[tuple[str, str], MethodInfo], dict[str, MethodInfo]]:
    methods: dict[tuple[str, str], MethodInfo] = {}
    for version, module in VERSIONS.items():
        for method in module.DESCRIPTOR.services_by_name["ImageAnnotator"].methods:
            methods[(version, method.name)] = _from_descriptor(method, version, module)
    operations = {
        m.name: _from_descriptor(m, None, None)
        for m in operations_pb2.DESCRIPTOR.services_by_name["Operations"].methods
    }
    return methods, operations


METHODS, OPERATIONS = _build()
_BY_REQUEST: dict[type[Message], MethodInfo] = {m.request_type: m for m in METHODS.values()}


def method_for_request(request: Message) -> MethodInfo:
    """The ImageAnnotator RPC that takes this request; its class decides the API version."""
    try:
        return _BY_REQUEST[type(request)]
    except KeyError:
        raise TypeError(f"{type(request).__qualname__} is not an ImageAnnotator request of vision_grpc.types") from None


def method_for_call(rpc: str, request: object, call: str) -> MethodInfo:
    """The ``rpc`` method (``"AsyncBatchAnnotateFiles"``) of the request's API version.

    A request of another method is refused before anything is sent: its type, not the method
    called, would otherwise decide which (billable) RPC goes out. ``call`` names the client method
    in the message.
    """
    method = _BY_REQUEST.get(type(request))  # type: ignore[arg-type]
    if method is not None and method.name == rpc:
        return method
    expected = " or ".join(
        f"{version}.{METHODS[(version, rpc)].request_type.__name__}"
        for version in VERSIONS
        if (version, rpc) in METHODS
    )
    got = type(request).__qualname__
    hint = f"; that is the request of {_snake(method.name)}()" if method is not None else ""
    raise TypeError(f"{call}() takes a {expected} request (vision_grpc.types), got {got}{hint}")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def operations_http_rule(name: str) -> http_pb2.HttpRule | None:
    """The REST binding of a google.longrunning.Operations method, if Vision has one."""
    return _OPERATIONS_RULES.get(name)
