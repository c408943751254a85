"""Match a request to its route and render handler results into API views."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.resources import ROUTES
from dbt_stripe_sync.emulator.resources.base import Route, render
from dbt_stripe_sync.emulator.store import Store

# `object` value in a response -> stored type.
OBJECT_TYPES = {
    "customer": "customer",
    "product": "product",
    "price": "price",
    "subscription": "subscription",
    "subscription_item": "subscription_item",
    "invoice": "invoice",
    "invoiceitem": "invoiceitem",
    "quote": "quote",
}


def match(method: str, path: str) -> tuple[Route, str | None] | None:
    for candidate in ROUTES:
        if candidate.method != method:
            continue
        m = candidate.pattern.match(path)
        if m:
            return candidate, m.groupdict().get("id")
    return None


def render_result(store: Store, result: dict[str, Any]) -> dict[str, Any]:
    """API view of a handler result: a single object, or a list / search page of objects."""
    if result.get("object") in ("list", "search_result"):
        return {**result, "data": [render_result(store, o) for o in result["data"]]}
    if result.get("deleted"):
        return dict(result)
    type_name = OBJECT_TYPES.get(result.get("object", ""))
    return render(store, type_name, result) if type_name else result


def include(store: Store, view: dict[str, Any], expand_paths: list[str]) -> dict[str, Any]:
    """Add "includable" properties Stripe only returns when expanded (a quote's `line_items`)."""
    from dbt_stripe_sync.emulator.resources.quotes import line_items_list

    wanted = {p for p in expand_paths if p in ("line_items", "data.line_items")}
    if not wanted:
        return view
    if "line_items" in wanted and view.get("object") == "quote":
        view = {**view, "line_items": line_items_list(store, view["id"])}
    if "data.line_items" in wanted and view.get("object") in ("list", "search_result"):
        data = [
            {**o, "line_items": line_items_list(store, o["id"])} if o.get("object") == "quote" else o
            for o in view["data"]
        ]
        view = {**view, "data": data}
    for path in wanted:
        expand_paths.remove(path)
    return view
