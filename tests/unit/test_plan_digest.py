"""What `plan` keeps of a sync's plan (plan_digest.py): exactly what the whole SyncPlan shows."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import pytest

from dbt_stripe_sync.config.loader import build
from dbt_stripe_sync.diff import DiffResult, DiffRow
from dbt_stripe_sync.ledger import LedgerEntry
from dbt_stripe_sync.payload import to_json
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.plan_report import plan_summaries, write_whole_plan
from dbt_stripe_sync.planner import Lookups, build_plan
from dbt_stripe_sync.run_report import build_report
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects import adapter_for

BLOCK = {
    "object": "customer",
    "mode": "upsert",
    "primary_key": "id",
    "match": {"field": "email", "column": "email"},
    "fields": {"name": "name", "address.city": "city", "metadata.ltv": "ltv"},
    "delete": "delete",
}
CONFIG = build("stripe_customers", "model.p.stripe_customers", BLOCK)


def _row(key: str, change: str = "new", ledger: LedgerEntry | None = None, **values) -> DiffRow:
    base = {"id": key, "email": f"u{key}@x.io", "name": f"User {key}", "city": "Oslo", "ltv": Decimal("1.50")}
    base.update(values)
    return DiffRow(key=key, change=change, row_hash=f"h{key}", values=base, refs={}, ledger=ledger)


def _synced(key: str) -> LedgerEntry:
    payload = {"name": f"User {key}", "address.city": "Oslo", "email": f"u{key}@x.io"}
    return LedgerEntry("stripe_customers", key, "customer", f"cus_{key}", "old", to_json(payload), "synced")


def _plan():
    """Creates, updates, rejects and deletes under keys whose natural order is not their text order."""
    rows = [_row(k) for k in ("10", "2", "1", "01", "33", "4")]
    rows += [_row(k, "changed", _synced(k), city="Paris") for k in ("7", "12", "3")]
    rows += [_row("9", email="not-an-email"), _row("11", email="u4@x.io")]  # two rejects
    rows += [DiffRow(k, "deleted", None, {}, {}, _synced(k)) for k in ("5", "20")]
    diff = DiffResult(rows=sorted(rows, key=lambda r: r.key), model_rows=40)  # as the diff SQL orders them
    return build_plan(CONFIG, adapter_for("customer"), Settings(), diff, Lookups(), live_objects=40)


def _as_json(value):
    return json.loads(json.dumps(value, default=str))


def test_digest_shows_what_the_whole_plan_shows():
    plan = _plan()
    digest = PlanDigest.of(plan, Keep(sample=2, rows=True, rejects=True, creates=True))
    try:
        assert digest.to_dict(sample=2) == plan.to_dict(sample=2)
        assert digest.to_dict(sample=1) == plan.to_dict(sample=1)
        assert digest.to_dict(sample=None) == _as_json(plan.to_dict(sample=None))
        assert digest.counts() == plan.counts() and digest.counts()["reject"] == 2
        assert [k for k, _ in digest.rejected_rows()] == ["4", "9"]  # 11 came first with u4@x.io
        assert {k for _, k, _ in digest.created()} == {c.key for c in plan.changes if c.action == "create"}
    finally:
        digest.close()


def test_whole_plan_file_is_the_text_of_the_plan_dumped_at_once(tmp_path):
    plan, empty = (
        _plan(),
        build_plan(CONFIG, adapter_for("customer"), Settings(), DiffResult([], 0), Lookups(), 0),
    )
    digests = [PlanDigest.of(p, Keep(sample=3, rows=True)) for p in (plan, empty)]
    path = tmp_path / "plan.json"
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    report = build_report("plan", now, now, plan_summaries(digests))
    write_whole_plan(str(path), digests, 3, report)
    # the same document held whole: the report's head and syncs, each sync with its plan, and `plans`
    legacy = [{**p.to_dict(sample=None), "sample": p.to_dict(sample=3)["sample"]} for p in (plan, empty)]
    as_dict = report.to_dict()
    syncs = []
    detail = {d["model"]: d for d in legacy}  # one entry per model (a project's models are unique)
    for s in as_dict["syncs"]:
        data = detail[s["model"]]
        syncs.append(
            {
                **s,
                **{k: v for k, v in data.items() if k not in s and k != "counts"},
                "actions": data["counts"],
            }
        )
    head = {k: v for k, v in as_dict.items() if k != "syncs"}
    held = {**head, "command": "plan", "syncs": syncs, "plans": legacy}
    assert path.read_text() == json.dumps(held, indent=2, default=str)


def test_changes_added_in_any_order_and_chunks_come_out_in_natural_key_order():
    plan = _plan()
    present = [c for c in plan.changes if c.action != "delete"]
    shuffled = random.Random(7).sample(present, len(present))
    digest = PlanDigest(CONFIG, Keep(sample=2, rows=True))
    for start in range(0, len(shuffled), 3):  # runs of 3 spilled and merged
        digest.add(shuffled[start : start + 3], 0)
    digest.add([c for c in plan.changes if c.action == "delete"], 1)
    digest.finish(plan.model_rows, plan.live_objects, plan.unchanged, plan.blocked, plan.warnings)
    try:
        assert digest.to_dict(sample=2) == plan.to_dict(sample=2)
        assert digest.to_dict(sample=None) == _as_json(plan.to_dict(sample=None))
    finally:
        digest.close()


def test_a_digest_keeps_only_counts_and_the_sample_unless_asked():
    digest = PlanDigest.of(_plan(), Keep(sample=1))
    assert digest.total == len(_plan().changes)
    assert digest.rejected_rows() == [] and digest.created() == []
    assert len(digest.to_dict(sample=1)["sample"]) == len([n for n in digest.counts().values() if n])
    with pytest.raises(ValueError, match="did not keep its rows"):
        digest.to_dict(sample=None)
    with pytest.raises(ValueError, match="sample of 1"):
        digest.to_dict(sample=5)


def test_natural_key_of_digit_only_and_unicode_digit_keys():
    from dbt_stripe_sync.plan_view import natural_key

    assert natural_key("0042") == ((0, 42, ""),)  # the no-regex path for plain numbers
    keys = ["10", "2", "²", "row10", "row2", "٣"]  # '²' is a digit to str.isdigit, not a number to int
    assert sorted(keys, key=natural_key) == ["2", "٣", "10", "row2", "row10", "²"]


@pytest.mark.parametrize("rows", [False, True])
def test_deferred_creates_keep_what_built_ones_keep(rows: bool) -> None:
    """`plan` hands creates to the digest unbuilt (planner.DeferredCreate): the counts, the sample, every
    row, the rejects and the created keys and emails are those of the built changes."""
    from dbt_stripe_sync.planner import DeferredCreate, _plan_row

    plan = _plan()
    live = [_row(k) for k in ("10", "2", "1", "01", "33", "4")] + [_row("9", email="not-an-email")]
    live += [_row("8", email=None), _row("6", email="u6@x.io", name="")]  # a cleared name: params differ
    keep = Keep(sample=2, rows=rows, rejects=True, creates=True)
    digests = []
    for defer in (False, True):
        changes = [
            _plan_row(CONFIG, adapter_for("customer"), Settings(), r, Lookups(), {}, {}, None, None, defer)
            for r in live
        ]
        assert any(isinstance(c, DeferredCreate) for c in changes) is defer
        digest = PlanDigest(CONFIG, keep)
        digest.add(changes, 0)
        digest.add(plan.changes[-3:], 1)  # deletes
        digest.finish(40, 40, 31, None, ())
        digests.append(digest)
    built, deferred = digests
    assert deferred.counts() == built.counts() and deferred.counts()["create"] == 7
    assert deferred.sample_rows() == built.sample_rows()
    assert deferred.rejected_rows() == built.rejected_rows()
    assert deferred.created() == built.created() and deferred.created_emails() == built.created_emails()
    assert deferred.created_emails()[(None, "u6@x.io")] == "6"
    if rows:
        assert list(deferred.rows()) == list(built.rows())
