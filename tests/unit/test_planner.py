"""The pure planner: diff rows + look-ups -> changes, with no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dbt_stripe_sync.config.loader import build
from dbt_stripe_sync.diff import DiffResult, DiffRow
from dbt_stripe_sync.ledger import LedgerEntry
from dbt_stripe_sync.payload import to_json
from dbt_stripe_sync.planner import Lookups, build_plan, idempotency_key
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


def _config(**overrides):
    return build("stripe_customers", "model.p.stripe_customers", {**BLOCK, **overrides})


def _row(key, change="new", ledger=None, **values):
    base = {"id": key, "email": f"u{key}@x.io", "name": f"User {key}", "city": "Oslo", "ltv": Decimal("1.50")}
    base.update(values)
    return DiffRow(key=key, change=change, row_hash=f"h{key}", values=base, refs={}, ledger=ledger)


def _synced(key, stripe_id, payload):
    return LedgerEntry("stripe_customers", key, "customer", stripe_id, "old", to_json(payload), "synced")


NO_LOOKUPS, DEFAULTS = Lookups(), Settings()


def _plan(config, rows, lookups=NO_LOOKUPS, model_rows=None, live=0, settings=DEFAULTS):
    diff = DiffResult(rows=rows, model_rows=len(rows) if model_rows is None else model_rows)
    return build_plan(config, adapter_for(config.object), settings, diff, lookups, live)


def test_new_rows_are_created_with_a_tag_and_a_deterministic_key():
    plan = _plan(_config(), [_row("1")])
    (change,) = plan.changes
    assert change.action == "create"
    assert change.params == {
        "name": "User 1",
        "address.city": "Oslo",
        "metadata.ltv": "1.50",
        "email": "u1@x.io",
        "metadata.dbt_stripe_sync": "stripe_customers:1",
    }
    assert change.idempotency_key == idempotency_key("stripe_customers", "1", "create", "h1", 0)
    assert change.idempotency_key != idempotency_key("stripe_customers", "1", "create", "h1", 1)


def test_upsert_adopts_a_customer_found_by_email_and_refuses_ambiguity():
    found = {"u1@x.io": [{"id": "cus_old"}], "u2@x.io": [{"id": "cus_taken"}]}
    rows = [_row("1"), _row("2"), _row("3", email="u1@x.io")]
    plan = _plan(_config(), rows, Lookups(by_email=found, claimed={"cus_taken": "9"}))
    actions = {c.key: (c.action, c.stripe_id, c.reason) for c in plan.changes}
    assert actions["1"][:2] == ("update", "cus_old") and "matched existing" in actions["1"][2]
    assert actions["2"][0] == "reject" and "already synced from row 9" in actions["2"][2]
    assert actions["3"][0] == "reject" and "also the match value of row 1" in actions["3"][2]


def test_changed_rows_send_only_changed_fields_or_nothing():
    previous = {"name": "User 1", "address.city": "Oslo", "metadata.ltv": "1.50", "email": "u1@x.io"}
    rows = [
        _row("1", change="changed", ledger=_synced("1", "cus_1", previous), city="Bergen"),
        _row(
            "2",
            change="changed",
            ledger=_synced("2", "cus_2", {**previous, "name": "User 2", "email": "u2@x.io"}),
        ),
    ]
    plan = _plan(_config(), rows)
    by_key = {c.key: c for c in plan.changes}
    assert by_key["1"].action == "update" and by_key["1"].params == {"address.city": "Bergen"}
    assert by_key["1"].before == {"address.city": "Oslo"}
    assert by_key["2"].action == "noop"


def test_modes():
    found = {"u1@x.io": [{"id": "cus_1"}]}
    update = _plan(_config(mode="update", delete="nothing"), [_row("1"), _row("2")], Lookups(by_email=found))
    assert [(c.key, c.action) for c in update.changes] == [("1", "update"), ("2", "reject")]
    assert "no Stripe customer found for email 'u2@x.io'" in update.changes[1].reason
    insert = _plan(_config(mode="insert", delete="nothing"), [_row("1"), _row("2")], Lookups(by_email=found))
    assert [(c.key, c.action) for c in insert.changes] == [("1", "skip"), ("2", "create")]


def test_bad_values_reject_the_row_naming_column_and_field():
    plan = _plan(
        _config(fields={"name": "name", "metadata.ltv": "ltv", "preferred_locales": "city"}), [_row("1")]
    )
    (change,) = plan.changes
    assert change.action == "reject"
    assert "column `city` -> preferred_locales: expected a list" in change.reason


def test_on_null_clear_unsets_on_update_and_is_omitted_on_create():
    previous = {"name": "User 1", "address.city": "Oslo", "metadata.ltv": "1.50", "email": "u1@x.io"}
    rows = [
        _row("1", change="changed", ledger=_synced("1", "cus_1", previous), city=None),
        _row("2", city=None),
    ]
    plan = _plan(_config(on_null="clear"), rows)
    by_key = {c.key: c for c in plan.changes}
    assert by_key["1"].params == {"address.city": ""}
    assert "address.city" not in by_key["2"].params


def test_deletes_and_the_delete_fraction_guard():
    gone = [DiffRow(str(k), "deleted", None, {}, {}, _synced(str(k), f"cus_{k}", {})) for k in range(3)]
    plan = _plan(_config(), gone, model_rows=7, live=10)
    assert [c.action for c in plan.changes] == ["delete"] * 3 and plan.blocked is None
    plan = _plan(_config(), gone, model_rows=2, live=5)
    assert plan.blocked and "3 of its 5" in plan.blocked
    plan = _plan(_config(), gone, model_rows=0, live=3, settings=Settings(max_delete_fraction=1.0))
    assert plan.blocked and "is empty" in plan.blocked


@pytest.mark.parametrize(
    "ref", [{"sync": "stripe_prices", "column": "price_key"}, {"by": "email", "column": "email"}]
)
def test_unresolved_references_reject_the_row(ref):
    block = {
        "object": "invoice_item",
        "mode": "upsert",
        "primary_key": "id",
        "fields": {"quantity": "qty"},
        "references": {"customer": {"by": "email", "column": "email"}}
        if "by" in ref
        else {
            "customer": {"by": "email", "column": "email"},
            "pricing.price": ref,
        },
    }
    config = build("items", "model.p.items", block)
    row = DiffRow("1", "new", "h", {"id": 1, "email": "nobody@x.io", "qty": 1, "price_key": "p1"}, {}, None)
    (change,) = _plan(config, [row]).changes
    assert change.action == "reject"
    assert "no Stripe customer has email 'nobody@x.io'" in change.reason
    # rejected only for references that may resolve later: no attempt hash, so every run retries it
    assert change.row_hash is None


def test_change_init_matches_its_fields():
    """Change's hand-written __init__ (plan.py: one write instead of a frozen set per field) takes exactly
    the dataclass's fields, in order, with their defaults; a dict left out is a new one; it stays frozen."""
    import dataclasses
    import inspect

    from dbt_stripe_sync.plan import Change

    params = list(inspect.signature(Change.__init__).parameters)[1:]
    assert params == [f.name for f in dataclasses.fields(Change)]
    bare = Change("1", "create")
    for f in dataclasses.fields(Change):
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default_factory()
        elif f.default is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default
    assert bare.params is not Change("2", "create").params
    every = {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(Change))}
    assert dataclasses.asdict(Change(**every)) == every
    assert dataclasses.replace(bare, action="reject").action == "reject"
    with pytest.raises(dataclasses.FrozenInstanceError):
        bare.action = "update"  # type: ignore[misc]
    assert Change("1", "create", params={"a": 1}) == Change("1", "create", params={"a": 1})


def test_a_row_also_rejected_for_its_own_data_waits_for_a_change():
    """An unresolved reference beside a bad value: retrying each run cannot help until the row changes."""
    block = {
        "object": "invoice_item",
        "mode": "upsert",
        "primary_key": "id",
        "fields": {"quantity": "qty"},
        "references": {"customer": {"by": "email", "column": "email"}},
    }
    config = build("items", "model.p.items", block)
    row = DiffRow("1", "new", "h", {"id": 1, "email": "nobody@x.io", "qty": "many"}, {}, None)
    (change,) = _plan(config, [row]).changes
    assert change.action == "reject" and "no Stripe customer has email" in change.reason
    assert "expected a whole number" in change.reason and change.row_hash == "h"
