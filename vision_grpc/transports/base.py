"""The two transport interfaces: one method to make a call, one to close."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from google.protobuf.message import Message

from vision_grpc._core.methods import MethodInfo

__all__ = ["AsyncTransport", "Metadata", "Transport"]

Metadata = Sequence[tuple[str, str]]


class Transport(Protocol):
    def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        """Send ``request`` as ``method``; return the response or raise a ``VisionError``."""
        ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    async def call(self, method: MethodInfo, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        """Send ``request`` as ``method``; return the response or raise a ``VisionError``."""
        ...

    async def close(self) -> None: ...
