"""Subscriptions: matched on their Stripe ID; cancelled on delete (proration as configured).

Stripe adds an item for every `items[n]` entry without an `id`, so an update of the items sends each
wanted item against an existing subscription item: same price kept, a changed price swapped in place,
leftovers `deleted`, extra ones added. The items' IDs come from the ledger (kept beside the payload from
Stripe's answer to the last create or update: `_dss_items`), so such an update costs one request; the
subscription is read first only when the ledger has no item IDs yet (a ledger from an older version, an
adopted object) or Stripe refuses the kept ones (items changed outside the tool).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.payload import from_json, group_of, nest
from dbt_stripe_sync.stripe_objects import register
from dbt_stripe_sync.stripe_objects.base import DeleteOutcome, StripeObject, WriteResult, execute_change
from dbt_stripe_sync.stripe_objects.common import (
    create_only_fields,
    items_problems,
    listed,
    post,
    present,
    recreate_tagged,
    update_or_recreate,
    without_create_only,
)

ENDED = frozenset({"canceled", "incomplete_expired"})
ITEMS_KEY = "_dss_items"  # ledger payload key: the subscription's items as Stripe last returned them
_PRICE_KEYS = ("price", "price_data")


class Subscription(StripeObject):
    name = "subscription"
    resource = "/v1/subscriptions"
    id_prefix = "sub_"
    create_only = create_only_fields("subscription")
    delete_description = "cancel the subscription"

    def describe_delete(self, config: SyncConfig) -> str:
        return f"cancel the subscription ({_proration(config)})"

    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        problems = [] if present(flat, "customer") else ["a subscription needs a customer"]
        return problems + items_problems(listed(flat, "items"), "items", _PRICE_KEYS)

    def restore_params(self) -> dict[str, Any]:
        return {}

    def create(self, gw: StripeGateway, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        params = {**params, "items": [i for i in params.get("items") or [] if i]}
        return post(gw, self.resource, params, idempotency_key, None)

    # ---- update ----
    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        if change.action == "create":
            obj = self.create(gw, nest(change.params), change.idempotency_key)
            return WriteResult(obj["id"], "synced", "created", keep=kept_items(obj))
        if change.action not in ("update", "restore"):
            return execute_change(self, gw, change, config)
        if not any(group_of(p) == "items" for p in change.params):
            answers: list[dict[str, Any]] = []

            def send(params: dict[str, Any]) -> None:
                answers.append(self.update(gw, change.stripe_id, nest(params), change.idempotency_key))

            result = update_or_recreate(self, gw, change, config, send)
            return replace(result, keep=kept_items(answers[-1])) if answers else result
        known = items_in_ledger(change)
        if known is not None:
            try:
                return self._send_items(gw, change, config, known, change.idempotency_key)
            except StripeRequestError as exc:
                if exc.status not in (400, 404):
                    raise
                # The kept item IDs no longer fit (changed outside the tool, or the subscription
                # ended): read the subscription, as without them. Stripe stored the refusal under
                # the first key, so the second attempt has its own.
                return self._update_items(gw, change, config, change.idempotency_key + "_read")
        return self._update_items(gw, change, config, change.idempotency_key)

    def _update_items(self, gw: StripeGateway, change: Any, config: SyncConfig, key: str) -> WriteResult:
        sub_id = change.stripe_id
        current = self.retrieve(gw, sub_id)
        if current is None or current.get("status") in ENDED:
            if config.mode != "upsert":
                state = "gone from" if current is None else f"{current['status']} in"
                raise StripeRequestError(
                    f"subscription {sub_id} is {state} Stripe; update mode cannot recreate it"
                )
            return recreate_tagged(self, gw, change, config)
        existing = (current.get("items") or {}).get("data", [])
        return self._send_items(gw, change, config, existing, key)

    def _send_items(
        self,
        gw: StripeGateway,
        change: Any,
        config: SyncConfig,
        existing: list[Mapping[str, Any]],
        key: str,
    ) -> WriteResult:
        sub_id = change.stripe_id
        params, note = without_create_only(self, dict(change.params))
        body = nest({k: v for k, v in params.items() if group_of(k) != "items"})
        ops = item_operations(existing, listed(params, "items"))
        if ops:
            body["items"] = ops
            body.setdefault(
                "proration_behavior", config.options.get("proration_behavior", "create_prorations")
            )
        action = "restored" if change.action == "restore" else "updated"
        if not body:
            keep = {ITEMS_KEY: [dict(i) for i in existing]}
            return WriteResult(sub_id, "synced", action, "items already as wanted; nothing sent", keep)
        answer = self.update(gw, sub_id, body, key)
        wanted = listed(params, "items")
        comparable = all(set(w) <= {"price", "quantity", "metadata"} for w in wanted)
        now = (answer.get("items") or {}).get("data", [])
        drift = item_operations(now, wanted) if ops and comparable and isinstance(now, list) else []
        if drift:  # kept IDs were stale (items changed outside the tool): Stripe's answer shows it
            answer = self.update(gw, sub_id, {"items": drift, **_proration_of(body)}, key + "_fix")
        return WriteResult(sub_id, "synced", action, note, kept_items(answer))

    # ---- delete -------------------------------------------------------------------------------
    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        behavior = config.options.get("proration_behavior", "create_prorations")
        params = {"prorate": behavior != "none", "invoice_now": behavior == "always_invoice"}
        try:
            gw.request("delete", f"{self.resource}/{stripe_id}", params, lock_key=stripe_id)
        except StripeRequestError as exc:
            if exc.status == 404:
                return DeleteOutcome("deleted", "cancelled", "already gone from Stripe")
            current = self.retrieve(gw, stripe_id) if exc.status == 400 else None
            if current is not None and current.get("status") in ENDED:
                return DeleteOutcome("deleted", "cancelled", f"already {current['status']} in Stripe")
            raise
        return DeleteOutcome("deleted", "cancelled", _proration(config))


def kept_items(subscription: Mapping[str, Any]) -> dict[str, Any] | None:
    """The items of Stripe's answer, as kept in the ledger (None when Stripe did not list them all)."""
    items = subscription.get("items")
    if not isinstance(items, Mapping) or items.get("has_more") or not isinstance(items.get("data"), list):
        return None
    return {
        ITEMS_KEY: [
            {
                "id": i["id"],
                "price": _price_id(i),
                "quantity": i.get("quantity"),
                "metadata": dict(i.get("metadata") or {}),
            }
            for i in items["data"]
        ]
    }


