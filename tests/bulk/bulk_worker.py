"""A bulk run in a child process, for the kill tests: ``bulk_worker.py TARGET JOURNAL CONFIG_JSON``.

``CONFIG_JSON`` holds ``inputs`` (gs:// URIs), ``kill_after`` (``[event, n]``: the worker sends
itself SIGKILL right after the n-th ``event`` reported by ``BulkRunner(on_event=...)``, which is
deterministic; ``["", 0]`` never) and any other ``BulkRunner`` keyword. It prints the report's
counts as JSON when it is not killed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from vision_grpc import Client
from vision_grpc.bulk import BulkRunner


def main(argv: list[str]) -> int:
    target, journal, config_json = argv[1:4]
    config: dict[str, Any] = json.loads(config_json)
    inputs: list[str] = config.pop("inputs")
    kill_event, kill_at = config.pop("kill_after", ["", 0])
    seen = [0]

    def on_event(event: str, batch_id: str) -> None:
        if event == kill_event:
            seen[0] += 1
            if seen[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    with Client(endpoint=target) as client:
        report = BulkRunner(client, journal, on_event=on_event, **config).run(inputs)
    print(json.dumps(report.counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
