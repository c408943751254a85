"""Prices: matched on their Stripe ID; never deleted (archived); a change Stripe will not make on a
price (amount, currency, recurring...) becomes a new price with the old one archived, or a rejection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.payload import nest
from dbt_stripe_sync.stripe_objects import register
from dbt_stripe_sync.stripe_objects.base import DeleteOutcome, StripeObject, WriteResult, execute_change
from dbt_stripe_sync.stripe_objects.common import create_only_fields, post, present
from dbt_stripe_sync.tagging import TAG_KEY

_AMOUNT_FIELDS = ("unit_amount", "unit_amount_decimal", "custom_unit_amount", "tiers")


class Price(StripeObject):
    name = "price"
    resource = "/v1/prices"
    id_prefix = "price_"
    create_only = create_only_fields("price")
    delete_description = "archive (active=false): Stripe cannot delete prices"
    always_archives = True

    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        problems = []
        if not any(present(flat, f) for f in _AMOUNT_FIELDS):
            problems.append("a price needs unit_amount, unit_amount_decimal, custom_unit_amount or tiers")
        if not present(flat, "currency"):
            problems.append("a price needs a currency")
        if not (present(flat, "product") or present(flat, "product_data")):
            problems.append("a price needs a product (or product_data)")
        return problems

    def plan_immutable_change(self, config: SyncConfig, fields: list[str]) -> tuple[str, str]:
        what = ", ".join(fields)
        if fields == ["product_data"]:
            return "reject", (
                "product_data only names the product when a price is created; sync the product "
                "through its own model to change it"
            )
        if config.options.get("on_price_change", "replace") == "reject":
            return "reject", f"{what} cannot be changed on an existing Stripe price (on_price_change: reject)"
        return "replace", f"{what} changed: Stripe needs a new price; the old one is archived"

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        if change.action == "replace":
            return self._replace(gw, change, config)
        return execute_change(self, gw, change, config)

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        try:
            post(gw, f"{self.resource}/{stripe_id}", {"active": False}, idempotency_key, stripe_id)
        except StripeRequestError as exc:
            if exc.status == 404:
                return DeleteOutcome("deleted", "deleted", "already gone from Stripe")
            raise
        return DeleteOutcome("archived", "archived", "Stripe cannot delete prices; archived")

    # ---- replace: new price, old archived, subscriptions moved on request ---------------------
    def _replace(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        old_id = change.stripe_id
        params = nest(change.params)
        if "product_data" in params:  # keep the new price on the old price's product, not a new one
            old = gw.request("get", f"{self.resource}/{old_id}")
            params.pop("product_data")
            params["product"] = old["product"]
        if params.get("lookup_key"):
            params["transfer_lookup_key"] = True  # the lookup key moves to the new price
        new = post(gw, self.resource, params, change.idempotency_key, None)
        post(gw, f"{self.resource}/{old_id}", {"active": False}, change.idempotency_key + "_archive", old_id)
        note = f"new price {new['id']}; {old_id} archived"
        if config.options.get("move_subscriptions"):
            moved = move_subscriptions(gw, old_id, new["id"], change.idempotency_key)
            note += f"; {moved} subscription(s) moved to it"
        return WriteResult(new["id"], "synced", "replaced", note)


def move_subscriptions(gw: StripeGateway, old_price: str, new_price: str, key: str) -> int:
    """Point the items of subscriptions this tool created from `old_price` to `new_price`."""
    moved = 0
    for sub in gw.list_all("/v1/subscriptions", {"price": old_price}):
        if TAG_KEY not in (sub.get("metadata") or {}):
            continue  # not ours: its owner decides
        items = [
            {"id": item["id"], "price": new_price}
            for item in (sub.get("items") or {}).get("data", [])
            if _price_id(item) == old_price
        ]
        if items:
            post(gw, f"/v1/subscriptions/{sub['id']}", {"items": items}, f"{key}_move_{sub['id']}", sub["id"])
            moved += 1
    return moved


def _price_id(item: Mapping[str, Any]) -> str | None:
    price = item.get("price")
    return price.get("id") if isinstance(price, Mapping) else price


register(Price())
