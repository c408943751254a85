"""Customers: create, retrieve, update, delete, list (exact `email`), search."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.listing import created_matches, paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import Obj, copy_fields, edit_or_404, get_or_404, route
from dbt_stripe_sync.emulator.search import search
from dbt_stripe_sync.emulator.store import Store

_SIMPLE = ("address", "description", "email", "name", "phone", "shipping", "business_name", "individual_name")


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    obj: Obj = {
        "id": store.new_id("customer"),
        "object": "customer",
        "address": None,
        "balance": params.get("balance", 0),
        "business_name": None,
        "created": store.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        "invoice_prefix": params.get("invoice_prefix") or store.random_code(8),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "name": None,
        "next_invoice_sequence": params.get("next_invoice_sequence", 1),
        "phone": None,
        "preferred_locales": params.get("preferred_locales") or [],
        "shipping": None,
        "tax_exempt": params.get("tax_exempt") or "none",
        "test_clock": None,
    }
    copy_fields(obj, params, _SIMPLE)
    return store.put("customer", obj)


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    stub = store.deleted["customer"].get(object_id or "")
    if stub is not None:
        return dict(stub)
    return get_or_404(store, "customer", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    obj = edit_or_404(store, "customer", object_id)
    copy_fields(
        obj, params, (*_SIMPLE, "balance", "invoice_prefix", "preferred_locales", "next_invoice_sequence")
    )
    if "tax_exempt" in params:
        obj["tax_exempt"] = params["tax_exempt"] or "none"
    if "metadata" in params:
        obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
    return store.put("customer", obj)


def delete(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    obj = get_or_404(store, "customer", object_id)
    for sub in list(store.objects["subscription"].values()):
        if sub["customer"] == obj["id"] and sub["status"] != "canceled":
            store.put(
                "subscription",
                {**sub, "status": "canceled", "canceled_at": store.now(), "ended_at": store.now()},
            )
    store.delete("customer", obj["id"], keep_stub=True)
    return {"id": obj["id"], "object": "customer", "deleted": True}


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    email = params.get("email")
    objs = (
        o
        for o in store.newest_first("customer")
        if (email is None or o["email"] == email) and created_matches(o["created"], params.get("created"))
    )
    return paginate(objs, params, "/v1/customers", "customer")


def search_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return search(store.searchable("customer"), params, "customer", "/v1/customers/search")


ROUTES = [
    route("POST", "/v1/customers", create, "customer", ("customer", "create")),
    route("GET", "/v1/customers/search", search_, "customer", ("customer", "search"), search=True),
    route("GET", "/v1/customers", list_, "customer", ("customer", "list")),
    route("GET", "/v1/customers/{id}", retrieve, "customer", ("customer", "retrieve")),
    route("POST", "/v1/customers/{id}", update, "customer", ("customer", "update")),
    route("DELETE", "/v1/customers/{id}", delete, "customer", ("customer", "delete")),
]