def items_in_ledger(change: Any) -> list[dict[str, Any]] | None:
    """The subscription's items as the ledger kept them, or None when it kept none."""
    entry = change.ledger
    kept = from_json(entry.payload_json).get(ITEMS_KEY) if entry is not None else None
    return kept if isinstance(kept, list) else None


def item_operations(existing: list[Mapping[str, Any]], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`items` params turning the subscription's items into `wanted`, reusing existing item IDs."""
    free = list(existing)
    pairs: list[tuple[dict[str, Any], Mapping[str, Any] | None]] = []
    unmatched: list[dict[str, Any]] = []
    for want in wanted:  # first, items whose price is already on the subscription
        same = next((e for e in free if want.get("price") and _price_id(e) == want["price"]), None)
        if same is not None:
            free.remove(same)
            pairs.append((want, same))
        else:
            unmatched.append(want)
    for want in unmatched:  # then swap prices on the remaining items, in order
        pairs.append((want, free.pop(0) if free else None))
    ops: list[dict[str, Any]] = []
    for want, item in pairs:
        if item is None:
            ops.append(dict(want))
            continue
        op = {k: v for k, v in want.items() if _differs(k, v, item)}
        if op:
            ops.append({"id": item["id"], **op})
    ops += [{"id": item["id"], "deleted": True} for item in free]
    return ops


def _differs(key: str, value: Any, item: Mapping[str, Any]) -> bool:
    if key == "price":
        return value != _price_id(item)
    if key == "metadata":
        return any((item.get("metadata") or {}).get(k) != v for k, v in value.items())
    if key in ("quantity",):
        return value != item.get(key)
    return True  # price_data, tax_rates, ...: not comparable with what Stripe shows, so sent


def _proration_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("proration_behavior",) if k in body}


def _price_id(item: Mapping[str, Any]) -> str | None:
    price = item.get("price")
    return price.get("id") if isinstance(price, Mapping) else price


def _proration(config: SyncConfig) -> str:
    behavior = config.options.get("proration_behavior", "create_prorations")
    return {
        "create_prorations": "prorated: unused time is credited",
        "none": "not prorated",
        "always_invoice": "prorated and invoiced now",
    }.get(behavior, behavior)


register(Subscription())
