"""Invoices: create (draft), retrieve, update, delete (draft only), finalize, void, list, search.

Lines come from the invoice items attached to the invoice. Finalizing assigns a number from the
customer's invoice prefix and sequence; a finalized invoice whose total is 0 is `paid`, as in Stripe.
Collecting payments is out of scope: open invoices stay open.
"""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, missing_parameter
from dbt_stripe_sync.emulator.listing import created_matches, paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import (
    Obj,
    check_currency,
    copy_fields,
    edit_or_404,
    get_or_404,
    renderer,
    route,
)
from dbt_stripe_sync.emulator.search import search
from dbt_stripe_sync.emulator.store import Store

_DRAFT_FIELDS = ("description", "footer", "days_until_due", "due_date", "auto_advance", "collection_method")
# What Stripe still lets you change once an invoice is finalized.
_FINALIZED_MAY_UPDATE = frozenset({"metadata", "description", "footer", "auto_advance", "expand"})
_CLOSED_MAY_UPDATE = frozenset({"metadata", "expand"})


def invoice_items_of(store: Store, invoice_id: str) -> list[Obj]:
    return [ii for ii in store.objects["invoiceitem"].values() if ii["invoice"] == invoice_id]


def refresh_totals(store: Store, invoice_id: str) -> Obj:
    """Recompute an invoice's amounts from its items and store them."""
    invoice = store.edit("invoice", invoice_id)
    subtotal = sum(ii["amount"] for ii in invoice_items_of(store, invoice_id))
    paid = invoice["amount_paid"]
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal,
        total=subtotal,
        total_excluding_tax=subtotal,
        amount_due=subtotal,
        amount_remaining=max(subtotal - paid, 0) if invoice["status"] not in ("void", "paid") else 0,
    )
    return store.put("invoice", invoice)


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    if not params.get("customer"):
        raise missing_parameter("customer")
    customer = get_or_404(store, "customer", params["customer"], "customer")
    collection_method = params.get("collection_method", "charge_automatically")
    if (
        collection_method == "send_invoice"
        and params.get("days_until_due") is None
        and not params.get("due_date")
    ):
        raise missing_parameter("days_until_due")
    if params.get("subscription"):
        get_or_404(store, "subscription", params["subscription"], "subscription")
    now = store.now()
    currency = (
        check_currency(params["currency"]) if params.get("currency") else (customer["currency"] or "usd")
    )
    invoice: Obj = {
        "id": store.new_id("invoice"),
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stripe Emulator",
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": params.get("auto_advance", False),
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": "manual",
        "collection_method": collection_method,
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "due_date": params.get("due_date")
        or (now + 86400 * params["days_until_due"] if params.get("days_until_due") is not None else None),
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "lines": None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "number": None,
        "parent": (
            {"type": "subscription_details", "subscription_details": {"subscription": params["subscription"]}}
            if params.get("subscription")
            else None
        ),
        "period_end": now,
        "period_start": now,
        "receipt_number": None,
        "starting_balance": customer["balance"],
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": params.get("subscription"),
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "total": 0,
        "total_excluding_tax": 0,
        "webhooks_delivered_at": None,
    }
    copy_fields(invoice, params, ("description", "footer"))
    store.put("invoice", invoice)
    if params.get("pending_invoice_items_behavior") == "include":
        for ii in list(store.objects["invoiceitem"].values()):
            if ii["customer"] == customer["id"] and ii["invoice"] is None and ii["currency"] == currency:
                store.put("invoiceitem", {**ii, "invoice": invoice["id"]})
    return refresh_totals(store, invoice["id"])


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "invoice", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    invoice = edit_or_404(store, "invoice", object_id)
    status = invoice["status"]
    allowed = None if status == "draft" else _FINALIZED_MAY_UPDATE if status == "open" else _CLOSED_MAY_UPDATE
    if allowed is not None and set(params) - allowed:
        field = sorted(set(params) - allowed)[0]
        raise invalid(
            f"Finalized invoices can't be updated in this way: `{field}` cannot be changed "
            f"on a {status} invoice.",
            param=field,
        )
    copy_fields(invoice, params, _DRAFT_FIELDS)
    if "metadata" in params:
        invoice["metadata"] = merge_metadata(invoice["metadata"], params["metadata"])
    return store.put("invoice", invoice)


