"""One writer per state schema: overlapping runs never plan the same rows twice.

The trial that found this: 300 new customers, a second run started two seconds after the first,
and PostgreSQL ended with 350-398 customers (DuckDB was only saved by its file lock, with a raw
IOException). Each test here asserts exact object counts from the emulator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections import Counter

import pytest

from tests.support.dbt_project import api_writes, pg_connect

pytestmark = pytest.mark.timeout(400)
N = 60


def _many_customers(project, n: int = N) -> list[dict]:
    template = project.read_seed("raw_customers")[0]
    rows = [
        {**template, "user_id": str(i), "email": f"user{i}@example.com", "full_name": f"User {i}"}
        for i in range(1, n + 1)
    ]
    project.write_seed("raw_customers", rows)
    project.build()
    return rows


def _assert_each_once(project, rows) -> None:
    live = [c for c in project.emulator.objects("customer") if not c.get("deleted")]
    assert Counter(c["email"] for c in live) == Counter(r["email"] for r in rows)
    ledger = project.ledger("stripe_customers")
    assert {k for k, v in ledger.items() if v["status"] == "synced"} == {r["user_id"] for r in rows}
    assert sorted(v["stripe_id"] for v in ledger.values()) == sorted(c["id"] for c in live)


def test_two_overlapping_runs_create_each_customer_once(dbt_project, warehouse):
    rows = _many_customers(dbt_project)
    emu = dbt_project.emulator
    emu.set_faults(latency_ms=40)
    first = dbt_project.popen_sync("-s", "stripe_customers")
    second = dbt_project.popen_sync("-s", "stripe_customers")
    outcomes = [(*p.communicate(timeout=300), p.returncode) for p in (first, second)]
    emu.set_faults(latency_ms=0)
    for out, err, code in outcomes:
        # the second run waits for the first (exit 0: nothing left to do), or past lock_wait_s names it
        assert code == 0 or (code == 1 and "locked by" in err), out + err
    assert "Traceback" not in "".join(o[1] for o in outcomes)
    _assert_each_once(dbt_project, rows)
    creates = [w for w in api_writes(emu.requests()) if w["path"] == "/v1/customers"]
    assert len(creates) == N  # one create per row across both runs: the second planned none
    emu.clear_requests()
    again = dbt_project.sync("-s", "stripe_customers")
    assert again.returncode == 0 and api_writes(emu.requests()) == []


def _lock_id(database: str | None, schema: str) -> int:
    name = f"{database or ''}.{schema}"
    return int.from_bytes(hashlib.sha256(f"dbt_stripe_sync:{name}".encode()).digest()[:8], "big", signed=True)


def test_a_run_holding_the_lock_is_waited_for_then_named(dbt_project, warehouse):
    """Another holder (a run in progress): the new run waits lock_wait_s, exits 1 naming it, sends nothing."""
    emu = dbt_project.emulator
    short_wait = ("--vars", "{dbt_stripe_sync: {lock_wait_s: 1}}")
    if warehouse == "postgres":
        env = dbt_project.env
        con = pg_connect(env, autocommit=True)
        state = dbt_project.state_schema
        try:
            with con.cursor() as cur:
                # a first run that took the lock: the state tables exist, the advisory lock is held
                assert dbt_project.sync("-s", "stripe_customers").returncode == 0
                emu.clear_requests()
                cur.execute("select pg_try_advisory_lock(%s)", [_lock_id(env["DSS_PG_DBNAME"], state)])
                assert cur.fetchone()[0] is True
                now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                cur.execute(
                    f'delete from "{state}".stripe_sync_lock; insert into "{state}".stripe_sync_lock '
                    "values (%s, 'run_holding_it', 'otherhost', 4242, %s, %s)",
                    [f"{env['DSS_PG_DBNAME']}.{state}", now, now],
                )
                blocked = dbt_project.sync("-s", "stripe_customers", *short_wait, subprocess_=True)
                assert blocked.returncode == 1, blocked.stdout + blocked.stderr
                assert "locked by run run_holding_it (pid 4242 on otherhost" in blocked.stderr
                assert api_writes(emu.requests()) == []
        finally:
            con.close()  # the server frees the advisory lock with the session, as for a killed run
    else:
        import duckdb

        con = duckdb.connect(dbt_project.env["DSS_DUCKDB_PATH"])  # this test process holds the file
        try:
            blocked = dbt_project.sync("-s", "stripe_customers", *short_wait, subprocess_=True)
        finally:
            con.close()
        assert blocked.returncode == 1, blocked.stdout + blocked.stderr
        assert f"locked by another process (PID {os.getpid()})" in blocked.stderr
        assert "Traceback" not in blocked.stderr and api_writes(emu.requests()) == []
    # once the holder is gone the same command runs
    assert dbt_project.sync("-s", "stripe_customers", *short_wait).returncode == 0
    assert len(emu.objects("customer")) == 5


def test_a_lease_left_by_a_killed_run_is_taken_over_and_a_live_one_is_not(dbt_project, warehouse):
    """The lease strategy (every warehouse without advisory locks; DuckDB here)."""
    if warehouse != "duckdb":
        pytest.skip("PostgreSQL uses the advisory lock; its lease row is informational")
    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Ada King"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    import socket

    import duckdb

    state = dbt_project.state_schema
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    database = _database(dbt_project)

    def hold(pid: int) -> None:
        con = duckdb.connect(dbt_project.env["DSS_DUCKDB_PATH"])
        try:
            con.execute(f"delete from {state}.stripe_sync_lock")
            con.execute(
                f"insert into {state}.stripe_sync_lock values (?, 'run_alive', ?, ?, ?, ?)",
                [f"{database}.{state}", socket.gethostname(), pid, now, now],
            )
        finally:
            con.close()

    hold(os.getpid())  # a live process on this host with a fresh heartbeat
    blocked = dbt_project.sync("-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {lock_wait_s: 1}}",
                               subprocess_=True)  # fmt: skip
    assert blocked.returncode == 1 and "locked by run run_alive" in blocked.stderr, blocked.stderr
    assert all(c["name"] != "Ada King" for c in dbt_project.emulator.objects("customer"))
    hold(_dead_pid())  # the holder was killed: its lease is taken over at once
    taken = dbt_project.sync("-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {lock_wait_s: 1}}")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert any(c["name"] == "Ada King" for c in dbt_project.emulator.objects("customer"))
    assert dbt_project.query(f"select count(*) from {state}.stripe_sync_lock") == [(0,)]


def _database(project) -> str:
    return project.query("select current_database()")[0][0]


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_first_run_waiting_on_anothers_new_state_schema_goes_on(dbt_project, warehouse):
    """Two first runs at once both create the state schema, and PostgreSQL's `create schema if not
    exists` waits on the other session's uncommitted schema, then fails with a unique violation in its
    catalog: the run ended with a DbtDatabaseError (a fresh-clone CI caught it). Made certain here: a
    session holds the schema uncommitted until the run is seen waiting on it, then commits."""
    if warehouse != "postgres":
        pytest.skip("DuckDB's file lock lets one process in at a time")
    rows = _many_customers(dbt_project, 3)
    holder = pg_connect(dbt_project.env, autocommit=False)
    watcher = pg_connect(dbt_project.env, autocommit=True)
    try:
        with holder.cursor() as cur:
            cur.execute(f"create schema {dbt_project.state_schema}")
        run = dbt_project.popen_sync("-s", "stripe_customers")
        waiting: list = []
        deadline = time.monotonic() + 240  # the run boots dbt (slow on a loaded machine), then blocks
        while time.monotonic() < deadline:
            with watcher.cursor() as cur:
                cur.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike %s",
                    [f"%create schema%{dbt_project.state_schema}%"],
                )
                waiting = cur.fetchall()
            if waiting[0][0] or run.poll() is not None:
                break
            time.sleep(0.1)
        assert waiting and waiting[0][0] == 1, "the run never waited on the uncommitted schema"
        holder.commit()
        out, err = run.communicate(timeout=300)
    finally:
        holder.close()
        watcher.close()
    assert run.returncode == 0, out + err
    _assert_each_once(dbt_project, rows)
