"""The interface every Stripe object adapter implements, with Stripe's common behaviour as defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError


@dataclass(frozen=True)
class DeleteOutcome:
    """What a delete became under Stripe's rules: deleted, archived, cancelled, voided, or left alone."""

    status: str  # ledger status: deleted | archived | left
    action: str  # deleted | archived | cancelled | voided | left
    reason: str | None = None
    calls: int = 0


class StripeObject:
    name: str = ""
    resource: str = ""  # e.g. /v1/customers
    id_prefix: str = ""
    # Top-level fields Stripe accepts on create but refuses on update.
    create_only: frozenset[str] = frozenset()
    # Shown in `plan` for a row that left the model (delete: delete).
    delete_description: str = "delete"
    # a delete is always an archive under Stripe's rules (a price): `plan` counts it as archived
    always_archives: bool = False
    # The model may choose the object's ID at creation (a product's `id`): see existing_ids.
    chosen_id: bool = False

    # ---- checks before sending ------------------------------------------------------------
    def required_problems(self, flat: Mapping[str, Any], *, creating: bool, config: SyncConfig) -> list[str]:
        """Conditionally required fields missing from a payload, each as a reason naming the field."""
        return []

    def immutable_fields(self, params: Mapping[str, Any]) -> list[str]:
        """Top-level fields among an update's params that Stripe will not change on an existing object."""
        return sorted({p.split(".")[0].split("[")[0] for p in params} & self.create_only)

    def plan_immutable_change(self, config: SyncConfig, fields: list[str]) -> tuple[str, str]:
        """("replace", note) when Stripe's way is a new object, else ("reject", reason). Never a no-op."""
        return "reject", f"{', '.join(fields)} cannot be changed on an existing Stripe {self.name}"

    def describe_delete(self, config: SyncConfig) -> str:
        """What a delete becomes under Stripe's rules and this sync's options (shown in `plan`)."""
        return self.delete_description

    def existing_ids(self, gw: StripeGateway, ids: list[str]) -> set[str] | None:
        """Which of these Stripe IDs exist, found with batched reads before planning; None when Stripe
        has no batched look-up (an unknown ID is then found missing at update time)."""
        return None

    # ---- writes ---------------------------------------------------------------------------
    def create(self, gw: StripeGateway, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return gw.request("post", self.resource, params, idempotency_key=idempotency_key)

    def update(
        self, gw: StripeGateway, stripe_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        return gw.request(
            "post",
            f"{self.resource}/{stripe_id}",
            params,
            idempotency_key=idempotency_key,
            lock_key=stripe_id,
        )

    def retrieve(self, gw: StripeGateway, stripe_id: str) -> dict[str, Any] | None:
        try:
            return gw.request("get", f"{self.resource}/{stripe_id}")
        except StripeRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(
        self, gw: StripeGateway, stripe_id: str, config: SyncConfig, idempotency_key: str
    ) -> DeleteOutcome:
        try:
            gw.request("delete", f"{self.resource}/{stripe_id}", lock_key=stripe_id)
        except StripeRequestError as exc:
            if exc.status == 404:  # already gone: the goal is reached
                return DeleteOutcome("deleted", "deleted", "already deleted in Stripe")
            raise
        return DeleteOutcome("deleted", "deleted")

    def restore_params(self) -> dict[str, Any]:
        """Params that bring back an archived object when its row returns to the model."""
        return {"active": True}

    def lock_key(self, stripe_id: str | None, params: Mapping[str, Any]) -> str | None:
        """Writes sharing this key never run at once (Stripe answers lock_timeout otherwise)."""
        return stripe_id

    def execute(self, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
        return execute_change(self, gw, change, config)

    def find_created(self, gw: StripeGateway, tag: str) -> dict[str, Any] | None:
        """An object this tool created, found by its metadata tag (for pending writes whose
        idempotency key Stripe may have forgotten). Search is eventually consistent, which is
        fine here: the write is older than Stripe's idempotency window."""
        query = f"metadata['dbt_stripe_sync']:'{tag}'"  # TAG_KEY
        try:
            for obj in gw.search_all(f"{self.resource}/search", query):
                return obj
        except StripeRequestError as exc:
            if exc.status in (400, 404):  # no search for this object
                return None
            raise
        return None


@dataclass(frozen=True)
class WriteResult:
    """The Stripe side of one applied change."""

    stripe_id: str | None
    status: str  # ledger status: synced | deleted | archived | left
    action: str  # created | updated | restored | replaced | deleted | archived | cancelled | voided | left
    note: str | None = None
    # What the adapter keeps beside the payload in the ledger (a subscription's item IDs), so that the
    # next update needs no read first; merged into payload_json under keys starting with "_dss".
    keep: Mapping[str, Any] | None = None


def execute_change(adapter: StripeObject, gw: StripeGateway, change: Any, config: SyncConfig) -> WriteResult:
    """Apply one planned change through the adapter (the default for every object).

    An adapter overrides `execute` for actions of its own (a price's `replace`), and otherwise
    inherits this: create, update/restore (re-creating in upsert mode an object deleted in Stripe
    behind our back), and delete translated by the adapter's `delete`.
    """
    from dbt_stripe_sync.payload import nest
    from dbt_stripe_sync.tagging import tag_params

    if change.action == "create":
        obj = adapter.create(gw, nest(change.params), change.idempotency_key)
        return WriteResult(obj["id"], "synced", "created")
    if change.action in ("update", "restore"):
        try:
            adapter.update(gw, change.stripe_id, nest(change.params), change.idempotency_key)
        except StripeRequestError as exc:
            if exc.status != 404 or config.mode != "upsert":
                raise
            params = {k: v for k, v in change.full.items() if v != ""}
            params = tag_params(params, config.name, change.key, config.state_marker)
            obj = adapter.create(gw, nest(params), change.idempotency_key + "_recreate")
            return WriteResult(
                obj["id"], "synced", "created", f"{change.stripe_id} was gone from Stripe; re-created"
            )
        return WriteResult(
            change.stripe_id, "synced", "restored" if change.action == "restore" else "updated"
        )
    if change.action == "delete":
        outcome = adapter.delete(gw, change.stripe_id, config, change.idempotency_key)
        return WriteResult(change.stripe_id, outcome.status, outcome.action, outcome.reason)
    raise ValueError(f"{adapter.name} cannot {change.action}")
