"""The I/O that planning needs: which Stripe objects the changed rows match, and whom `by: email`
references name.

Reads are kept to a minimum:
- a `by: email` reference to a customer this tool synced is resolved from the ledger, in SQL
  (`macros/customer_emails.sql`), with no API call;
- every other email is looked up in Stripe through one `CustomerDirectory` per run (per gateway), so
  an email looked up once — or an account listed whole once — costs nothing for the next sync;
- a look-up of N emails costs at most N + 1 list calls (`search_by_email`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.row_chunk import RowChunk
from dbt_stripe_sync.stripe_objects.customer import search_by_email

EMAIL_BATCH = 1000  # emails bound per ledger query


class CustomerDirectory:
    """Stripe customers by email, as learnt during one run, shared by its syncs.

    Found customers stay valid for the run (a customer created later has a newer `created`, so the
    oldest match does not change). "No customer with this email" and "this was the whole account" stop
    being true once a customers sync may create customers, so `forget_absences` drops them.
    """

    def __init__(self) -> None:
        self._known: dict[str, list[dict]] = {}  # email -> customers, oldest first ([] = none)
        self._whole_account = False
        self._paged = False  # a chunk of this sync paged without reaching the account's end

    def find(
        self, gw: StripeGateway, emails: Iterable[str], *, more_coming: bool = False
    ) -> dict[str, list[dict]]:
        """`more_coming`: one chunk of a sync planned in chunks, with more chunks to come."""
        wanted = {e for e in emails if e}
        missing = [] if self._whole_account else [e for e in wanted if e not in self._known]
        if missing:
            result = search_by_email(gw, missing, more_coming=more_coming, page=not self._paged)
            self._paged = self._paged or (more_coming and result.everyone is None)
            if result.everyone is not None:  # slim entries for the whole account ...
                self._known.update(result.everyone)
                self._whole_account = True
            # ... and whole objects for the emails wanted; an absence need not be kept once the whole
            # account is known (a first sync of a million rows would keep a million of them)
            found = result.found.items()
            self._known.update((e, c) for e, c in found if c or not self._whole_account)
        # only emails with a customer: every reader asks `.get(email, [])`, and a chunk of a first sync
        # would otherwise return thousands of empty lists
        known = self._known
        return {e: list(known[e]) for e in sorted(e for e in wanted if known.get(e))}

    def forget_absences(self) -> None:
        self._known = {e: found for e, found in self._known.items() if found}
        self._whole_account = False
        self._paged = False

    def chunks_done(self) -> None:
        """The sync planned in chunks is planned: the next sync may page again."""
        self._paged = False


_DIRECTORIES: weakref.WeakKeyDictionary[StripeGateway, dict[str | None, CustomerDirectory]] = (
    weakref.WeakKeyDictionary()
)


def directory_for(gw: StripeGateway, account: str | None = None) -> CustomerDirectory:
    """The run's directory of one Stripe account (Connect: each account has its own customers); one
    gateway serves one run."""
    directories = _DIRECTORIES.get(gw)
    if directories is None:
        directories = _DIRECTORIES[gw] = {}
    directory = directories.get(account)
    if directory is None:
        directory = directories[account] = CustomerDirectory()
    return directory


def match_emails(config: SyncConfig, diff: DiffResult) -> set[str]:
    """Match emails of rows not yet tied to a Stripe object."""
    if config.match is None or config.match.field != "email" or not config.match.column:
        return set()
    column = config.match.column
    if isinstance(diff.rows, RowChunk):  # read as columns: no deleted row among them
        values = diff.rows.column(column)
        if diff.rows.bare:
            return {str(v) for v in values if v is not None}
        return {str(v) for v, u in zip(values, diff.rows.unbound(), strict=True) if u and v is not None}
    emails: set[str] = set()
    for row in diff.rows:
        unbound = row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
        if row.change != "deleted" and unbound and row.values.get(column) is not None:
            emails.add(str(row.values[column]))
    return emails


def reference_emails(config: SyncConfig, diff: DiffResult) -> set[str]:
    """Every `by: email` reference value of the changed rows."""
    columns = [ref.column for ref in config.references if ref.by == "email"]
    emails: set[str] = set()
    if not columns:  # most syncs: no row need be read
        return emails
    for row in diff.rows:
        if row.change == "deleted":
            continue
        emails.update(str(row.values[c]) for c in columns if row.values.get(c) is not None)
    return emails


def emails_to_look_up(config: SyncConfig, diff: DiffResult) -> set[str]:
    """Match emails of rows not yet tied to a Stripe object, and every `by: email` reference value."""
    return match_emails(config, diff) | reference_emails(config, diff)


def ids_to_look_up(config: SyncConfig, diff: DiffResult) -> list[str]:
    """Match IDs of rows not yet tied to a Stripe object (whether each exists decides create vs update)."""
    if config.match is None or config.match.field != "id" or not config.match.column:
        return []
    ids: set[str] = set()
    for row in diff.rows:
        unbound = row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
        if row.change != "deleted" and unbound and row.values.get(config.match.column) is not None:
            ids.add(str(row.values[config.match.column]))
    return sorted(ids)


def synced_customers_by_email(
    store: StateStore, emails: Iterable[str], account: str | None = None
) -> dict[str, str]:
    """email -> Stripe ID of a customer this tool synced with that email (the first synced) in
    `account` (None: the platform's own), from the ledger in SQL: no API call."""
    wanted = sorted(set(emails))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), EMAIL_BATCH):
        chunk = wanted[start : start + EMAIL_BATCH]
        sql = store.wh.macro(
            "synced_customer_emails_sql",
            ledger_relation=store.readable_sql(),  # `plan` on a ledger not yet migrated
            placeholders=[store.wh.placeholder] * len(chunk),
            account=account,
        )
        _, rows = store.wh.query(sql, chunk)
        for email, stripe_id in rows:
            out.setdefault(email, stripe_id)
    return out


