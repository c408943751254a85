"""Subscriptions: create (customer + items), retrieve, update (items, metadata...), cancel, list, search.

Payments are out of scope: a new subscription is `active` (or `trialing`) and no invoice is generated.
"""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, missing_parameter, resource_missing
from dbt_stripe_sync.emulator.listing import created_matches, paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import Obj, edit_or_404, get_or_404, nullable, renderer, route
from dbt_stripe_sync.emulator.resources.pricing import add_interval, resolve_price
from dbt_stripe_sync.emulator.search import search
from dbt_stripe_sync.emulator.store import Store

_ENDED = ("canceled", "incomplete_expired")
_CANCELED_MAY_UPDATE = frozenset({"metadata", "cancellation_details", "expand"})


def _new_item(store: Store, sub: Obj, item: dict[str, Any], param: str) -> Obj:
    price = resolve_price(store, item, param, want_type="recurring")
    if item.get("quantity") is not None and item["quantity"] < 0:
        raise invalid("This value must be greater than or equal to 0.", param=f"{param}[quantity]")
    obj: Obj = {
        "id": store.new_id("subscription_item"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": store.now(),
        "current_period_end": sub["_period_end"],
        "current_period_start": sub["_period_start"],
        "discounts": [],
        "metadata": merge_metadata({}, item.get("metadata") or {}),
        "price": price["id"],
        "quantity": item.get("quantity", 1),
        "subscription": sub["id"],
        "tax_rates": [],
    }
    return store.put("subscription_item", obj)


def _check_items(store: Store, sub: Obj) -> None:
    items = [store.objects["subscription_item"][i] for i in sub["_items"]]
    if not items:
        raise invalid("A subscription must have at least one active price.", param="items")
    prices = [store.objects["price"][i["price"]] for i in items]
    if len({p["id"] for p in prices}) != len(prices):
        raise invalid("Cannot add multiple subscription items with the same price.", param="items")
    if len({p["currency"] for p in prices}) > 1:
        raise invalid("All prices on a subscription must have the same currency.", param="items")
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}
    if len(intervals) > 1:
        raise invalid("All prices on a subscription must have the same `recurring.interval`.", param="items")
    sub["currency"] = prices[0]["currency"]


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    if not params.get("customer"):
        raise missing_parameter("customer")
    customer = get_or_404(store, "customer", params["customer"], "customer")
    items = params.get("items") or []
    if not items:
        raise missing_parameter("items")
    now = store.now()
    trial_end = params.get("trial_end")
    if params.get("trial_period_days"):
        trial_end = now + 86400 * params["trial_period_days"]
    if trial_end == "now":
        trial_end = None
    collection_method = params.get("collection_method", "charge_automatically")
    if collection_method == "send_invoice" and params.get("days_until_due") is None:
        raise missing_parameter("days_until_due")
    sub: Obj = {
        "id": store.new_id("subscription"),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "cancel_at": params.get("cancel_at"),
        "cancel_at_period_end": params.get("cancel_at_period_end", False),
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection_method,
        "created": now,
        "currency": None,
        "customer": customer["id"],
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": nullable(params.get("description")),
        "discounts": [],
        "ended_at": None,
        "items": None,
        "latest_invoice": None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "pause_collection": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trial_end else "active",
        "test_clock": None,
        "trial_end": trial_end,
        "trial_start": now if trial_end else None,
        "_items": [],
        "_period_start": now,
        "_period_end": now,
    }
    first = resolve_price(store, items[0], "items[0]", want_type="recurring")
    sub["_period_end"] = trial_end or add_interval(
        now, first["recurring"]["interval"], first["recurring"]["interval_count"]
    )
    for i, item in enumerate(items):
        sub["_items"].append(_new_item(store, sub, item, f"items[{i}]")["id"])
    _check_items(store, sub)
    return store.put("subscription", sub)


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "subscription", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    sub = edit_or_404(store, "subscription", object_id)
    if sub["status"] in _ENDED and set(params) - _CANCELED_MAY_UPDATE:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    for i, item in enumerate(params.get("items") or []):
        param = f"items[{i}]"
        if item.get("id"):
            if item["id"] not in sub["_items"]:
                raise resource_missing("subscription item", item["id"], f"{param}[id]")
            existing = store.edit("subscription_item", item["id"])
            if item.get("deleted"):
                sub["_items"].remove(item["id"])
                store.delete("subscription_item", item["id"])
                continue
            if item.get("price") or item.get("price_data"):
                existing["price"] = resolve_price(store, item, param, want_type="recurring")["id"]
            if "quantity" in item:
                existing["quantity"] = item["quantity"]
            if "metadata" in item:
                existing["metadata"] = merge_metadata(
                    existing["metadata"], item["metadata"], f"{param}[metadata]"
                )
            store.put("subscription_item", existing)
        elif item.get("deleted"):
            raise missing_parameter(f"{param}[id]")
        else:
            sub["_items"].append(_new_item(store, sub, item, param)["id"])
    if params.get("items"):
        _check_items(store, sub)
        for item_id in sub["_items"]:
            store.put(
                "subscription_item",
                {**store.objects["subscription_item"][item_id], "current_period_end": sub["_period_end"]},
            )
    for key in ("cancel_at_period_end", "collection_method", "days_until_due"):
        if key in params:
            sub[key] = params[key]
    for key in ("description", "cancel_at"):
        if key in params:
            sub[key] = nullable(params[key])
    if params.get("trial_end") == "now" and sub["status"] == "trialing":
        sub.update(status="active", trial_end=store.now())
    if "cancellation_details" in params:
        sub["cancellation_details"].update(params["cancellation_details"] or {})
    if "metadata" in params:
        sub["metadata"] = merge_metadata(sub["metadata"], params["metadata"])
    return store.put("subscription", sub)


