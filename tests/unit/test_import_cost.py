"""Fixed cost: the run path imports nothing it does not use (the emulator is for its own commands)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

_PROBE = """
import sys
from dbt_stripe_sync.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.startswith("dbt_stripe_sync.emulator") or m == "http.server")
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
