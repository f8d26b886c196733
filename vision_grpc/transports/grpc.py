"""Blocking gRPC transport: one channel, the generated stubs, errors mapped once."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message

from vision_grpc._auth import AuthPlan
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import ClientOptions
from vision_grpc.errors import TransportError, VisionError
from vision_grpc.transports._grpc_common import compression, error_from_rpc, open_channel, stub_callables
from vision_grpc.transports.base import Metadata

__all__ = ["GrpcTransport"]


class GrpcTransport:
    """Calls over one reused ``grpc.Channel`` (HTTP/2 multiplexes concurrent calls)."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        self._channel = open_channel(grpc, options, auth)
        self._callables: dict[str, Any] = stub_callables(self._channel)
        self._compression = compression(options)
        self._target = options.resolved_endpoint

    def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        try:
            response: Message = self._callables[method.path](
                request, timeout=timeout, metadata=metadata, compression=self._compression
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc(error, self._target) from error
        except VisionError:
            raise
        except Exception as exc:  # its text could quote metadata (a credential): type only, no cause
            raise TransportError(f"{type(exc).__name__} raised by grpc (details withheld)") from None

    def close(self) -> None:
        self._channel.close()
