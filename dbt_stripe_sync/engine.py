"""One command, end to end: project -> config -> warehouse diff -> plan -> (apply) -> ledger -> report."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from dbt_stripe_sync import project as P
from dbt_stripe_sync import quick_fill
from dbt_stripe_sync.against import against_stripe
from dbt_stripe_sync.alerts import parse_alerts, send_alerts
from dbt_stripe_sync.binding import bind
from dbt_stripe_sync.bound_elsewhere import SyncModel, bound_elsewhere
from dbt_stripe_sync.config.errors import ConfigError, ConfigProblem
from dbt_stripe_sync.config.loader import ModelBlock, build, load_all
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.connect_plan import plan_by_account
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.diff import run_diff
from dbt_stripe_sync.doomed import Doomed
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.full_refresh import NOTICE as FULL_REFRESH_NOTICE
from dbt_stripe_sync.full_refresh import refreshed_ledger_sql
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.held_deletes import hold_in_plan
from dbt_stripe_sync.ledger import StateStore, utcnow
from dbt_stripe_sync.log_setup import emit_warning
from dbt_stripe_sync.matching import gather
from dbt_stripe_sync.plan import SyncPlan, Upcoming
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.plan_doomed import PlannedDeletes, run_order
from dbt_stripe_sync.plan_report import (
    creates_needed,
    plan_summaries,
    upcoming_creates,
    with_earlier_rejects,
    write_whole_plan,
)
from dbt_stripe_sync.plan_stream import StreamTotals, stream_plan
from dbt_stripe_sync.planner import build_plan
from dbt_stripe_sync.progress import Progress, progress_display
from dbt_stripe_sync.report import SyncSummary, print_plan
from dbt_stripe_sync.run_lock import StateLockBusy
from dbt_stripe_sync.run_report import RunReport, build_report
from dbt_stripe_sync.run_stream import streamed_parts
from dbt_stripe_sync.run_syncs import MakePlan, StreamParts, run_syncs
from dbt_stripe_sync.secrets import InvalidApiKeyError, key_mode
from dbt_stripe_sync.selection import SelectionArgs
from dbt_stripe_sync.settings import Settings, api_key, load_settings
from dbt_stripe_sync.start_failure import alert_start_failure
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.tagging import state_marker
from dbt_stripe_sync.warehouse import Warehouse, file_lock_holder


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
    # model row counts `run` already took (run_stream.py), used once by the diff that follows
    row_counts: dict[str, int] = field(default_factory=dict)
    # every sync of the project, selected or not: where its rows are (bound_elsewhere.py)
    sync_models: dict[str, SyncModel] = field(default_factory=dict)


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
                report = run_syncs(
                    prepared,
                    gateway,
                    out,
                    started,
                    progress,
                    _planner_for(prepared, gateway, progress),
                    _streamer_for(prepared, gateway),
                )
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
        state = settings.state_schema_for(wh.target.schema)
        marker = state_marker(wh.target.adapter_type, wh.target.database, state)
        chosen = [replace(configs[n], state_marker=marker) for n in order]  # what it creates names its state
        keys = {c.model: c.primary_key for c in all_configs}
        models = {n.name: SyncModel(n.relation, keys.get(n.name)) for n in known.values()}
        return Prepared(
            wh, settings, project, chosen, relations, skipped, unbuilt, inv.full_refresh, {}, models
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
            held = file_lock_holder(exc)
            if held is None:
                raise
            if time.monotonic() >= deadline:
                raise StateLockBusy(
                    f"the warehouse file is locked by another process ({held}): another dbt-stripe-sync "
                    f"run, or dbt itself, is using it; waited {wait_s:g} s. Wait for it to finish (or "
                    "raise vars.dbt_stripe_sync.lock_wait_s); nothing was sent by this run"
                ) from None
            time.sleep(0.5)


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
    ordered = run_order(prep.configs)  # as `run` plans them: what it deletes changes later syncs
    # each plan's deletes, or their retirements (another row took the object over, in this run or in
    # one before it: bound_elsewhere.py), checked as `run` checks them: before they doom their objects
    # for later syncs, and once every sync is planned
    doomed = PlannedDeletes(
        ordered,
        (
            lambda deletes, doubted, replanned, recovered: bound_elsewhere(
                prep.wh, ledger_relation, deletes, prep.sync_models, doubted, replanned, recovered
            )
        )
        if exists
        else None,
    )
    try:
        for i, config in enumerate(ordered):
            # a `sync:` reference to a row an earlier plan creates resolves as the run will resolve it
            upcoming = upcoming_creates(plans)
            wanted = bool(inv.output) or keep_rows  # a report with every row and every rejected row
            keep = Keep(inv.sample, wanted, wanted, creates_needed(ordered, i))
            state = store if exists else None
            digest = _plan_one(
                inv, prep, config, gw, state, ledger_relation, progress, keep, upcoming, doomed
            )
            plans.append(digest)
            doomed.planned(config, digest)
            # rows still rejected by earlier runs count as the run counts them (rejected, not unchanged)
            with_earlier_rejects(digest, state, ledger_relation, prep.relations[config.model])
        doomed.finish()
        for digest in plans:  # deletes `run` holds back for an unselected dependent (held_deletes.py)
            config = digest.config
            held = hold_in_plan(
                prep.wh, ledger_relation, config, prep.relations[config.model],
                [c.name for c in prep.configs], prep.sync_models, prep.full_refresh,
                digest.count("delete") if exists else 0,
            )  # fmt: skip
            digest.hold("delete", [h.describe(config.model) for h in held])
        plans.sort(key=lambda p: prep.configs.index(p.config))  # shown in sync order
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
    upcoming: Upcoming,
    doomed: PlannedDeletes,
) -> PlanDigest:
    """A platform sync is planned chunk by chunk (plan_stream.py); a Connect sync, or one compared
    with Stripe's current objects, is planned whole as `run` plans it."""
    sieve = doomed.sieve(config)
    if config.account is None and inv.against != "stripe":
        return stream_plan(
            prep, config, gw, store, ledger_relation, progress, keep, upcoming, doomed.doomed, sieve
        )
    plan = _make_plan(prep, config, gw, store, ledger_relation, progress, upcoming, doomed=doomed.doomed)
    plan = replace(plan, changes=tuple(sieve(list(plan.changes))))
    if inv.against == "stripe":
        with progress.phase(f"{config.model}: reading the current Stripe objects"):
            plan = against_stripe(gw, plan)
    return PlanDigest.of(plan, keep)


