"""Independent syncs send at the same time (issue #10): Stripe limits each endpoint to 25 requests/s,
so customers and products, which do not depend on each other, go out together, interleaved, while a
sync that depends on them waits. Counted from the emulator's request log, exactly once each."""

from __future__ import annotations

import json

import pytest

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
