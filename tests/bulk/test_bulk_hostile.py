"""A bulk run over REST survives GetOperation answers that are hostile for a while, and still completes.

A ``HostileServer`` proxy stands in front of the shared emulator's REST front: submits and everything else go
through, but the first GetOperation calls get a gateway's JSON, deep nesting, overflowing numbers, HTML, a
done operation without a result or with a result of another type, another operation altogether, invalid
UTF-8, a body cut short. Each is a failed poll (asked again when due): no batch fails or is completed from
such an answer, every input is annotated once, and the journal agrees with the server (``check_consistent``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.bulk.bed import FILES, Bed, check_consistent
from tests.hostile_server import Answer, HostileServer
from vision_grpc import Client, RetryPolicy
from vision_grpc.bulk import BulkRunner

DEEP = b"[" * 100_000 + b"]" * 100_000
FILES_RESPONSE = "type.googleapis.com/google.cloud.vision.v1.AsyncBatchAnnotateFilesResponse"


def operation(**fields: object) -> Callable[[str], bytes]:
    """An Operation body about the operation the request names (``/v1/{name}``), with ``fields``."""
    return lambda path: json.dumps({"name": path.split("?")[0].removeprefix("/v1/"), **fields}).encode()


HOSTILE = [
    Answer(403, body=b'{"error": {"code": "Forbidden"}}'),
    Answer(200, body=DEEP),
    Answer(200, body=b'{"name": "operations/1", "done": 1e999}'),
    Answer(502, "text/html", b"<html>Bad Gateway</html>"),
    Answer(200, body=operation(done=True)),  # done, but neither response nor error
    Answer(200, body=operation(done=True, response={"@type": "type.googleapis.com/google.protobuf.Empty"})),
    Answer(200, body=lambda path: json.dumps({"name": "operations/not-yours", "done": True}).encode()),
    Answer(200, body=operation(done=True, response={"@type": FILES_RESPONSE}, metadata=5)),
    Answer(200, body=b'{"name": "operations/\xff"}'),
    Answer(200, "text/html", b"<html>Sign in</html>"),
    Answer(raw=b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"name":'),
    Answer(429, body=b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": 5}}'),
]


def is_get_operation(method: str, path: str) -> bool:
    return method == "GET" and "/operations/" in path


def test_a_run_survives_hostile_get_operation_answers(bed: Bed) -> None:
    uris = bed.stage(6)
    assert bed.emulator.rest_url is not None
    upstream = bed.emulator.rest_url.removeprefix("http://")
    with (
        HostileServer(HOSTILE, upstream=upstream, hostile=is_get_operation) as proxy,
        Client(endpoint=proxy.endpoint, transport="rest", retry=RetryPolicy(max_attempts=1)) as client,
    ):
        settings = bed.settings(files_per_request=2, max_in_flight=3, poll_interval=0.05, poll_timeout=30.0)
        report = BulkRunner(client, bed.journal, **settings).run(uris)
        assert proxy.served == len(HOSTILE)  # every hostile answer was given, to some poll
    assert report.counts == {"done": 6, "failed": 0, "pending": 0, "total": 6}
    assert len([call for call in bed.emulator.service.calls if call.method == FILES]) == 3  # none resubmitted
    check_consistent(bed, uris)


def test_a_submit_answer_without_an_operation_name_is_an_uncertain_failure(bed: Bed) -> None:
    """``{}`` to a submit: no operation to wait for, yet the server may have started one. It is a failed
    submit (uncertain: resubmitted to the same prefix on the next run), never journaled as operation ''."""
    uris = bed.stage(2)
    assert bed.emulator.rest_url is not None
    upstream = bed.emulator.rest_url.removeprefix("http://")
    answers = [Answer(200, body=b"{}")]
    with (
        HostileServer(answers, upstream=upstream, hostile=lambda method, path: method == "POST") as proxy,
        Client(endpoint=proxy.endpoint, transport="rest") as client,
    ):
        first = BulkRunner(client, bed.journal, **bed.settings()).run(uris)
        assert proxy.served == 1 and first.counts["pending"] == 2
        assert "names no operation" in first.pending[0].reason
        assert BulkRunner(client, bed.journal, **bed.settings()).run(uris).counts["done"] == 2
    assert all(detail for event, _, detail in bed.history() if event == "submitted")
    check_consistent(bed, uris)