def cancel(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    sub = edit_or_404(store, "subscription", object_id)
    if sub["status"] in _ENDED:
        raise invalid(f"This subscription ({sub['id']}) has already been canceled.")
    now = store.now()
    sub.update(status="canceled", canceled_at=now, ended_at=now)
    if params.get("cancellation_details"):
        sub["cancellation_details"].update(params["cancellation_details"])
    return store.put("subscription", sub)


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    status = params.get("status")

    def keep(s: Obj) -> bool:
        if status is None and s["status"] in _ENDED:
            return False
        if status == "ended" and s["status"] not in _ENDED:
            return False
        if status not in (None, "all", "ended") and s["status"] != status:
            return False
        if "price" in params and not any(
            store.objects["subscription_item"][i]["price"] == params["price"] for i in s["_items"]
        ):
            return False
        return (
            ("customer" not in params or s["customer"] == params["customer"])
            and ("collection_method" not in params or s["collection_method"] == params["collection_method"])
            and created_matches(s["created"], params.get("created"))
        )

    return paginate(
        filter(keep, store.newest_first("subscription")), params, "/v1/subscriptions", "subscription"
    )


def search_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return search(store.searchable("subscription"), params, "subscription", "/v1/subscriptions/search")


@renderer("subscription_item")
def render_item(store: Store, item: Obj) -> Obj:
    return {**item, "price": store.objects["price"][item["price"]]}


@renderer("subscription")
def render_subscription(store: Store, sub: Obj) -> Obj:
    view = {k: v for k, v in sub.items() if not k.startswith("_")}
    items = [render_item(store, store.objects["subscription_item"][i]) for i in sub["_items"]]
    view["items"] = {
        "object": "list",
        "data": items,
        "has_more": False,
        "total_count": len(items),
        "url": f"/v1/subscription_items?subscription={sub['id']}",
    }
    return view


ROUTES = [
    route("POST", "/v1/subscriptions", create, "subscription", ("subscription", "create")),
    route(
        "GET", "/v1/subscriptions/search", search_, "subscription", ("subscription", "search"), search=True
    ),
    route("GET", "/v1/subscriptions", list_, "subscription", ("subscription", "list")),
    route("GET", "/v1/subscriptions/{id}", retrieve, "subscription", ("subscription", "retrieve")),
    route("POST", "/v1/subscriptions/{id}", update, "subscription", ("subscription", "update")),
    route("DELETE", "/v1/subscriptions/{id}", cancel, "subscription", ("subscription", "cancel")),
]
