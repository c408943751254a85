"""`run`: the syncs of a run, sent in waves (syncs that do not depend on each other at the same
time), deletes last and dependents first, each sync's outcome counted and recorded in the runs table.

Planning one sync is the engine's (`make_plan`); this module orders, sends and accounts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TextIO

from dbt_stripe_sync.applier import (
    ADOPTED,
    ARCHIVED,
    DELETED,
    PENDING,
    REJECTED,
    SKIPPED,
    Applier,
    SyncResult,
)
from dbt_stripe_sync.bound_elsewhere import Holder, bound_elsewhere, bound_rows, held_note, vet
from dbt_stripe_sync.bound_elsewhere import split as split_bound
from dbt_stripe_sync.changelog import ChangelogRecorder
from dbt_stripe_sync.changelog import prune as prune_changelog
from dbt_stripe_sync.config.errors import ConfigError
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.doomed import Cancel, Doomed, cancel_in
from dbt_stripe_sync.doomed_retags import send_retags
from dbt_stripe_sync.errors import SyncAborted
from dbt_stripe_sync.full_refresh import NOTICE as FULL_REFRESH_NOTICE
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.held_deletes import hold_in_run
from dbt_stripe_sync.invoice_now import cancels_invoice_now
from dbt_stripe_sync.ledger import StateStore, utcnow
from dbt_stripe_sync.ledger_snapshot import SnapshotStore
from dbt_stripe_sync.plan import Change, SyncPlan
from dbt_stripe_sync.plan_report import still_rejected
from dbt_stripe_sync.plan_stream import StreamTotals
from dbt_stripe_sync.progress import Progress
from dbt_stripe_sync.report import SyncSummary, print_summary
from dbt_stripe_sync.run_lock import StateLock
from dbt_stripe_sync.run_report import RunReport, build_report
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.send_pipeline import SendPipeline
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.waves import needs, sync_waves

if TYPE_CHECKING:
    from dbt_stripe_sync.engine import Prepared

# (config, the state it plans against, run_id, what earlier syncs delete) -> the sync's plan
MakePlan = Callable[[SyncConfig, StateStore, str, Doomed], SyncPlan]
# (config, state, run_id, totals, doomed) -> its changes a chunk at a time, or None: plan it whole
StreamParts = Callable[
    [SyncConfig, StateStore, str, StreamTotals, Doomed], "Iterator[tuple[list[Change], int]] | None"
]


def run_syncs(
    prep: Prepared,
    gw: StripeGateway,
    out: TextIO,
    started: Any,
    progress: Progress,
    make_plan: MakePlan,
    stream_parts: StreamParts | None = None,
) -> RunReport:
    """`run`: under the state lock, the syncs in waves (independent ones together), then the deletes,
    dependents first, then each sync's outcome counted and recorded."""
    store = SnapshotStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
    run_id = uuid.uuid4().hex
    lock = StateLock(
        prep.wh,
        store.schema,
        run_id,
        wait_s=prep.settings.lock_wait_s,
        lease_s=prep.settings.lock_lease_s,
    )
    lock.acquire()  # before the ledger is read: a second run would plan the same creates again
    try:
        store.ensure()
        prune_changelog(prep.wh, store.changelog, prep.settings.changelog_retention_days, utcnow())
        _close_interrupted(store, run_id, out)
        store.snapshot()  # every sync's ledger counts in one read (ledger_snapshot.py)
        # the sending bar counts writes; rejects are recorded before sending starts
        recorder = ChangelogRecorder(
            run_id, utcnow, on_row=lambda row: row.action != "reject" and progress.advance()
        )
        applier = Applier(store, gw, prep.settings, run_id, on_batch=lock.beat, recorder=recorder)
        summaries: list[SyncSummary] = list(prep.skipped)
        if prep.full_refresh:
            out.write(FULL_REFRESH_NOTICE)
        waves = sync_waves(prep.configs)  # syncs that do not depend on each other send together
        runs: list[list[_SyncRun]] = []
        # what the syncs planned so far delete: later ones must not build on it (doomed.py)
        doomed = Doomed.for_syncs(prep.configs)
        doubted: set[str] = set()  # syncs that did not finish, so far (bound_elsewhere.py)
        for wave in waves:
            wave_runs, not_started = _run_wave(
                prep, wave, store, gw, applier, run_id, progress, make_plan, stream_parts, doomed, doubted
            )
            runs.append(wave_runs)
            summaries += [r.summary for r in wave_runs] + not_started
            lock.beat()
        unlanded = _settle_takeovers(prep, store, applier, [r for wave_runs in runs for r in wave_runs])
        _hold_back_deletes_of_unfinished_dependents([r for wave_runs in runs for r in wave_runs])
        _retire_deletes_bound_elsewhere(prep, store, applier, [r for wave_runs in runs for r in wave_runs])
        for r in (r for wave_runs in runs for r in wave_runs):  # dependents in unselected syncs (F9)
            r.deletes, held = hold_in_run(
                prep.wh, store.ledger, r.config, prep.relations[r.config.model],
                [c.name for c in prep.configs], prep.sync_models, prep.full_refresh, r.deletes,
            )  # fmt: skip
            if held:
                r.summary.message = "; ".join(filter(None, [r.summary.message, held]))
        # Deletes go last, dependents first: a subscription is cancelled (with its proration) before
        # its customer is deleted, which would cancel it at once without one.
        for wave_runs in reversed(runs):
            _send_deletes(wave_runs, gw, applier, progress)
            lock.beat()
        retags = [t for t in doomed.retags if (t.config.name, t.key) not in unlanded]
        send_retags(retags, gw, [r for wave_runs in runs for r in wave_runs])
        for run in (r for wave_runs in runs for r in wave_runs):
            _settle(prep, run, store, gw, applier, run_id)
    finally:
        lock.release()
        progress.close()
    print_summary(out, summaries)
    return build_report(run_id, started, utcnow(), summaries)


