"""Prices: create (incl. `product_data`), retrieve, update (Stripe's few mutable fields), list, search.

Prices cannot be deleted; the SDK has no delete operation for them and neither do we.
"""

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
from dbt_stripe_sync.emulator.search import search
from dbt_stripe_sync.emulator.store import Store


def _claim_lookup_key(
    store: Store, lookup_key: str | None, transfer: bool, owner: str | None, param: str
) -> None:
    if not lookup_key:
        return
    for other in list(store.objects["price"].values()):
        if other["lookup_key"] == lookup_key and other["id"] != owner:
            if not transfer:
                raise invalid(
                    f"A price (`{other['id']}`) already uses that lookup key. "
                    "Pass `transfer_lookup_key=true` to move it to this price.",
                    param=param,
                )
            store.put("price", {**other, "lookup_key": None})


def new_price(store: Store, params: dict[str, Any], param_prefix: str = "") -> Obj:
    """Build and store a price; `params` follow PriceCreateParams (also used for `price_data`)."""

    def p(name: str) -> str:
        return f"{param_prefix}[{name}]" if param_prefix else name

    if "currency" not in params:
        raise missing_parameter(p("currency"))
    currency = check_currency(params["currency"], p("currency"))
    if params.get("product") and params.get("product_data"):
        raise invalid(
            "You may only specify one of these parameters: product, product_data.", param=p("product")
        )
    if params.get("product_data"):
        from dbt_stripe_sync.emulator.resources.products import new_product

        product_id = new_product(store, params["product_data"])["id"]
    elif params.get("product"):
        product_id = get_or_404(store, "product", params["product"], p("product"))["id"]
    else:
        raise missing_parameter(p("product"))
    billing_scheme = params.get("billing_scheme", "per_unit")
    unit_amount = params.get("unit_amount")
    unit_amount_decimal = params.get("unit_amount_decimal")
    if unit_amount is not None and unit_amount_decimal is not None:
        raise invalid(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param=p("unit_amount"),
        )
    if unit_amount is None and unit_amount_decimal is not None:
        unit_amount_decimal = str(unit_amount_decimal)
        if float(unit_amount_decimal).is_integer():
            unit_amount = int(float(unit_amount_decimal))
    has_custom = bool(params.get("custom_unit_amount"))
    if unit_amount is None and unit_amount_decimal is None and not has_custom and billing_scheme != "tiered":
        raise missing_parameter(p("unit_amount"))
    if unit_amount is not None and unit_amount < 0:
        raise invalid("This value must be greater than or equal to 0.", param=p("unit_amount"))
    recurring = params.get("recurring") or None
    if recurring is not None:
        recurring = {
            "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1),
            "meter": recurring.get("meter"),
            "trial_period_days": recurring.get("trial_period_days"),
            "usage_type": recurring.get("usage_type", "licensed"),
        }
    lookup_key = nullable(params.get("lookup_key"))
    price_id = store.new_id("price")
    _claim_lookup_key(store, lookup_key, bool(params.get("transfer_lookup_key")), price_id, p("lookup_key"))
    obj: Obj = {
        "id": price_id,
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": billing_scheme,
        "created": store.now(),
        "currency": currency,
        "custom_unit_amount": params.get("custom_unit_amount") or None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "nickname": nullable(params.get("nickname")),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": params.get("tax_behavior") or "unspecified",
        "tiers_mode": params.get("tiers_mode"),
        "transform_quantity": params.get("transform_quantity") or None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal
        if unit_amount_decimal is not None
        else (str(unit_amount) if unit_amount is not None else None),
    }
    return store.put("price", obj)


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return new_price(store, params)


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "price", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    obj = edit_or_404(store, "price", object_id)
    if "tax_behavior" in params and params["tax_behavior"] != obj["tax_behavior"]:
        if obj["tax_behavior"] in ("inclusive", "exclusive"):
            raise invalid(
                "Once specified as either `inclusive` or `exclusive`, `tax_behavior` cannot be changed.",
                param="tax_behavior",
            )
        obj["tax_behavior"] = params["tax_behavior"]
    if "lookup_key" in params:
        lookup_key = nullable(params["lookup_key"])
        _claim_lookup_key(store, lookup_key, bool(params.get("transfer_lookup_key")), obj["id"], "lookup_key")
        obj["lookup_key"] = lookup_key
    if "active" in params:
        obj["active"] = params["active"]
    if "nickname" in params:
        obj["nickname"] = nullable(params["nickname"])
    if "metadata" in params:
        obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
    return store.put("price", obj)


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    lookup_keys = params.get("lookup_keys")
    recurring = params.get("recurring") or {}

    def keep(o: Obj) -> bool:
        rec = o["recurring"] or {}
        return (
            ("product" not in params or o["product"] == params["product"])
            and ("active" not in params or o["active"] == params["active"])
            and (lookup_keys is None or o["lookup_key"] in lookup_keys)
            and ("type" not in params or o["type"] == params["type"])
            and ("currency" not in params or o["currency"] == str(params["currency"]).lower())
            and all(rec.get(k) == v for k, v in recurring.items())
            and (not recurring or o["recurring"] is not None)
            and created_matches(o["created"], params.get("created"))
        )

    return paginate(filter(keep, store.newest_first("price")), params, "/v1/prices", "price")


def search_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return search(store.searchable("price"), params, "price", "/v1/prices/search")


ROUTES = [
    route("POST", "/v1/prices", create, "price", ("price", "create")),
    route("GET", "/v1/prices/search", search_, "price", ("price", "search"), search=True),
    route("GET", "/v1/prices", list_, "price", ("price", "list")),
    route("GET", "/v1/prices/{id}", retrieve, "price", ("price", "retrieve")),
    route("POST", "/v1/prices/{id}", update, "price", ("price", "update")),
]
