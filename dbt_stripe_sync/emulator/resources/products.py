"""Products: create (optional caller-chosen `id`), retrieve, update, delete, list, search."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import StripeError, invalid
from dbt_stripe_sync.emulator.listing import created_matches, paginate
from dbt_stripe_sync.emulator.metadata import merge_metadata
from dbt_stripe_sync.emulator.resources.base import Obj, copy_fields, edit_or_404, get_or_404, route
from dbt_stripe_sync.emulator.search import search
from dbt_stripe_sync.emulator.store import Store

_SIMPLE = (
    "description",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
    "package_dimensions",
    "shippable",
)


def new_product(store: Store, params: dict[str, Any], object_id: str | None = None) -> Obj:
    """Build and store a product (also used for `product_data` on prices)."""
    product_id = params.get("id") or object_id or store.new_id("product")
    if store.get("product", product_id) is not None:
        raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
    now = store.now()
    obj: Obj = {
        "id": product_id,
        "object": "product",
        "active": params.get("active", True),
        "attributes": [],
        "created": now,
        "default_price": None,
        "description": None,
        "images": params.get("images") or [],
        "livemode": False,
        "marketing_features": params.get("marketing_features") or [],
        "metadata": merge_metadata({}, params.get("metadata") or {}),
        "name": params["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    copy_fields(obj, params, _SIMPLE)
    return store.put("product", obj)


def create(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    product = new_product(store, params)
    if "default_price_data" in params:
        from dbt_stripe_sync.emulator.resources.prices import new_price

        data = dict(params["default_price_data"])
        data["product"] = product["id"]
        price = new_price(store, data)
        product = store.put("product", {**product, "default_price": price["id"]})
    return product


def retrieve(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    return get_or_404(store, "product", object_id)


def update(store: Store, params: dict[str, Any], object_id: str | None) -> Obj:
    obj = edit_or_404(store, "product", object_id)
    copy_fields(obj, params, (*_SIMPLE, "name", "active", "images", "marketing_features"))
    if "default_price" in params:
        price_id = params["default_price"]
        if price_id:
            price = get_or_404(store, "price", price_id, "default_price")
            if price["product"] != obj["id"]:
                raise invalid(
                    f"The price `{price_id}` does not belong to product `{obj['id']}`.", param="default_price"
                )
        obj["default_price"] = price_id or None
    if "metadata" in params:
        obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
    obj["updated"] = store.now()
    return store.put("product", obj)


def delete(store: Store, _params: dict[str, Any], object_id: str | None) -> Obj:
    obj = get_or_404(store, "product", object_id)
    if any(p["product"] == obj["id"] for p in store.objects["price"].values()):
        raise invalid("This product cannot be deleted because it has one or more user-created prices.")
    store.delete("product", obj["id"])
    return {"id": obj["id"], "object": "product", "deleted": True}


def list_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    ids = params.get("ids")

    def keep(o: Obj) -> bool:
        return (
            ("active" not in params or o["active"] == params["active"])
            and (ids is None or o["id"] in ids)
            and ("shippable" not in params or o["shippable"] == params["shippable"])
            and ("url" not in params or o["url"] == params["url"])
            and ("type" not in params or o["type"] == params["type"])
            and created_matches(o["created"], params.get("created"))
        )

    return paginate(filter(keep, store.newest_first("product")), params, "/v1/products", "product")


def search_(store: Store, params: dict[str, Any], _id: str | None) -> Obj:
    return search(store.searchable("product"), params, "product", "/v1/products/search")


ROUTES = [
    route("POST", "/v1/products", create, "product", ("product", "create")),
    route("GET", "/v1/products/search", search_, "product", ("product", "search"), search=True),
    route("GET", "/v1/products", list_, "product", ("product", "list")),
    route("GET", "/v1/products/{id}", retrieve, "product", ("product", "retrieve")),
    route(
        "POST",
        "/v1/products/{id}",
        update,
        "product",
        ("product", "update"),
        not_unsettable=frozenset({"name"}),
    ),
    route("DELETE", "/v1/products/{id}", delete, "product", ("product", "delete")),
]
