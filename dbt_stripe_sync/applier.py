"""Apply a SyncPlan: checkpoint each batch in the ledger as pending, send it, record the outcomes.

The order of the three steps is the crash-safety design: a write is in the ledger, with its
idempotency key and its exact content, before it can reach Stripe, so a run killed anywhere
leaves either nothing sent, or a pending write that the next run re-sends with the same key
(Stripe replays the first response instead of creating a second object).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dbt_stripe_sync import adoption
from dbt_stripe_sync import changelog as C
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.connect import entry_account, interleave
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.gateway.client import ResponseMeta, capture_responses
from dbt_stripe_sync.ledger import LedgerEntry, StateStore
from dbt_stripe_sync.log_setup import row_context
from dbt_stripe_sync.payload import to_json
from dbt_stripe_sync.plan import Change, SyncPlan
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.send_pipeline import Lane, SendPipeline
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects.base import StripeObject, WriteResult

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
PENDING = "pending"  # the outcome is unknown: the write stays pending and goes first next run
ADOPTED = "adopted"  # bound to an object this tool had created, found by its tag


@dataclass
class SyncResult:
    sync: str
    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (key, reason), first few kept
    _last: dict[str, str] = field(default_factory=dict)  # key -> its bucket: each row counted once
    not_sent: int = 0  # writes not attempted because Stripe became unreachable

    def add(self, bucket: str, key: str | None = None, reason: str | None = None) -> None:
        """Count a row's outcome; a row finished later in the same run (a pending write recovered)
        moves from its earlier bucket to the new one."""
        if key is not None:
            earlier = self._last.get(key)
            if earlier is not None:
                self.counts[earlier] -= 1
                self.errors = [(k, r) for k, r in self.errors if k != key]
            self._last[key] = bucket
        self.counts[bucket] += 1
        if bucket in (REJECTED, PENDING) and key is not None and reason and len(self.errors) < 20:
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


def pending_payload(change: Change, *, key_burnt: bool = False) -> str:
    return json.dumps(
        {
            "action": change.action,
            "stripe_id": change.stripe_id,
            "params": change.params,
            "full": change.full,
            "row_hash": change.row_hash,
            "quick_hash": change.quick_hash,
            "reason": change.reason,
            # Stripe saved a 5xx under this key and replays it: the key can never succeed again
            "key_burnt": key_burnt,
        },
        sort_keys=True,
        default=str,
    )


def outcome_unknown(exc: StripeRequestError) -> bool:
    """Whether Stripe may have applied a failed write: a 5xx, a lost response, a timeout, or
    retries exhausted on a transient error (the gateway says so when it knows)."""
    known = getattr(exc, "outcome_unknown", None)
    if known is not None:
        return bool(known) or exc.retryable
    return exc.retryable or exc.status is None or exc.status >= 500


def rate_limited_unapplied(
    exc: StripeRequestError, change: Change, responses: Sequence[ResponseMeta]
) -> bool:
    """A write Stripe certainly did not apply: refused 429 `rate_limit` (the limiter answers before
    anything is done) after every retry, with no earlier attempt that may have landed (a 5xx or a lost
    response, which the gateway marks), no earlier write of the same change that succeeded (a price
    replace's new price), and not a re-send of a write left pending (the first send may have landed)."""
    if exc.status != 429 or exc.code != "rate_limit" or exc.replayed or exc.outcome_unknown:
        return False
    if change.ledger is not None and change.ledger.status == L.PENDING:
        return False
    return not any(r.method != "get" and r.status < 400 for r in responses)


def change_from_pending(entry: LedgerEntry) -> Change:
    data = json.loads(entry.pending_json or "{}")
    return Change(
        key=entry.source_key,
        action=data["action"],
        stripe_id=data.get("stripe_id"),
        params=data.get("params") or {},
        full=data.get("full") or {},
        row_hash=data.get("row_hash"),
        quick_hash=data.get("quick_hash"),
        idempotency_key=entry.idempotency_key,
        reason=data.get("reason"),
        ledger=entry,
        account=entry.stripe_account,  # Connect: finished in the account it was checkpointed for
    )


def _aimed_at(base: LedgerEntry, change: Change) -> str | None:
    """For a failed first update of a matched row: the object it was aimed at, else None."""
    if base.stripe_id is not None or change.action != "update" or not change.stripe_id:
        return None
    return json.dumps({"action": "update", "stripe_id": change.stripe_id})


def _kept_payload(change: Change, written: WriteResult) -> str:
    """What Stripe accepted, plus what the adapter keeps beside it (a subscription's item IDs)."""
    return to_json({**change.full, **(written.keep or {})})


class Applier:
    def __init__(
        self,
        store: StateStore,
        gateway: StripeGateway,
        settings: Settings,
        run_id: str,
        on_batch: Callable[[], None] = lambda: None,
        recorder: C.ChangelogRecorder | None = None,
    ) -> None:
        self.store = store
        self.gw = gateway
        self.settings = settings
        self.run_id = run_id
        self.on_batch = on_batch  # called after each recorded batch (the run lock renews its lease)
        self.changelog = recorder or C.ChangelogRecorder(run_id, L.utcnow)

    # ---- entry points ---------------------------------------------------------------------------
    def apply(
        self, plan: SyncPlan, adapter: StripeObject, result: SyncResult, pipe: SendPipeline | None = None
    ) -> None:
        """Record the plan's ledger-only changes, then send its writes: on `pipe` when given (shared
        with other syncs; the caller drains it), else on a pipeline of their own, drained here."""
        config = plan.config
        writes = self.record_quiet(config, plan.changes, result)
        if pipe is None:
            self._send_in_batches(config, adapter, interleave(writes), result)
        else:
            self.send(pipe, config, adapter, writes, result)

    def record_quiet(self, config: SyncConfig, changes: Sequence[Change], result: SyncResult) -> list[Change]:
        """Record the changes that need no Stripe call (rejects, forgets, re-keys, ...) in the ledger and
        changelog; return the others, the writes, in order."""
        quiet = [c for c in changes if not c.calls_stripe]
        entries = [self._ledger_only(config, c, result) for c in quiet]
        for c in quiet:
            if c.action == "reject":
                self.changelog.record(config.name, c.key, action="reject", outcome=C.REJECTED, error=c.reason)
        self.store.write(
            [e for e in entries if e is not None],
            changelog=self.changelog.take(config.name, [c.key for c in quiet]),
        )
        return [c for c in changes if c.calls_stripe]

    def send(
        self,
        pipe: SendPipeline,
        config: SyncConfig,
        adapter: StripeObject,
        writes: Sequence[Change],
        result: SyncResult,
    ) -> None:
        """Queue one sync's writes on a shared pipeline (the caller drains it)."""
        writes = interleave(list(writes))  # Connect: accounts in parallel
        if writes:
            pipe.add(self.lane(config, adapter, writes, result), writes)

    def recover(
        self,
        config: SyncConfig,
        adapter: StripeObject,
        result: SyncResult,
        *,
        only_burnt: bool = False,
        gone: Callable[[], set[str]] | None = None,
        kept: Callable[[list[Change]], tuple[list[Change], list[Change]]] | None = None,
    ) -> int:
        """Finish the writes left pending (by a killed run, or an outcome Stripe left unknown).

        Each is re-sent with its own idempotency key, so Stripe replays instead of applying twice.
        A key Stripe may no longer honour — older than its window, or burnt by a saved 5xx that it
        replays forever — cannot be trusted that way: what the write may have created is first
        looked up by its tag (list calls, strongly consistent), and only if nothing is found is it
        sent again, under a new key that is checkpointed first.

        A pending create whose row has left the model (`gone()`: those keys, asked only when some write
        is pending, as it costs a pass over the model) is never sent for the first time now:
        it is looked up by its tag the same way, bound if Stripe has it (the plan then treats the
        row as removed), and dropped from the ledger if not.
        """
        pending = self.store.entries(config.name, [L.PENDING])
        if only_burnt:
            pending = [e for e in pending if json.loads(e.pending_json or "{}").get("key_burnt")]
        if not pending:
            return 0
        if kept is not None:  # a pending delete of an object another row holds now is not re-sent
            pending = self._retire_kept_deletes(config, pending, kept, result)
        window = dt.timedelta(hours=self.settings.idempotency_window_hours)
        gone_keys = gone() if gone is not None else set()
        same_key: list[Change] = []
        untrusted: list[tuple[LedgerEntry, Change, bool]] = []  # (entry, change, key burnt)
        left: set[str] = set()  # creates of rows no longer in the model: confirmed or dropped
        for entry in pending:
            change = change_from_pending(entry)
            burnt = bool(json.loads(entry.pending_json or "{}").get("key_burnt"))
            expired = entry.updated_at is not None and L.utcnow() - entry.updated_at >= window
            if change.action == "create" and entry.source_key in gone_keys:
                left.add(change.key)
                untrusted.append((entry, change, burnt))
            elif burnt or expired:
                untrusted.append((entry, change, burnt))
            else:
                same_key.append(change)
        try:
            found: dict[str, WriteResult] | None = self._find_created(
                config, adapter, [(e, c) for e, c, _ in untrusted]
            )
        except StripeRequestError:  # the look-up failed: creates stay pending, never re-sent blind
            found = None
        settled: list[LedgerEntry] = []
        new_key: list[Change] = []
        for entry, change, burnt in untrusted:
            if found is None and change.action in ("create", "replace"):
                continue
            if change.key in left and change.key not in found:
                settled.append(self._dropped(config, change))
                continue
            if found is not None and change.key in found:
                settled.append(self._outcome(config, change, found[change.key]))
                self.changelog.record(
                    config.name,
                    change.key,
                    action="adopt",
                    outcome=C.OK,
                    stripe_id=found[change.key].stripe_id,
                )
                result.add(CREATED if change.action == "create" else UPDATED, change.key)
            elif burnt:
                attempt = (entry.attempts or 0) + 1
                new_key.append(replace(change, idempotency_key=f"{change.idempotency_key}_n{attempt}"))
            else:  # expired: nothing was created under it; the key is as good as new
                same_key.append(change)
        self.store.write(settled, changelog=self.changelog.take(config.name, [e.source_key for e in settled]))
        self._send_in_batches(config, adapter, same_key, result, checkpoint=False)
        self._send_in_batches(config, adapter, new_key, result)  # the new key is checkpointed first
        return len(pending)

    def _retire_kept_deletes(
        self,
        config: SyncConfig,
        pending: list[LedgerEntry],
        kept: Callable[[list[Change]], tuple[list[Change], list[Change]]],
        result: SyncResult,
    ) -> list[LedgerEntry]:
        """The pending writes still to finish: a pending delete whose object another row is bound to
        now (bound_elsewhere.py, `kept` gives their retirements) is retired instead of re-sent; one
        whose object a row is only aimed at (`kept`'s held) stays pending, planned again next run; when
        that cannot be checked, every pending delete waits (a delete cannot be taken back)."""
        deletes = [change_from_pending(e) for e in pending if e.pending_op == "delete"]
        if not deletes:
            return pending
        try:
            retired, held = kept(deletes)
        except Exception as exc:
            log.warning("%s: pending deletes wait: could not check other rows bound to them (%s)",
                        config.name, redact_all(str(exc))[:200])  # fmt: skip
            return [e for e in pending if e.pending_op != "delete"]
        self.record_quiet(config, retired, result)
        done = {c.key for c in [*retired, *held]}
        return [e for e in pending if e.source_key not in done]

    def _find_created(
        self, config: SyncConfig, adapter: StripeObject, candidates: Sequence[tuple[LedgerEntry, Change]]
    ) -> dict[str, WriteResult]:
        """What pending creates (and price replacements) made before their outcome was lost: one list
        scan from the earliest of their checkpoints, matched by tag. Keys found map to the object."""
        creating = [(e, c) for e, c in candidates if c.action in ("create", "replace")]
        if not creating:
            return {}
        times = [calendar.timegm(e.updated_at.timetuple()) for e, _ in creating if e.updated_at]
        out: dict[str, WriteResult] = {}
        found: dict[str, dict] = {}
        for account in dict.fromkeys(c.account for _, c in creating):  # each account holds its own
            with self.gw.scope(config.name), self.gw.acting_for(account):
                tagged = adoption.scan(self.gw, adapter, config.name, since=min(times) if times else None)
                keys = [c.key for _, c in creating if c.account == account]
                marker = config.state_marker
                found.update(adoption.adopt_by_key(adapter.name, tagged, config.name, keys, marker))
        for _, change in creating:
            obj = found.get(change.key)
            if obj is None or obj["id"] == change.stripe_id:
                continue  # nothing new carries the row's tag: the write did not happen
            if change.action == "replace" and change.stripe_id:  # the new price exists: archive the old
                try:  # archiving sets a value: a fresh key each time is safe (an old one may be burnt)
                    with self.gw.scope(config.name), self.gw.acting_for(change.account):
                        adapter.delete(
                            self.gw,
                            change.stripe_id,
                            config,
                            f"{change.idempotency_key}_a{uuid.uuid4().hex[:8]}",
                        )
                except StripeRequestError:
                    continue  # stays pending: the next pass finds the new price again
            out[change.key] = WriteResult(obj["id"], L.SYNCED, "created", f"found {obj['id']} by its tag")
        return out

    # ---- internals ------------------------------------------------------------------------------
    def pipeline(self) -> SendPipeline:
        """A send pipeline several syncs can share (see send_pipeline); close it after draining."""
        return SendPipeline(
            write=self.store.write,
            take_changelog=self.changelog.take,
            on_batch=self.on_batch,
            unavailable=lambda: getattr(self.gw, "unavailable", None),
            batch_size=self.settings.batch_size,
            workers=self.settings.concurrency or None,
        )

    def lane(
        self,
        config: SyncConfig,
        adapter: StripeObject,
        changes: Sequence[Change],
        result: SyncResult,
        *,
        checkpoint: bool = True,
    ) -> Lane:
        """One sync's writes as a pipeline lane. Each (connected) account has its own limits, so each
        can keep the gateway's in-flight budget busy."""
        accounts = len({getattr(c, "account", None) for c in changes}) or 1

        def not_sent(n: int) -> None:
            result.not_sent += n

        return Lane(
            sync=config.name,
            send_one=lambda change: self._send_one(config, adapter, change),
            pending=lambda change: self._pending(config, change),
            add_result=lambda change, bucket, reason: result.add(bucket, change.key, reason),
            on_not_sent=not_sent,
            width=self.gw.max_in_flight * accounts,
            checkpoint=checkpoint,
            own_key=self._own_key if checkpoint else None,
        )

    def _own_key(self, change: Change) -> Change:
        """The change under an idempotency key no other write has: the planner's key (sync, row,
        action, content, attempt, state marker) salted with this run. Stripe answers a key it has seen
        with its first response and applies nothing, so a value that comes back (A, B, A, B) or a row
        that leaves and comes back with the same content must not reuse an earlier write's key. The
        key is checkpointed with the write: a crash re-sends this one (`recover`, unsalted again)."""
        if not change.idempotency_key:
            return change
        return replace(change, idempotency_key=f"{change.idempotency_key}_{self.run_id[:12]}")

    def _send_in_batches(
        self,
        config: SyncConfig,
        adapter: StripeObject,
        changes: Sequence[Change],
        result: SyncResult,
        *,
        checkpoint: bool = True,
    ) -> None:
        """Checkpoint, send and record one sync's writes on a pipeline of their own."""
        if not changes:
            return
        with self.pipeline() as pipe:
            pipe.add(self.lane(config, adapter, changes, result, checkpoint=checkpoint), changes)
            pipe.drain()

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

        with (
            self.gw.scope(config.name),
            self.gw.acting_for(change.account),
            capture_responses() as responses,
            row_context(change.key),
        ):
            try:
                written = self._execute(adapter, change, config)
                crashpoint("after_send")
            except StripeRequestError as exc:
                reason = redact_all(str(exc))
                if rate_limited_unapplied(exc, change, responses):
                    reason += (
                        " (not sent: Stripe refused it for its rate limit, so nothing was applied; the "
                        "row is planned again by the next run)"
                    )
                elif outcome_unknown(exc):
                    # Stripe may or may not have applied the write, so it stays pending: a fresh key
                    # here could create a second object.
                    burnt = bool(getattr(exc, "replayed", False))
                    reason += (
                        " (left pending: Stripe saved this answer under the write's key, so its tag is "
                        "looked up before it is sent again under a new key)"
                        if burnt
                        else " (left pending: re-sent with the same idempotency key on the next run)"
                    )
                    log_failure(C.PENDING, reason, exc)
                    entry = self._pending(config, change, key_burnt=burnt).evolve(last_error=reason[:2000])
                    return entry, PENDING, reason
                log_failure(C.FAILED, reason, exc)
                return self._failed(config, change, reason), REJECTED, reason
            except Exception as exc:  # a bug or an unexpected answer must not lose the other rows
                log.exception("unexpected error syncing %s row %s", config.name, change.key)
                reason = redact_all(f"{type(exc).__name__}: {exc}")
                log_failure(C.FAILED, reason)
                return self._failed(config, change, reason), REJECTED, reason
        writes = [r for r in responses if r.method != "get"]
        # the write that did it; else the refused one the adapter settled (cancel of a cancelled one)
        sent = next((r for r in writes if r.status < 400), writes[-1] if writes else None) or (
            responses[-1] if responses else None
        )
        self.changelog.record(
            config.name, change.key, action=C.action_of_result(written.action),
            outcome=C.REJECTED if written.status == L.LEFT else C.OK, stripe_id=written.stripe_id,
            params=change.params, idempotency_key=change.idempotency_key,
            request_id=sent.request_id if sent else None, http_status=sent.status if sent else None,
            # settled after Stripe refused the write itself (already cancelled): say how
            error=written.note if written.status == L.LEFT or (sent and sent.status >= 400) else None,
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
        base = change.ledger or LedgerEntry(
            sync_name=config.name, source_key=change.key, object_type=config.object, attempts=0
        )
        return base.evolve(stripe_account=entry_account(base, change))

    def _pending(self, config: SyncConfig, change: Change, *, key_burnt: bool = False) -> LedgerEntry:
        base = self._base(config, change)
        return base.evolve(
            object_type=config.object,
            status=L.PENDING,
            pending_op=change.action,
            pending_json=pending_payload(change, key_burnt=key_burnt),
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
            payload_quick_hash=change.quick_hash if keep_payload else base.payload_quick_hash,
            payload_json=_kept_payload(change, written) if keep_payload else base.payload_json,
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

    def _dropped(self, config: SyncConfig, change: Change) -> LedgerEntry:
        """A pending create of a row that left the model, which Stripe never applied: forgotten."""
        reason = (
            "the row left the model before its pending create was confirmed; Stripe has no object "
            "with its tag, so nothing was sent"
        )
        self.changelog.record(config.name, change.key, action="create", outcome=C.REJECTED, error=reason)
        return self._base(config, change).evolve(
            status=L.DELETED,
            pending_op=None,
            pending_json=None,
            idempotency_key=None,
            last_error=reason,
            updated_at=L.utcnow(),
            run_id=self.run_id,
        )

    def _failed(self, config: SyncConfig, change: Change, reason: str) -> LedgerEntry:
        base = self._base(config, change)
        return base.evolve(
            object_type=config.object,
            status=L.FAILED,
            pending_op=None,
            # a matched row's first update, refused: the row is not bound (it is matched again next
            # run, and never deletes an object nothing of it reached), but the object it aims at is
            # kept from other models' deletes meanwhile (bound_elsewhere.py)
            pending_json=_aimed_at(base, change),
            attempt_hash=change.row_hash,
            idempotency_key=None,
            last_error=reason[:2000],
            attempts=(base.attempts or 0) + (0 if base.status == L.PENDING else 1),
            updated_at=L.utcnow(),
            run_id=self.run_id,
        )

    def _ledger_only(self, config: SyncConfig, change: Change, result: SyncResult) -> LedgerEntry | None:
        base = self._base(config, change)
        now = L.utcnow()
        if change.action == "wait":  # the pending write stays as it is, with its key
            result.add(PENDING, change.key, change.reason)
            return None
        if change.action == "rekey":
            return base.evolve(
                status=L.DELETED,
                pending_op=None,
                pending_json=None,
                idempotency_key=None,
                last_error=change.reason,
                updated_at=now,
                run_id=self.run_id,
            )
        if change.action == "adopt":
            result.add(ADOPTED)
            return base.evolve(
                object_type=config.object,
                stripe_id=change.stripe_id,
                status=L.SYNCED,
                payload_hash=change.row_hash,
                payload_quick_hash=change.quick_hash,
                payload_json=to_json(change.full),
                attempt_hash=change.row_hash,
                last_error=None,
                attempts=0,
                first_synced_at=base.first_synced_at or now,
                updated_at=now,
                run_id=self.run_id,
            )
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
                payload_quick_hash=change.quick_hash,
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
                payload_quick_hash=change.quick_hash,
                payload_json=to_json(change.full),
                attempt_hash=change.row_hash,
                last_error=None,
                attempts=0,
                updated_at=now,
                run_id=self.run_id,
            )
        # forget: the row left the model before anything reached Stripe
        return base.evolve(status=L.DELETED, last_error=change.reason, updated_at=now, run_id=self.run_id)
