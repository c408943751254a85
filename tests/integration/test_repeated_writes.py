"""A write that repeats an earlier one is applied, not replayed.

Stripe keeps an idempotency key's first response for at least 24 hours and answers a repeat with
it, applying nothing. A key derived only from the row and its content made a value that came back
(A -> B -> A -> B) or a row that left the model and came back reuse an earlier write's key: Stripe
replayed the old response, the ledger recorded success, and Stripe kept the wrong value (or the
row was bound to the object its delete had removed) for good (outside attack 13 #1, #2). Each
write's key is now its own (the run that checkpoints it salts it); a crash still re-sends the key
stored with the pending write (test_crash_safety)."""

from __future__ import annotations

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(600)


def _customer(emu, customer_id: str) -> dict | None:
    return next((c for c in emu.objects("customer") if c["id"] == customer_id), None)


def _set_name(project, user_id: str, name: str) -> None:
    rows = project.read_seed("raw_customers")
    for r in rows:
        if r["user_id"] == user_id:
            r["full_name"] = name
    project.write_seed("raw_customers", rows)
    project.build()


def test_a_value_that_comes_back_is_applied_every_time(dbt_project, warehouse):
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_customers").returncode == 0
    customer_id = project.ledger("stripe_customers")["2"]["stripe_id"]
    for name in ("Grace B", "Grace Hopper", "Grace B", "Grace Hopper"):
        _set_name(project, "2", name)
        emu.clear_requests()
        result = project.sync("-s", "stripe_customers")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        writes = api_writes(emu.requests())
        assert [w["path"] for w in writes] == [f"/v1/customers/{customer_id}"], name
        assert _customer(emu, customer_id)["name"] == name  # applied, not a replayed answer
    emu.clear_requests()
    assert project.sync("-s", "stripe_customers").returncode == 0
    assert api_writes(emu.requests()) == []


def test_a_row_that_leaves_and_comes_back_gets_a_live_object(dbt_project, warehouse):
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_customers").returncode == 0
    first = project.ledger("stripe_customers")["3"]["stripe_id"]
    rows = project.read_seed("raw_customers")
    project.write_seed("raw_customers", [r for r in rows if r["user_id"] != "3"])
    project.build()
    assert project.sync("-s", "stripe_customers").returncode == 0
    gone = _customer(emu, first)
    assert gone is None or gone.get("deleted") is True

    project.write_seed("raw_customers", rows)  # the same row, the same content, back again
    project.build()
    emu.clear_requests()
    result = project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert [w["path"] for w in api_writes(emu.requests())] == ["/v1/customers"]
    again = project.ledger("stripe_customers")["3"]
    assert again["status"] == "synced" and again["stripe_id"] != first
    live = _customer(emu, again["stripe_id"])
    assert live is not None and not live.get("deleted") and live["email"] == "alan@example.com"
    alans = [
        c for c in emu.objects("customer") if c.get("email") == "alan@example.com" and not c.get("deleted")
    ]
    assert len(alans) == 1
    emu.clear_requests()
    assert project.sync("-s", "stripe_customers").returncode == 0
    assert api_writes(emu.requests()) == []
