"""The benchmark behind ``scripts/bench.py``, one job per module.

What and how much:
    ``plan``      the Plan (full run; quick and smoke derived from it)
    ``series``    the measured series: client, worker process, call, role

The processes:
    ``protocol``  the commands between the orchestrator and a worker (shared by both sides)
    ``server``    the loopback server process (``python -m benchlib.server``)
    ``worker``    a client-family worker process (``python -m benchlib.worker FAMILY RUNTIME``)
    ``processes`` the orchestrator's side: JSON-lines pipes, the server handle, starting the rig

Measuring and summarising:
    ``rounds``    interleaved rounds with the server's usage per batch
    ``phases``    latency, throughput and decode: commands, rounds, rows
    ``cold``      cold start in fresh interpreters
    ``lag``       operation notice lag, in the background
    ``polling``   1, 64 and 512 operations waited at once within one client's poll budget
    ``reading``   reading 1, 100 and 2000 pages of output shards: ours vs the official path, fresh processes
    ``run``       one run, phase by phase, always cleaning up

Results:
    ``stats``     median, p99, median of per-round ratios
    ``results``   the row types, the machine, the whole run (and its JSON)
    ``targets``   the goals, met or missed
    ``report``    the Markdown tables and the docs/performance.md section

The scripts import it as ``benchlib`` (a script's directory is first on its path; children are
started with ``python -m`` from ``scripts/``), the tests as ``scripts.benchlib`` from the
repository root; hence relative imports inside.
"""
