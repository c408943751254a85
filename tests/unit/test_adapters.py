"""Billing adapters against the emulator through the real gateway: what each change sends, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_stripe_sync.config.model import FieldMapping, Match, SyncConfig
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.stripe_objects.subscription import item_operations

KEY = "sk_test_adapters"


@pytest.fixture
def emu(stripe_emulator):
    return stripe_emulator


@pytest.fixture
def gw(emu):
    with StripeGateway(KEY, api_base=emu.url, max_retries=0) as gateway:
        yield gateway


def config(obj: str, mode: str = "upsert", **options: Any) -> SyncConfig:
    return SyncConfig(
        model=f"stripe_{obj}s",
        unique_id=f"model.p.stripe_{obj}s",
        object=obj,
        mode=mode,
        primary_key="k",
        match=Match("id", "stripe_id"),
        fields=(FieldMapping("metadata.k", "k"),),
        delete="delete",
        options=options,
    )


def writes(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["method"] in ("POST", "DELETE")]


def calls(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests()]


def as_lists(value: Any) -> Any:
    """The request log keeps form params as sent (`items[0][id]` -> {"0": {...}}); read them as lists."""
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return [as_lists(value[k]) for k in sorted(value, key=int)]
        return {k: as_lists(v) for k, v in value.items()}
    return value


def seed(gw: StripeGateway) -> dict[str, Any]:
    """A customer, a product with two monthly prices and a one-time price."""
    cus = gw.request("post", "/v1/customers", {"email": "a@example.com"})
    prod = gw.request("post", "/v1/products", {"name": "Pro", "id": "prod_pro"})
    month = {"currency": "usd", "product": prod["id"], "recurring": {"interval": "month"}}
    p1 = gw.request("post", "/v1/prices", {**month, "unit_amount": 1000})
    p2 = gw.request("post", "/v1/prices", {**month, "unit_amount": 2000})
    once = gw.request("post", "/v1/prices", {"currency": "usd", "product": prod["id"], "unit_amount": 500})
    return {"customer": cus["id"], "product": prod["id"], "p1": p1["id"], "p2": p2["id"], "once": once["id"]}


def change(action: str, stripe_id: str | None = None, params: dict | None = None, **kw: Any) -> Change:
    return Change(
        key="1",
        action=action,
        stripe_id=stripe_id,
        params=params or {},
        full=kw.pop("full", params or {}),
        idempotency_key=kw.pop("idempotency_key", f"dss_test_{action}_{stripe_id}"),
        **kw,
    )


# ---- pure: subscription item reconciliation ---------------------------------------------------------
def test_item_operations_reuse_ids_swap_prices_and_delete_leftovers():
    existing = [
        {"id": "si_a", "price": {"id": "price_1"}, "quantity": 1},
        {"id": "si_b", "price": {"id": "price_2"}, "quantity": 3},
    ]
    # unchanged: nothing to send
    assert item_operations(existing, [{"price": "price_1", "quantity": 1}, {"price": "price_2"}]) == []
    # a quantity change on the item that has the price, wherever it sits in the list
    assert item_operations(existing, [{"price": "price_2", "quantity": 5}, {"price": "price_1"}]) == [
        {"id": "si_b", "quantity": 5}
    ]
    # a new price swaps in place on the item whose price left; a removed item is deleted
    assert item_operations(existing, [{"price": "price_9", "quantity": 1}]) == [
        {"id": "si_a", "price": "price_9"},
        {"id": "si_b", "deleted": True},
    ]
    # an extra item is added without an id
    assert item_operations(existing[:1], [{"price": "price_1"}, {"price": "price_2", "quantity": 2}]) == [
        {"price": "price_2", "quantity": 2}
    ]


def test_required_problems_name_the_missing_field():
    c = config("price")
    price = adapter_for("price")
    assert price.required_problems({"currency": "usd", "product": "p"}, creating=True, config=c) == [
        "a price needs unit_amount, unit_amount_decimal, custom_unit_amount or tiers"
    ]
    assert (
        price.required_problems(
            {"custom_unit_amount.enabled": True, "currency": "usd", "product_data.name": "x"},
            creating=True,
            config=c,
        )
        == []
    )
    sub = adapter_for("subscription")
    assert sub.required_problems({"items[0].quantity": 2}, creating=True, config=c) == [
        "a subscription needs a customer",
        "items[0]: needs price or price_data",
    ]
    assert sub.required_problems({"customer": "cus_1"}, creating=True, config=c) == [
        "items: at least one entry is required (items[0].price)"
    ]
    assert sub.required_problems({"customer": "c", "items": [{"price": "p"}]}, creating=True, config=c) == []
    item = adapter_for("invoice_item")
    assert item.required_problems({"customer": "c", "amount": 5}, creating=True, config=c) == [
        "an invoice item needs pricing.price (or price_data), or amount + currency: currency missing"
    ]
    assert item.required_problems({"customer": "c", "pricing.price": "p"}, creating=True, config=c) == []
    quote = adapter_for("quote")
    assert quote.required_problems({"customer": "c"}, creating=True, config=c) == [
        "line_items: at least one entry is required (line_items[0].price)"
    ]
    assert adapter_for("invoice").required_problems({}, creating=True, config=c) == [
        "an invoice needs a customer"
    ]


def test_create_only_fields_come_from_the_sdk():
    assert {"unit_amount", "currency", "recurring", "product"} <= adapter_for("price").create_only
    assert "nickname" not in adapter_for("price").create_only
    assert {"customer", "currency"} <= adapter_for("subscription").create_only
    assert adapter_for("product").create_only >= {"id"}


# ---- deletes as Stripe allows them -------------------------------------------------------------------
def test_product_delete_archives_while_it_has_prices_else_deletes(emu, gw):
    ids = seed(gw)
    bare = gw.request("post", "/v1/products", {"name": "Bare"})
    product = adapter_for("product")
    emu.clear_requests()
    out = product.delete(gw, ids["product"], config("product"), "dss_k1")
    assert (out.status, out.action) == ("archived", "archived")
    out2 = product.delete(gw, bare["id"], config("product"), "dss_k2")
    assert (out2.status, out2.action) == ("deleted", "deleted")
    assert calls(emu) == [
        ("GET", "/v1/prices"),
        ("POST", f"/v1/products/{ids['product']}"),
        ("GET", "/v1/prices"),
        ("DELETE", f"/v1/products/{bare['id']}"),
    ]
    assert [p["active"] for p in emu.objects("product")] == [False]


def test_price_delete_archives(emu, gw):
    ids = seed(gw)
    emu.clear_requests()
    out = adapter_for("price").delete(gw, ids["p1"], config("price"), "dss_k")
    assert (out.status, out.action) == ("archived", "archived")
    assert writes(emu) == [("POST", f"/v1/prices/{ids['p1']}")]
    assert next(p for p in emu.objects("price") if p["id"] == ids["p1"])["active"] is False


@pytest.mark.parametrize(
    ("behavior", "prorate", "invoice_now"),
    [("create_prorations", "true", "false"), ("none", "false", "false"), ("always_invoice", "true", "true")],
)
def test_subscription_delete_cancels_with_configured_proration(emu, gw, behavior, prorate, invoice_now):
    ids = seed(gw)
    sub = gw.request(
        "post", "/v1/subscriptions", {"customer": ids["customer"], "items": [{"price": ids["p1"]}]}
    )
    emu.clear_requests()
    adapter = adapter_for("subscription")
    c = config("subscription", proration_behavior=behavior)
    assert "cancel" in adapter.describe_delete(c)
    out = adapter.delete(gw, sub["id"], c, "dss_k")
    assert (out.status, out.action) == ("deleted", "cancelled")
    reqs = emu.requests()
    assert [(r["method"], r["path"]) for r in reqs] == [("DELETE", f"/v1/subscriptions/{sub['id']}")]
    assert {k: str(v).lower() for k, v in reqs[0]["params"].items()} == {
        "prorate": prorate,
        "invoice_now": invoice_now,
    }
    assert emu.objects("subscription")[0]["status"] == "canceled"
    again = adapter.delete(gw, sub["id"], c, "dss_k")  # already cancelled: the goal is reached
    assert (again.status, again.action) == ("deleted", "cancelled")


@pytest.mark.parametrize("void_finalized", [False, True])
def test_invoice_delete_by_status(emu, gw, void_finalized):
    ids = seed(gw)
    draft = gw.request("post", "/v1/invoices", {"customer": ids["customer"]})
    opened = gw.request("post", "/v1/invoices", {"customer": ids["customer"]})
    gw.request(
        "post",
        "/v1/invoiceitems",
        {"customer": ids["customer"], "invoice": opened["id"], "amount": 700, "currency": "usd"},
    )
    gw.request("post", f"/v1/invoices/{opened['id']}/finalize")
    paid = gw.request("post", "/v1/invoices", {"customer": ids["customer"]})
    gw.request("post", f"/v1/invoices/{paid['id']}/finalize")  # total 0: paid at once
    adapter, c = adapter_for("invoice"), config("invoice", void_finalized=void_finalized)
    emu.clear_requests()

    out = adapter.delete(gw, draft["id"], c, "dss_k1")
    assert (out.status, out.action) == ("deleted", "deleted")
    out = adapter.delete(gw, opened["id"], c, "dss_k2")
    if void_finalized:
        assert (out.status, out.action) == ("deleted", "voided")
    else:
        assert (out.status, out.action) == ("left", "left")
        assert "void_finalized: true" in out.reason
    out = adapter.delete(gw, paid["id"], c, "dss_k3")
    assert (out.status, out.action) == ("left", "left") and "paid" in out.reason

    expected = [("DELETE", f"/v1/invoices/{draft['id']}")]
    if void_finalized:
        expected.append(("POST", f"/v1/invoices/{opened['id']}/void"))
    assert writes(emu) == expected
    assert len([r for r in emu.requests() if r["method"] == "GET"]) == 3  # one status read per invoice
    status = {i["id"]: i["status"] for i in emu.objects("invoice")}
    assert draft["id"] not in status
    assert status[opened["id"]] == ("void" if void_finalized else "open")


def test_invoice_item_delete_only_when_pending_or_on_a_draft(emu, gw):
    ids = seed(gw)
    draft = gw.request("post", "/v1/invoices", {"customer": ids["customer"]})
    final = gw.request("post", "/v1/invoices", {"customer": ids["customer"]})
    base = {"customer": ids["customer"], "amount": 100, "currency": "usd"}
    pending = gw.request("post", "/v1/invoiceitems", base)
    on_draft = gw.request("post", "/v1/invoiceitems", {**base, "invoice": draft["id"]})
    on_final = gw.request("post", "/v1/invoiceitems", {**base, "invoice": final["id"]})
    gw.request("post", f"/v1/invoices/{final['id']}/finalize")
    adapter, c = adapter_for("invoice_item"), config("invoice_item")
    emu.clear_requests()
    assert adapter.delete(gw, pending["id"], c, "k1").action == "deleted"
    assert adapter.delete(gw, on_draft["id"], c, "k2").action == "deleted"
    left = adapter.delete(gw, on_final["id"], c, "k3")
    assert (left.status, left.action) == ("left", "left") and "open" in left.reason
    assert writes(emu) == [
        ("DELETE", f"/v1/invoiceitems/{pending['id']}"),
        ("DELETE", f"/v1/invoiceitems/{on_draft['id']}"),
    ]
    assert len(emu.requests()) == 5  # one read per item (its invoice expanded), two deletes
    assert [i["id"] for i in emu.objects("invoiceitem")] == [on_final["id"]]


def test_quote_delete_cancels(emu, gw):
    ids = seed(gw)
    quote = gw.request(
        "post", "/v1/quotes", {"customer": ids["customer"], "line_items": [{"price": ids["p1"]}]}
    )
    emu.clear_requests()
    out = adapter_for("quote").delete(gw, quote["id"], config("quote"), "dss_k")
    assert (out.status, out.action) == ("deleted", "cancelled")
    assert writes(emu) == [("POST", f"/v1/quotes/{quote['id']}/cancel")]
    assert emu.objects("quote")[0]["status"] == "canceled"


# ---- updates ---------------------------------------------------------------------------------------
def test_subscription_item_update_reads_first_and_carries_item_ids(emu, gw):
    ids = seed(gw)
    sub = gw.request(
        "post",
        "/v1/subscriptions",
        {"customer": ids["customer"], "items": [{"price": ids["p1"], "quantity": 2}]},
    )
    item_id = sub["items"]["data"][0]["id"]
    emu.clear_requests()
    adapter, c = adapter_for("subscription"), config("subscription", proration_behavior="none")
    params = {"items[0].price": ids["p2"], "items[0].quantity": 2}
    result = adapter.execute(gw, change("update", sub["id"], params, ledger=None), c)
    assert (result.stripe_id, result.action) == (sub["id"], "updated")
    reqs = emu.requests()
    assert [(r["method"], r["path"]) for r in reqs] == [
        ("GET", f"/v1/subscriptions/{sub['id']}"),
        ("POST", f"/v1/subscriptions/{sub['id']}"),
    ]
    assert as_lists(reqs[1]["params"]["items"]) == [{"id": item_id, "price": ids["p2"]}]
    assert reqs[1]["params"]["proration_behavior"] == "none"
    items = [i for i in emu.objects("subscription_item")]
    assert [(i["id"], i["price"]["id"], i["quantity"]) for i in items] == [(item_id, ids["p2"], 2)]

    # the same wish again: one read, no write
    emu.clear_requests()
    again = adapter.execute(gw, change("update", sub["id"], params, idempotency_key="dss_other"), c)
    assert again.action == "updated" and "nothing sent" in again.note
    assert writes(emu) == []


def test_price_replace_creates_archives_and_moves_own_subscriptions(emu, gw):
    ids = seed(gw)
    tagged = {"metadata": {"dbt_stripe_sync": "stripe_subscriptions:1"}}
    ours = gw.request(
        "post", "/v1/subscriptions", {"customer": ids["customer"], "items": [{"price": ids["p1"]}], **tagged}
    )
    theirs = gw.request(
        "post", "/v1/subscriptions", {"customer": ids["customer"], "items": [{"price": ids["p1"]}]}
    )
    emu.clear_requests()
    params = {
        "currency": "usd",
        "product": ids["product"],
        "recurring.interval": "month",
        "unit_amount": 1500,
        "metadata.dbt_stripe_sync": "stripe_prices:1",
    }
    result = adapter_for("price").execute(
        gw, change("replace", ids["p1"], params), config("price", move_subscriptions=True)
    )
    assert result.action == "replaced" and result.stripe_id != ids["p1"]
    new_id = result.stripe_id
    assert writes(emu) == [
        ("POST", "/v1/prices"),
        ("POST", f"/v1/prices/{ids['p1']}"),
        ("POST", f"/v1/subscriptions/{ours['id']}"),
    ]
    prices = {p["id"]: p for p in emu.objects("price")}
    assert prices[new_id]["unit_amount"] == 1500 and prices[new_id]["active"] is True
    assert prices[ids["p1"]]["active"] is False
    subs = {s["id"]: s for s in emu.objects("subscription")}
    assert subs[ours["id"]]["items"]["data"][0]["price"]["id"] == new_id
    assert subs[ours["id"]]["items"]["data"][0]["id"] == ours["items"]["data"][0]["id"]
    assert subs[theirs["id"]]["items"]["data"][0]["price"]["id"] == ids["p1"]  # not ours: untouched


def test_price_change_rejected_when_configured():
    price = adapter_for("price")
    verdict, reason = price.plan_immutable_change(config("price", on_price_change="reject"), ["unit_amount"])
    assert verdict == "reject" and "unit_amount" in reason
    assert price.plan_immutable_change(config("price"), ["unit_amount"])[0] == "replace"
    assert price.plan_immutable_change(config("price"), ["product_data"])[0] == "reject"


def test_product_existing_ids_is_one_list_call(emu, gw):
    seed(gw)
    emu.clear_requests()
    found = adapter_for("product").existing_ids(gw, ["prod_pro", "prod_nope"])
    assert set(found) == {"prod_pro"}
    assert found["prod_pro"]["name"] == "Pro"  # the object itself: its values are an update's before
    assert calls(emu) == [("GET", "/v1/products")]


def test_invoice_items_on_one_invoice_share_a_lock():
    item = adapter_for("invoice_item")
    assert item.lock_key("ii_1", {"invoice": "in_1", "amount": 5}) == "in_1"
    assert item.lock_key("ii_1", {"amount": 5}) == "ii_1"


def test_whole_list_column_and_indexed_paths_give_the_same_items():
    from dbt_stripe_sync.stripe_objects.common import listed

    whole = {"items": [{"price": "price_1", "quantity": 2}, {"price": "price_2"}]}
    indexed = {"items[0].price": "price_1", "items[0].quantity": 2, "items[1].price": "price_2"}
    assert listed(whole, "items") == listed(indexed, "items") == whole["items"]
    # holes and cleared entries (on_null: clear) are not items
    assert listed({"items[1].price": "price_2", "items[0].quantity": ""}, "items") == [{"price": "price_2"}]


def test_the_example_billing_chain_is_a_valid_config():
    from pathlib import Path

    import yaml

    from dbt_stripe_sync.config.loader import ModelBlock, load_all

    doc = yaml.safe_load((Path(__file__).parents[2] / "integration_tests/models/billing.yml").read_text())
    blocks = [
        ModelBlock(m["name"], f"model.p.{m['name']}", m["config"]["meta"]["stripe_sync"])
        for m in doc["models"]
    ]
    configs = {c.model: c for c in load_all(blocks)}
    assert {c.object for c in configs.values()} == {
        "product",
        "price",
        "subscription",
        "invoice",
        "invoice_item",
        "quote",
    }
    assert configs["stripe_invoices"].options["void_finalized"] is True
    assert configs["stripe_prices"].options["on_price_change"] == "replace"


def test_a_list_entry_that_left_the_row_is_a_change_of_the_list():
    from dbt_stripe_sync.payload import changed_fields

    before = {"items[0].price": "p1", "items[1].price": "p2", "items[1].quantity": 4, "name": "x"}
    assert changed_fields(before, {"items[0].price": "p1", "name": "x"}) == {"items[0].price": "p1"}
    # outside lists a null still never overwrites Stripe (on_null: skip)
    assert changed_fields({"address.line2": "a", "name": "x"}, {"name": "x"}) == {}
