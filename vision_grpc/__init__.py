"""vision-grpc: a lean client for Google Cloud Vision asynchronous batch annotation.

``Client`` (blocking) and ``AsyncClient`` (asyncio) call the ImageAnnotator service over gRPC
or REST; ``types`` holds the request and response messages and builders; ``errors`` the
exception tree; ``testing.Emulator`` a local server for tests. Names load on first use, so
importing the package alone costs next to nothing.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from vision_grpc._version import __version__

# Library logging: silent unless the application configures the "vision_grpc" logger tree.
logging.getLogger("vision_grpc").addHandler(logging.NullHandler())

_EXPORTS = {
    "Client": "vision_grpc.client",
    "Operation": "vision_grpc.client",
    "AsyncClient": "vision_grpc.aio",
    "AsyncOperation": "vision_grpc.aio",
    "ClientOptions": "vision_grpc._core.options",
    "RestCall": "vision_grpc._core.hooks",
    "PollPolicy": "vision_grpc._core.policies",
    "RetryPolicy": "vision_grpc._core.policies",
    "ApiError": "vision_grpc.errors",
    "OperationError": "vision_grpc.errors",
    "OperationTimeout": "vision_grpc.errors",
    "TransportError": "vision_grpc.errors",
    "ValidationError": "vision_grpc.errors",
    "VisionError": "vision_grpc.errors",
}
_SUBMODULES = {"errors", "types", "testing", "aio", "client", "outputs", "storage", "bulk", "tracing"}

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncOperation",
    "Client",
    "ClientOptions",
    "Operation",
    "OperationError",
    "OperationTimeout",
    "PollPolicy",
    "RestCall",
    "RetryPolicy",
    "TransportError",
    "ValidationError",
    "VisionError",
    "__version__",
    "errors",
    "types",
]

if TYPE_CHECKING:
    from vision_grpc import errors, types
    from vision_grpc._core.hooks import RestCall
    from vision_grpc._core.options import ClientOptions
    from vision_grpc._core.policies import PollPolicy, RetryPolicy
    from vision_grpc.aio import AsyncClient, AsyncOperation
    from vision_grpc.client import Client, Operation
    from vision_grpc.errors import (
        ApiError,
        OperationError,
        OperationTimeout,
        TransportError,
        ValidationError,
        VisionError,
    )


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"vision_grpc.{name}")
    else:
        raise AttributeError(f"module 'vision_grpc' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBMODULES)
