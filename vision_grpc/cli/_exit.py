"""The CLI's exit codes, defined once (docs/how-to/cli.md: scripts branch on them)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2  # the command line, an input file or a request breaks a rule: fix and run again
    API = 3  # the service (or an operation) answered with an error
    TIMEOUT = 4  # gave up waiting; the operation may still finish (resume it by name)
    TRANSPORT = 5  # no connection could be made, or it failed before any answer
    # The call succeeded but some pages/images carry an error (all of them, or only some: one code,
    # as with one input "all" and "some" are the same thing; the output counts them). The results
    # that did succeed were printed or saved.
    ITEM_ERRORS = 6
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
    BROKEN_PIPE = 141  # stdout was closed early (``| head``), as shells report SIGPIPE; nothing printed