@dataclass
class _SyncRun:
    """One sync's run in progress: what it planned and what happened to its rows."""

    config: SyncConfig
    adapter: StripeObject
    summary: SyncSummary
    started: Any
    t0: float
    calls_before: int
    result: SyncResult
    writes: int = 0  # writes handed to the send pipeline
    deletes: list[Change] = field(default_factory=list)  # sent after every wave, dependents first
    # deletes an in-run takeover dropped: (the row's retirement, the taking row's sync and key)
    taken_over: list[tuple[Change, str, str]] = field(default_factory=list)
    row_written: bool = False  # its `running` row is in the runs table
    streamed: bool = False  # planned and sent a chunk of its diff at a time (run_stream.py)
    # syncs of the run that did not finish so far (blocked, failed): their rows' models are in doubt
    doubted: set[str] = field(default_factory=set)


def _run_wave(
    prep: Prepared,
    wave: Sequence[SyncConfig],
    store: StateStore,
    gw: StripeGateway,
    applier: Applier,
    run_id: str,
    progress: Progress,
    make_plan: MakePlan,
    stream_parts: StreamParts | None,
    doomed: Doomed,
    doubted: set[str],
) -> tuple[list[_SyncRun], list[SyncSummary]]:
    """Run syncs that do not depend on each other: each is recovered and planned in turn, its writes
    joining one send pipeline as soon as it is planned (so the next is planned while they go out).
    Deletes are kept back (`_send_deletes`). Returns the syncs started, and summaries of those that
    could not be (Stripe unreachable)."""
    runs: list[_SyncRun] = []
    summaries: list[SyncSummary] = []
    with applier.pipeline() as pipe:
        for config in wave:
            if _unreachable(gw):  # an outage ends the run fast: later syncs are not started
                summaries.append(
                    SyncSummary(
                        config.model, config.object, "error", message="not started: Stripe is unreachable"
                    )
                )
                continue
            run = _SyncRun(
                config,
                adapter_for(config.object),
                SyncSummary(config.model, config.object, "success"),
                utcnow(),
                time.monotonic(),
                gw.stats.for_scope(config.name).requests,
                SyncResult(config.name),
                doubted=doubted,
            )
            runs.append(run)
            run.row_written = _record_start(store, run, run_id)
            _plan_and_queue(
                prep,
                run,
                store,
                applier,
                run_id,
                pipe,
                make_plan,
                stream_parts,
                doomed,
            )
            if run.summary.status in _UNFINISHED:
                doubted.add(config.name)
        sending = [r for r in runs if r.writes]
        if sending:
            names = ", ".join(r.config.model for r in sending)
            # a streamed sync's writes are counted as they are planned: no total to show
            total = None if any(r.streamed for r in sending) else sum(r.writes for r in sending)
            with progress.phase(f"{names}: sending to Stripe", total=total):
                progress.advance(pipe.finished)  # sent while later syncs of the wave were planned
                try:
                    pipe.drain()
                except Exception as exc:  # the ledger holds every write checkpointed: pending, not lost
                    for r in sending:
                        _failed(r, exc)
    for run in runs:  # before later waves plan: they may reference what these writes create
        _finish_burnt_keys(run, gw, applier)
    doubted.update(r.config.name for r in runs if r.summary.status in _UNFINISHED)
    # a cancel that invoices now goes at its own sync's turn, as one sync at a time: the final invoice
    # must not sweep in pending items a later wave creates (invoice_now.py)
    early = [r for r in runs if r.deletes and cancels_invoice_now(r.config)]
    _send_deletes(early, gw, applier, progress)
    for run in early:
        run.deletes = []
    return runs, summaries


