"""Shared pieces of the per-object handlers: routes, lookups, field copying, rendering."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, missing_parameter, resource_missing
from dbt_stripe_sync.emulator.store import Store

Obj = dict[str, Any]
Handler = Callable[[Store, dict[str, Any], "str | None"], Obj]

# Stored type -> the name Stripe uses in "No such ..." messages.
DISPLAY_NAME = {
    "customer": "customer",
    "product": "product",
    "price": "price",
    "subscription": "subscription",
    "subscription_item": "subscription item",
    "invoice": "invoice",
    "invoiceitem": "invoiceitem",
    "quote": "quote",
}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    type_name: str  # stored type the route is about (lock target, log)
    catalog: tuple[str, str] | None  # (stripe_catalog object name, operation) for the contract check
    write: bool = False
    search: bool = False
    not_unsettable: frozenset[str] = frozenset()
    template: str = ""  # "POST /v1/customers/{id}": Stripe's unit of per-endpoint rate limits


def route(
    method: str,
    path: str,
    handler: Handler,
    type_name: str,
    catalog: tuple[str, str] | None,
    *,
    search: bool = False,
    not_unsettable: frozenset[str] = frozenset(),
) -> Route:
    """`path` like "/v1/customers/{id}"; `{id}` matches one path segment."""
    regex = "^" + re.escape(path).replace(r"\{id\}", r"(?P<id>[^/]+)") + "$"
    return Route(
        method,
        re.compile(regex),
        handler,
        type_name,
        catalog,
        method in ("POST", "DELETE"),
        search,
        not_unsettable,
        f"{method} {path}",
    )


def get_or_404(store: Store, type_name: str, object_id: Any, param: str = "id") -> Obj:
    obj = store.get(type_name, object_id) if isinstance(object_id, str) else None
    if obj is None:
        raise resource_missing(DISPLAY_NAME.get(type_name, type_name), str(object_id), param)
    return obj


def edit_or_404(store: Store, type_name: str, object_id: Any, param: str = "id") -> Obj:
    """Like get_or_404, but a copy to change and `store.put()` back."""
    return store.edit(type_name, get_or_404(store, type_name, object_id, param)["id"])


def require(params: dict[str, Any], name: str) -> Any:
    if name not in params or params[name] == "":
        raise missing_parameter(name)
    return params[name]


def nullable(value: Any) -> Any:
    """Stripe's "" means "unset" -> null."""
    return None if value == "" else value


def copy_fields(obj: Obj, params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in params:
            obj[name] = nullable(params[name])


def check_currency(currency: Any, param: str = "currency") -> str:
    if not isinstance(currency, str) or not re.fullmatch(r"[a-zA-Z]{3}", currency):
        raise invalid(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: usd, eur, ...",
            param=param,
        )
    return currency.lower()


def list_of(data: list[Obj], url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


# Render hooks: stored type -> function producing the API view of a stored object.
RENDERERS: dict[str, Callable[[Store, Obj], Obj]] = {}


def render(store: Store, type_name: str, obj: Obj) -> Obj:
    fn = RENDERERS.get(type_name)
    return fn(store, obj) if fn else obj


def renderer(type_name: str) -> Callable[[Callable[[Store, Obj], Obj]], Callable[[Store, Obj], Obj]]:
    def register(fn: Callable[[Store, Obj], Obj]) -> Callable[[Store, Obj], Obj]:
        RENDERERS[type_name] = fn
        return fn

    return register
