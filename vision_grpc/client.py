"""The blocking client: ``Client`` and its operation handle ``Operation``.

Example::

    from vision_grpc import Client, types

    with Client(project="my-project", location="eu") as client:
        operation = client.async_batch_annotate_files(
            types.async_files_request("gs://bucket/doc.pdf", output_uri="gs://bucket/out/")
        )
        response = operation.result(timeout=600)  # AsyncBatchAnnotateFilesResponse
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from google.longrunning import operations_proto_pb2 as operations_pb2  # messages only: operations_pb2 imports grpc
from google.protobuf.message import Message

from vision_grpc._client_base import ClientBase, OperationBase
from vision_grpc._core.methods import method_for_request
from vision_grpc._core.options import ClientOptions
from vision_grpc._flows.retry import Flow, Sleep
from vision_grpc.errors import VisionError
from vision_grpc.transports.base import Transport

__all__ = ["Client", "Operation"]

T = TypeVar("T")


class Client(ClientBase):
    """A blocking Vision client over gRPC (default) or REST (``transport="rest"``).

    Settings are those of ``ClientOptions`` (``endpoint``, ``project``, ``location``,
    ``api_key``, ``credentials``, ``credentials_file``, ``quota_project``, ``anonymous``,
    ``timeout``, ``retry``, ``poll``, ``compression``, ...), given as keywords or as ``options``.
    The channel is created once and reused; close the client (or use ``with``) when done.
    """

    def __init__(self, options: ClientOptions | None = None, **settings: Any) -> None:
        super().__init__(options, settings)
        self._transport = self._make_transport()

    def _make_transport(self) -> Transport:
        if self.options.transport == "rest":
            from vision_grpc.transports.rest import RestTransport

            return RestTransport(self.options, self._auth)
        from vision_grpc.transports.grpc import GrpcTransport

        return GrpcTransport(self.options, self._auth)

    def run(self, flow: Flow[T]) -> T:
        """Drive a sans-IO flow: make its calls and sleeps, feed back results and errors."""
        transport = self._transport
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    action = flow.send(None)
                    continue
                try:
                    metadata = self.call_metadata(action.method, action.request)
                    response = transport.call(action.method, action.request, timeout=action.timeout, metadata=metadata)
                except VisionError as error:
                    action = flow.throw(error)
                else:
                    action = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result

    # -- ImageAnnotator ----------------------------------------------------------------------

    def batch_annotate_images(self, request: Message, *, timeout: float | None = None) -> Any:
        """images:annotate, up to 16 images; returns ``BatchAnnotateImagesResponse``."""
        return self.run(self.annotate_flow(request, timeout))

    def batch_annotate_files(self, request: Message, *, timeout: float | None = None) -> Any:
        """files:annotate, one file, up to 5 pages, inline content allowed; ``BatchAnnotateFilesResponse``."""
        return self.run(self.annotate_flow(request, timeout))

    def async_batch_annotate_files(self, request: Message, *, timeout: float | None = None) -> Operation:
        """files:asyncBatchAnnotate; returns the ``Operation`` (result: ``AsyncBatchAnnotateFilesResponse``)."""
        return self._submit(request, timeout)

    def async_batch_annotate_images(self, request: Message, *, timeout: float | None = None) -> Operation:
        """images:asyncBatchAnnotate; returns the ``Operation`` (result: ``AsyncBatchAnnotateImagesResponse``)."""
        return self._submit(request, timeout)

    def _submit(self, request: Message, timeout: float | None) -> Operation:
        expected = method_for_request(request).lro_response_type
        proto = self.run(self.annotate_flow(request, timeout))
        return Operation(proto, self, expected)

    # -- google.longrunning.Operations --------------------------------------------------------

    def get_operation(self, name: str, *, timeout: float | None = None) -> Operation:
        """Fetch an operation by name, e.g. to resume waiting from another process."""
        return Operation(self.run(self.get_flow(name, timeout)), self)

    def list_operations(self, *, filter: str = "", page_size: int = 100) -> Iterator[Operation]:
        """Operations the server still knows, page by page."""
        token = ""
        while True:
            page: Any = self.run(self.list_flow(filter, page_size, token))
            yield from (Operation(op, self) for op in page.operations)
            token = page.next_page_token
            if not token:
                return

    def cancel_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Ask the server to cancel; the operation then ends with a CANCELLED error."""
        self.run(self.operations_flow("CancelOperation", operations_pb2.CancelOperationRequest(name=name), timeout))

    def delete_operation(self, name: str, *, timeout: float | None = None) -> None:
        """Forget a finished operation on the server."""
        self.run(self.operations_flow("DeleteOperation", operations_pb2.DeleteOperationRequest(name=name), timeout))

    def close(self) -> None:
        """Close the channel (or connection pool); the client cannot be used afterwards."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Operation(OperationBase):
    """A long-running operation: ``wait()``, ``result()``, ``refresh()``, ``cancel()``, ``delete()``."""

    _client: Client

    def refresh(self, *, timeout: float | None = None) -> Operation:
        """Fetch the current state from the server."""
        self._update(self._client.run(self._client.get_flow(self.name, timeout)))
        return self

    def wait(self, timeout: float | None = None, *, on_update: Callable[[Operation], None] | None = None) -> Operation:
        """Block until done; ``OperationTimeout`` (carrying the name) after ``timeout`` seconds.

        ``on_update(operation)`` is called after every state received, e.g. to show progress.
        """
        if not self.done:
            self._update(self._client.run(self._client.wait_flow(self, timeout, on_update)))
        return self

    def result(self, timeout: float | None = None, *, on_update: Callable[[Operation], None] | None = None) -> Any:
        """Wait, then return the typed response; ``OperationError`` if the operation failed."""
        return self.wait(timeout, on_update=on_update)._result()

    def cancel(self) -> None:
        """Ask the server to cancel this operation."""
        self._client.cancel_operation(self.name)

    def delete(self) -> None:
        """Forget this (finished) operation on the server."""
        self._client.delete_operation(self.name)
