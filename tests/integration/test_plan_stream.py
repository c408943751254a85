"""`plan` streams the diff in chunks (issue #10) and plans exactly what the whole-diff planner plans:
same terminal text, same --output JSON, same Python API report, same Stripe reads."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import dbt_stripe_sync
from dbt_stripe_sync import engine
from dbt_stripe_sync.plan_digest import PlanDigest
from dbt_stripe_sync.row_chunk import RowChunk
from tests.support.scenarios import rekey_rejects_and_creates

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")


def _whole(prep, config, gw, store, ledger_relation, progress, keep, upcoming, doomed=None, sieve=None):
    """The reference: the sync planned whole, as `run` plans it (engine._make_plan + build_plan), and
    what `run` does to it for objects earlier syncs delete (plan_doomed.py)."""
    plan = engine._make_plan(prep, config, gw, store, ledger_relation, progress, upcoming, doomed=doomed)
    if sieve is not None:
        plan = replace(plan, changes=tuple(sieve(list(plan.changes))))
    return PlanDigest.of(plan, keep)


def _api_plan(monkeypatch, project):
    with monkeypatch.context() as m:
        for name, value in project.env.items():
            m.setenv(name, value)
        m.setenv("DBT_PROFILES_DIR", str(project.path))
        return dbt_stripe_sync.plan(project.path, select="stripe_customers")


def _plan(project, tmp_path, name: str):
    emu = project.emulator
    emu.clear_requests()
    out = tmp_path / f"{name}.json"
    result = project.sync("plan", *SEL, "--output", str(out), "--sample", "2")
    assert result.returncode == 1, result.stdout + result.stderr  # rejects are predicted: exit 1
    text = result.stdout.replace(str(out), "PLAN.json")
    # the file is the predicted run report: its two timestamps are when the plan ran, the rest must match
    stamped = re.sub(r'"(started_at|finished_at)": "[^"]*"', r'"\1": "T"', out.read_text())
    return text, stamped, [(r["method"], r["path"]) for r in emu.requests()]


def test_streamed_plan_in_chunks_equals_the_whole_plan(dbt_project, tmp_path, monkeypatch):
    assert dbt_project.sync(*SEL).returncode == 0  # 5 customers synced
    rekey_rejects_and_creates(dbt_project)

    monkeypatch.setattr("dbt_stripe_sync.diff.CHUNK_ROWS", 2)  # many chunks, rows in no set order
    streamed = _plan(dbt_project, tmp_path, "streamed")
    api_streamed = _api_plan(monkeypatch, dbt_project)
    monkeypatch.setattr(engine, "stream_plan", _whole)
    whole = _plan(dbt_project, tmp_path, "whole")
    api_whole = _api_plan(monkeypatch, dbt_project)

    assert streamed == whole  # text, JSON byte for byte, and the same reads of Stripe
    assert streamed[2] == [("GET", "/v1/customers")]  # the account listed once, not once per chunk
    assert api_streamed.plans == api_whole.plans
    (plan,) = json.loads(streamed[1])["plans"]
    assert plan["counts"] | {"create": 4, "update": 2, "rekey": 1, "reject": 2} == plan["counts"]
    by_key = {r["key"]: r for r in plan["rows"]}
    assert by_key["2"]["action"] == "rekey" and by_key["12"]["action"] == "update"
    assert "also the match value of row 6" in by_key["7"]["reason"]
    assert [r["key"] for r in plan["rows"]] == ["1", "2", "6", "7", "8", "9", "10", "11", "12"]


def _text_plan(project):
    emu = project.emulator
    emu.clear_requests()
    result = project.sync("plan", *SEL, "--sample", "50")  # no --output: plain creates only counted
    return result.returncode, result.stdout, [(r["method"], r["path"]) for r in emu.requests()]


def test_plain_creates_read_as_columns_plan_what_the_whole_plan_plans(dbt_project, monkeypatch):
    """`plan` without --output reads a first sync's rows as columns (row_chunk.py) and counts its plain
    creates; its text (every row shown: --sample 50) is the whole plan's, before the first sync and
    after one with ledger rows, re-keys, rejects and repeated match emails among the chunks."""
    monkeypatch.setattr("dbt_stripe_sync.diff.CHUNK_ROWS", 2)
    read_as_columns: list[int] = []
    columnar = dbt_stripe_sync.diff._RowReader.columnar

    def counted(self, rows):
        chunk = columnar(self, rows)
        read_as_columns.append(isinstance(chunk, RowChunk))
        return chunk

    monkeypatch.setattr(dbt_stripe_sync.diff._RowReader, "columnar", counted)
    streamed = engine.stream_plan
    plans = []
    for setup in (lambda: None, lambda: _sync_then_change(dbt_project)):
        setup()
        monkeypatch.setattr(engine, "stream_plan", _whole)
        read_as_columns.clear()
        whole = _text_plan(dbt_project)
        assert not read_as_columns
        monkeypatch.setattr(engine, "stream_plan", streamed)
        plans.append(_text_plan(dbt_project))
        assert plans[-1] == whole  # exit code, text, reads of Stripe
        assert read_as_columns and all(read_as_columns)
    first, later = plans
    assert first[0] == 0 and first[1].count("  create ") == 5
    assert later[0] == 1 and "also the match value of row 6" in later[1] and "rekey" in later[1]


def _sync_then_change(project) -> None:
    assert project.sync(*SEL).returncode == 0
    rekey_rejects_and_creates(project)