def _planner_for(prep: Prepared, gw: StripeGateway, progress: Progress) -> MakePlan:
    """How `run` plans one sync: against the ledger it holds the lock on."""

    def make(config: SyncConfig, store: StateStore, run_id: str, doomed: Doomed) -> SyncPlan:
        return _make_plan(prep, config, gw, store, store.ledger, progress, run_id=run_id, doomed=doomed)

    return make


def _streamer_for(prep: Prepared, gw: StripeGateway) -> StreamParts:
    """How `run` plans a large sync a chunk at a time (run_stream.py; None: plan it whole)."""

    def parts(
        config: SyncConfig, store: StateStore, run_id: str, totals: StreamTotals, doomed: Doomed
    ) -> Any:
        quick_fill.before_diff(prep, config, store)  # an upgraded ledger's null quick hashes, once
        return streamed_parts(prep, config, gw, store, totals, run_id, doomed)

    return parts


def _make_plan(
    prep: Prepared,
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    upcoming: Upcoming | None = None,
    run_id: str | None = None,
    doomed: Doomed | None = None,
) -> SyncPlan:
    """One sync's plan, whole. `doomed`: objects syncs planned before it delete (doomed.py)."""
    refresh = prep.full_refresh and store is not None
    with progress.phase(f"{config.model}: diff in the warehouse"):
        diff = run_diff(
            prep.wh,
            config,
            prep.relations[config.model],
            refreshed_ledger_sql(store) if refresh and store is not None else ledger_relation,
            include_deletes=config.delete == "delete" and config.mode == "upsert" and not prep.full_refresh,
            retry_rejected=prep.settings.retry_rejected,
            model_rows=prep.row_counts.pop(prep.relations[config.model], None),
        )
    crashpoint("after_diff")
    if doomed is not None:
        diff = replace(diff, rows=doomed.rows(diff.rows))
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
        if doomed is not None:
            lookups = doomed.lookups(config, lookups)
    return build_plan(
        config, adapter, prep.settings, diff, lookups, live, full_refresh=token, upcoming=upcoming
    )


# ---- run --------------------------------------------------------------------------------------
__all__ = ["ConfigProblem", "Invocation", "execute"]
