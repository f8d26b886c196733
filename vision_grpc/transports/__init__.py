"""Transports: each moves one request message to the service and one response back.

A transport knows nothing of retries, validation or operations; it maps its own failures to
``vision_grpc.errors`` at one boundary. Concrete transports import their I/O libraries, so
this package's modules are imported only when a client picks them.
"""

from __future__ import annotations

from vision_grpc.transports.base import AsyncTransport, Transport

__all__ = ["AsyncTransport", "Transport"]
