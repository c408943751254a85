"""dbt run in the test process (tests/support/dbt_in_process.py) behaves as the `dbt` CLI subprocess:
two projects on two targets built one after the other in one process each see only their own
warehouse, the process's environment and working directory come back unchanged, the DuckDB file is
left free for another process (the CLI under test), and a failing node gives the CLI's exit code."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.dbt_project import DbtProject

_OPEN_FOR_WRITE = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('select 1').fetchall()"


def test_two_projects_on_two_targets_in_one_process(dbt_project, prebuilt_duckdb, project_template, tmp_path):
    other_path = tmp_path / "other"
    other_env = {
        **dbt_project.env,
        "DBT_TARGET": "duckdb",
        "DSS_DUCKDB_PATH": str(other_path / "warehouse.duckdb"),
    }
    other = DbtProject.create(other_path, other_env, project_template, prebuilt_duckdb)
    env_before, cwd_before = dict(os.environ), os.getcwd()

    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Changed In First"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    other_rows = other.read_seed("raw_customers")
    other_rows[0]["full_name"] = "Changed In Other"
    other.write_seed("raw_customers", other_rows)
    other.build()

    assert dict(os.environ) == env_before and os.getcwd() == cwd_before
    first = {r[0] for r in dbt_project.query(f"select full_name from {dbt_project.schema}.stripe_customers")}
    second = {r[0] for r in other.query("select full_name from main.stripe_customers")}
    assert "Changed In First" in first and "Changed In Other" not in first
    assert "Changed In Other" in second and "Changed In First" not in second

    # no DuckDB handle left open in this process: another process can take the file for writing
    probe = subprocess.run(
        [sys.executable, "-c", _OPEN_FOR_WRITE, other_env["DSS_DUCKDB_PATH"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    # and the CLI under test, as a process of its own, runs against the rebuilt model
    run = other.sync("run", "-s", "stripe_customers", subprocess_=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_exit_codes_and_output_match_the_cli(dbt_project):
    ok = dbt_project.dbt("build", "--exclude", "resource_type:test", "-s", "stripe_customers")
    assert ok.returncode == 0 and "Completed successfully" in ok.stdout, ok.stdout
    dbt_project.write_file("models/stripe_customers.sql", "select * from a_relation_that_does_not_exist")
    in_process = dbt_project.dbt("run", "-s", "stripe_customers", check=False)
    as_process = dbt_project.dbt("run", "-s", "stripe_customers", check=False, subprocess_=True)
    assert in_process.returncode == as_process.returncode == 1
    for proc in (in_process, as_process):
        assert "a_relation_that_does_not_exist" in proc.stdout, proc.stdout
    bad_flag = dbt_project.dbt("run", "--no-such-flag", check=False)
    assert (
        bad_flag.returncode
        == dbt_project.dbt("run", "--no-such-flag", check=False, subprocess_=True).returncode
        == 2
    )
