"""Interceptors and tracing: an OpenTelemetry span per RPC, with the method name, on both transports
and both clients; and a REST interceptor adding a header that the server receives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.live.harness import PDF_URI, Harness
from vision_grpc import RestCall, types
from vision_grpc.testing import Emulator
from vision_grpc.tracing import otel_rest_interceptor

SUBMIT = "/google.cloud.vision.v1.ImageAnnotator/AsyncBatchAnnotateFiles"
GET = "/google.longrunning.Operations/GetOperation"


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def _traced_client(harness: Harness, provider: TracerProvider) -> Any:
    if harness.transport == "rest":
        return harness.new_client(rest_interceptors=[otel_rest_interceptor(provider)])
    if harness.mode == "async":
        return harness.new_client(interceptors=aio_client_interceptors(tracer_provider=provider))
    return harness.new_client(interceptors=[client_interceptor(tracer_provider=provider)])


def test_one_span_per_rpc_with_the_method_name(
    harness: Harness, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = exporter
    client = _traced_client(harness, provider)
    request = types.async_files_request(PDF_URI, output_uri="gs://bucket/traced/")
    operation = harness.do(lambda c: c.async_batch_annotate_files(request), client)
    harness.do(lambda c: c.get_operation(operation.name), client)
    harness.do(lambda c: c.get_operation(operation.name), client)
    names = [span.name for span in memory.get_finished_spans()]
    assert names == [SUBMIT, GET, GET]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_rest_interceptor_adds_a_header_the_server_receives(mode: str, emulator: Emulator) -> None:
    seen: list[str] = []

    @contextmanager
    def quota_project(call: RestCall) -> Iterator[None]:
        call.headers["x-goog-user-project"] = "billed-project"
        seen.append(call.rpc)
        yield

    harness = Harness(emulator, "rest", mode)
    try:
        client = harness.new_client(rest_interceptors=[quota_project])
        request = types.images_request(["gs://bucket/traced/none.png"])
        harness.do(lambda c: c.batch_annotate_images(request), client)
    finally:
        harness.close()
    assert seen == ["/google.cloud.vision.v1.ImageAnnotator/BatchAnnotateImages"]
    assert emulator.service.calls[-1].metadata.get("x-goog-user-project") == "billed-project"
