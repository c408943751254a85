"""The program ends without the interpreter's teardown, yet as shutdown would for anyone watching:
the command's exit code, its output flushed, every atexit handler run. `main()` called from Python
returns as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbt_stripe_sync import cli, fast_exit

pytestmark = pytest.mark.timeout(120)

# What pip writes as the console script, plus an atexit handler and an object whose finalizer only a
# teardown runs.
_SCRIPT = """
import atexit, sys
from pathlib import Path
out = Path(sys.argv.pop(1))
atexit.register(lambda: (out / "atexit").write_text("ran"))
class _Torn:
    def __del__(self):
        (out / "teardown").write_text("ran")
torn = _Torn()
from dbt_stripe_sync.cli import main
if __name__ == "__main__":
    sys.exit(main())
"""


def _program(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "dbt-stripe-sync"
    script.write_text(_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), *argv],
        capture_output=True, text=True, timeout=100, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip


def test_the_program_exits_with_its_code_and_output_after_atexit_without_teardown(tmp_path: Path) -> None:
    done = _program(tmp_path, "validate", "--project-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2, done.stderr
    assert "no dbt_project.yml" in done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()  # the interpreter was not torn down


def test_the_programs_stdout_is_flushed_into_a_pipe(tmp_path: Path) -> None:
    done = _program(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.strip()  # block-buffered into a pipe: written only by the flush before exit


def test_main_called_from_python_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["dbt-stripe-sync", "--version"])
    assert fast_exit.is_program() is False
    assert cli.main() == 0  # this test process is still here to see it
