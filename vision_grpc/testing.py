"""Test helpers: ``Emulator``, the Vision emulator running in-process on a free local port.

Use it as a context manager (or ``start()``/``stop()``) in a fixture; point a client at
``grpc_target`` (gRPC) or ``rest_url`` (HTTP/1.1 JSON); stage inputs with ``put_object`` and read outputs with
``get_object``/``list_objects``, or with google-cloud-storage through the Cloud Storage JSON API at
``storage_url`` (export it as ``STORAGE_EMULATOR_HOST``); inject faults and read the recorded calls through
``service``::

    with Emulator(operation_seconds=0.2) as emulator:
        emulator.put_object("gs://bucket/in.pdf", pdf_bytes)
        channel = grpc.insecure_channel(emulator.grpc_target)
        ...
        emulator.service.faults.fail_next("GetOperation", "UNAVAILABLE")
        emulator.service.faults.fail_next_operation("UNAVAILABLE")  # the next operation to finish fails

The Cloud Storage API (``vision_grpc.emulator.gcs_server``, on by default: it starts in about a millisecond;
``gcs=False`` turns it off) serves the same directory the emulator reads inputs from and writes outputs to,
so ``storage.Client()`` with ``STORAGE_EMULATOR_HOST=emulator.storage_host`` creates buckets, uploads inputs
and lists and downloads outputs, as against Cloud Storage::

    with Emulator() as emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.storage_host  # "http://127.0.0.1:PORT"
        bucket = google.cloud.storage.Client().create_bucket("bucket")
        bucket.blob("in.pdf").upload_from_filename("in.pdf")

Operations finish (their outputs are written) at their due time whether or not anyone polls: a
background thread of the service runs them, stopped by ``stop()``. The server binds 127.0.0.1
port 0 and reports the real port. Storage is a temporary directory
removed on ``stop()`` unless you pass ``storage_dir``. ``stop()`` always stops the server, even
after errors, and is safe to call twice.

``Emulator(single_port=True)`` serves gRPC and REST on one port, as Google's endpoints do: ``endpoint``
(``"127.0.0.1:PORT"``) is a small front (``vision_grpc.emulator.single_port``) that sends a connection
opening with the HTTP/2 preface to the gRPC server and any other to the REST server (both on internal
ports of 127.0.0.1). ``http2=False`` makes the front refuse HTTP/2 like a proxy that strips it (an
``HTTP/1.1 400`` answer, or a reset with ``http2_refusal="reset"``), for testing ``transport="auto"``;
``emulator.front.set_http2(False)`` does so at run time::

    with Emulator(single_port=True, http2=False) as emulator:
        client = Client(endpoint=emulator.endpoint, transport="auto")  # gRPC refused: switches to REST
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from vision_grpc.emulator._annotate import AnnotatorRegistry
from vision_grpc.emulator._service import EmulatorService
from vision_grpc.emulator.gcs_server import GcsServer
from vision_grpc.emulator.grpc_server import GrpcServer
from vision_grpc.emulator.rest_server import RestServer
from vision_grpc.emulator.single_port import Refusal, SinglePortFront

__all__ = ["Emulator"]


class Emulator:
    """The emulator in-process: gRPC on ``host:port`` (default 127.0.0.1, any free port), REST on its own port;
    or, with ``single_port=True``, both on ``host:port`` (``endpoint``) behind a front that can refuse HTTP/2.
    The Cloud Storage JSON API (``gcs=True``) listens on a port of its own (``storage_url``)."""

    def __init__(
        self,
        *,
        storage_dir: str | os.PathLike[str] | None = None,
        operation_seconds: float = 0.5,
        host: str = "127.0.0.1",
        port: int = 0,
        reject_api_keys_for_async_files: bool = True,
        max_operations: int = 1000,
        annotators: AnnotatorRegistry | None = None,
        single_port: bool = False,
        http2: bool = True,
        http2_refusal: Refusal = "400",
        gcs: bool = True,
    ) -> None:
        if not single_port and (not http2 or http2_refusal != "400"):
            raise ValueError("http2 and http2_refusal apply to single_port=True only")
        self._given_storage = Path(storage_dir) if storage_dir is not None else None
        self._operation_seconds = operation_seconds
        self._reject_api_keys = reject_api_keys_for_async_files
        self._max_operations = max_operations
        self._annotators = annotators
        self._host, self._port = host, port
        self._temp_dir: Path | None = None
        self._service: EmulatorService | None = None
        self._grpc: GrpcServer | None = None
        self._rest: RestServer | None = None
        self._single_port = single_port
        self._http2, self._http2_refusal = http2, http2_refusal
        self._front: SinglePortFront | None = None
        self._gcs_enabled = gcs
        self._gcs: GcsServer | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Create the storage directory and the service, bind and serve. Returns ``self``."""
        if self._service is not None:
            raise RuntimeError("the emulator is already started")
        try:
            if self._given_storage is None:
                self._temp_dir = Path(tempfile.mkdtemp(prefix="vision-emulator-"))
            self._service = EmulatorService(
                self._given_storage or self._temp_dir or ".",
                operation_seconds=self._operation_seconds,
                reject_api_keys_for_async_files=self._reject_api_keys,
                max_operations=self._max_operations,
                annotators=self._annotators,
            )
            if self._single_port:  # the servers on internal loopback ports, the front on host:port
                self._grpc = GrpcServer(self._service, "127.0.0.1", 0)
                self._grpc.start()
                self._rest = RestServer(self._service, "127.0.0.1", 0)
                self._rest.start()
                rest_port = int(self._rest.url.rsplit(":", 1)[1])
                self._front = SinglePortFront(
                    ("127.0.0.1", self._grpc.port),
                    ("127.0.0.1", rest_port),
                    self._host,
                    self._port,
                    http2=self._http2,
                    refusal=self._http2_refusal,
                )
                self._front.start()
            else:
                self._grpc = GrpcServer(self._service, self._host, self._port)
                self._grpc.start()
                self._rest = RestServer(self._service, self._host, 0)
                self._rest.start()
            if self._gcs_enabled:
                self._gcs = GcsServer(self._service.storage, self._host, 0)
                self._gcs.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers (running calls get one second) and the service's finisher thread, and remove
        a temporary storage dir."""
        front, self._front = self._front, None
        gcs_server, self._gcs = self._gcs, None
        grpc_server, self._grpc = self._grpc, None
        rest_server, self._rest = self._rest, None
        service, self._service = self._service, None
        try:
            if front is not None:
                front.stop()
            if gcs_server is not None:
                gcs_server.stop()
            if rest_server is not None:
                rest_server.stop()
            if grpc_server is not None:
                grpc_server.stop(grace=1.0)
        finally:
            if service is not None:
                service.close()  # joins the finisher thread (the gRPC server's stop closes it too)
            temp_dir, self._temp_dir = self._temp_dir, None
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses and parts ------------------------------------------------------------------

    @property
    def service(self) -> EmulatorService:
        """The running ``EmulatorService``: ``.faults``, ``.calls``, ``.annotators``, ``.store``."""
        if self._service is None:
            raise RuntimeError("the emulator is not started")
        return self._service

    @property
    def grpc_target(self) -> str:
        """``"127.0.0.1:PORT"``, for ``grpc.insecure_channel``."""
        if self._grpc is None:
            raise RuntimeError("the emulator is not started")
        return self._grpc.target

    @property
    def rest_url(self) -> str:
        """``"http://127.0.0.1:PORT"``: the HTTP/1.1 JSON front, for ``transport="rest"`` clients."""
        if self._rest is None:
            raise RuntimeError("the emulator is not started")
        return self._rest.url

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:PORT"``, gRPC and REST on one port (``single_port=True`` only): for any client,
        ``Client(endpoint=emulator.endpoint, transport="auto")`` included."""
        return self.front.endpoint

    @property
    def front(self) -> SinglePortFront:
        """The single-port front (``single_port=True`` only): ``.counts()``, ``.set_http2(enabled)``."""
        if self._front is None:
            raise RuntimeError(
                "the emulator is not started" if self._service is None else "this emulator has no single port"
            )
        return self._front

    @property
    def storage_url(self) -> str:
        """``"http://127.0.0.1:PORT"``: the Cloud Storage JSON API over ``storage_dir`` (``gcs=True``)."""
        if self._gcs is None:
            raise RuntimeError(
                "the emulator is not started" if self._service is None else "this emulator has no Cloud Storage API"
            )
        return self._gcs.url

    @property
    def storage_host(self) -> str:
        """The value to export as ``STORAGE_EMULATOR_HOST`` for google-cloud-storage (and ``GcsStorage``):
        ``storage_url``, since that variable, despite its name, holds the scheme too."""
        return self.storage_url

    @property
    def storage_dir(self) -> Path:
        """The directory standing in for Cloud Storage (``gs://b/p`` is ``storage_dir/b/p``)."""
        return self.service.storage.root

    # -- objects --------------------------------------------------------------------------------

    def put_object(self, gs_uri: str, data: bytes) -> None:
        """Create or replace the object ``gs://bucket/path``."""
        self.service.storage.write(gs_uri, data)

    def get_object(self, gs_uri: str) -> bytes:
        """The object's bytes; ``vision_grpc.emulator.ObjectNotFound`` (a LookupError) if missing."""
        return self.service.storage.read(gs_uri)

    def list_objects(self, prefix: str) -> list[str]:
        """Sorted ``gs://`` URIs of the objects whose URI starts with ``prefix`` (``gs://bucket/...``)."""
        return self.service.storage.list(prefix)
