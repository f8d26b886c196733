"""One benchmark run: start the processes, measure the chosen phases, summarise, always clean up."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cold import measure_cold
from .lag import BackgroundLag
from .phases import measure_decode, measure_latency, measure_throughput
from .plan import Plan
from .polling import measure_polling
from .processes import BenchError, Rig, open_rig
from .protocol import Profile
from .reading import measure_reading
from .results import Machine, Result
from .series import OURS_SYNC
from .targets import evaluate

PHASES = ("latency", "throughput", "decode", "polling", "cold", "lag", "reading")


def run(plan: Plan, *, phases: tuple[str, ...] = PHASES, progress: bool = True, profile: bool = False) -> Result:
    """Measure; a failed series or phase is reported in ``Result.errors``, not raised."""
    started = time.monotonic()
    result = Result(
        mode=plan.mode,
        date=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        machine=Machine.now(),
        phases=list(phases),
    )
    log_dir = Path(tempfile.mkdtemp(prefix="vision-bench-"))
    try:
        with open_rig(plan, log_dir, result.errors, _progress(progress)) as rig:
            result.server = rig.server.info
            _measure(rig, plan, phases, profile, result)
    except BenchError as exc:  # what was measured before stays in the result
        result.errors.append(f"aborted: {exc}")
    result.machine = result.machine.finished()
    result.duration_s = time.monotonic() - started
    result.targets = evaluate(result)
    if result.errors:
        result.logs = str(log_dir)  # kept for the post-mortem
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return result


def _measure(rig: Rig, plan: Plan, phases: tuple[str, ...], profile: bool, result: Result) -> None:
    """The phases in their fixed order, each filling its rows in as soon as it is done; the lag
    cases run in the background during the cold starts."""
    if "latency" in phases:
        result.latency = measure_latency(rig, plan.latency)
    if "throughput" in phases:
        result.throughput = measure_throughput(rig, plan.throughput)
    if "decode" in phases:
        result.decode = measure_decode(rig, plan.decode)
    if "polling" in phases:  # before the lag cases, which keep the ours sync worker busy
        result.polling = measure_polling(rig, plan.poll_cases)
    lag = BackgroundLag(rig, plan.lag_cases) if "lag" in phases else None
    if lag is not None:
        lag.start()
    if "cold" in phases:
        result.cold = measure_cold(rig, plan)
    if lag is not None:
        rig.say("waiting for the lag cases")
        result.lag = lag.finish()
    if "reading" in phases:  # fresh processes only: after the lag cases, on a quiet rig
        result.reading = measure_reading(rig, plan.reading_pages, plan.reading_reps, plan.reading_official_max_pages)
    if profile:
        result.profile = _profile_ours(rig, plan.profile_calls)


def _profile_ours(rig: Rig, calls: int) -> dict[str, Any]:
    worker = rig.workers[OURS_SYNC]
    profiles = {}
    for client, call in (("grpc", "get"), ("rest", "submit")):
        rig.say(f"profiling ours sync {client} {call}")
        try:
            profiles[f"{client} {call}"] = worker.request(Profile(client, call, calls, top=35), 300)
        except BenchError as exc:
            rig.errors.append(f"profile {client} {call}: {exc}")
    return profiles


def _progress(enabled: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if enabled:
            print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    return say