def _send_deletes(runs: Sequence[_SyncRun], gw: StripeGateway, applier: Applier, progress: Progress) -> None:
    """Send the deletes the wave's syncs planned, together, on one pipeline."""
    deleting = [r for r in runs if r.deletes and r.summary.status == "success"]
    if not deleting:
        return
    names = ", ".join(r.config.model for r in deleting)
    with (
        applier.pipeline() as pipe,
        progress.phase(f"{names}: deleting in Stripe", total=sum(len(r.deletes) for r in deleting)),
    ):
        try:
            for r in deleting:
                if _unreachable(gw):
                    r.result.not_sent += len(r.deletes)
                    continue
                applier.send(pipe, r.config, r.adapter, r.deletes, r.result)
            pipe.drain()
        except Exception as exc:  # the ledger holds every delete checkpointed: pending, not lost
            for r in deleting:
                _failed(r, exc)
    for r in deleting:
        _finish_burnt_keys(r, gw, applier)


def _finish_burnt_keys(run: _SyncRun, gw: StripeGateway, applier: Applier) -> None:
    """Writes whose key Stripe burnt with a saved 5xx (recovered ones too, even when nothing new was
    sent): found by their tag or re-sent under a new, checkpointed key, a few passes."""
    if run.summary.status != "success":
        return
    try:
        for _ in range(BURNT_KEY_PASSES):
            if _unreachable(gw):
                break
            if not applier.recover(run.config, run.adapter, run.result, only_burnt=True):
                break
    except Exception as exc:
        _failed(run, exc)


def _settle(
    prep: Prepared, run: _SyncRun, store: StateStore, gw: StripeGateway, applier: Applier, run_id: str
) -> None:
    """Count and record the sync (its rows still rejected from earlier runs included)."""
    try:
        if run.summary.status == "success":
            _note_earlier_rejects(run, store, run_id, prep.relations[run.config.model])
    except Exception as exc:
        _failed(run, exc)
    _finish(run, store, gw, run_id)


