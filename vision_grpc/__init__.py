"""vision-grpc: a lean client for Google Cloud Vision asynchronous batch annotation."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
