"""Invoice items: matched on their Stripe ID; priced by `pricing.price`, `price_data` or `amount` +
`currency`. Stripe changes and deletes an item only while it is pending or on a draft invoice, and
writes to items of one invoice must not overlap (lock_timeout), so they share the invoice as lock."""

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
    post,
    present,
    update_or_recreate,
    value_of,
)


class InvoiceItem(StripeObject):
    name = "invoice_item"
    resource = "/v1/invoiceitems"
    id_prefix = "ii_"
    create_only = create_only_fields("invoice_item")
    delete_description = "delete when pending or on a draft invoice; otherwise left"

    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        problems = [] if present(flat, "customer") else ["an invoice item needs a customer"]
        priced = present(flat, "pricing") or present(flat, "price_data")
        if not priced and not (present(flat, "amount") and present(flat, "currency")):
            missing = [f for f in ("amount", "currency") if not present(flat, f)]
            problems.append(
                f"an invoice item needs pricing.price (or price_data), or amount + currency: "
                f"{' and '.join(missing)} missing"
            )
        return problems

    def restore_params(self) -> dict[str, Any]:
        return {}

    def lock_key(self, stripe_id: str | None, params: Mapping[str, Any]) -> str | None:
        return value_of(params, "invoice") or stripe_id

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        lock = self.lock_key(change.stripe_id, change.full)
        if change.action == "create":
            obj = post(gw, self.resource, nest(change.params), change.idempotency_key, lock)
            return WriteResult(obj["id"], "synced", "created")
        if change.action in ("update", "restore"):

            def send(params: dict[str, Any]) -> None:
                path = f"{self.resource}/{change.stripe_id}"
                post(gw, path, nest(params), change.idempotency_key, lock)

            return update_or_recreate(self, gw, change, config, send)
        return execute_change(self, gw, change, config)

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        item = self._with_invoice(gw, stripe_id)
        if item is None:
            return DeleteOutcome("deleted", "deleted", "already deleted in Stripe")
        invoice = item.get("invoice")
        if isinstance(invoice, Mapping) and invoice.get("status") != "draft":
            return DeleteOutcome(
                "left",
                "left",
                f"on invoice {invoice.get('id')}, which is {invoice.get('status')}: Stripe deletes "
                "invoice items only while pending or on a draft invoice",
            )
        lock = invoice.get("id") if isinstance(invoice, Mapping) else stripe_id
        try:
            gw.request("delete", f"{self.resource}/{stripe_id}", lock_key=lock)
        except StripeRequestError as exc:
            if exc.status == 404:
                return DeleteOutcome("deleted", "deleted", "already deleted in Stripe")
            raise
        return DeleteOutcome("deleted", "deleted")

    def _with_invoice(self, gw: StripeGateway, stripe_id: str) -> dict[str, Any] | None:
        """The item with its invoice expanded: one read tells whether Stripe allows the delete."""
        try:
            return gw.request("get", f"{self.resource}/{stripe_id}", {"expand": ["invoice"]})
        except StripeRequestError as exc:
            if exc.status == 404:
                return None
            raise


register(InvoiceItem())
