"""Quotes: matched on their Stripe ID; cancelled on delete (`POST /v1/quotes/{id}/cancel`).

A quote's `line_items` sent on update replace its lines as a whole, so no read is needed first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.payload import nest
from dbt_stripe_sync.stripe_objects import register
from dbt_stripe_sync.stripe_objects.base import DeleteOutcome, StripeObject, WriteResult, execute_change
from dbt_stripe_sync.stripe_objects.common import (
    create_only_fields,
    items_problems,
    listed,
    post,
    update_or_recreate,
)

_PRICE_KEYS = ("price", "price_data")


class Quote(StripeObject):
    name = "quote"
    resource = "/v1/quotes"
    id_prefix = "qt_"
    create_only = create_only_fields("quote")
    delete_description = "cancel the quote"

    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        return items_problems(listed(flat, "line_items"), "line_items", _PRICE_KEYS)

    def restore_params(self) -> dict[str, Any]:
        return {}

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        if change.action == "create":
            obj = post(gw, self.resource, _compact(nest(change.params)), change.idempotency_key, None)
            return WriteResult(obj["id"], "synced", "created")
        if change.action in ("update", "restore"):

            def send(params: dict[str, Any]) -> None:
                body = _compact(nest(params))
                post(
                    gw, f"{self.resource}/{change.stripe_id}", body, change.idempotency_key, change.stripe_id
                )

            return update_or_recreate(self, gw, change, config, send)
        return execute_change(self, gw, change, config)

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        try:
            post(gw, f"{self.resource}/{stripe_id}/cancel", {}, idempotency_key, stripe_id)
        except StripeRequestError as exc:
            if exc.status == 404:
                return DeleteOutcome("deleted", "cancelled", "already gone from Stripe")
            current = self.retrieve(gw, stripe_id) if exc.status == 400 else None
            status = (current or {}).get("status")
            if status == "canceled":
                return DeleteOutcome("deleted", "cancelled", "already canceled in Stripe")
            if status == "accepted":
                return DeleteOutcome("left", "left", "quote was accepted: Stripe cannot cancel it")
            raise
        return DeleteOutcome("deleted", "cancelled")


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body.get("line_items"), list):
        body["line_items"] = [i for i in body["line_items"] if i]
    return body


register(Quote())
