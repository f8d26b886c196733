"""The child processes: a JSON-lines pipe to each, the loopback server, and the rig of them all."""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plan import Plan
from .protocol import Command, Latency, Setup, describe, to_message
from .results import ServerInfo
from .series import CLIENTS, WORKERS, WorkerId

SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
PYTHON = sys.executable
CHILD_ENV = dict(os.environ, GRPC_VERBOSITY="ERROR")


class BenchError(RuntimeError):
    """A child process failed, timed out or answered nonsense."""


def _module_argv(module: str, *args: str) -> list[str]:
    # Children run from scripts/, where ``python -m`` finds this package, as ``bench.py`` does.
    return [PYTHON, "-m", f"benchlib.{module}", *args]


class ChildProcess:
    """A child speaking JSON lines over its stdin/stdout; its stderr goes to a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=SCRIPTS,
            env=dict(CHILD_ENV, PYTHONUNBUFFERED="1"),
            start_new_session=True,  # a Ctrl-C reaches the orchestrator only, which closes us in order
        )
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"{self.name} exited ({self.proc.poll()}); {self.log_tail()}") from None

    def recv(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no answer within {timeout_s:.0f} s; {self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.proc.wait(5)
                    raise BenchError(f"{self.name} exited ({self.proc.returncode}); {self.log_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, command: Command, timeout_s: float) -> dict[str, Any]:
        """Send a command and return the reply; a failed one raises ``BenchError``."""
        self.send(to_message(command))
        return self.check(self.recv(timeout_s), command)

    def check(self, reply: dict[str, Any], command: Command) -> dict[str, Any]:
        if reply.get("ok") is False:
            raise BenchError(f"{self.name} {describe(command)}: {reply.get('error')}")
        return reply

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def log_tail(self, lines: int = 6) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return "no log"
        return "log: " + " | ".join(tail) if tail else f"log {self.log_path} is empty"

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask politely (quit, then stdin EOF), then SIGTERM, then SIGKILL; always reaps."""
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                try:
                    self.proc.stdin.write(b'{"cmd": "quit"}\n')
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(2)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._log.close()


@dataclass(frozen=True)
class ServerUsage:
    """What the server process spent between a reset and a read."""

    cpu_s: float
    wall_s: float
    requests: int


class LoopbackServer:
    """The server process (``server.py``), its targets and its control routes."""

    def __init__(self, log_dir: Path, fulltext_bytes: int) -> None:
        self.process = ChildProcess("server", _module_argv("server", f"--fulltext-bytes={fulltext_bytes}"), log_dir)
        self._control_connection: http.client.HTTPConnection | None = None
        try:
            ports = self.process.recv(60)
            self.http_port = int(ports["http_port"])
            self.grpc_target = f"127.0.0.1:{int(ports['grpc_port'])}"
            self.http_target = f"127.0.0.1:{self.http_port}"
            self.fixtures: dict[str, Any] = self._control("GET", "/_bench/fixtures")
        except BaseException:
            self.close()
            raise

    @property
    def info(self) -> ServerInfo:
        return ServerInfo(self.grpc_target, self.http_target, self.fixtures["sizes"])

    def reset_usage(self) -> None:
        self._control("POST", "/_bench/reset")

    def usage(self) -> ServerUsage:
        """CPU time, wall time and requests served since the last ``reset_usage``."""
        stats = self._control("GET", "/_bench/stats")
        return ServerUsage(stats["cpu_s"], stats["wall_s"], sum(stats["requests"].values()))

    def polls(self) -> dict[str, dict[str, Any]]:
        """GetOperation / WaitOperation counts per lag operation name (and ``times``: each GetOperation's, ns)."""
        polls: dict[str, dict[str, Any]] = self._control("GET", "/_bench/polls")
        return polls

    def _control(self, method: str, path: str) -> Any:
        for attempt in range(2):  # one reconnect: the keep-alive connection may have been dropped
            try:
                if self._control_connection is None:
                    self._control_connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
                self._control_connection.request(method, path, body=b"" if method == "POST" else None)
                return json.loads(self._control_connection.getresponse().read())
            except (OSError, http.client.HTTPException):
                self._control_connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._control_connection is not None:
            self._control_connection.close()
        self.process.close()


@dataclass
class Rig:
    """The running server and workers, and the errors so far (reported with the results, not raised)."""

    server: LoopbackServer
    workers: dict[WorkerId, ChildProcess]
    errors: list[str]
    say: Callable[[str], None]


@contextmanager
def open_rig(plan: Plan, log_dir: Path, errors: list[str], say: Callable[[str], None]) -> Iterator[Rig]:
    """Start the server and one worker per family and runtime, set them up, create every client."""
    say("starting the server and the workers")
    server = LoopbackServer(log_dir, plan.fulltext_bytes)
    rig = Rig(server, {}, errors, say)
    try:
        for worker in WORKERS:
            rig.workers[worker] = ChildProcess(worker.name, _module_argv("worker", *worker), log_dir)
        _set_up_workers(rig)
        _create_clients(rig)
        yield rig
    finally:
        for process in rig.workers.values():
            try:
                process.close()
            except Exception as exc:  # keep closing the others
                errors.append(f"closing {process.name}: {exc}")
        server.close()


def _set_up_workers(rig: Rig) -> None:
    setup = Setup(rig.server.grpc_target, rig.server.http_target, rig.server.fixtures)
    for process in rig.workers.values():  # each worker starts in parallel with the others
        process.recv(60)  # "ready"
        process.send(to_message(setup))
    for process in rig.workers.values():
        process.check(process.recv(60), setup)


def _create_clients(rig: Rig) -> None:
    """Imports, channels and first calls, in all workers in parallel, before anything is measured."""
    for series in CLIENTS:
        rig.workers[series.worker].send(to_message(Latency(series.client, "get", n=1, max_s=1)))
    for series in CLIENTS:
        reply = rig.workers[series.worker].recv(120)
        if not reply.get("ok"):  # that series will fail again and be reported; the others go on
            rig.errors.append(f"warm-up {series.group} {series.label}: {reply.get('error')}")