def _plan_and_queue(
    prep: Prepared,
    run: _SyncRun,
    store: StateStore,
    applier: Applier,
    run_id: str,
    pipe: SendPipeline,
    make_plan: MakePlan,
    stream_parts: StreamParts | None,
    doomed: Doomed,
) -> None:
    """Finish what earlier runs left pending, plan the sync and queue its writes on `pipe` (a large
    sync's a chunk at a time, as the pipeline asks for them)."""
    config, result, summary = run.config, run.result, run.summary
    try:
        # a pending create of a row that left the model is confirmed by its tag or dropped, never sent
        relation = prep.relations[config.model]
        applier.recover(
            config,
            run.adapter,
            result,
            gone=lambda: store.pending_keys_not_in(config.name, relation, config.primary_key),
            kept=lambda deletes: _kept_pending_deletes(prep, store, run, deletes),
        )
        # rows a recovered write finished are not in the diff, so not "unchanged" either; a recovered
        # delete (deleted, archived, left) is of a row that left the model: it was never counted there
        recovered = sum(n for bucket, n in result.counts.items() if bucket not in _NOT_IN_UNCHANGED)
        crashpoint("after_recover")
        totals = StreamTotals()
        parts = stream_parts(config, store, run_id, totals, doomed) if stream_parts is not None else None
        if parts is not None:
            _queue_streamed(prep, store, run, parts, totals, recovered, applier, pipe, doomed)
            return
        plan = make_plan(config, store, run_id, doomed)
        crashpoint("after_plan")
        summary.unchanged = max(plan.unchanged - recovered, 0)
        if plan.blocked:
            summary.status, summary.message = "blocked", plan.blocked + " — nothing was sent for this model"
            return
        # no write names an object the run deletes; objects moving here from a model deleting them
        changes = _defer_rekeys(run, doomed.hand_over(config, doomed.unresolve_plain(config, plan.changes)))
        run.deletes, dooming = _vet_deletes(
            prep, store, applier, run, doomed, [c for c in changes if c.action == "delete"]
        )
        doomed.add(config, dooming, _canceller(run))
        now = replace(plan, changes=tuple(c for c in changes if c.action != "delete"))
        run.writes = sum(1 for c in now.changes if c.calls_stripe)
        applier.apply(now, run.adapter, result, pipe)
    except Exception as exc:  # one sync's failure must not stop the others
        run.writes = 0
        _failed(run, exc)


def _queue_streamed(
    prep: Prepared,
    store: StateStore,
    run: _SyncRun,
    parts: Iterator[tuple[list[Change], int]],
    totals: StreamTotals,
    recovered: int,
    applier: Applier,
    pipe: SendPipeline,
    doomed: Doomed,
) -> None:
    """Queue a streamed sync: its first writes now, the rest planned when its lane runs low. Ledger-only
    changes are recorded as their chunk is planned; deletes are kept back like a whole plan's."""
    config, result, summary = run.config, run.result, run.summary
    run.streamed = True
    cancel = _canceller(run)

    def vet(deletes: list[Change]) -> tuple[list[Change], list[Change]]:
        return _vet_deletes(prep, store, applier, run, doomed, deletes)

    def next_writes() -> list[Change] | None:
        if summary.status != "success":
            return None
        try:
            for changes, _part in parts:
                changes = _defer_rekeys(
                    run, doomed.hand_over(config, doomed.unresolve_plain(config, changes))
                )
                deletes, dooming = vet([c for c in changes if c.action == "delete"])
                run.deletes += deletes
                doomed.add(config, dooming, cancel)
                writes = applier.record_quiet(config, [c for c in changes if c.action != "delete"], result)
                if writes:
                    run.writes += len(writes)
                    return writes
        except Exception as exc:  # this sync stops; the others in the pipeline go on
            _failed(run, exc)
            run.deletes = []
            return None
        summary.unchanged = max(totals.unchanged - recovered, 0)
        if totals.guard:  # cannot trip: checked against an upper bound first (run_stream.py)
            run.deletes = []
            summary.status, summary.message = "blocked", totals.guard + " — its deletes were not sent"
        return None

    first = next_writes()
    crashpoint("after_plan")
    if first:
        lane = applier.lane(config, run.adapter, first, result)
        lane.refill = next_writes
        pipe.add(lane, first)


