"""Independent syncs send at the same time (issue #10): Stripe limits each endpoint to 25 requests/s,
so customers and products, which do not depend on each other, go out together, interleaved, while a
sync that depends on them waits. Counted from the emulator's request log, exactly once each."""

from __future__ import annotations

import json

import pytest

from tests.support.moves import ada_moves_to as _ada_moves_to
from tests.support.moves import model_yml
from tests.support.moves import plan_and_run as _plan_and_run
from tests.support.moves import plan_rows as _plan_rows

pytestmark = pytest.mark.timeout(300)

N = 60  # more than one send queue's worth, so both syncs still have writes to send together


def _posts(emu, path: str) -> list[int]:
    """Positions in the request log of the POSTs to `path`."""
    return [i for i, r in enumerate(emu.requests()) if r["method"] == "POST" and r["path"] == path]


def test_independent_syncs_interleave_and_dependents_wait(dbt_project):
    customers = dbt_project.read_seed("raw_customers")
    base = customers[0]
    dbt_project.write_seed(
        "raw_customers",
        [{**base, "user_id": str(1000 + i), "email": f"wave{i}@example.com"} for i in range(N)],
    )
    products = dbt_project.read_seed("raw_products")
    dbt_project.write_seed(
        "raw_products",
        [
            *products,  # the prices model references these
            *(
                {**products[0], "product_key": f"wave{i}", "product_id": f"prod_dss_wave{i}"}
                for i in range(N)
            ),
        ],
    )
    dbt_project.build()
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", "-s", "stripe_customers", "stripe_products", "stripe_prices")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    custs, prods, prices = (
        _posts(emu, "/v1/customers"),
        _posts(emu, "/v1/products"),
        _posts(emu, "/v1/prices"),
    )
    assert len(custs) == N and len(prods) == N + len(products)  # each row created exactly once
    # the two independent syncs were sent together: products started before customers finished
    assert prods[0] < custs[-1]
    # prices name products through `sync:`: none is sent before every product exists
    assert prices and min(prices) > max(prods)
    runs = dict(
        dbt_project.query(f"select sync_name, created from {dbt_project.state_schema}.stripe_sync_runs")
    )
    assert runs["stripe_customers"] == N and runs["stripe_products"] == N + len(products)
    assert runs["stripe_prices"] == len(prices)


