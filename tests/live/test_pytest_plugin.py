"""The pytest plugin (``pytest11`` entry point ``vision_grpc``): a user's test file using its fixtures passes.

pytester runs the file in a fresh ``python -m pytest`` subprocess, so the plugin is found the way a user's
run finds it: through the installed entry point, with no ``-p`` and no conftest.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import asyncio

from vision_grpc import AsyncClient, Client, types


def test_emulator_is_running(vision_emulator):
    vision_emulator.put_object("gs://b/in.png", b"not really a png")
    assert vision_emulator.get_object("gs://b/in.png") == b"not really a png"
    assert vision_emulator.grpc_target.startswith("127.0.0.1:")


def test_client_fixture(vision_client, vision_emulator):
    assert vision_client.options.resolved_endpoint == vision_emulator.grpc_target
    assert list(vision_client.list_operations()) == []


def test_env_fixture_reaches_the_same_emulator(vision_emulator_env, monkeypatch):
    vision_emulator_env.put_object("gs://b/doc.pdf", PDF)
    request = types.async_files_request("gs://b/doc.pdf", output_uri="gs://b/out/", batch_size=5)
    with Client() as client:  # no endpoint: VISION_EMULATOR_HOST
        client.async_batch_annotate_files(request).result(timeout=10)
    with Client(transport="rest") as client:  # VISION_EMULATOR_REST_HOST
        assert [op.done for op in client.list_operations()] == [True]

    async def main():
        async with AsyncClient() as client:
            return [op async for op in client.list_operations()]

    assert len(asyncio.run(main())) == 1
    assert vision_emulator_env.list_objects("gs://b/out/") == ["gs://b/out/output-1-to-1.json"]


def test_env_is_set_only_during_the_test():
    import os

    assert "VISION_EMULATOR_HOST" not in os.environ
"""


def _pdf_literal() -> str:
    from tests._support import make_pdf

    return f"\nPDF = {make_pdf(1)!r}\n"


def test_plugin_fixtures_in_a_user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISION_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("VISION_EMULATOR_REST_HOST", raising=False)
    pytester.makepyfile(test_user=USER_TESTS + _pdf_literal())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", timeout=120)
    result.assert_outcomes(passed=4)


def test_plugin_is_listed_and_its_fixtures_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", timeout=60)
    text = result.stdout.str()
    for name in ("vision_emulator [session scope]", "vision_emulator_env", "vision_client"):
        assert name in text
    assert "vision_grpc/pytest_plugin.py" in text


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """pytest loads the plugin in every run of every project with vision-grpc installed."""
    code = (
        "import sys, vision_grpc.pytest_plugin\n"
        "heavy = ('grpc', 'google.protobuf', 'google.auth', 'urllib3', 'vision_grpc.testing', "
        "'vision_grpc.emulator', 'vision_grpc.client', 'vision_grpc._core')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