def _vet_deletes(
    prep: Prepared, store: StateStore, applier: Applier, run: _SyncRun, doomed: Doomed, deletes: list[Change]
) -> tuple[list[Change], list[Change]]:
    """A sync's planned deletes checked before they doom their objects for the syncs planned after it:
    the deletes still planned, and those of them that doom their objects. One whose object another row
    is bound to (an earlier run's takeover or re-key, killed before the old row was retired) retires its
    row now; one whose object a pending write of another row is aimed at (killed before its outcome was
    recorded) cannot be sent in this run either way — that write binds the row, or is refused and holds
    the delete back. Neither dooms the object, so later syncs of this run still resolve references to a
    customer that stays (they lost its invoices for a run). The rest, and the pending-aimed ones, are
    checked again once every write is done (`_retire_deletes_bound_elsewhere`): a row whose update
    Stripe refused may bind to the object in this run, or stop aiming at it; until then its delete
    dooms the object, the safe side for references. A delete of an object a row of this run bound to is
    left to `Doomed.add` (an in-run takeover, with its re-tag), whether or not that write has landed."""
    config = run.config
    checked = [c for c in deletes if c.stripe_id and not doomed.taken_here(config, c)]
    if not checked:
        return deletes, deletes
    name = config.name
    try:
        found = bound_elsewhere(prep.wh, store.ledger, {name: checked}, prep.sync_models, run.doubted)
    except Exception:  # `_retire_deletes_bound_elsewhere` holds them back if it cannot check either
        return deletes, deletes
    retired, awaited = vet(name, checked, found)
    if retired:
        applier.record_quiet(config, retired, run.result)
        _note_retired(run, retired, "delete(s) not sent")
    gone = {c.key for c in retired}
    kept = [c for c in deletes if c.key not in gone]
    return kept, [c for c in kept if c.key not in awaited]


def _canceller(run: _SyncRun) -> Cancel:
    """Drops one of the run's planned deletes: another row of the run takes its object over
    (doomed.py). Its row's retirement waits for that row's write (`_settle_takeovers`)."""
    return cancel_in(run.deletes, lambda retired, sync, key: run.taken_over.append((retired, sync, key)))


def _defer_rekeys(run: _SyncRun, changes: list[Change]) -> list[Change]:
    """The changes but a re-key's retirement of its old row, kept for `_settle_takeovers`: the object
    moves to the new row only once that row's update (which writes its tag) has landed."""
    if not any(c.moved_to for c in changes):
        return changes
    run.taken_over += [(c, run.config.name, c.moved_to) for c in changes if c.moved_to]
    return [c for c in changes if not c.moved_to]


def _settle_takeovers(
    prep: Prepared, store: StateStore, applier: Applier, runs: Sequence[_SyncRun]
) -> set[tuple[str, str]]:
    """Every write sent: a delete an in-run takeover dropped retires its row once the taking row is
    bound to the object, and so does a re-key's old row (`_defer_rekeys`). If that write did not land
    (Stripe refused it, the sync failed), the old row is not retired: its delete is held, planned again
    by the next run (bound_elsewhere.py), so the object keeps an owner that deletes it. Returns the
    taking rows (sync, key) that did not land."""
    taken = [(r, t) for r in runs for t in r.taken_over]
    if not taken:
        return set()
    ids = [str(retired.stripe_id) for _, (retired, _s, _k) in taken]
    failure = None
    try:
        bound = {(s, k, sid) for s, k, sid, _ in bound_rows(prep.wh, store.ledger, ids)}
    except Exception as exc:  # nothing is retired unchecked: each delete is planned again next run
        bound, failure = set(), redact_all(str(exc))[:200]
    unlanded: set[tuple[str, str]] = set()
    for run in runs:
        landed = [c for c, sync, key in run.taken_over if (sync, key, c.stripe_id) in bound]
        if landed:
            applier.record_quiet(run.config, landed, run.result)
        waiting = [(c, sync, key) for c, sync, key in run.taken_over if (sync, key, c.stripe_id) not in bound]
        unlanded.update((sync, key) for _, sync, key in waiting)
        found = {(run.config.name, c.key): Holder(sync, key, "taking") for c, sync, key in waiting}
        held = [c for c, _, _ in waiting]
        if failure and held:
            why = f"takeover not confirmed ({failure})"
            notes = [f"{len(held)} delete(s) held back, planned again by the next run: {why}"]
        else:  # a re-key within the model (`_defer_rekeys`) is named as one
            notes = [
                held_note(run.config.name, [c for c in held if not c.moved_to], found),
                held_note(run.config.name, [c for c in held if c.moved_to], found, "re-key(s)"),
            ]
        if any(notes):
            run.summary.message = "; ".join(filter(None, [run.summary.message, *notes]))
    return unlanded


