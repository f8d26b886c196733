"""What to measure: each series is one client, in one worker process, making one kind of call.

Series of one group making the same call are compared with each other: the group's floor (a bare
transport with pre-serialized requests) and the official google-cloud-vision client.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

Family = Literal["floor", "ours", "official"]  # bare transports, vision_grpc, google-cloud-vision
Runtime = Literal["sync", "async"]
Role = Literal["floor", "ours", "official", "ref"]  # ref: shown for reference, compared with nothing


class WorkerId(NamedTuple):
    """One worker process per family and runtime: our protos and the official ones cannot share a
    process (protobuf reports duplicate symbols), and grpc.aio's poller must not touch sync calls."""

    family: Family
    runtime: Runtime

    @property
    def name(self) -> str:
        return f"{self.family}-{self.runtime}"


WORKERS = tuple(WorkerId(family, runtime) for family in ("floor", "ours", "official") for runtime in ("sync", "async"))
FLOOR_SYNC, FLOOR_ASYNC, OURS_SYNC, OURS_ASYNC, OFFICIAL_SYNC, OFFICIAL_ASYNC = WORKERS


@dataclass(frozen=True)
class Series:
    group: str  # the table's transport column
    worker: WorkerId
    client: str  # the worker's name for it: grpc, grpc_aio, urllib3, requests, aiohttp, rest
    label: str
    role: Role
    call: str = "get"  # submit, get (GetOperation), decode, decode_parse


LATENCY_CALLS = ("submit", "get")

# Every client once, making GetOperation.
CLIENTS = (
    Series("gRPC sync", FLOOR_SYNC, "grpc", "bare grpcio (floor)", "floor"),
    Series("gRPC sync", OURS_SYNC, "grpc", "vision_grpc.Client", "ours"),
    Series("gRPC sync", OFFICIAL_SYNC, "grpc", "official ImageAnnotatorClient", "official"),
    Series("gRPC asyncio", FLOOR_ASYNC, "grpc_aio", "bare grpc.aio (floor)", "floor"),
    Series("gRPC asyncio", OURS_ASYNC, "grpc", "vision_grpc.AsyncClient", "ours"),
    Series("gRPC asyncio", OFFICIAL_ASYNC, "grpc", "official ImageAnnotatorAsyncClient", "official"),
    Series("REST sync", FLOOR_SYNC, "urllib3", "bare urllib3 (floor)", "floor"),
    Series("REST sync", FLOOR_SYNC, "requests", "bare requests (reference)", "ref"),
    Series("REST sync", OURS_SYNC, "rest", "vision_grpc.Client", "ours"),
    Series("REST sync", OFFICIAL_SYNC, "rest", "official ImageAnnotatorClient", "official"),
    Series("REST asyncio", FLOOR_ASYNC, "aiohttp", "bare aiohttp (floor)", "floor"),
    Series("REST asyncio", OURS_ASYNC, "rest", "vision_grpc.AsyncClient", "ours"),
)

# Per-call latency, one call in flight: every client, both calls (rows in this order).
LATENCY_SERIES = tuple(replace(client, call=call) for client in CLIENTS for call in LATENCY_CALLS)

# asyncio throughput of GetOperation: the asyncio clients.
THROUGHPUT_SERIES = tuple(client for client in CLIENTS if client.worker.runtime == "async")

# Decode of the full-text response; the floor parses the bytes itself ("decode_parse").
DECODE_SERIES = (
    Series("gRPC", FLOOR_SYNC, "grpc", "bare grpcio, bytes only", "ref", "decode"),
    Series("gRPC", FLOOR_SYNC, "grpc", "bare grpcio + FromString (floor)", "floor", "decode_parse"),
    Series("gRPC", OURS_SYNC, "grpc", "vision_grpc.Client", "ours", "decode"),
    Series("gRPC", OFFICIAL_SYNC, "grpc", "official ImageAnnotatorClient", "official", "decode"),
    Series("REST", FLOOR_SYNC, "urllib3", "bare urllib3, bytes only", "ref", "decode"),
    Series("REST", FLOOR_SYNC, "urllib3", "bare urllib3 + json.loads + ParseDict (floor)", "floor", "decode_parse"),
    Series("REST", OURS_SYNC, "rest", "vision_grpc.Client", "ours", "decode"),
    Series("REST", OFFICIAL_SYNC, "rest", "official ImageAnnotatorClient", "official", "decode"),
)
