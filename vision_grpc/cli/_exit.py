"""The CLI's exit codes, defined once (README, "CLI": scripts branch on them)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2  # the command line, an input file or a request breaks a rule: fix and run again
    API = 3  # the service (or an operation) answered with an error
    TIMEOUT = 4  # gave up waiting; the operation may still finish (resume it by name)
    TRANSPORT = 5  # no connection could be made, or it failed before any answer
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
