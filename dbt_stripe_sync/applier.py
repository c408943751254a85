"""Apply a SyncPlan: checkpoint each batch in the ledger as pending, send it, record the outcomes.

The order of the three steps is the crash-safety design: a write is in the ledger, with its
idempotency key and its exact content, before it can reach Stripe, so a run killed anywhere
leaves either nothing sent, or a pending write that the next run re-sends with the same key
(Stripe replays the first response instead of creating a second object).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from dbt_stripe_sync import changelog as C
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.gateway.client import capture_responses
from dbt_stripe_sync.ledger import LedgerEntry, StateStore
from dbt_stripe_sync.log_setup import row_context
from dbt_stripe_sync.payload import to_json
from dbt_stripe_sync.plan import Change, SyncPlan
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects.base import StripeObject, WriteResult
from dbt_stripe_sync.tagging import object_tag

log = logging.getLogger(__name__)

# Summary buckets of what happened to each row.
CREATED, UPDATED, DELETED, ARCHIVED, SKIPPED, REJECTED = (
    "created",
    "updated",
    "deleted",
    "archived",
    "skipped",
    "rejected",
)


@dataclass
class SyncResult:
    sync: str
    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (key, reason), first few kept

    def add(self, bucket: str, key: str | None = None, reason: str | None = None) -> None:
        self.counts[bucket] += 1
        if bucket == REJECTED and key is not None and reason and len(self.errors) < 20:
            self.errors.append((key, reason))


_BUCKET_OF_ACTION = {
    "created": CREATED,
    "updated": UPDATED,
    "restored": UPDATED,
    "replaced": UPDATED,
    "deleted": DELETED,
    "cancelled": DELETED,
    "voided": DELETED,
    "archived": ARCHIVED,
    "left": SKIPPED,
}


def pending_payload(change: Change) -> str:
    return json.dumps(
        {
            "action": change.action,
            "stripe_id": change.stripe_id,
            "params": change.params,
            "full": change.full,
            "row_hash": change.row_hash,
            "reason": change.reason,
        },
        sort_keys=True,
        default=str,
    )


def change_from_pending(entry: LedgerEntry) -> Change:
    data = json.loads(entry.pending_json or "{}")
    return Change(
        key=entry.source_key,
        action=data["action"],
        stripe_id=data.get("stripe_id"),
        params=data.get("params") or {},
        full=data.get("full") or {},
        row_hash=data.get("row_hash"),
        idempotency_key=entry.idempotency_key,
        reason=data.get("reason"),
        ledger=entry,
    )


class Applier:
    def __init__(
        self,
        store: StateStore,
        gateway: StripeGateway,
        settings: Settings,
        run_id: str,
        recorder: C.ChangelogRecorder | None = None,
    ) -> None:
        self.store = store
        self.gw = gateway
        self.settings = settings
        self.run_id = run_id
        self.changelog = recorder or C.ChangelogRecorder(run_id, L.utcnow)

    # ---- entry points ---------------------------------------------------------------------------
    def apply(self, plan: SyncPlan, adapter: StripeObject, result: SyncResult) -> None:
        config = plan.config
        quiet = [c for c in plan.changes if not c.calls_stripe]
        entries = [self._ledger_only(config, c, result) for c in quiet]
        for c in quiet:
            if c.action == "reject":
                self.changelog.record(config.name, c.key, action="reject", outcome=C.REJECTED, error=c.reason)
        self.store.write(entries, changelog=self.changelog.take(config.name, [c.key for c in quiet]))
        writes = [c for c in plan.changes if c.calls_stripe]
        self._send_in_batches(config, adapter, writes, result)

    def recover(self, config: SyncConfig, adapter: StripeObject, result: SyncResult) -> int:
        """Finish the writes a killed run left pending, with their original idempotency keys."""
        pending = self.store.entries(config.name, [L.PENDING])
        if not pending:
            return 0
        window = dt.timedelta(hours=self.settings.idempotency_window_hours)
        changes: list[Change] = []
        adopted: list[LedgerEntry] = []
        for entry in pending:
            change = change_from_pending(entry)
            expired = entry.updated_at is not None and L.utcnow() - entry.updated_at >= window
            if change.action == "create" and expired:
                # Stripe may have forgotten the key: look for what we may have created before re-creating.
                with self.gw.scope(config.name):
                    found = adapter.find_created(self.gw, object_tag(config.name, entry.source_key))
                if found is not None:
                    adopted.append(
                        self._outcome(config, change, WriteResult(found["id"], L.SYNCED, "created"))
                    )
                    self.changelog.record(
                        config.name, change.key, action="adopt", outcome=C.OK, stripe_id=found["id"]
                    )
                    result.add(CREATED)
                    continue
            changes.append(change)
        self.store.write(adopted, changelog=self.changelog.take(config.name, [e.source_key for e in adopted]))
        self._send_in_batches(config, adapter, changes, result, checkpoint=False)
        return len(pending)

    # ---- internals ------------------------------------------------------------------------------
    def _send_in_batches(
        self,
        config: SyncConfig,
        adapter: StripeObject,
        changes: Sequence[Change],
        result: SyncResult,
        *,
        checkpoint: bool = True,
    ) -> None:
        size = max(1, self.settings.batch_size)
        workers = max(1, self.settings.concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dss-send") as pool:
            for start in range(0, len(changes), size):
                batch = changes[start : start + size]
                if checkpoint:
                    self.store.write([self._pending(config, c) for c in batch])
                    crashpoint("after_checkpoint")
                futures = [
                    pool.submit(contextvars.copy_context().run, self._send_one, config, adapter, c)
                    for c in batch
                ]
                outcomes = []
                for change, future in zip(batch, futures, strict=True):
                    outcome, bucket, reason = future.result()
                    outcomes.append(outcome)
                    result.add(bucket, change.key, reason)
                logged = self.changelog.take(config.name, [c.key for c in batch])
                self.store.write(outcomes, crash_inside="mid_record", changelog=logged)
                crashpoint("after_record")

    def _send_one(
        self, config: SyncConfig, adapter: StripeObject, change: Change
    ) -> tuple[LedgerEntry, str, str | None]:
        def log_failure(outcome: str, reason: str, exc: StripeRequestError | None = None) -> None:
            self.changelog.record(
                config.name, change.key, action=C.action_of_change(change.action), outcome=outcome,
                stripe_id=change.stripe_id, params=change.params, idempotency_key=change.idempotency_key,
                request_id=exc.request_id if exc else None, http_status=exc.status if exc else None,
                error=reason,
            )  # fmt: skip

        with self.gw.scope(config.name), capture_responses() as responses, row_context(change.key):
            try:
                written = self._execute(adapter, change, config)
                crashpoint("after_send")
            except StripeRequestError as exc:
                reason = redact_all(str(exc))
                if exc.retryable or exc.status is None:
                    # Retries ran out on a transient error: Stripe may or may not have applied the
                    # write, so it stays pending and the next run re-sends it with the same key. A
                    # fresh key here could create a second object.
                    reason += " (left pending: re-sent with the same idempotency key on the next run)"
                    log_failure(C.PENDING, reason, exc)
                    return self._pending(config, change).evolve(last_error=reason[:2000]), REJECTED, reason
                log_failure(C.FAILED, reason, exc)
                return self._failed(config, change, reason), REJECTED, reason
            except Exception as exc:  # a bug or an unexpected answer must not lose the other rows
                log.exception("unexpected error syncing %s row %s", config.name, change.key)
                reason = redact_all(f"{type(exc).__name__}: {exc}")
                log_failure(C.FAILED, reason)
                return self._failed(config, change, reason), REJECTED, reason
        sent = next((r for r in responses if r.method != "get"), responses[-1] if responses else None)
        self.changelog.record(
            config.name, change.key, action=C.action_of_result(written.action),
            outcome=C.REJECTED if written.status == L.LEFT else C.OK, stripe_id=written.stripe_id,
            params=change.params, idempotency_key=change.idempotency_key,
            request_id=sent.request_id if sent else None, http_status=sent.status if sent else None,
            error=written.note if written.status == L.LEFT else None,
        )  # fmt: skip
        return (
            self._outcome(config, change, written),
            _BUCKET_OF_ACTION.get(written.action, UPDATED),
            written.note,
        )

    def _execute(self, adapter: StripeObject, change: Change, config: SyncConfig) -> WriteResult:
        try:
            return adapter.execute(self.gw, change, config)
        except StripeRequestError as exc:
            # An update re-sent after a crash can be built differently (a subscription's item IDs
            # are read anew), and Stripe refuses a reused key with other parameters. The first
            # attempt did reach Stripe; an update sets values, so sending it again is safe.
            refused_key = "idempotency_error" in (exc.type, exc.code)  # Stripe sends it as the error type
            if not refused_key or change.action not in ("update", "restore"):
                raise
            fresh = replace(change, idempotency_key=f"{change.idempotency_key}_r")
            return adapter.execute(self.gw, fresh, config)

    def _base(self, config: SyncConfig, change: Change) -> LedgerEntry:
        return change.ledger or LedgerEntry(
            sync_name=config.name, source_key=change.key, object_type=config.object, attempts=0
        )

    def _pending(self, config: SyncConfig, change: Change) -> LedgerEntry:
        base = self._base(config, change)
        return base.evolve(
            object_type=config.object,
            status=L.PENDING,
            pending_op=change.action,
            pending_json=pending_payload(change),
            attempt_hash=change.row_hash,
            idempotency_key=change.idempotency_key,
            attempts=(base.attempts or 0) + 1,
            updated_at=L.utcnow(),
            run_id=self.run_id,
        )

    def _outcome(self, config: SyncConfig, change: Change, written: WriteResult) -> LedgerEntry:
        base = self._base(config, change)
        now = L.utcnow()
        keep_payload = written.status == L.SYNCED
        return base.evolve(
            object_type=config.object,
            stripe_id=written.stripe_id,
            status=written.status,
            payload_hash=change.row_hash if keep_payload else base.payload_hash,
            payload_json=to_json(change.full) if keep_payload else base.payload_json,
            pending_op=None,
            pending_json=None,
            attempt_hash=change.row_hash,
            idempotency_key=None,
            last_error=written.note if written.status == L.LEFT else None,
            attempts=0,
            first_synced_at=base.first_synced_at or now,
            updated_at=now,
            run_id=self.run_id,
        )

    def _failed(self, config: SyncConfig, change: Change, reason: str) -> LedgerEntry:
        base = self._base(config, change)
        return base.evolve(
            object_type=config.object,
            status=L.FAILED,
            pending_op=None,
            pending_json=None,
            attempt_hash=change.row_hash,
            idempotency_key=None,
            last_error=reason[:2000],
            attempts=(base.attempts or 0) + (0 if base.status == L.PENDING else 1),
            updated_at=L.utcnow(),
            run_id=self.run_id,
        )

    def _ledger_only(self, config: SyncConfig, change: Change, result: SyncResult) -> LedgerEntry:
        base = self._base(config, change)
        now = L.utcnow()
        if change.action == "reject":
            result.add(REJECTED, change.key, change.reason)
            return base.evolve(
                object_type=config.object,
                status=L.REJECTED,
                attempt_hash=change.row_hash,
                last_error=(change.reason or "")[:2000],
                attempts=(base.attempts or 0) + 1,
                updated_at=now,
                run_id=self.run_id,
            )
        if change.action == "skip":
            result.add(SKIPPED)
            return base.evolve(
                object_type=config.object,
                stripe_id=change.stripe_id or base.stripe_id,
                status=L.SYNCED,
                payload_hash=change.row_hash,
                payload_json=to_json(change.full),
                last_error=change.reason,
                first_synced_at=base.first_synced_at or now,
                updated_at=now,
                run_id=self.run_id,
            )
        if change.action == "noop":
            return base.evolve(
                object_type=config.object,
                status=L.SYNCED,
                payload_hash=change.row_hash,
                payload_json=to_json(change.full),
                attempt_hash=change.row_hash,
                last_error=None,
                attempts=0,
                updated_at=now,
                run_id=self.run_id,
            )
        # forget: the row left the model before anything reached Stripe
        return base.evolve(status=L.DELETED, last_error=change.reason, updated_at=now, run_id=self.run_id)
