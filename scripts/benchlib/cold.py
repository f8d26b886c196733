"""Cold start: import, first client and first call in a fresh interpreter, time and peak RSS."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from .plan import Plan
from .processes import CHILD_ENV, PYTHON, ROOT, BenchError, Rig
from .results import ColdRow
from .rounds import rotated
from .series import Role
from .stats import median, round_ratio


@dataclass(frozen=True)
class ColdVariant:
    """Code for a fresh interpreter; ``{grpc}``, ``{http}`` and ``{name}`` are filled in.

    ``setup`` imports, sets ``t1 = time.perf_counter()`` once the imports are done, then creates
    the client; ``first_call`` is one GetOperation.
    """

    label: str
    role: Role
    setup: str
    first_call: str
    official: str | None = None  # the variant compared with, for the "vs official" columns


COLD_VARIANTS = {
    "floor": ColdVariant(
        "floor: import grpc, protobuf, google.auth, annotations_pb2, operations_pb2; channel",
        "floor",
        "import grpc, google.protobuf, google.auth, google.api.annotations_pb2, google.longrunning.operations_pb2\n"
        "t1 = time.perf_counter()\n"
        "channel = grpc.insecure_channel({grpc!r})\n"
        "get = channel.unary_unary('/google.longrunning.Operations/GetOperation', None, None)\n",
        "get(google.longrunning.operations_pb2.GetOperationRequest(name={name!r}).SerializeToString())",
    ),
    "ours_grpc": ColdVariant(
        "import vision_grpc; Client(endpoint=...)",
        "ours",
        "import vision_grpc\nfrom vision_grpc import Client\n"
        "t1 = time.perf_counter()\nclient = Client(endpoint={grpc!r})\n",
        "client.get_operation({name!r})",
        official="official_grpc",
    ),
    "official_grpc": ColdVariant(
        "from google.cloud import vision; ImageAnnotatorClient(grpc channel)",
        "official",
        "from google.cloud import vision\nimport grpc\n"
        "from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport\n"
        "t1 = time.perf_counter()\n"
        "client = vision.ImageAnnotatorClient(transport=ImageAnnotatorGrpcTransport("
        "channel=grpc.insecure_channel({grpc!r})))\n",
        "client.get_operation(request={{'name': {name!r}}})",
    ),
    "ours_rest": ColdVariant(
        "import vision_grpc; Client(endpoint=..., transport='rest')",
        "ours",
        "import vision_grpc\nfrom vision_grpc import Client\nt1 = time.perf_counter()\n"
        "client = Client(endpoint={http!r}, transport='rest')\n",
        "client.get_operation({name!r})",
        official="official_rest",
    ),
    "official_rest": ColdVariant(
        "from google.cloud import vision; ImageAnnotatorClient(transport='rest')",
        "official",
        "from google.cloud import vision\nfrom google.auth.credentials import AnonymousCredentials\n"
        "t1 = time.perf_counter()\n"
        "client = vision.ImageAnnotatorClient(credentials=AnonymousCredentials(), transport='rest', "
        "client_options={{'api_endpoint': 'http://' + {http!r}}})\n",
        "client.get_operation(request={{'name': {name!r}}})",
    ),
}

# Around a variant's code: it prints one JSON line, times in seconds since the start, RSS in KiB.
_HEAD = "import json, resource, time\nt0 = time.perf_counter()\n"
_TAIL = (
    "t2 = time.perf_counter()\nrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "{call}\nt3 = time.perf_counter()\nrss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps({{'import_s': t1 - t0, 'construct_s': t2 - t1, 'first_call_s': t3 - t2, "
    "'rss_kb': rss1, 'rss_call_kb': rss2}}))\n"
)


@dataclass(frozen=True)
class ColdRun:
    import_s: float
    construct_s: float
    first_call_s: float
    rss_kb: int  # peak, once the client exists
    rss_call_kb: int  # peak, after the first call
    process_s: float  # the interpreter, start to exit

    @property
    def import_construct_s(self) -> float:
        return self.import_s + self.construct_s


def measure_cold(rig: Rig, plan: Plan) -> list[ColdRow]:
    """Every variant once per repetition, in an order rotated by the repetition."""
    fill = {
        "grpc": rig.server.grpc_target,
        "http": rig.server.http_target,
        "name": rig.server.fixtures["operation_name"],
    }
    variants = list(plan.cold_variants)
    runs: dict[str, list[ColdRun | None]] = {name: [] for name in variants}
    reps = plan.cold_reps + (1 if plan.cold_warmup else 0)
    for rep in range(reps):
        rig.say(f"cold start: repetition {rep + 1}/{reps}")
        for name in rotated(variants, rep):
            try:
                run = _run_fresh(COLD_VARIANTS[name], fill)
            except (subprocess.TimeoutExpired, BenchError, ValueError, IndexError) as exc:
                rig.errors.append(f"cold {name}: {exc}")
                run = None
            if rep or not plan.cold_warmup:  # the warm-up repetition only fills the file caches
                runs[name].append(run)
    return [_cold_row(name, runs) for name in variants]


def _run_fresh(variant: ColdVariant, fill: dict[str, str]) -> ColdRun:
    code = _HEAD + variant.setup.format(**fill) + _TAIL.format(call=variant.first_call.format(**fill))
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, timeout=90, cwd=ROOT, env=CHILD_ENV, start_new_session=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(" ".join(done.stderr.decode(errors="replace").strip().splitlines()[-1:]))
    return ColdRun(**json.loads(done.stdout.decode().strip().splitlines()[-1]), process_s=wall)


def _cold_row(name: str, runs: dict[str, list[ColdRun | None]]) -> ColdRow:
    variant = COLD_VARIANTS[name]
    ok = [run for run in runs[name] if run is not None]
    official = runs.get(variant.official) if variant.official else None

    def versus_official(figure: Callable[[ColdRun], float]) -> float | None:  # paired by repetition
        if official is None:
            return None
        return round_ratio(
            [None if run is None else figure(run) for run in runs[name]],
            [None if run is None else figure(run) for run in official],
        )

    return ColdRow(
        variant=name,
        label=variant.label,
        role=variant.role,
        reps=len(ok),
        import_ms=median([run.import_s * 1e3 for run in ok]),
        construct_ms=median([run.construct_s * 1e3 for run in ok]),
        import_construct_ms=median([run.import_construct_s * 1e3 for run in ok]),
        first_call_ms=median([run.first_call_s * 1e3 for run in ok]),
        rss_mb=median([run.rss_kb / 1024 for run in ok]),
        rss_first_call_mb=median([run.rss_call_kb / 1024 for run in ok]),
        process_ms=median([run.process_s * 1e3 for run in ok]),
        vs_official_time=versus_official(lambda run: run.import_construct_s),
        vs_official_rss=versus_official(lambda run: run.rss_kb),
    )
