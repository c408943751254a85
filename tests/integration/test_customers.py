"""Issue #3 acceptance: the customer flow through the real dbt CLI, the real SDK and the emulator."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)


def _customers(emulator) -> dict[str, dict]:
    return {c["email"]: c for c in emulator.objects("customer") if not c.get("deleted")}


def test_first_run_creates_then_second_run_sends_nothing(dbt_project):
    dbt_project.build()
    rows = dbt_project.read_seed("raw_customers")
    emu = dbt_project.emulator

    first = dbt_project.sync("-s", "stripe_customers")
    assert first.returncode == 0, first.stdout + first.stderr
    reqs = emu.requests()
    creates = [r for r in reqs if r["method"] == "POST" and r["path"] == "/v1/customers"]
    lists = [r for r in reqs if r["method"] == "GET" and r["path"] == "/v1/customers"]
    assert len(creates) == len(rows)
    assert len(lists) == 1  # one page of all customers beats a look-up per email
    assert len(reqs) == len(rows) + 1

    stripe_side = _customers(emu)
    assert set(stripe_side) == {r["email"].lower() for r in rows}
    ada = stripe_side["ada@example.com"]
    assert ada["name"] == "Ada Lovelace"
    assert ada["address"]["line1"] == "12 St James's Sq"
    assert ada["address"]["city"] == "London"
    assert ada["preferred_locales"] == ["en", "fr"]
    assert ada["metadata"]["plan"] == "enterprise"
    assert ada["metadata"]["vip"] == "true"
    assert ada["metadata"]["signup_date"] == "2024-01-15"
    assert ada["metadata"]["ltv"] == "12500.50"
    # a null with on_null: skip is simply not sent
    assert "ltv" not in stripe_side["katherine@example.com"]["metadata"]

    ledger = dbt_project.ledger("stripe_customers")
    assert {k: v["stripe_id"] for k, v in ledger.items()} == {
        r["user_id"]: stripe_side[r["email"].lower()]["id"] for r in rows
    }
    assert {v["status"] for v in ledger.values()} == {"synced"}

    emu.clear_requests()
    second = dbt_project.sync("-s", "stripe_customers")
    assert second.returncode == 0, second.stdout + second.stderr
    assert api_writes(emu.requests()) == []
    assert emu.requests() == []  # nothing changed: not even a look-up


def test_changed_rows_send_only_changed_fields(dbt_project):
    dbt_project.build()
    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    emu = dbt_project.emulator
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["city"] = "Cambridge"  # part of address: the whole address goes
    rows[1]["plan_tier"] = "enterprise"  # one metadata key
    rows[2]["full_name"] = "Alan M. Turing"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.clear_requests()

    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout + result.stderr
    writes = api_writes(emu.requests())
    assert len(writes) == 3
    ids = {c["email"]: c["id"] for c in _customers(emu).values()}
    by_id = {w["path"].rsplit("/", 1)[1]: w["params"] for w in writes}
    assert set(by_id[ids["ada@example.com"]]) == {"address"}
    assert by_id[ids["ada@example.com"]]["address"] == {
        "line1": "12 St James's Sq",
        "city": "Cambridge",
        "country": "GB",
    }
    assert by_id[ids["grace@example.com"]] == {"metadata": {"plan": "enterprise"}}
    assert by_id[ids["alan@example.com"]] == {"name": "Alan M. Turing"}
    assert _customers(emu)["ada@example.com"]["address"]["city"] == "Cambridge"
    assert "updated" in result.stdout


def test_upsert_adopts_existing_customer_with_same_email(dbt_project):
    emu = dbt_project.emulator
    import stripe

    client = stripe.StripeClient(
        "sk_test_preexisting", base_addresses={"api": emu.url}, max_network_retries=0
    )
    existing = client.v1.customers.create(params={"email": "grace@example.com", "name": "G. Hopper (old)"})
    dbt_project.build()
    emu.clear_requests()
    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout + result.stderr
    customers = [c for c in emu.objects("customer") if c["email"] == "grace@example.com"]
    assert len(customers) == 1
    assert customers[0]["id"] == existing.id
    assert customers[0]["name"] == "Grace Hopper"
    assert dbt_project.ledger("stripe_customers")["2"]["stripe_id"] == existing.id


def test_update_mode_rejects_rows_without_match_and_insert_never_updates(dbt_project):
    emu = dbt_project.emulator
    import stripe

    client = stripe.StripeClient(
        "sk_test_preexisting", base_addresses={"api": emu.url}, max_network_retries=0
    )
    existing = client.v1.customers.create(params={"email": "ada@example.com", "name": "Old Name"})
    dbt_project.edit_schema_yml("mode: upsert", "mode: update")
    dbt_project.edit_schema_yml("          delete: delete\n", "")
    dbt_project.build()
    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 1  # rows were rejected
    assert "no Stripe customer found for email 'grace@example.com'" in result.stdout
    ledger = dbt_project.ledger("stripe_customers")
    assert ledger["1"]["status"] == "synced" and ledger["1"]["stripe_id"] == existing.id
    assert ledger["2"]["status"] == "rejected"
    assert "update mode" in ledger["2"]["last_error"]
    assert [c["name"] for c in emu.objects("customer")] == ["Ada Lovelace"]
    runs = dbt_project.query(
        f"select rejected, updated, created from {dbt_project.state_schema}.stripe_sync_runs"
    )
    assert runs == [(4, 1, 0)]
    again = dbt_project.sync("-s", "stripe_customers")  # nothing changed: nothing is re-sent ...
    assert again.returncode == 1  # ... but the rows still missing from Stripe are not forgotten
    assert "4 row(s) rejected by earlier runs are still not in Stripe" in again.stdout


def test_insert_mode_never_updates(dbt_project):
    emu = dbt_project.emulator
    dbt_project.edit_schema_yml("mode: upsert", "mode: insert")
    dbt_project.edit_schema_yml("          delete: delete\n", "")
    dbt_project.build()
    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Ada, Countess of Lovelace"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.clear_requests()
    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout + result.stderr
    assert api_writes(emu.requests()) == []
    assert _customers(emu)["ada@example.com"]["name"] == "Ada Lovelace"


@pytest.mark.parametrize("delete", ["delete", "nothing"])
def test_delete_behaviour(dbt_project, delete):
    emu = dbt_project.emulator
    if delete == "nothing":
        dbt_project.edit_schema_yml("delete: delete", "delete: nothing")
    dbt_project.build()
    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    gone = rows.pop(3)
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.clear_requests()
    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout + result.stderr
    remaining = _customers(emu)
    if delete == "delete":
        assert [(r["method"]) for r in api_writes(emu.requests())] == ["DELETE"]
        assert gone["email"] not in remaining
        assert dbt_project.ledger("stripe_customers")[gone["user_id"]]["status"] == "deleted"
    else:
        assert api_writes(emu.requests()) == []
        assert gone["email"] in remaining
    assert len(remaining) == len(rows) + (0 if delete == "delete" else 1)
    assert Counter(c["email"] for c in emu.objects("customer")).most_common(1)[0][1] == 1
