"""Helpers shared by the billing adapters (product, price, subscription, invoice, invoice item, quote)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dbt_stripe_sync import stripe_catalog
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.payload import CLEAR, group_of, nest
from dbt_stripe_sync.stripe_objects.base import StripeObject, WriteResult


def create_only_fields(object_name: str) -> frozenset[str]:
    """Top-level fields Stripe takes on create but not on update, read from the SDK's param types."""
    create = set(stripe_catalog.operation_params(object_name, "create"))
    update = set(stripe_catalog.operation_params(object_name, "update"))
    return frozenset(create - update - {"expand"})


def present(flat: Mapping[str, Any], group: str) -> bool:
    """Whether the flat payload sets the top-level field `group` (or any part of it) to a value."""
    return any(group_of(path) == group and value not in (None, CLEAR) for path, value in flat.items())


def value_of(flat: Mapping[str, Any], path: str) -> Any:
    value = flat.get(path)
    return None if value == CLEAR else value


def listed(flat: Mapping[str, Any], group: str) -> list[dict[str, Any]]:
    """The list field `group` (`items`, `line_items`...) from indexed paths or a whole-list column,
    without the holes that indexed paths leave (`items[1].price` alone) or entries left empty."""
    value = nest({k: v for k, v in flat.items() if group_of(k) == group}).get(group)
    if not isinstance(value, list):
        return []
    out = []
    for entry in value:
        if isinstance(entry, Mapping):
            entry = {k: v for k, v in entry.items() if v not in (None, CLEAR)}
            if entry:
                out.append(entry)
    return out


def items_problems(items: list[dict[str, Any]], group: str, price_keys: tuple[str, ...]) -> list[str]:
    """Each entry of a list of priced lines must name a price (or inline price data)."""
    if not items:
        return [f"{group}: at least one entry is required ({group}[0].price)"]
    return [
        f"{group}[{i}]: needs {' or '.join(price_keys)}"
        for i, item in enumerate(items)
        if not any(item.get(k) for k in price_keys)
    ]


def without_create_only(adapter: StripeObject, params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """An update to an object this row did not create (matched by ID) cannot carry create-only fields;
    they are left out and named in a note (a change to them on a known object is planned, not here)."""
    dropped = sorted(k for k in params if k in adapter.create_only)
    if not dropped:
        return params, None
    kept = {k: v for k, v in params.items() if k not in adapter.create_only}
    return kept, f"not sent to the existing object (Stripe sets them only at creation): {', '.join(dropped)}"


def recreate_tagged(
    adapter: StripeObject,
    gw: StripeGateway,
    change: Any,
    config: SyncConfig,
    extra: Mapping[str, Any] | None = None,
) -> WriteResult:
    """Upsert of an object gone from Stripe (deleted behind our back, or ended): create it again."""
    from dbt_stripe_sync.tagging import tag_params

    params = {k: v for k, v in change.full.items() if v != CLEAR}
    params = tag_params(params, config.name, change.key, config.state_marker)
    params.update(extra or {})
    obj = adapter.create(gw, nest(params), change.idempotency_key + "_recreate")
    return WriteResult(obj["id"], "synced", "created", f"{change.stripe_id} was gone from Stripe; re-created")


def update_or_recreate(
    adapter: StripeObject,
    gw: StripeGateway,
    change: Any,
    config: SyncConfig,
    send: Callable[[dict[str, Any]], str | None],
    extra: Mapping[str, Any] | None = None,
) -> WriteResult:
    """An update/restore through `send` (flat params -> note), re-creating on 404 in upsert mode."""
    params, note = without_create_only(adapter, dict(change.params))
    try:
        sent_note = send(params)
    except StripeRequestError as exc:
        if exc.status != 404 or config.mode != "upsert":
            raise
        return recreate_tagged(adapter, gw, change, config, extra)
    action = "restored" if change.action == "restore" else "updated"
    notes = "; ".join(n for n in (note, sent_note) if n) or None
    return WriteResult(change.stripe_id, "synced", action, notes)


def post(
    gw: StripeGateway, path: str, params: Mapping[str, Any], key: str | None, lock: str | None
) -> dict[str, Any]:
    return gw.request("post", path, dict(params), idempotency_key=key, lock_key=lock)