def test_a_subscription_is_cancelled_before_its_customer_is_deleted(dbt_project):
    """Deletes go after every create and update, dependents first: Stripe cancels a deleted customer's
    subscriptions at once, without the proration the subscriptions model asks for."""
    syncs = ("stripe_customers", "stripe_products", "stripe_prices", "stripe_subscriptions")
    dbt_project.build()
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", *syncs).returncode == 0
    sub_id = dbt_project.ledger("stripe_subscriptions")["s1"]["stripe_id"]
    cus_id = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    # Ada leaves: her customer row and her subscription row both go
    dbt_project.write_seed(
        "raw_customers", [r for r in dbt_project.read_seed("raw_customers") if r["user_id"] != "1"]
    )
    subs = dbt_project.read_seed("raw_subscriptions")
    dbt_project.write_seed("raw_subscriptions", [r for r in subs if r["subscription_key"] != "s1"])
    dbt_project.build()
    emu.clear_requests()

    proc = dbt_project.sync("run", "-s", *syncs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    writes = [(r["method"], r["path"], r["status"]) for r in emu.requests() if r["method"] != "GET"]
    assert writes == [
        ("DELETE", f"/v1/subscriptions/{sub_id}", 200),  # cancelled as the model says (prorated) ...
        ("DELETE", f"/v1/customers/{cus_id}", 200),  # ... then the customer goes
    ]
    cancel = next(r for r in emu.requests() if r["method"] == "DELETE" and sub_id in r["path"])
    assert cancel["params"].get("prorate") in (True, "true")
    ((action, outcome, status, request_id),) = dbt_project.query(
        "select action, outcome, http_status, request_id "
        f"from {dbt_project.state_schema}.stripe_sync_changelog "
        "where sync_name = 'stripe_subscriptions' and source_key = 's1' and action <> 'create'"
    )
    assert (action, outcome, status) == ("cancel", "ok", 200)
    assert request_id == cancel["id"]


@pytest.mark.parametrize("leads", ["stripe_leads", "stripe_accounts"])  # synced after / before customers
def test_a_customer_moving_to_another_model_is_kept_not_deleted(dbt_project, tmp_path, leads):
    """Ada leaves stripe_customers (delete: delete) and appears in a second customers model, matched by
    email: her customer moves to it — updated, never deleted — whichever model is synced first. (Deleting
    it last left the new model's ledger pointing at a deleted customer, exit 0.) `plan` predicts it:
    the same counts, the old row retired (`rekey`, "moved: ..."), no delete. The customer carries the
    new row's tag afterwards (with the update, or, when the new model was synced first, rewritten
    once the deletes are done: one more POST)."""
    sel, ada = _ada_moves_to(dbt_project, leads)
    emu = dbt_project.emulator
    planned, _ = _plan_and_run(dbt_project, tmp_path, *sel)
    (moved,) = _plan_rows(planned, "stripe_customers")
    assert (moved["key"], moved["action"]) == ("1", "rekey") and moved["reason"].startswith("moved: ")
    (taken,) = _plan_rows(planned, leads)
    assert (taken["key"], taken["action"], taken["stripe_id"]) == ("L1", "update", ada)
    writes = [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]
    retag = [("POST", f"/v1/customers/{ada}")] if leads == "stripe_accounts" else []
    assert writes == [("POST", f"/v1/customers/{ada}"), *retag]  # updated by her new row; nothing deleted
    customer = next(c for c in emu.objects("customer") if c["id"] == ada)
    assert customer["name"] == "Ada, Countess"
    assert customer["metadata"]["dbt_stripe_sync"] == f"{leads}:L1"  # found under its new owner
    assert dbt_project.ledger(leads)["L1"]["stripe_id"] == ada
    old = dbt_project.ledger("stripe_customers")["1"]
    assert old["status"] == "deleted" and "moved" in old["last_error"]  # retired, like a re-key
    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert [r for r in emu.requests() if r["method"] != "GET"] == []


@pytest.mark.parametrize("leads", ["stripe_leads", "stripe_accounts"])  # synced after / before customers
def test_a_customer_taken_over_in_an_earlier_run_is_not_deleted_later(dbt_project, tmp_path, leads):
    """Outside attack 4: the takeover is not only decided inside one run. Ada's row moves to the leads
    model, which is synced alone first (`run -s`: it binds her customer by email); the next full run
    plans stripe_customers' delete of row 1 while the leads row is unchanged, so no row of that run
    binds her. The ledger still has the leads row synced to her customer: the delete is a move, not
    a delete (it used to be sent, leaving the leads row `synced` to a deleted customer for good)."""
    sel, ada = _ada_moves_to(dbt_project, leads)
    assert dbt_project.sync("run", "-s", leads).returncode == 0  # the leads model alone takes her
    assert dbt_project.ledger(leads)["L1"]["stripe_id"] == ada

    emu = dbt_project.emulator
    planned, _ = _plan_and_run(dbt_project, tmp_path, *sel)
    (moved,) = _plan_rows(planned, "stripe_customers")
    assert (moved["key"], moved["action"]) == ("1", "rekey")
    assert moved["reason"] == f"moved: {ada} is still synced by {leads} row L1; nothing is deleted"
    assert [r for r in emu.requests() if r["method"] != "GET"] == []  # nothing deleted
    assert not next(c for c in emu.objects("customer") if c["id"] == ada).get("deleted")
    old = dbt_project.ledger("stripe_customers")["1"]
    assert old["status"] == "deleted" and "moved" in old["last_error"]
    assert dbt_project.ledger(leads)["L1"]["status"] == "synced"
    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert [r for r in emu.requests() if r["method"] != "GET"] == []


def test_no_subscription_is_created_for_a_customer_the_same_run_deletes(dbt_project, tmp_path):
    """Ada leaves the customers model while a new subscription row for her appears: as one sync after
    another would, the subscription is rejected (no customer has her email once she is deleted), not
    created and then cancelled by her customer's delete. `plan` predicts exactly that."""
    syncs = ("stripe_customers", "stripe_products", "stripe_prices", "stripe_subscriptions")
    dbt_project.build()
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", *syncs).returncode == 0
    sub_id = dbt_project.ledger("stripe_subscriptions")["s1"]["stripe_id"]
    cus_id = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    dbt_project.write_seed(
        "raw_customers", [r for r in dbt_project.read_seed("raw_customers") if r["user_id"] != "1"]
    )
    subs = dbt_project.read_seed("raw_subscriptions")
    s1 = next(r for r in subs if r["subscription_key"] == "s1")
    rest = [r for r in subs if r["subscription_key"] != "s1"]
    dbt_project.write_seed("raw_subscriptions", [*rest, {**s1, "subscription_key": "s9"}])
    dbt_project.build()
    planned, _ = _plan_and_run(dbt_project, tmp_path, "-s", *syncs, code=1)  # s9 is rejected
    s9_planned = next(r for r in _plan_rows(planned, "stripe_subscriptions") if r["key"] == "s9")
    assert s9_planned["action"] == "reject" and "ada@example.com" in s9_planned["reason"]
    writes = [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]
    assert writes == [("DELETE", f"/v1/subscriptions/{sub_id}"), ("DELETE", f"/v1/customers/{cus_id}")]
    s9 = dbt_project.ledger("stripe_subscriptions")["s9"]
    assert s9["status"] == "rejected" and "ada@example.com" in s9["last_error"]


def test_a_dependent_blocked_by_its_delete_guard_holds_back_its_customers_deletes(dbt_project):
    """Subscriptions lose 2 of 3 rows (blocked by max_delete_fraction: nothing sent for them) while
    customers lose 1 of 5: deleting that customer would cancel its subscription without the proration
    the blocked model asks for, so the customers' deletes wait for a run where subscriptions finish."""
    syncs = ("stripe_customers", "stripe_products", "stripe_prices", "stripe_subscriptions")
    dbt_project.build()
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", *syncs).returncode == 0
    dbt_project.write_seed(
        "raw_customers", [r for r in dbt_project.read_seed("raw_customers") if r["user_id"] != "1"]
    )
    subs = dbt_project.read_seed("raw_subscriptions")
    dbt_project.write_seed("raw_subscriptions", [r for r in subs if r["subscription_key"] == "s3"])
    dbt_project.build()
    emu.clear_requests()

    proc = dbt_project.sync("run", "-s", *syncs)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "max_delete_fraction" in proc.stdout and "held back" in proc.stdout
    assert [r for r in emu.requests() if r["method"] != "GET"] == []
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"  # planned again next run


def test_prices_naming_chosen_product_ids_in_a_plain_column_wait_for_the_products(dbt_project, tmp_path):
    """Finding 7: a price whose `product` is a plain column (the ID the products model chose) names a
    product created in the same run, so the prices sync waits for every products sync: no 404."""
    products = [
        {
            "product_key": f"p{i}",
            "product_id": f"prod_dss_p{i}",
            "name": f"P{i}",
            "description": "d",
            "tier": "t",
        }
        for i in range(N)
    ]
    dbt_project.write_seed("raw_products", products)
    # prices name the products in reverse order, so a price sent beside the products would race them
    dbt_project.write_seed(
        "raw_prices",
        [
            {"price_key": f"pr{i}", "product_key": f"p{N - 1 - i}", "unit_amount": str(100 + i)}
            | {"currency": "usd", "billing_interval": "month", "nickname": f"Pr{i}"}
            for i in range(N)
        ],
    )
    dbt_project.write_file(
        "models/billing/stripe_prices.sql",
        "select pr.price_key, p.product_id, pr.unit_amount, pr.currency, pr.billing_interval, pr.nickname\n"
        "from {{ ref('raw_prices') }} pr join {{ ref('raw_products') }} p using (product_key)\n",
    )
    dbt_project.edit_schema_yml(
        "          references:\n            product: {sync: stripe_products, column: product_key}\n",
        "            product: product_id\n",
        file="models/billing.yml",
    )
    dbt_project.build()
    emu = dbt_project.emulator
    sel = ("-s", "stripe_products", "stripe_prices")
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "run.json"
    plan = dbt_project.sync("plan", *sel, "--output", str(plan_file))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    emu.clear_requests()

    proc = dbt_project.sync("run", *sel, "--output", str(report_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prods, prices = _posts(emu, "/v1/products"), _posts(emu, "/v1/prices")
    assert len(prods) == N and len(prices) == N  # each created once: no 404, no retry
    assert [r["status"] for r in emu.requests() if r["method"] == "POST"] == [200] * (2 * N)
    assert min(prices) > max(prods)  # every price after every product
    planned = {s["model"]: s["counts"] for s in json.loads(plan_file.read_text())["syncs"]}
    done = {s["model"]: s["counts"] for s in json.loads(report_file.read_text())["syncs"]}
    assert done == planned and done["stripe_prices"]["created"] == N


def test_a_price_naming_by_plain_id_a_product_the_run_deletes_is_rejected(dbt_project, tmp_path):
    """Finding 2c: a price whose `product` is a plain column names a product that leaves the products
    model in the same run. One sync after another, the product is deleted first and the price refused;
    so in waves the price is rejected (retried every run), never created — and the product is deleted,
    not archived because of a price nobody asked for. `plan` predicts it."""
    row = {"description": "d", "tier": "t"}
    dbt_project.write_seed(
        "raw_products",
        [
            {"product_key": k, "product_id": f"prod_dss_{k}", "name": k.title(), **row}
            for k in ("gold", "silver")
        ],
    )
    price = {"unit_amount": "100", "currency": "usd", "billing_interval": "month", "nickname": "m"}
    dbt_project.write_seed("raw_prices", [{"price_key": "s_m", "product_key": "silver", **price}])
    dbt_project.write_file(
        "models/billing/stripe_prices.sql",
        "select price_key, 'prod_dss_' || product_key as product_id, unit_amount, currency,\n"
        "  billing_interval, nickname\nfrom {{ ref('raw_prices') }}\n",
    )
    dbt_project.edit_schema_yml(
        "          references:\n            product: {sync: stripe_products, column: product_key}\n",
        "            product: product_id\n",
        file="models/billing.yml",
    )
    dbt_project.build()
    sel = ("-s", "stripe_products", "stripe_prices")
    assert dbt_project.sync("run", *sel).returncode == 0
    # gold leaves the products model while a price for it appears
    dbt_project.write_seed(
        "raw_products", [r for r in dbt_project.read_seed("raw_products") if r["product_key"] != "gold"]
    )
    dbt_project.write_seed(
        "raw_prices",
        [
            {"price_key": "s_m", "product_key": "silver", **price},
            {"price_key": "g_m", "product_key": "gold", **price},
        ],
    )
    dbt_project.build()
    emu = dbt_project.emulator
    planned, _ = _plan_and_run(dbt_project, tmp_path, *sel, code=1)  # g_m is rejected
    (g_m,) = _plan_rows(planned, "stripe_prices")
    assert g_m["action"] == "reject" and "prod_dss_gold is deleted by this run" in g_m["reason"]
    writes = [(r["method"], r["path"], r["status"]) for r in emu.requests() if r["method"] != "GET"]
    assert writes == [("DELETE", "/v1/products/prod_dss_gold", 200)]
    assert "prod_dss_gold" not in {p["id"] for p in emu.objects("product")}
    assert [p["product"] for p in emu.objects("price")] == ["prod_dss_silver"]
    entry = dbt_project.ledger("stripe_prices")["g_m"]
    assert entry["status"] == "rejected" and "stripe_products row gold" in entry["last_error"]
    assert dbt_project.ledger("stripe_products")["gold"]["status"] == "deleted"


@pytest.mark.parametrize("taker", ["stripe_products_b", "stripe_catalog"])  # synced after / before
def test_a_product_with_prices_moving_to_another_model_is_not_archived(dbt_project, tmp_path, taker):
    """A product with a price cannot be deleted, so the model it leaves would archive it (`active:
    false`); when another model takes it over, that archive is dropped like a delete: the product
    stays active, updated by its new row and tagged with it. `plan` predicts it."""
    dbt_project.write_seed("raw_products_b", [{"product_key": "x", "product_id": "prod_dss_x", "name": "X"}])
    dbt_project.write_file(f"models/{taker}.sql", "select * from {{ ref('raw_products_b') }}\n")
    dbt_project.write_file(
        "models/products_b.yml",
        model_yml(
            taker, "product", "product_key", "{field: id, column: product_id}", "{name: name}", "delete"
        ),
    )
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_products", "stripe_prices", taker).returncode == 0
    assert any(p["product"] == "prod_dss_basic" for p in emu_prices(dbt_project))  # so it would be archived

    products = dbt_project.read_seed("raw_products")
    dbt_project.write_seed("raw_products", [r for r in products if r["product_key"] != "basic"])
    dbt_project.write_seed(
        "raw_products_b",
        [
            {"product_key": "x", "product_id": "prod_dss_x", "name": "X"},
            {"product_key": "basic", "product_id": "prod_dss_basic", "name": "Basic plan, moved"},
        ],
    )
    dbt_project.build()
    emu = dbt_project.emulator
    sel = ("-s", "stripe_products", taker)
    planned, _ = _plan_and_run(dbt_project, tmp_path, *sel)
    (moved,) = _plan_rows(planned, "stripe_products")
    assert (moved["key"], moved["action"]) == ("basic", "rekey")
    writes = [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]
    retag = [("POST", "/v1/products/prod_dss_basic")] if taker == "stripe_catalog" else []
    assert writes == [("POST", "/v1/products/prod_dss_basic"), *retag]  # no delete, no archive
    assert all(r["params"].get("active") in (None, True, "true") for r in emu.requests())
    basic = next(p for p in emu.objects("product") if p["id"] == "prod_dss_basic")
    assert basic["active"] is True and basic["name"] == "Basic plan, moved"
    assert basic["metadata"]["dbt_stripe_sync"] == f"{taker}:basic"
    assert dbt_project.ledger(taker)["basic"]["stripe_id"] == "prod_dss_basic"
    assert dbt_project.ledger("stripe_products")["basic"]["status"] == "deleted"  # retired: moved


def emu_prices(project) -> list[dict]:
    return project.emulator.objects("price")
