"""Quotes: create (customer + line_items), retrieve, update (draft only), finalize, cancel, list,
and their line items (`GET /v1/quotes/{id}/line_items`, or `expand[]=line_items`).

Accepting a quote (which would create a subscription or invoice) is out of scope.
"""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, resource_missing
from dbt_stripe_sync.emulator.listing import paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import Obj, edit_or_404, get_or_404, nullable, renderer, route
from dbt_stripe_sync.emulator.resources.pricing import resolve_price, unit_amount
from dbt_stripe_sync.emulator.store import Store

_EXPIRY_S = 30 * 86400


def _line(store: Store, item: dict[str, Any], param: str, existing_id: str | None = None) -> Obj:
    price = resolve_price(store, item, param, want_type=None)
    quantity = item.get("quantity", 1)
    if quantity < 0:
        raise invalid("This value must be greater than or equal to 0.", param=f"{param}[quantity]")
    amount = unit_amount(price) * quantity
    product = store.objects["product"].get(price["product"]) or {}
    return {
        "id": existing_id or store.new_id("quote_line_item"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product.get("name"),
        "discounts": [],
        "price": price["id"],
        "quantity": quantity,
    }


def _set_lines(store: Store, quote: Obj, lines: list[Obj]) -> None:
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        raise invalid("All prices on a quote must have the same currency.", param="line_items")
    quote["_lines"] = lines
    quote["currency"] = currencies.pop() if currencies else quote["currency"]
    recurring = [line for line in lines if store.objects["price"][line["price"]]["type"] == "recurring"]
    upfront_total = sum(line["amount_total"] for line in lines)
    recurring_total = sum(line["amount_total"] for line in recurring)
    totals = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    quote.update(amount_subtotal=upfront_total, amount_total=upfront_total, total_details=totals)
    quote["computed"] = {
        "recurring": (
            {
                "amount_subtotal": recurring_total,
                "amount_total": recurring_total,
                "interval": store.objects["price"][recurring[0]["price"]]["recurring"]["interval"],
                "interval_count": store.objects["price"][recurring[0]["price"]]["recurring"][
                    "interval_count"
                ],
                "total_details": totals,
            }
            if recurring
            else None
        ),
        "upfront": {"amount_subtotal": upfront_total, "amount_total": upfront_total, "total_details": totals},
    }


def _customer(store: Store, customer_id: Any) -> str | None:
    if not customer_id:
        return None
    return get_or_404(store, "customer", customer_id, "customer")["id"]


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    now = store.now()
    quote: Obj = {
        "id": store.new_id("quote"),
        "object": "quote",
        "amount_subtotal": 0,
        "amount_total": 0,
        "application": None,
        "application_fee_amount": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "collection_method": params.get("collection_method", "charge_automatically"),
        "computed": None,
        "created": now,
        "currency": "usd",
        "customer": _customer(store, params.get("customer")),
        "default_tax_rates": [],
        "description": nullable(params.get("description")),
        "discounts": [],
        "expires_at": params.get("expires_at") or now + _EXPIRY_S,
        "footer": nullable(params.get("footer")),
        "from_quote": None,
        "header": nullable(params.get("header")),
        "invoice": None,
        "invoice_settings": {"days_until_due": None, "issuer": {"type": "self"}},
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "number": None,
        "on_behalf_of": None,
        "status": "draft",
        "status_transitions": {"accepted_at": None, "canceled_at": None, "finalized_at": None},
        "subscription": None,
        "subscription_data": {"description": None, "effective_date": None, "trial_period_days": None},
        "subscription_schedule": None,
        "test_clock": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "transfer_data": None,
    }
    lines = [_line(store, item, f"line_items[{i}]") for i, item in enumerate(params.get("line_items") or [])]
    _set_lines(store, quote, lines)
    return store.put("quote", quote)


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "quote", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    quote = edit_or_404(store, "quote", object_id)
    if quote["status"] != "draft" and set(params) - {"metadata", "expand"}:
        raise invalid(f"This quote is {quote['status']}; only draft quotes can be updated.")
    if "customer" in params:
        quote["customer"] = _customer(store, params["customer"])
    for key in ("description", "footer", "header", "expires_at", "collection_method"):
        if key in params:
            quote[key] = nullable(params[key])
    if "line_items" in params:
        by_id = {line["id"]: line for line in quote["_lines"]}
        lines = []
        for i, item in enumerate(params["line_items"] or []):
            param = f"line_items[{i}]"
            if item.get("id"):
                if item["id"] not in by_id:
                    raise resource_missing("line item", item["id"], f"{param}[id]")
                merged = {"price": by_id[item["id"]]["price"], "quantity": by_id[item["id"]]["quantity"]}
                if item.get("price_data"):
                    merged.pop("price")
                merged.update({k: v for k, v in item.items() if k != "id"})
                lines.append(_line(store, merged, param, existing_id=item["id"]))
            else:
                lines.append(_line(store, item, param))
        _set_lines(store, quote, lines)
    if "metadata" in params:
        quote["metadata"] = merge_metadata(quote["metadata"], params["metadata"])
    return store.put("quote", quote)


def finalize(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    quote = edit_or_404(store, "quote", object_id)
    if quote["status"] != "draft":
        raise invalid(f"This quote is {quote['status']}; only draft quotes can be finalized.")
    if not quote["customer"]:
        raise invalid("A quote must have a customer before it can be finalized.", param="customer")
    if not quote["_lines"]:
        raise invalid(
            "A quote must have at least one line item before it can be finalized.", param="line_items"
        )
    quote["status"] = "open"
    quote["number"] = f"QT-{store.random_code(8)}-{store.next_number('quote'):04d}"
    quote["status_transitions"]["finalized_at"] = store.now()
    if params.get("expires_at"):
        quote["expires_at"] = params["expires_at"]
    return store.put("quote", quote)


def cancel(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    quote = edit_or_404(store, "quote", object_id)
    if quote["status"] not in ("draft", "open"):
        raise invalid(f"This quote is {quote['status']}; only draft or open quotes can be canceled.")
    quote["status"] = "canceled"
    quote["status_transitions"]["canceled_at"] = store.now()
    return store.put("quote", quote)


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    def keep(o: Obj) -> bool:
        return ("customer" not in params or o["customer"] == params["customer"]) and (
            "status" not in params or o["status"] == params["status"]
        )

    return paginate(filter(keep, store.newest_first("quote")), params, "/v1/quotes", "quote")


def _render_line(store: Store, line: Obj) -> Obj:
    return {**line, "price": store.objects["price"][line["price"]]}


def line_items_list(store: Store, quote_id: str) -> Obj:
    lines = [_render_line(store, line) for line in store.objects["quote"][quote_id]["_lines"]]
    return {"object": "list", "data": lines, "has_more": False, "url": f"/v1/quotes/{quote_id}/line_items"}


def line_items(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    quote = get_or_404(store, "quote", object_id)
    lines = [_render_line(store, line) for line in quote["_lines"]]
    return paginate(lines, params, f"/v1/quotes/{quote['id']}/line_items", "line item")


@renderer("quote")
def render_quote(_store: Store, quote: Obj) -> Obj:
    return {k: v for k, v in quote.items() if not k.startswith("_")}


ROUTES = [
    route("POST", "/v1/quotes", create, "quote", ("quote", "create")),
    route("GET", "/v1/quotes", list_, "quote", ("quote", "list")),
    route("GET", "/v1/quotes/{id}", retrieve, "quote", ("quote", "retrieve")),
    route("POST", "/v1/quotes/{id}", update, "quote", ("quote", "update")),
    route("POST", "/v1/quotes/{id}/finalize", finalize, "quote", ("quote", "finalize_quote")),
    route("POST", "/v1/quotes/{id}/cancel", cancel, "quote", ("quote", "cancel")),
    route("GET", "/v1/quotes/{id}/line_items", line_items, "quote", ("quote", "list_line_items")),
]
