"""Planning a Stripe Connect sync: the rows of each connected account are matched and planned inside
that account, then the plans are joined into one (guards count the whole sync)."""

from __future__ import annotations

from dataclasses import replace

from dbt_stripe_sync.binding import bind
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.connect import REJECTED_GROUP, account_problem, group_rows, row_account
from dbt_stripe_sync.diff import DiffResult, DiffRow
from dbt_stripe_sync.gateway import StripeGateway, StripeRequestError
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.matching import gather
from dbt_stripe_sync.plan import Change, SyncPlan, Upcoming
from dbt_stripe_sync.planner import Lookups, assemble, build_plan
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects.base import StripeObject


def plan_by_account(
    config: SyncConfig,
    adapter: StripeObject,
    settings: Settings,
    diff: DiffResult,
    gw: StripeGateway | None,
    store: StateStore | None,
    model_relation: str,
    live_objects: int,
    full_refresh: str | None = None,
    upcoming: Upcoming | None = None,  # `plan` only: what earlier syncs will create, per account
) -> SyncPlan:
    changes: list[Change] = []
    warnings: list[str] = []
    calls = 0
    for account, rows in group_rows(config, diff.rows).items():
        part = DiffResult(rows=rows, model_rows=diff.model_rows)
        if account == REJECTED_GROUP:
            lookups = Lookups()  # rejected for their account: nothing is looked up anywhere
            plan = build_plan(
                config, adapter, settings, part, lookups, live_objects, full_refresh=full_refresh
            )
            by_key = {r.key: r for r in rows}
            for change in plan.changes:
                if change.action == "wait":  # a pending write finishes where it was sent, first
                    entry = change.ledger
                    changes.append(replace(change, account=entry.stripe_account if entry else None))
                    continue
                reason = account_problem(config, by_key[change.key])
                changes.append(
                    replace(change, action="reject", reason=reason, params={}, idempotency_key=None)
                )
            continue
        try:
            if gw is not None:
                with gw.acting_for(account):
                    lookups = gather(config, part, gw, store, account)
                    lookups = bind(config, adapter, part, gw, store, model_relation, lookups)
            else:
                lookups = gather(config, part, None, store, account)
        except StripeRequestError as exc:
            if exc.status not in (401, 403):  # only "this key cannot act for that account" is per account
                raise
            reason = f"Stripe refused account {account}: {exc} — connect the account to the platform, or fix "
            reason += "the account ID in the model"
            changes += [_refused(c, reason) for c in _plan_all(config, adapter, settings, part, live_objects)]
            continue
        plan = build_plan(
            config,
            adapter,
            settings,
            part,
            lookups,
            live_objects,
            full_refresh=full_refresh,
            upcoming=upcoming.in_account(account) if upcoming is not None else None,
        )
        by_key = {r.key: r for r in rows}
        changes += [replace(c, account=_account_of(config, by_key.get(c.key), account)) for c in plan.changes]
        warnings += plan.warnings
        calls += plan.lookup_calls
    return assemble(config, settings, diff, changes, live_objects, warnings, calls)


def _plan_all(
    config: SyncConfig, adapter: StripeObject, settings: Settings, part: DiffResult, live: int
) -> tuple[Change, ...]:
    return build_plan(config, adapter, settings, part, Lookups(), live).changes


def _refused(change: Change, reason: str) -> Change:
    """A row of an account Stripe refuses: rejected (retried when its data changes), nothing sent;
    a pending write stays pending."""
    if change.action == "wait":
        return change
    return replace(change, action="reject", reason=reason, params={}, idempotency_key=None)


def _account_of(config: SyncConfig, row: DiffRow | None, group_account: str | None) -> str | None:
    """A change for a row of the diff goes to that row's account; a re-key retirement (a key not in
    this part of the diff) stays in the group's account."""
    return group_account if row is None else row_account(config, row)
