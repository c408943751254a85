"""Exactly-once where the ledger alone cannot tell: a lost ledger, re-keyed rows, a failed
recovery, null match values. Each scenario broke the promise in an outside trial; each asserts
exact object counts in the emulator, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.integration.test_faults import SMALL, SYNCS, _assert_stripe_equals_model, _write_seeds
from tests.support import scale
from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(600)


def _drop_state(project) -> None:
    project.query(f'drop schema "{project.state_schema}" cascade') if project.target == "postgres" else None
    if project.target == "duckdb":
        import duckdb

        con = duckdb.connect(project.env["DSS_DUCKDB_PATH"])
        try:
            con.execute(f'drop schema "{project.state_schema}" cascade')
        finally:
            con.close()


def test_lost_ledger_expired_keys_and_a_changed_price_duplicate_nothing(dbt_project, warehouse):
    project, emu = dbt_project, dbt_project.emulator
    seeds = scale.chain(SMALL)
    _write_seeds(project, seeds)
    assert project.sync().returncode == 0
    counts = {kind: len(emu.objects(kind)) for _, _, kind in SYNCS.values()}

    _drop_state(project)
    emu.expire_idempotency_keys()
    for row in seeds["raw_prices"]:
        if row["price_key"] == "p000_monthly":
            row["unit_amount"] = int(row["unit_amount"]) + 700
    _write_seeds(project, seeds)
    emu.clear_requests()
    rebuilt = project.sync()
    assert rebuilt.returncode == 0, rebuilt.stdout[-4000:] + rebuilt.stderr[-2000:]
    for sync in SYNCS:
        _assert_stripe_equals_model(project, sync, seeds)  # one live object per row, ledger = Stripe
    after = {kind: len(emu.objects(kind)) for _, _, kind in SYNCS.values()}
    assert after == {**counts, "price": counts["price"] + 1}  # only the new price for the changed amount
    # Reads to find the tagged objects: one list scan per sync, <= N/100 + 2 pages for N objects
    requests = emu.requests()
    for sync, (_, _, kind) in SYNCS.items():
        if kind == "customer":  # also listed by every `by: email` reference (4 syncs): matched on email
            continue
        path = "/v1/" + {"invoiceitem": "invoiceitems"}.get(kind, kind + "s")
        lists = [r for r in requests if r["method"] == "GET" and r["path"] == path]
        assert len(lists) <= after[kind] / 100 + 2, (sync, len(lists))
    creates = [w for w in api_writes(requests) if w["path"].count("/") == 2]
    assert [w["path"] for w in creates] == ["/v1/prices"]  # the replacement price; nothing else re-created

    emu.clear_requests()
    again = project.sync()
    assert again.returncode == 0 and api_writes(emu.requests()) == []


def _customers(project) -> list[dict]:
    return [c for c in project.emulator.objects("customer") if not c.get("deleted")]


def test_a_rekeyed_row_moves_its_customer_and_deletes_nothing(dbt_project, warehouse):
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_customers").returncode == 0
    grace = next(c for c in _customers(project) if c["email"] == "grace@example.com")
    rows = project.read_seed("raw_customers")
    for r in rows:
        if r["user_id"] == "2":
            r["user_id"], r["city"] = "102", "Boston"  # re-keyed, same email, and one field changed
    project.write_seed("raw_customers", rows)
    project.build()

    plan = project.sync("plan", "-s", "stripe_customers")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "1 rekey" in plan.stdout and "1 delete" not in plan.stdout
    emu.clear_requests()
    run = project.sync("-s", "stripe_customers")
    assert run.returncode == 0, run.stdout + run.stderr
    writes = [(w["method"], w["path"]) for w in api_writes(emu.requests())]
    assert writes == [("POST", f"/v1/customers/{grace['id']}")]  # no DELETE, no create
    moved = next(c for c in _customers(project) if c["id"] == grace["id"])
    assert moved["address"]["city"] == "Boston"
    assert moved["metadata"]["dbt_stripe_sync"] == "stripe_customers:102"
    ledger = project.ledger("stripe_customers")
    assert (ledger["102"]["status"], ledger["102"]["stripe_id"]) == ("synced", grace["id"])
    assert ledger["2"]["status"] == "deleted" and "re-keyed" in ledger["2"]["last_error"]
    assert len(_customers(project)) == len(rows)

    emu.clear_requests()
    again = project.sync("-s", "stripe_customers")
    assert again.returncode == 0 and api_writes(emu.requests()) == []


def test_a_rekeyed_product_is_not_deleted(dbt_project, warehouse):
    """The same with a Stripe ID match (products choose their ID)."""
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_products").returncode == 0
    rows = project.read_seed("raw_products")
    rows[0]["product_key"] = rows[0]["product_key"] + "_v2"
    project.write_seed("raw_products", rows)
    project.build("raw_products stripe_products")
    emu.clear_requests()
    run = project.sync("-s", "stripe_products")
    assert run.returncode == 0, run.stdout + run.stderr
    writes = [(w["method"], w["path"]) for w in api_writes(emu.requests())]
    assert writes == [("POST", f"/v1/products/{rows[0]['product_id']}")]
    products = {p["id"]: p for p in emu.objects("product")}
    assert products[rows[0]["product_id"]]["active"] is True and not products[rows[0]["product_id"]].get(
        "deleted"
    )


def test_a_pending_create_is_not_resent_under_a_new_key_when_recovery_fails(dbt_project, warehouse):
    """Crash after Stripe created a price, then Stripe fails while the next run recovers: the row stays
    pending with its key (never re-planned), and a later run ends with one price per row."""
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_products").returncode == 0
    # one checkpoint holds every row, so all are pending when the kill comes after the first send
    small = "{dbt_stripe_sync: {batch_size: 100, concurrency: 1}}"
    crashed = project.sync("-s", "stripe_prices", "--vars", small, env={CRASH_ENV: "after_send#1"})
    assert crashed.returncode == -9
    pending = {k: v["idempotency_key"] for k, v in project.ledger("stripe_prices").items()}
    assert len(emu.objects("price")) == 1  # Stripe created one; the row's outcome was never recorded
    assert len(pending) == 4 and {v["status"] for v in project.ledger("stripe_prices").values()} == {
        "pending"
    }

    emu.set_faults(error_rate=1.0)
    emu.clear_requests()
    failing = project.sync("-s", "stripe_prices", "--vars", "{dbt_stripe_sync: {max_retries: 1}}")
    emu.set_faults(error_rate=0.0)
    assert failing.returncode == 1
    assert "left pending" in failing.stdout
    sent = {r["idempotency_key"] for r in api_writes(emu.requests()) if r["path"] == "/v1/prices"}
    assert sent and sent <= set(pending.values())  # only the checkpointed keys: nothing re-planned
    ledger = project.ledger("stripe_prices")
    for key, first_key in pending.items():
        # still pending under its first key, or settled by Stripe's replay of the applied create
        assert (ledger[key]["status"], ledger[key]["idempotency_key"]) in {
            ("pending", first_key),
            ("synced", None),
        }
    assert {v["status"] for v in ledger.values()} & {"pending"}

    assert project.sync("-s", "stripe_prices").returncode == 0
    tags = Counter(p["metadata"]["dbt_stripe_sync"] for p in emu.objects("price"))
    assert tags == Counter(f"stripe_prices:{r['price_key']}" for r in project.read_seed("raw_prices"))


def test_a_null_match_email_is_rejected_not_created_without_one(dbt_project, warehouse):
    project = dbt_project
    rows = project.read_seed("raw_customers")
    rows[2]["email"] = ""
    project.write_seed("raw_customers", rows)
    project.build()
    run = project.sync("-s", "stripe_customers")
    assert run.returncode == 1
    assert f"row {rows[2]['user_id']}: column `email` is null" in run.stdout
    assert all(c.get("email") for c in _customers(project))
    assert len(_customers(project)) == len(rows) - 1
    assert project.ledger("stripe_customers")[rows[2]["user_id"]]["status"] == "rejected"


def test_a_column_name_with_a_quote_is_refused_by_validate(dbt_project, warehouse):
    project = dbt_project
    project.edit_schema_yml("name: full_name", 'name: full"name')
    project.dbt("parse")
    for command in ("validate", "run"):
        proc = project.sync(command, "-s", "stripe_customers")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "stripe_customers" in proc.stderr and "quote character" in proc.stderr
    assert project.emulator.requests() == [] or api_writes(project.emulator.requests()) == []


def test_a_lost_ledger_rebinds_every_object_without_a_write_when_nothing_changed(dbt_project, warehouse):
    """Customers found by email, products and prices by their tag (a product sync with no `match:`,
    so only the ledger or the tag can find them): after the state schema and Stripe's keys are
    lost, nothing is created again and nothing identical is re-sent."""
    project, emu = dbt_project, dbt_project.emulator
    project.edit_schema_yml(
        "          match: {field: id, column: product_id}\n", "", file="models/billing.yml"
    )
    project.build()
    chosen = ("-s", "stripe_customers", "stripe_products", "stripe_prices")
    assert project.sync(*chosen).returncode == 0
    before = {kind: len(emu.objects(kind)) for kind in ("customer", "product", "price")}
    _drop_state(project)
    emu.expire_idempotency_keys()
    emu.clear_requests()
    rebound = project.sync(*chosen)
    assert rebound.returncode == 0, rebound.stdout + rebound.stderr
    assert [(w["path"], w["params"]) for w in api_writes(emu.requests())] == []
    assert {kind: len(emu.objects(kind)) for kind in ("customer", "product", "price")} == before
    for sync in ("stripe_customers", "stripe_products", "stripe_prices"):
        assert {v["status"] for v in project.ledger(sync).values()} == {"synced"}, sync
