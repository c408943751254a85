"""Zero-config install: the wheel alone (no clone, no packages.yml, no `dbt deps`) runs the demo and
syncs a project, because it carries the SQL macros and the example project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{cmd} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_and_a_project_without_packages_yml(tmp_path):
    # nothing of this checkout or of the test session leaks in: no PYTHONPATH, no dbt/Stripe settings
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "DBT_", "DSS_", "STRIPE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)], tmp_path, env
    )
    (wheel,) = wheels.glob("dbt_stripe_sync-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[duckdb]"], tmp_path, env)

    # the package imported is the installed one, not this checkout
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import dbt_stripe_sync; print(dbt_stripe_sync.__file__)"],
        tmp_path,
        env,
    )
    assert str(venv) in where and str(REPO) not in where

    out = _run(
        [str(venv / "bin" / "dbt-stripe-sync"), "demo", "--workdir", str(tmp_path / "demo")], tmp_path, env
    )
    assert "Stripe API calls: {'POST customers': 1}" in out  # the last step: one customer's city changed
    assert "Stripe API calls: none" in out  # the rerun with nothing changed

    project = tmp_path / "demo" / "project"
    assert not (project / "packages.yml").exists() and not (project / "dbt_packages").exists()
    env_project = env | {"DSS_DUCKDB_PATH": str(tmp_path / "demo" / "demo.duckdb"), "DBT_TARGET": "duckdb"}
    out = _run(
        [
            str(venv / "bin" / "dbt-stripe-sync"),
            "validate",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        tmp_path,
        env_project,
    )
    assert "OK: 7 stripe_sync block(s) valid" in out