def gather(
    config: SyncConfig,
    diff: DiffResult,
    gw: StripeGateway | None,
    store: StateStore | None,
    account: str | None = None,
    *,
    forget_absences: bool = True,
    more_coming: bool = False,
) -> Lookups:
    """Look-ups for the rows of `diff`, all inside `account` (Stripe Connect; None: the platform). The
    caller makes the gateway act for that account (`gw.acting_for`).

    `forget_absences=False` when `diff` is one chunk of a sync planned chunk by chunk: the directory
    keeps what it learnt (a listing of the whole account answers the next chunks with no call), and
    the caller forgets the absences once the sync is planned; `more_coming` when more chunks follow."""
    from dbt_stripe_sync.stripe_objects import adapter_for

    to_match = match_emails(config, diff)
    refs = reference_emails(config, diff) - to_match
    ids = ids_to_look_up(config, diff)
    from_ledger: dict[str, list[dict]] = {}
    if refs and store is not None and store.exists():
        from_ledger = {e: [{"id": i}] for e, i in synced_customers_by_email(store, refs, account).items()}
    emails = to_match | (refs - set(from_ledger))
    if gw is None:
        return Lookups(by_email=from_ledger)
    directory = directory_for(gw, account)
    before = gw.stats.for_scope(config.name).requests
    with gw.scope(config.name):
        found = directory.find(gw, emails, more_coming=more_coming) if emails else {}
        existing = adapter_for(config.object).existing_ids(gw, ids) if ids else None
    calls = gw.stats.for_scope(config.name).requests - before
    if config.object == "customer" and forget_absences:
        directory.forget_absences()  # this sync may create customers: "none with this email" expires
    claimed: dict[str, str] = {}
    if found and store is not None and config.object == "customer" and store.exists():
        claimed = store.keys_of_stripe_ids(config.name, {c["id"] for m in found.values() for c in m[:1]})
    return Lookups(
        by_email={**found, **from_ledger},
        claimed=claimed,
        calls=calls,
        existing_ids=None if existing is None else frozenset(existing),
        objects={
            **{c["id"]: c for matches in found.values() for c in matches if c.get("object")},
            **(existing if isinstance(existing, dict) else {}),
        },
    )
