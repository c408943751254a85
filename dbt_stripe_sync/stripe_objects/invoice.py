"""Invoices: matched on their Stripe ID. Stripe deletes only drafts; a finalized invoice is voided when
the sync says so (`void_finalized: true`) and otherwise left, with the reason in the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.payload import nest
from dbt_stripe_sync.stripe_objects import register
from dbt_stripe_sync.stripe_objects.base import DeleteOutcome, StripeObject, WriteResult, execute_change
from dbt_stripe_sync.stripe_objects.common import create_only_fields, post, present, update_or_recreate

VOIDABLE = frozenset({"open", "uncollectible"})


class Invoice(StripeObject):
    name = "invoice"
    resource = "/v1/invoices"
    id_prefix = "in_"
    create_only = create_only_fields("invoice")
    delete_description = "delete while draft; a finalized invoice is left (void_finalized: false)"

    def describe_delete(self, config: SyncConfig) -> str:
        if config.options.get("void_finalized"):
            return "delete while draft; void once finalized (void_finalized: true)"
        return self.delete_description

    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        return [] if present(flat, "customer") else ["an invoice needs a customer"]

    def restore_params(self) -> dict[str, Any]:
        return {}

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        if change.action not in ("update", "restore"):
            return execute_change(self, gw, change, config)

        def send(params: dict[str, Any]) -> None:
            self.update(gw, change.stripe_id, nest(params), change.idempotency_key)

        return update_or_recreate(self, gw, change, config, send)

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        invoice = self.retrieve(gw, stripe_id)  # what Stripe allows depends on the invoice's status
        if invoice is None:
            return DeleteOutcome("deleted", "deleted", "already deleted in Stripe")
        status = invoice.get("status")
        if status == "draft":
            return super().delete(gw, stripe_id, config, idempotency_key)
        if status == "void":
            return DeleteOutcome("deleted", "voided", "already void in Stripe")
        if status in VOIDABLE and config.options.get("void_finalized"):
            post(gw, f"{self.resource}/{stripe_id}/void", {}, idempotency_key, stripe_id)
            return DeleteOutcome("deleted", "voided", f"was {status}: Stripe deletes only drafts; voided")
        if status in VOIDABLE:
            reason = f"invoice is {status}: Stripe deletes only drafts; set void_finalized: true to void it"
        else:
            reason = f"invoice is {status}: Stripe can neither delete nor void it"
        return DeleteOutcome("left", "left", reason)


register(Invoice())
