"""``scripts/gen_protos.py`` without grpcio-tools says what to install, in one line.

The script runs in a real subprocess in which grpcio-tools cannot be imported: a ``-c`` wrapper sets
``sys.modules["grpc_tools"] = None`` (Python's own way to make an import fail, with ImportError) and then runs
the unchanged script as ``__main__`` with runpy, so no second venv without grpcio-tools is needed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_protos.py"
WITHOUT_GRPC_TOOLS = (
    "import runpy, sys; sys.modules['grpc_tools'] = None; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.mark.parametrize("argv", [["--check"], []], ids=["check", "generate"])
def test_without_grpcio_tools_one_line_says_what_to_install(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_GRPC_TOOLS, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "gen_protos: grpcio-tools is not installed; pip install -e '.[gen]' (it pins grpcio-tools)\n"
