"""Invoice items: create (customer + `pricing[price]`/`price_data`, or amount + currency; optional
invoice), retrieve, update and delete (only while pending or on a draft invoice), list."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, missing_parameter
from dbt_stripe_sync.emulator.listing import created_matches, paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import (
    Obj,
    check_currency,
    edit_or_404,
    get_or_404,
    nullable,
    route,
)
from dbt_stripe_sync.emulator.resources.invoices import refresh_totals
from dbt_stripe_sync.emulator.resources.pricing import resolve_price, unit_amount
from dbt_stripe_sync.emulator.store import Store


def _check_editable(store: Store, invoice_id: str | None, action: str) -> None:
    if invoice_id is None:
        return
    invoice = store.get("invoice", invoice_id)
    if invoice is not None and invoice["status"] != "draft":
        raise invalid(
            f"You can only {action} invoice items that are pending or on a draft invoice. "
            f"Invoice {invoice_id} is {invoice['status']}.",
        )


def _apply_pricing(store: Store, item: Obj, params: dict[str, Any]) -> None:
    """Set amount/currency/pricing from `pricing[price]`, `price_data` or `amount`."""
    price_ref = (params.get("pricing") or {}).get("price")
    if price_ref or params.get("price_data"):
        if params.get("amount") is not None:
            raise invalid("You may only specify one of these parameters: amount, pricing.", param="amount")
        source = {"price": price_ref, "price_data": params.get("price_data")}
        price = resolve_price(store, source, "pricing", want_type="one_time")
        if params.get("currency") and check_currency(params["currency"]) != price["currency"]:
            raise invalid("The currency of the price does not match `currency`.", param="currency")
        item["currency"] = price["currency"]
        item["pricing"] = {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": price["unit_amount_decimal"],
        }
        item["amount"] = unit_amount(price) * item["quantity"]
    elif params.get("amount") is not None:
        item["amount"] = params["amount"]
        item["pricing"] = {
            "type": "price_details",
            "price_details": None,
            "unit_amount_decimal": str(round(params["amount"] / max(item["quantity"], 1))),
        }
    elif item.get("pricing") and item["pricing"]["price_details"]:
        price = store.objects["price"][item["pricing"]["price_details"]["price"]]
        item["amount"] = unit_amount(price) * item["quantity"]


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    if not params.get("customer"):
        raise missing_parameter("customer")
    customer = get_or_404(store, "customer", params["customer"], "customer")
    has_price = bool((params.get("pricing") or {}).get("price") or params.get("price_data"))
    if not has_price:
        if params.get("amount") is None:
            raise missing_parameter("amount")
        if not params.get("currency"):
            raise missing_parameter("currency")
    invoice_id = params.get("invoice")
    if invoice_id:
        invoice = get_or_404(store, "invoice", invoice_id, "invoice")
        if invoice["customer"] != customer["id"]:
            raise invalid(
                f"The invoice `{invoice_id}` belongs to a different customer than `{customer['id']}`.",
                param="invoice",
            )
        _check_editable(store, invoice_id, "add")
    now = store.now()
    item: Obj = {
        "id": store.new_id("invoiceitem"),
        "object": "invoiceitem",
        "amount": 0,
        "currency": check_currency(params["currency"]) if params.get("currency") else None,
        "customer": customer["id"],
        "date": now,
        "description": nullable(params.get("description")),
        "discountable": params.get("discountable", True),
        "discounts": [],
        "invoice": invoice_id or None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "net_amount": 0,
        "parent": None,
        "period": params.get("period") or {"start": now, "end": now},
        "pricing": None,
        "proration": False,
        "quantity": params.get("quantity", 1),
        "tax_rates": [],
        "test_clock": None,
    }
    _apply_pricing(store, item, params)
    item["net_amount"] = item["amount"]
    if invoice_id and item["currency"] != store.objects["invoice"][invoice_id]["currency"]:
        raise invalid(
            "The currency of the invoice item does not match the invoice's currency.", param="currency"
        )
    store.put("invoiceitem", item)
    if invoice_id:
        refresh_totals(store, invoice_id)
    return item


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "invoiceitem", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    item = edit_or_404(store, "invoiceitem", object_id)
    _check_editable(store, item["invoice"], "update")
    if "quantity" in params:
        item["quantity"] = params["quantity"]
    if "description" in params:
        item["description"] = nullable(params["description"])
    if "discountable" in params:
        item["discountable"] = params["discountable"]
    if "period" in params:
        item["period"] = params["period"]
    _apply_pricing(store, item, params)
    item["net_amount"] = item["amount"]
    if "metadata" in params:
        item["metadata"] = merge_metadata(item["metadata"], params["metadata"])
    store.put("invoiceitem", item)
    if item["invoice"]:
        refresh_totals(store, item["invoice"])
    return item


def delete(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    item = get_or_404(store, "invoiceitem", object_id)
    _check_editable(store, item["invoice"], "delete")
    store.delete("invoiceitem", item["id"])
    if item["invoice"]:
        refresh_totals(store, item["invoice"])
    return {"id": item["id"], "object": "invoiceitem", "deleted": True}


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    def keep(o: Obj) -> bool:
        return (
            ("customer" not in params or o["customer"] == params["customer"])
            and ("invoice" not in params or o["invoice"] == params["invoice"])
            and ("pending" not in params or (o["invoice"] is None) == params["pending"])
            and created_matches(o["date"], params.get("created"))
        )

    return paginate(
        filter(keep, store.newest_first("invoiceitem")), params, "/v1/invoiceitems", "invoiceitem"
    )


ROUTES = [
    route("POST", "/v1/invoiceitems", create, "invoiceitem", ("invoice_item", "create")),
    route("GET", "/v1/invoiceitems", list_, "invoiceitem", ("invoice_item", "list")),
    route("GET", "/v1/invoiceitems/{id}", retrieve, "invoiceitem", ("invoice_item", "retrieve")),
    route("POST", "/v1/invoiceitems/{id}", update, "invoiceitem", ("invoice_item", "update")),
    route("DELETE", "/v1/invoiceitems/{id}", delete, "invoiceitem", ("invoice_item", "delete")),
]
