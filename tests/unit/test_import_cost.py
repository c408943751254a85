"""Fixed cost: the run path imports nothing it does not use (the emulator is for its own commands, the
stripe SDK's async HTTP library for a program that uses the SDK's async client)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

_PROBE = """
import sys
from dbt_stripe_sync.cli import main
rc = main(sys.argv[1:])
heavy = sorted(
    m for m in sys.modules if m.startswith("dbt_stripe_sync.emulator") or m in ("http.server", "aiohttp")
)
print("RC", rc, "HEAVY", heavy)
"""


def _probe(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=100, check=False
    )


@pytest.mark.parametrize("command", ["run", "plan", "validate"])
def test_sync_commands_never_import_the_emulator(tmp_path, command):
    proc = _probe(command, "--project-dir", str(tmp_path))  # no dbt project: a usage error, after imports
    assert "RC 2 HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert "no dbt_project.yml" in proc.stderr


def test_the_emulator_command_still_has_its_options():
    proc = _probe("emulator", "--help")
    assert "--latency-ms" in proc.stdout and "--rate-limit" in proc.stdout, proc.stdout + proc.stderr


_ASYNC_FALLBACK = """
import sys
from dbt_stripe_sync.stripe_sdk import load_stripe
stripe = load_stripe()
before = "aiohttp" in sys.modules
client = stripe._http_client.new_http_client_async_fallback()
print("BEFORE", before, "CLIENT", type(client).__name__)
"""


def test_the_sdk_async_client_is_resolved_on_use_as_the_sdk_would_at_import():
    import importlib.util

    if importlib.util.find_spec("aiohttp") is None:
        pytest.skip("aiohttp is not installed: the SDK has no async library to defer")
    proc = subprocess.run(
        [sys.executable, "-c", _ASYNC_FALLBACK], capture_output=True, text=True, timeout=100, check=False
    )
    assert "BEFORE False CLIENT AIOHTTPClient" in proc.stdout, proc.stdout + proc.stderr
