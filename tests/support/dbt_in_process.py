"""`dbt ARGS` through dbt's own programmatic entry point (dbtRunner), in the test process.

A `dbt build` subprocess spends ~2 s of its ~4 s CPU importing dbt and its adapters before it
reads a file; a test that edits seeds and rebuilds pays that on every build. Here dbt runs as the
`dbt` console script would run it (dbtRunner is what `dbt.cli.main` calls), with the project's
environment and working directory, its output captured as the subprocess's would be, and the exit
code the CLI would return (0 success, 1 a node failed, 2 dbt raised).

dbt keeps process-wide state between invocations. dbtRunner resets its adapters on entry; on the
way out this module closes what dbt leaves open (DuckDB's process-wide database handle, which
would keep the file locked against the CLI under test, and every adapter connection), drops dbt's
event loggers (they would keep writing to this call's captured stdout and the project's
logs/dbt.log) and restores the environment and working directory. Set DSS_TEST_DBT_SUBPROCESS=1
to run every dbt call as a subprocess instead (tests/support/dbt_project.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

FORCE_SUBPROCESS_ENV = "DSS_TEST_DBT_SUBPROCESS"


def wanted(args: Sequence[str]) -> bool:
    """In this process unless forced out; `dbt deps` (once per session, git/package I/O) never."""
    return not os.environ.get(FORCE_SUBPROCESS_ENV) and bool(args) and args[0] != "deps"


@contextlib.contextmanager
def as_if_launched(env: Mapping[str, str], cwd: Path) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """This process with a command's environment and working directory, its stdout and stderr
    captured (yielded), as a subprocess would have them; all restored after."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def run(args: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    from dbt.cli.main import dbtRunner

    with as_if_launched(env, cwd) as (out, err):
        try:
            result = dbtRunner().invoke(list(args))
        finally:
            _release_dbt_state()
    code = 0 if result.success else (2 if result.exception is not None else 1)
    stderr = err.getvalue() + (f"{result.exception}\n" if result.exception is not None else "")
    return subprocess.CompletedProcess(["dbt", *args], code, out.getvalue(), stderr)


def _release_dbt_state() -> None:
    from dbt.adapters.factory import FACTORY, reset_adapters
    from dbt_common.events.event_manager_client import get_event_manager

    try:
        for adapter in list(FACTORY.adapters.values()):
            manager = type(adapter.connections)
            adapter.cleanup_connections()
            env = getattr(manager, "_ENV", None)
            if env is not None and hasattr(env, "close"):
                env.close()
            if hasattr(manager, "close_all_connections"):
                manager.close_all_connections()
        reset_adapters()
    finally:
        manager = get_event_manager()
        manager.loggers.clear()
        manager.callbacks.clear()
