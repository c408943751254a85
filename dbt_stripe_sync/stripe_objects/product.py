"""Products: matched on their Stripe ID, which the model may choose at creation; deleted, or
archived (`active=false`) while they have prices, which Stripe never lets go."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.payload import nest
from dbt_stripe_sync.stripe_objects import register
from dbt_stripe_sync.stripe_objects.base import DeleteOutcome, StripeObject, WriteResult, execute_change
from dbt_stripe_sync.stripe_objects.common import create_only_fields, post, update_or_recreate

_IDS_PER_LIST = 100  # Stripe's page limit; `ids` cannot be combined with paging


class Product(StripeObject):
    name = "product"
    resource = "/v1/products"
    id_prefix = "prod_"
    create_only = create_only_fields("product")
    delete_description = "delete the product, or archive it (active=false) if it has prices"
    chosen_id = True

    def existing_ids(self, gw: StripeGateway, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The products with these IDs that exist, by ID, as Stripe returned them (their values are
        the before-values of an update)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _IDS_PER_LIST):
            chunk = ids[start : start + _IDS_PER_LIST]
            page = gw.request("get", self.resource, {"ids": chunk, "limit": _IDS_PER_LIST})
            found.update({p["id"]: p for p in page.get("data", [])})
        return found

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        if change.action not in ("update", "restore"):
            return execute_change(self, gw, change, config)

        def send(params: dict[str, Any]) -> None:
            self.update(gw, change.stripe_id, nest(params), change.idempotency_key)

        # A product deleted behind our back comes back under the same ID (the model may rely on it).
        return update_or_recreate(self, gw, change, config, send, extra={"id": change.stripe_id})

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        # One read instead of a DELETE that Stripe refuses whenever prices exist (even archived ones).
        try:
            prices = gw.request("get", "/v1/prices", {"product": stripe_id, "limit": 1}).get("data", [])
        except StripeRequestError as exc:
            if exc.status == 404:
                return DeleteOutcome("deleted", "deleted", "already deleted in Stripe")
            raise
        if prices:
            post(gw, f"{self.resource}/{stripe_id}", {"active": False}, idempotency_key, stripe_id)
            return DeleteOutcome("archived", "archived", "has prices, which Stripe never deletes; archived")
        return super().delete(gw, stripe_id, config, idempotency_key)


register(Product())