def _retire_deletes_bound_elsewhere(
    prep: Prepared, store: StateStore, applier: Applier, runs: Sequence[_SyncRun]
) -> None:
    """A delete of an object another row's ledger is still bound to retires its row instead
    (bound_elsewhere.py); when that cannot be checked, the sync's deletes wait for the next run."""
    sending = [r for r in runs if r.deletes and r.summary.status == "success"]
    if not sending:
        return
    try:
        doubted = {r.config.name for r in runs if r.summary.status in _UNFINISHED}
        deletes = {r.config.name: r.deletes for r in sending}
        found = bound_elsewhere(prep.wh, store.ledger, deletes, prep.sync_models, doubted)
    except Exception as exc:  # nothing irreversible is sent unchecked
        reason = redact_all(str(exc))[:200]
        for r in sending:
            note = (
                f"{len(r.deletes)} delete(s) held back: could not check other rows bound to them ({reason})"
            )
            r.summary.message = "; ".join(filter(None, [r.summary.message, note]))
            r.deletes = []
        return
    for r in sending:
        r.deletes, retired, held = split_bound(r.config.name, r.deletes, found)
        if retired:
            applier.record_quiet(r.config, retired, r.result)
            _note_retired(r, retired, "delete(s) not sent")
        note = held_note(r.config.name, held, found)
        if note:
            r.summary.message = "; ".join(filter(None, [r.summary.message, note]))


def _kept_pending_deletes(
    prep: Prepared, store: StateStore, run: _SyncRun, deletes: list[Change]
) -> tuple[list[Change], list[Change]]:
    """Of a sync's pending deletes: the retirements of those whose object another row is bound to
    now, and those held (left pending, not re-sent) for a row only aimed at it (bound_elsewhere.py),
    named in the sync's summary."""
    name = run.config.name
    found = bound_elsewhere(prep.wh, store.ledger, {name: deletes}, prep.sync_models)
    _, retired, held = split_bound(name, deletes, found)
    _note_retired(run, retired, "pending delete(s) not re-sent")
    note = held_note(name, held, found, "pending delete(s)")
    if note:
        run.summary.message = "; ".join(filter(None, [run.summary.message, note]))
    return retired, held


def _note_retired(run: _SyncRun, retired: Sequence[Change], what: str) -> None:
    if retired:
        more = f" (and {len(retired) - 1} more)" if len(retired) > 1 else ""
        note = f"{len(retired)} {what}: row {retired[0].key}: {retired[0].reason}{more}"
        run.summary.message = "; ".join(filter(None, [run.summary.message, note]))


def _hold_back_deletes_of_unfinished_dependents(runs: Sequence[_SyncRun]) -> None:
    """A sync that depends on another and did not finish (blocked by its delete guard, failed) may still
    hold objects of the other's that it meant to change first — a subscription to cancel with its
    proration before its customer goes. The other's deletes wait for a run where it finishes."""
    for run in runs:
        if not run.deletes:
            continue
        unfinished = [
            r.config.model
            for r in runs
            if r is not run and r.summary.status in _UNFINISHED and needs(r.config, run.config)
        ]
        if unfinished:
            held, run.deletes = len(run.deletes), []
            note = (
                f"{held} delete(s) held back: {', '.join(unfinished)} depends on this model and did not "
                "finish; they are planned again by the next run"
            )
            run.summary.message = "; ".join(filter(None, [run.summary.message, note]))


def _failed(run: _SyncRun, exc: BaseException) -> None:
    if isinstance(exc, (SyncAborted, ConfigError)):
        run.summary.status, run.summary.message = "blocked", str(exc)
    else:
        run.summary.status, run.summary.message = "error", redact_all(f"{type(exc).__name__}: {exc}")


def _record_start(store: StateStore, run: _SyncRun, run_id: str) -> bool:
    """A `running` row for the sync, so a run killed before it finishes still shows in the runs table
    (the next run marks it `interrupted`); finished by `_finish`."""
    running = SyncSummary(run.config.model, run.config.object, "running")
    try:
        store.record_run({**_run_row(run_id, run.config, running, run.started), "finished_at": None})
    except Exception:  # the row is written at the end instead
        return False
    return True


