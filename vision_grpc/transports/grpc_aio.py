"""asyncio gRPC transport: the same generated stubs on a ``grpc.aio`` channel."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import Message

from vision_grpc._auth import AuthPlan
from vision_grpc._core.methods import MethodInfo
from vision_grpc._core.options import ClientOptions
from vision_grpc.errors import TransportError, VisionError
from vision_grpc.transports._grpc_common import compression, error_from_rpc, open_channel, stub_callables
from vision_grpc.transports.base import Metadata

__all__ = ["AsyncGrpcTransport"]


class AsyncGrpcTransport:
    """Calls over one reused ``grpc.aio.Channel``; create it inside the running event loop."""

    def __init__(self, options: ClientOptions, auth: AuthPlan) -> None:
        self._channel = open_channel(grpc.aio, options, auth)
        self._callables: dict[str, Any] = stub_callables(self._channel)
        self._compression = compression(options)
        self._target = options.resolved_endpoint

    async def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        try:
            response: Message = await self._callables[method.path](
                request, timeout=timeout, metadata=metadata, compression=self._compression
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc(error, self._target) from error
        except VisionError:
            raise
        except Exception as exc:  # its text could quote metadata (a credential): type only, no cause
            raise TransportError(f"{type(exc).__name__} raised by grpc (details withheld)") from None

    async def close(self) -> None:
        await self._channel.close()
