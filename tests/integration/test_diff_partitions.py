"""`plan` in bounded memory (issue #10): the diff run a partition of the keys at a time, and an
embedded DuckDB's memory capped for the read-only work, change nothing in what is planned."""

from __future__ import annotations

import io

import pytest

from dbt_stripe_sync import diff as D
from dbt_stripe_sync import embedded_memory, engine
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.warehouse import Warehouse
from tests.integration.test_plan_stream import SEL, _plan

pytestmark = pytest.mark.timeout(300)


def _changed_model(project) -> None:
    """5 customers synced, then: one row leaves, one changes, a re-key, a repeated match email,
    a rejected row and new rows: every kind of diff row, present and deleted."""
    assert project.sync(*SEL).returncode == 0
    rows = project.read_seed("raw_customers")
    grace = rows.pop(1)
    rows[0]["city"] = "Paris"
    new = [
        {**grace, "user_id": "12"},
        {**rows[3], "user_id": "6", "email": "twin@example.com"},
        {**rows[3], "user_id": "7", "email": "twin@example.com"},
        {**rows[3], "user_id": "8", "email": "not-an-email"},
        *({**rows[3], "user_id": str(n), "email": f"user{n}@example.com"} for n in (9, 10, 11)),
    ]
    project.write_seed("raw_customers", rows + new)
    project.build()


def test_partitioned_diff_plans_what_the_whole_diff_plans(dbt_project, tmp_path, monkeypatch):
    _changed_model(dbt_project)
    whole = _plan(dbt_project, tmp_path, "whole")  # 5 ledger rows < PARTITION_ROWS: one query

    runs: list[list] = []
    partitions = D.partitions

    def recorded(*args, **kwargs):
        runs.append(partitions(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(D, "PARTITION_ROWS", 2)  # 5 ledger rows: 3 partitions
    monkeypatch.setattr(D, "PARTITIONED", ("duckdb", "postgres"))  # the macro works on both
    monkeypatch.setattr(D, "partitions", recorded)
    monkeypatch.setattr(D, "CHUNK_ROWS", 2)
    parted = _plan(dbt_project, tmp_path, "parted")

    assert runs == [[{"count": 3, "index": i} for i in range(3)]]
    assert parted == whole  # text, JSON byte for byte, and the same reads of Stripe


def _duckdb_only(warehouse: str) -> None:
    if warehouse != "duckdb":
        pytest.skip("the cap is for DuckDB, whose memory is this process's own")


def _opened(project, monkeypatch):
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    inv = engine.Invocation("plan", str(project.path), str(project.path), select=("stripe_customers",))
    return engine.prepare(inv, io.StringIO())


def _limit(prep) -> str:
    return prep.wh.query("select current_setting('memory_limit')")[1][0][0]


def test_duckdb_memory_is_capped_for_the_streamed_diff_and_restored(warehouse, dbt_project, monkeypatch):
    _duckdb_only(warehouse)
    assert dbt_project.sync(*SEL).returncode == 0  # a ledger to diff against
    prep = _opened(dbt_project, monkeypatch)
    try:
        before = _limit(prep)
        assert before != "61.0 MiB"  # DuckDB's default: a share of this machine's RAM
        config = prep.configs[0]
        store = StateStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
        stream = D.stream_diff(
            prep.wh,
            config,
            prep.relations[config.model],
            store.ledger,
            include_deletes=True,
            retry_rejected=False,
        )
        assert [r.key for chunk in stream.present for r in chunk] == []  # nothing changed
        assert _limit(prep) == "61.0 MiB"  # 64 MB as DuckDB shows it
    finally:
        prep.wh.close()
    prep = _opened(dbt_project, monkeypatch)  # the database is closed and opened again
    try:
        assert _limit(prep) == before
    finally:
        prep.wh.close()


def test_the_profiles_memory_limit_wins(warehouse, dbt_project, monkeypatch):
    _duckdb_only(warehouse)
    profile = dbt_project.path / "profiles.yml"
    text = profile.read_text()
    assert "      threads: 1\n" in text
    profile.write_text(
        text.replace("      threads: 1\n", "      threads: 1\n      settings: {memory_limit: 300MB}\n", 1)
    )
    prep = _opened(dbt_project, monkeypatch)
    try:
        prep.wh.cap_memory()
        assert not prep.wh.memory_cap.active
        assert _limit(prep) == "286.1 MiB"  # 300 MB as DuckDB shows it
    finally:
        prep.wh.close()


def test_a_query_out_of_memory_under_the_cap_runs_again_uncapped(
    warehouse, dbt_project, tmp_path, monkeypatch
):
    _duckdb_only(warehouse)
    _changed_model(dbt_project)
    whole = _plan(dbt_project, tmp_path, "whole")
    lifted: list[bool] = []
    lift = Warehouse._lift_cap_after

    def recorded(self, exc):
        lifted.append(lift(self, exc))
        return lifted[-1]

    monkeypatch.setattr(Warehouse, "_lift_cap_after", recorded)
    monkeypatch.setattr(embedded_memory, "DUCKDB_MEMORY_LIMIT", "1MB")  # too little for any diff
    capped = _plan(dbt_project, tmp_path, "capped")
    assert lifted == [True]  # DuckDB ran out of memory once, then ran with its own limit
    assert capped == whole