def delete(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    invoice = get_or_404(store, "invoice", object_id)
    if invoice["status"] != "draft":
        raise invalid(f"You can only delete draft invoices. This invoice is {invoice['status']}.")
    for ii in invoice_items_of(store, invoice["id"]):
        store.delete("invoiceitem", ii["id"])
    store.delete("invoice", invoice["id"])
    return {"id": invoice["id"], "object": "invoice", "deleted": True}


def finalize(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    invoice = edit_or_404(store, "invoice", object_id)
    if invoice["status"] != "draft":
        raise invalid("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    customer = store.edit("customer", invoice["customer"])
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    store.put("customer", customer)
    now = store.now()
    invoice["number"] = f"{customer['invoice_prefix']}-{sequence:04d}"
    invoice["status"] = "open"
    invoice["effective_at"] = now
    invoice["status_transitions"]["finalized_at"] = now
    if "auto_advance" in params:
        invoice["auto_advance"] = params["auto_advance"]
    store.put("invoice", invoice)
    invoice = refresh_totals(store, invoice["id"])
    if invoice["total"] == 0:
        invoice = store.edit("invoice", invoice["id"])
        invoice["status"] = "paid"
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["paid_at"] = now
        store.put("invoice", invoice)
    return invoice


def void(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    invoice = edit_or_404(store, "invoice", object_id)
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void open or uncollectible invoices. This invoice is {invoice['status']}."
        )
    invoice["status"] = "void"
    invoice["amount_remaining"] = 0
    invoice["status_transitions"]["voided_at"] = store.now()
    return store.put("invoice", invoice)


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    def keep(o: Obj) -> bool:
        return (
            all(
                o[k] == params[k]
                for k in ("customer", "status", "subscription", "collection_method")
                if k in params
            )
            and created_matches(o["created"], params.get("created"))
            and created_matches(o["due_date"] or 0, params.get("due_date"))
        )

    return paginate(filter(keep, store.newest_first("invoice")), params, "/v1/invoices", "invoice")


def search_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return search(store.searchable("invoice"), params, "invoice", "/v1/invoices/search")


def lines(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    invoice = get_or_404(store, "invoice", object_id)
    data = [_line(ii) for ii in invoice_items_of(store, invoice["id"])]
    return paginate(data, params, f"/v1/invoices/{invoice['id']}/lines", "line_item")


def _line(ii: Obj) -> Obj:
    return {
        "id": "il_" + ii["id"].split("_", 1)[1],
        "object": "line_item",
        "amount": ii["amount"],
        "currency": ii["currency"],
        "description": ii["description"],
        "discount_amounts": [],
        "discountable": ii["discountable"],
        "discounts": [],
        "invoice": ii["invoice"],
        "livemode": False,
        "metadata": ii["metadata"],
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": ii["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        },
        "period": ii["period"],
        "pretax_credit_amounts": [],
        "pricing": ii["pricing"],
        "quantity": ii["quantity"],
        "subtotal": ii["amount"],
        "taxes": [],
    }


@renderer("invoice")
def render_invoice(store: Store, invoice: Obj) -> Obj:
    data = [_line(ii) for ii in invoice_items_of(store, invoice["id"])]
    return {
        **invoice,
        "lines": {
            "object": "list",
            "data": data[:10],
            "has_more": len(data) > 10,
            "total_count": len(data),
            "url": f"/v1/invoices/{invoice['id']}/lines",
        },
    }


ROUTES = [
    route("POST", "/v1/invoices", create, "invoice", ("invoice", "create")),
    route("GET", "/v1/invoices/search", search_, "invoice", ("invoice", "search"), search=True),
    route("GET", "/v1/invoices", list_, "invoice", ("invoice", "list")),
    route("GET", "/v1/invoices/{id}", retrieve, "invoice", ("invoice", "retrieve")),
    route("POST", "/v1/invoices/{id}", update, "invoice", ("invoice", "update")),
    route("DELETE", "/v1/invoices/{id}", delete, "invoice", ("invoice", "delete")),
    route("POST", "/v1/invoices/{id}/finalize", finalize, "invoice", ("invoice", "finalize_invoice")),
    route("POST", "/v1/invoices/{id}/void", void, "invoice", ("invoice", "void_invoice")),
    route("GET", "/v1/invoices/{id}/lines", lines, "invoice", ("invoice", "list_lines")),
]