def _close_interrupted(store: StateStore, run_id: str, out: TextIO) -> None:
    try:
        store.close_interrupted_runs(store.changelog, run_id)
    except Exception as exc:  # history only: never stops a sync
        reason = redact_all(str(exc))[:200]
        out.write(f"warning: could not mark interrupted runs in the runs table: {reason}\n")


def _note_earlier_rejects(run: _SyncRun, store: StateStore, run_id: str, relation: str) -> None:
    if isinstance(store, SnapshotStore) and store.none_rejected_earlier(run.config.name):
        return
    earlier = still_rejected(store, run.config.name, run_id, relation, run.config.primary_key)
    if earlier:
        run.summary.status = "partial"
        run.summary.earlier_rejected = earlier
        note = (
            f"{len(earlier)} row(s) rejected by earlier runs are still not in Stripe; they are "
            "retried when their data changes (or every run with retry_rejected: true) — "
            "see last_error in the ledger"
        )  # after the run's other notes on this sync (held or retired deletes), never instead of them
        run.summary.message = "; ".join(filter(None, [run.summary.message, note]))


def _finish(run: _SyncRun, store: StateStore, gw: StripeGateway, run_id: str) -> None:
    """Count the sync's outcome, say what is left to do, and record its row in the runs table."""
    config, result, summary = run.config, run.result, run.summary
    summary.counts = dict(result.counts)
    # bound to an object already in Stripe with the row's values: nothing to send, so unchanged
    summary.unchanged += summary.counts.pop(ADOPTED, 0)
    summary.counts["api_calls"] = gw.stats.for_scope(config.name).requests - run.calls_before
    summary.rejected_rows = list(result.errors)
    if summary.earlier_rejected:  # rows still rejected from earlier runs count, and are shown, too
        summary.counts["rejected"] = summary.counts.get("rejected", 0) + len(summary.earlier_rejected)
        summary.rejected_rows += summary.earlier_rejected
        summary.unchanged = max(summary.unchanged - len(summary.earlier_rejected), 0)  # not in Stripe
    if summary.status == "success" and (result.counts.get(REJECTED) or result.counts.get(PENDING)):
        summary.status = "partial"
    notes = []
    if result.counts.get(PENDING):
        notes.append(
            f"{result.counts[PENDING]} write(s) left pending: their outcome in Stripe is unknown; the next "
            "run finishes them first, with the same idempotency keys (never re-planned under new ones)"
        )
    if _unreachable(gw):
        summary.status = "error"
        notes.append(
            f"{_unreachable(gw)}; {result.not_sent} write(s) not attempted (planned again by the next run)"
        )
    if notes:
        summary.message = "; ".join(filter(None, [summary.message, *notes]))
    summary.duration_s = time.monotonic() - run.t0
    crashpoint("before_runs_row")
    try:
        row = _run_row(run_id, config, summary, run.started)
        store.update_run(row) if run.row_written else store.record_run(row)
    except Exception as exc:  # the Stripe side is done and the ledger holds it; say so, go on
        summary.message = (summary.message or "") + f" (runs table not updated: {redact_all(str(exc))[:200]})"


_NOT_IN_UNCHANGED = frozenset({PENDING, DELETED, ARCHIVED, SKIPPED})
_UNFINISHED = frozenset({"blocked", "error"})  # sync statuses whose deletes are not sent
BURNT_KEY_PASSES = 5  # each settles what it can; what is left stays pending for the next run


def _unreachable(gw: StripeGateway) -> str | None:
    """The gateway's reason once its circuit breaker opened (Stripe unreachable), else None."""
    return getattr(gw, "unavailable", None)


def _run_row(run_id: str, config: SyncConfig, s: SyncSummary, started: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "sync_name": config.name,
        "object_type": config.object,
        "started_at": started,
        "finished_at": utcnow(),
        "status": s.status,
        "created": s.counts.get("created", 0),
        "updated": s.counts.get("updated", 0),
        "deleted": s.counts.get("deleted", 0),
        "archived": s.counts.get("archived", 0),
        "skipped": s.counts.get("skipped", 0),
        "rejected": s.counts.get("rejected", 0),
        "api_calls": s.counts.get("api_calls", 0),
        "duration_s": round(s.duration_s, 3),
        "error": (s.message or None) and s.message[:2000],
    }
