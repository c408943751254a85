"""One command, end to end: project -> config -> warehouse diff -> plan -> (apply) -> ledger -> report."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from dbt_stripe_sync import project as P
from dbt_stripe_sync.against import against_stripe
from dbt_stripe_sync.alerts import parse_alerts, send_alerts
from dbt_stripe_sync.applier import ADOPTED, PENDING, REJECTED, Applier, SyncResult
from dbt_stripe_sync.binding import bind
from dbt_stripe_sync.changelog import ChangelogRecorder
from dbt_stripe_sync.changelog import prune as prune_changelog
from dbt_stripe_sync.config.errors import ConfigError, ConfigProblem
from dbt_stripe_sync.config.loader import ModelBlock, build, load_all
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.connect_plan import plan_by_account
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.diff import run_diff
from dbt_stripe_sync.errors import SyncAborted, UsageError
from dbt_stripe_sync.full_refresh import NOTICE as FULL_REFRESH_NOTICE
from dbt_stripe_sync.full_refresh import refreshed_ledger_sql
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore, utcnow
from dbt_stripe_sync.log_setup import emit_warning
from dbt_stripe_sync.matching import gather
from dbt_stripe_sync.plan import Change, SyncPlan, Upcoming
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.plan_report import (
    creates_needed,
    plan_summaries,
    still_rejected,
    upcoming_creates,
    with_earlier_rejects,
    write_whole_plan,
)
from dbt_stripe_sync.plan_stream import stream_plan
from dbt_stripe_sync.planner import build_plan
from dbt_stripe_sync.progress import Progress, progress_display
from dbt_stripe_sync.report import SyncSummary, print_plan, print_summary
from dbt_stripe_sync.run_lock import StateLock, StateLockBusy
from dbt_stripe_sync.run_report import RunReport, build_report
from dbt_stripe_sync.secrets import InvalidApiKeyError, key_mode, redact_all
from dbt_stripe_sync.selection import SelectionArgs
from dbt_stripe_sync.send_pipeline import SendPipeline
from dbt_stripe_sync.settings import Settings, api_key, load_settings
from dbt_stripe_sync.start_failure import alert_start_failure
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.warehouse import Warehouse
from dbt_stripe_sync.waves import sync_waves


@dataclass(frozen=True)
class Invocation:
    command: str  # run | plan | validate
    project_dir: str
    profiles_dir: str | None = None
    target: str | None = None
    select: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    output: str | None = None  # run: the run report as JSON; plan: the whole plan as JSON
    sample: int = 5
    exclude: tuple[str, ...] = ()  # dbt selection: --exclude, --selector, --state (see selection.py)
    selector: str | None = None
    state: str | None = None
    full_refresh: bool = False  # re-send every selected row as if never synced (no deletes)
    progress: bool = True  # a progress display on stderr during long phases
    against: str = "ledger"  # plan: before-values from the ledger, or read from "stripe"


@dataclass
class Prepared:
    wh: Warehouse
    settings: Settings
    project: P.Project
    configs: list[SyncConfig]  # selected, in sync order
    relations: dict[str, str]  # model name -> relation
    skipped: list[SyncSummary]
    unbuilt: list[str] = field(default_factory=list)  # selected models whose relation does not exist
    full_refresh: bool = False


def execute(inv: Invocation, out: TextIO | None = None) -> int:
    code, _ = perform(inv, out, keep_rows=False)  # the CLI: nobody reads the report's planned rows
    return code


def perform(
    inv: Invocation, out: TextIO | None = None, *, keep_rows: bool = True
) -> tuple[int, RunReport | None]:
    """Run one command; the exit code and, for run and plan, the run report (the Python API's value).
    `keep_rows=False`: a plan's report carries no rows (`plans` empty), so `plan` keeps only counts
    and a sample in memory (plus every row on disk for --output)."""
    out = out or sys.stdout
    started = utcnow()
    loaded: list[Settings] = []  # the settings, once read: a run that stops later alerts through them
    try:
        return _perform(inv, out, started, loaded, keep_rows)
    except Exception as exc:  # a run that stopped before syncing alerts too (F4), then fails as before
        if inv.command == "run":
            alerts = loaded[0].alerts if loaded else None
            for problem in alert_start_failure(exc, started, inv.project_dir, inv.vars, alerts):
                emit_warning(problem, "dbt_stripe_sync.alerts")
        raise


def _perform(
    inv: Invocation, out: TextIO, started: Any, loaded: list[Settings], keep_rows: bool
) -> tuple[int, RunReport | None]:
    prepared = prepare(inv, out)
    loaded.append(prepared.settings)
    try:
        alerts = parse_alerts(prepared.settings.alerts)  # a bad alert is a usage error: exit 2, nothing sent
        if inv.command == "validate":
            names = ", ".join(c.model for c in prepared.configs) or "none selected"
            out.write(f"OK: {len(prepared.configs)} stripe_sync block(s) valid ({names})\n")
            if prepared.unbuilt:
                out.write(_unchecked_columns(prepared))
            return 0, None
        gateway = _gateway(prepared.settings, prepared.wh.target.name)
        with progress_display(inv.progress) as progress:
            if inv.command == "plan":
                report = _plan(inv, prepared, gateway, out, started, progress, keep_rows)
            else:
                report = _run(prepared, gateway, out, started, progress)
    finally:
        prepared.wh.close()
    if inv.command == "run":
        if inv.output:
            report.write(inv.output)
            out.write(f"\nRun report written to {inv.output}\n")
        for problem in send_alerts(alerts, report):
            emit_warning(problem, "dbt_stripe_sync.alerts")
    return report.exit_code, report


def _unchecked_columns(prep: Prepared) -> str:
    names = " ".join(u.split(":")[0] for u in prep.unbuilt)
    return (
        f"columns not checked for {names}: not built on target {prep.wh.target.name!r} "
        f"(its relation does not exist); run `dbt run -s {names}`, then validate again\n"
    )


# ---- preparation (shared by run, plan and validate; writes nothing) ---------------------------
def prepare(inv: Invocation, out: TextIO) -> Prepared:
    wh = _open_warehouse(inv)
    try:
        project = P.load_project(wh.manifest, wh.target_path, wh.target.name)
        settings = load_settings({"dbt_stripe_sync": wh.vars}, inv.vars)
        selection = SelectionArgs(inv.select, inv.exclude, inv.selector, inv.state)
        selected = P.select(project, wh.config, selection)
        known = {n.name: n for n in project.nodes.values()}
        blocks = []
        skipped: list[SyncSummary] = []
        relations: dict[str, str] = {}
        unbuilt: list[str] = []
        for node in selected:
            columns = wh.columns_of(node.relation)
            if columns is None:
                unbuilt.append(f"{node.name}: the model's relation {node.relation} does not exist")
            relations[node.name] = node.relation
            blocks.append(ModelBlock(node.name, node.unique_id, node.block, columns))
        # Blocks of unselected models are checked too (without columns), so `sync:` targets resolve.
        others = [ModelBlock(n.name, n.unique_id, n.block, None) for n in known.values() if n not in selected]
        try:
            all_configs = load_all(blocks + others)
        except ConfigError as exc:
            selected_names = {b.model for b in blocks} | _referenced(blocks)
            relevant = [p for p in exc.problems if p.model in selected_names]
            if relevant:
                raise ConfigError(relevant) from None
            # the problems are all in unselected models: the selected blocks are valid as they are
            all_configs = [build(b.model, b.unique_id, b.block) for b in blocks]
        stale = P.stale(project, selected) if inv.command != "validate" else None
        if stale:  # after config problems: those need no dbt run to fix
            raise UsageError(stale)
        if unbuilt and inv.command != "validate":  # config problems first: they need no dbt run to fix
            names = " ".join(u.split(":")[0] for u in unbuilt)
            raise UsageError("; ".join(unbuilt) + f" — run `dbt run -s {names}` first")
        wanted = {b.model for b in blocks}
        configs = {c.model: c for c in all_configs if c.model in wanted}
        order = P.sync_order(
            {c.model: c.object for c in configs.values()},
            {c.model: {r.sync for r in c.references if r.sync} for c in configs.values()},
        )
        for name in list(order):
            node = known[name]
            if node.unique_id in project.failed:
                skipped.append(
                    SyncSummary(
                        name,
                        configs[name].object,
                        "skipped",
                        message="its last dbt run failed or was skipped; not synced",
                    )
                )
                order.remove(name)
        return Prepared(
            wh, settings, project, [configs[n] for n in order], relations, skipped, unbuilt, inv.full_refresh
        )
    except BaseException:
        wh.close()
        raise


def _open_warehouse(inv: Invocation) -> Warehouse:
    """Open the warehouse; an embedded database file locked by another process (DuckDB allows one
    writer process) is waited for, as the state-schema lock would be, then reported by name."""
    wait_s = float((inv.vars.get("dbt_stripe_sync") or {}).get("lock_wait_s", Settings.lock_wait_s))
    deadline = time.monotonic() + wait_s
    while True:
        wh = Warehouse.open(inv.project_dir, inv.profiles_dir, inv.target, inv.vars)
        try:
            wh.query("select 1")  # adapters open the database lazily: open it now
            return wh
        except Exception as exc:
            wh.close()
            held = _file_lock_holder(exc)
            if held is None:
                raise
            if time.monotonic() >= deadline:
                raise StateLockBusy(
                    f"the warehouse file is locked by another process ({held}): another dbt-stripe-sync "
                    f"run, or dbt itself, is using it; waited {wait_s:g} s. Wait for it to finish (or "
                    "raise vars.dbt_stripe_sync.lock_wait_s); nothing was sent by this run"
                ) from None
            time.sleep(0.5)


def _file_lock_holder(exc: BaseException) -> str | None:
    """`PID 123` when exc is DuckDB refusing a file another process holds, else None."""
    import re

    text = str(exc)
    if "Could not set lock on file" not in text and "Conflicting lock" not in text:
        return None
    pid = re.search(r"PID (\d+)", text)
    return f"PID {pid.group(1)}" if pid else "unknown PID"


def _referenced(blocks: Sequence[ModelBlock]) -> set[str]:
    names: set[str] = set()
    for b in blocks:
        refs = b.block.get("references") if isinstance(b.block, dict) else None
        if isinstance(refs, dict):
            names |= {r.get("sync") for r in refs.values() if isinstance(r, dict) and r.get("sync")}
    return names


def _gateway(settings: Settings, target_name: str) -> StripeGateway:
    key = api_key(settings)
    if not key:
        raise UsageError(
            f"no Stripe API key: set the environment variable {settings.api_key_env} "
            "(or vars.dbt_stripe_sync.api_key_env to the name of the variable that holds it)"
        )
    try:
        mode = key_mode(key)
    except InvalidApiKeyError as exc:
        raise UsageError(f"{settings.api_key_env}: {exc}") from None
    if mode == "live" and target_name not in settings.live_targets:
        raise UsageError(
            f"{settings.api_key_env} holds a live Stripe key, but dbt target {target_name!r} is not "
            "marked live; add it to vars.dbt_stripe_sync.live_targets to use live Stripe from this target"
        )
    return StripeGateway(
        key,
        api_base=os.environ.get("STRIPE_API_BASE") or None,
        api_base_env="STRIPE_API_BASE",  # outage messages say whether it is set
        rate_limit=settings.rate_limit,
        endpoint_rate_limit=settings.endpoint_rate_limit,
        search_rate_limit=settings.search_rate_limit,
        max_retries=settings.max_retries,
        timeout_s=settings.request_timeout_s,
    )


# ---- plan -------------------------------------------------------------------------------------
def _plan(
    inv: Invocation,
    prep: Prepared,
    gw: StripeGateway,
    out: TextIO,
    started: Any,
    progress: Progress,
    keep_rows: bool = True,
) -> RunReport:
    """Plan every selected sync, keeping of each only a digest (plan_digest.py): every row only for
    --output or when the caller wants the report's rows (`keep_rows`, the Python API)."""
    store = StateStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
    exists = store.exists()
    ledger_relation = store.readable_sql() if exists else store.empty_ledger_sql()
    plans: list[PlanDigest] = []
    if prep.full_refresh:
        out.write(FULL_REFRESH_NOTICE)
    try:
        for i, config in enumerate(prep.configs):
            # a `sync:` reference to a row an earlier plan creates resolves as the run will resolve it
            upcoming = upcoming_creates(plans)
            keep = Keep(inv.sample, bool(inv.output) or keep_rows, keep_rows, creates_needed(prep.configs, i))
            state = store if exists else None
            digest = _plan_one(inv, prep, config, gw, state, ledger_relation, progress, keep, upcoming)
            plans.append(digest)
            # rows still rejected by earlier runs count as the run counts them (rejected, not unchanged)
            with_earlier_rejects(digest, state, ledger_relation, prep.relations[config.model])
        print_plan(out, plans, sample=inv.sample)
        for s in prep.skipped:
            out.write(f"\n{s.model}: {s.message}\n")
        summaries = [*prep.skipped, *plan_summaries(plans)]
        rows = [p.to_dict(sample=None) for p in plans] if keep_rows else []
        report = build_report("plan", started, utcnow(), summaries, rows)
        if inv.output:
            write_whole_plan(inv.output, plans, inv.sample, report)
            out.write(f"\nPlan written to {inv.output}\n")
        return report
    finally:
        for p in plans:
            p.close()


def _plan_one(
    inv: Invocation,
    prep: Prepared,
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    keep: Keep,
    upcoming: Any,
) -> PlanDigest:
    """A platform sync is planned chunk by chunk (plan_stream.py); a Connect sync, or one compared
    with Stripe's current objects, is planned whole as `run` plans it."""
    if config.account is None and inv.against != "stripe":
        return stream_plan(prep, config, gw, store, ledger_relation, progress, keep, upcoming)
    plan = _make_plan(prep, config, gw, store, ledger_relation, progress, upcoming)
    if inv.against == "stripe":
        with progress.phase(f"{config.model}: reading the current Stripe objects"):
            plan = against_stripe(gw, plan)
    return PlanDigest.of(plan, keep)


def _make_plan(
    prep: Prepared,
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    upcoming: Upcoming | None = None,
    run_id: str | None = None,
) -> SyncPlan:
    refresh = prep.full_refresh and store is not None
    with progress.phase(f"{config.model}: diff in the warehouse"):
        diff = run_diff(
            prep.wh,
            config,
            prep.relations[config.model],
            refreshed_ledger_sql(store) if refresh and store is not None else ledger_relation,
            include_deletes=config.delete == "delete" and config.mode == "upsert" and not prep.full_refresh,
            retry_rejected=prep.settings.retry_rejected,
        )
    crashpoint("after_diff")
    adapter = adapter_for(config.object)
    live = store.count_live(config.name) if store is not None else 0
    token = (run_id or "plan") if prep.full_refresh else None
    relation = prep.relations[config.model]
    with progress.phase(f"{config.model}: matching {len(diff.rows)} changed rows in Stripe"):
        if config.account is not None:  # Stripe Connect: each account's rows are planned inside it
            return plan_by_account(
                config, adapter, prep.settings, diff, gw, store, relation, live, token, upcoming
            )
        lookups = gather(config, diff, gw, store)
        lookups = bind(config, adapter, diff, gw, store, relation, lookups)
    return build_plan(
        config, adapter, prep.settings, diff, lookups, live, full_refresh=token, upcoming=upcoming
    )


# ---- run --------------------------------------------------------------------------------------
def _run(prep: Prepared, gw: StripeGateway, out: TextIO, started: Any, progress: Progress) -> RunReport:
    store = StateStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
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
        for wave in waves:
            wave_runs, not_started = _run_wave(prep, wave, store, gw, applier, run_id, progress)
            runs.append(wave_runs)
            summaries += [r.summary for r in wave_runs] + not_started
            lock.beat()
        # Deletes go last, dependents first: a subscription is cancelled (with its proration) before
        # its customer is deleted, which would cancel it at once without one.
        for wave_runs in reversed(runs):
            _send_deletes(wave_runs, gw, applier, progress)
            lock.beat()
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
    row_written: bool = False  # its `running` row is in the runs table


def _run_wave(
    prep: Prepared,
    wave: Sequence[SyncConfig],
    store: StateStore,
    gw: StripeGateway,
    applier: Applier,
    run_id: str,
    progress: Progress,
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
            )
            runs.append(run)
            run.row_written = _record_start(store, run, run_id)
            _plan_and_queue(prep, run, store, gw, applier, run_id, progress, pipe)
        sending = [r for r in runs if r.writes]
        if sending:
            names = ", ".join(r.config.model for r in sending)
            with progress.phase(f"{names}: sending to Stripe", total=sum(r.writes for r in sending)):
                progress.advance(pipe.finished)  # sent while later syncs of the wave were planned
                try:
                    pipe.drain()
                except Exception as exc:  # the ledger holds every write checkpointed: pending, not lost
                    for r in sending:
                        _failed(r, exc)
    for run in runs:  # before later waves plan: they may reference what these writes create
        _finish_burnt_keys(run, gw, applier)
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
    gw: StripeGateway,
    applier: Applier,
    run_id: str,
    progress: Progress,
    pipe: SendPipeline,
) -> None:
    """Finish what earlier runs left pending, plan the sync and queue its writes on `pipe`."""
    config, result, summary = run.config, run.result, run.summary
    try:
        # a pending create of a row that left the model is confirmed by its tag or dropped, never sent
        gone = store.pending_keys_not_in(config.name, prep.relations[config.model], config.primary_key)
        applier.recover(config, run.adapter, result, gone=gone)
        # rows a recovered write finished are not in the diff, so not "unchanged" either
        recovered = sum(n for bucket, n in result.counts.items() if bucket != PENDING)
        crashpoint("after_recover")
        plan = _make_plan(prep, config, gw, store, store.ledger, progress, run_id=run_id)
        crashpoint("after_plan")
        summary.unchanged = max(plan.unchanged - recovered, 0)
        if plan.blocked:
            summary.status, summary.message = "blocked", plan.blocked + " — nothing was sent for this model"
            return
        run.deletes = [c for c in plan.changes if c.action == "delete"]
        now = replace(plan, changes=tuple(c for c in plan.changes if c.action != "delete"))
        run.writes = sum(1 for c in now.changes if c.calls_stripe)
        applier.apply(now, run.adapter, result, pipe)
    except Exception as exc:  # one sync's failure must not stop the others
        run.writes = 0
        _failed(run, exc)


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
    earlier = still_rejected(store, run.config.name, run_id, relation, run.config.primary_key)
    if earlier:
        run.summary.status = "partial"
        run.summary.earlier_rejected = earlier
        run.summary.message = (
            f"{len(earlier)} row(s) rejected by earlier runs are still not in Stripe; they are "
            "retried when their data changes (or every run with retry_rejected: true) — "
            "see last_error in the ledger"
        )


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


__all__ = ["ConfigProblem", "Invocation", "execute"]
