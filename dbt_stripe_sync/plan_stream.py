"""`plan` of one sync in flat memory: the diff is read in chunks, each chunk matched and planned, and
only a digest (counts, a sample, what the caller asked to keep) stays behind.

Each change is planned exactly as `planner.build_plan` plans it for the whole diff (the same
`_plan_row` / `_plan_delete` / `_rekey`), and the outcome does not depend on the order rows come in,
so the warehouse streams the diff unsorted (sorting a million wide rows is what held the memory):
- every row still in the model is planned before any deleted row (two queries: `present`, then
  `deleted`), so the re-keys a delete consults are all known;
- a match email carried by more than one row of the model (found in SQL, `repeated_values_sql`)
  is the only one the planner must remember; rows with such an email are set aside and planned last,
  in key order, so the first of them keeps the email and the others are rejected, as before;
- the customer directory's look-ups: the account is listed at most once for the sync, and its
  absences are forgotten once the sync is planned (as `gather` does for a whole diff);
- `bind`'s per-sync questions (is the ledger empty, the scan for tagged objects), asked once.
The delete guard needs only counts: deletes planned, rows in the model, live objects.

Per chunk, the rows' fields are mapped column by column (chunk_mapping.py: the same payloads and
problems as map_row + row_problems), and `plan` takes its creates as DeferredCreates, built only when
the digest keeps them (planner.py). Where `plan` only counts plain creates, the chunks are read as
columns (row_chunk.py) and a row object is built only for a row planned the full way.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync import diff as D
from dbt_stripe_sync import gc_pause
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.binding import bind
from dbt_stripe_sync.chunk_mapping import map_columns
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult, DiffRow, DiffStream, stream_diff
from dbt_stripe_sync.doomed import Doomed
from dbt_stripe_sync.full_refresh import refreshed_ledger_sql
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.gc_pause import older_objects_frozen
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.matching import directory_for, gather
from dbt_stripe_sync.plain_creates import PlainSink, plain_lane, split_plain
from dbt_stripe_sync.plan import Change, Upcoming
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.planner import Lookups, _delete_guard, _match_value, _plan_delete, _plan_row, _rekey
from dbt_stripe_sync.progress import Progress
from dbt_stripe_sync.row_chunk import RowChunk
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.warehouse import Warehouse


def stream_plan(
    prep: Any,  # engine.Prepared
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    keep: Keep,
    upcoming: Upcoming | None = None,
    doomed: Doomed | None = None,
    sieve: Callable[[list[Change]], list[Change]] | None = None,
) -> PlanDigest:
    """The digest of what `run` would do for `config` (a platform sync; Connect syncs are planned
    whole, per account), as engine._make_plan + build_plan would plan it. `doomed`, `sieve`: what
    earlier syncs delete, and what `run` does to each chunk before sending it (plan_doomed.py)."""
    digest = PlanDigest(config, keep)
    totals = StreamTotals()
    with ExitStack() as frozen:  # from the second chunk on: dbt's objects are not re-scanned (gc_pause.py)
        parts = planned_parts(
            prep,
            config,
            gw,
            store,
            ledger_relation,
            progress,
            totals,
            upcoming,
            doomed=doomed,
            frozen=frozen,
            defer=True,
            plain=None if keep.rows or keep.creates else digest.add_plain_creates,
        )
        for changes, part in parts:
            digest.add(sieve(changes) if sieve else changes, part)
    digest.finish(totals.model_rows, totals.live, totals.unchanged, totals.guard, ())
    digest.lookup_calls = totals.lookup_calls
    return digest


@dataclass
class StreamTotals:
    """What a streamed plan knows of the whole sync once its last part is planned."""

    model_rows: int = 0
    live: int = 0
    changed_rows: int = 0
    deletes: int = 0
    lookup_calls: int = 0
    guard: str | None = None  # the delete guard over every planned delete

    @property
    def unchanged(self) -> int:
        return max(self.model_rows - self.changed_rows, 0)


def planned_parts(
    prep: Any,  # engine.Prepared
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    totals: StreamTotals,
    upcoming: Upcoming | None = None,
    run_id: str | None = None,
    doomed: Doomed | None = None,
    spool: bool = False,
    frozen: ExitStack | None = None,
    defer: bool = False,
    plain: PlainSink | None = None,
) -> Iterator[tuple[list[Change], int]]:
    """The sync's changes, planned a chunk of the diff at a time: (changes, PRESENT | DELETED | RETIRED).
    `totals` is complete once the generator is exhausted. `spool`: read the diff to a temporary file
    first (`run`, which writes the ledger while it plans: see `spooled`). `frozen`: a plan of more than
    one chunk freezes the objects alive in it for the garbage collector (gc_pause.py) until it exits.
    `defer`: creates come as planner.DeferredCreate (`plan`'s digest builds only those it keeps).
    `plain`: where the rows only a create can come of go, by key, not planned (plain_creates.py)."""
    relation = prep.relations[config.model]
    refresh = prep.full_refresh and store is not None
    adapter = adapter_for(config.object)
    lane = plain is not None and plain_lane(config, adapter)
    with progress.phase(f"{config.model}: diff in the warehouse"):
        stream = stream_diff(
            prep.wh,
            config,
            relation,
            refreshed_ledger_sql(store) if refresh and store is not None else ledger_relation,
            include_deletes=config.delete == "delete" and config.mode == "upsert" and not prep.full_refresh,
            retry_rejected=prep.settings.retry_rejected,
            cap_memory=not spool,  # `run` writes the ledger next
            model_rows=prep.row_counts.pop(relation, None),
            columnar=lane and not spool,  # the lane's rows are read as columns (row_chunk.py)
        )
        # before the stream is read: an embedded warehouse reuses this query's memory for the stream
        repeated = repeated_match_values(prep.wh, config, relation)
        if spool:
            stream = spooled(stream)
    totals.model_rows = stream.model_rows
    totals.live = store.count_live(config.name) if store is not None else 0
    token = (run_id or "plan") if prep.full_refresh else None
    seen_match = _OnlyRepeated(repeated)
    rekeyed: dict[str, tuple[str, str]] = {}
    once: dict[str, Any] = {}

    def lookups_for(rows: Sequence[DiffRow], more_coming: bool) -> Lookups:
        part = DiffResult(rows=rows, model_rows=stream.model_rows)  # type: ignore[arg-type]
        found = gather(config, part, gw, store, forget_absences=False, more_coming=more_coming)
        found = bind(config, adapter, part, gw, store, relation, found, once)
        totals.lookup_calls += found.calls
        return doomed.lookups(config, found) if doomed is not None else found

    def plan_rows(rows: Sequence[DiffRow], more_coming: bool) -> list[Change]:
        if not rows:
            return []
        if doomed is not None and not isinstance(rows, RowChunk):  # a RowChunk has no references
            rows = doomed.rows(rows)
        lookups = lookups_for(rows, more_coming)
        settings = prep.settings
        mapped = map_columns(config, rows)
        if mapped is None:  # map_row maps each row (and names the value a converter refuses)
            return [
                _plan_row(config, adapter, settings, r, lookups, seen_match, rekeyed, token, upcoming, defer)
                for r in rows
            ]
        if lane:
            chosen, other = split_plain(config, rows, mapped, lookups, repeated)
            if chosen:
                every = rows

                def build(i: int) -> Change:  # a kept row, planned the full way
                    row = every[chosen[i]]
                    return _plan_row(config, adapter, settings, row, lookups, {}, {}, token, upcoming)  # type: ignore[return-value]

                keys = rows.keys if isinstance(rows, RowChunk) else [r.key for r in rows]
                plain([keys[i] for i in chosen], PRESENT, build)  # type: ignore[misc]
                clean = mapped.clean
                rows, ok = [rows[i] for i in other], [clean[i] for i in other]
                flats = mapped.flats(other)
            else:
                ok, flats = mapped.clean, mapped.flats(range(len(rows)))
        else:
            ok, flats = mapped.clean, mapped.flats(range(len(rows)))
        return [
            _plan_row(
                config, adapter, settings, r, lookups, seen_match, rekeyed, token, upcoming, defer, (f, [], c)
            )
            for r, f, c in zip(rows, flats, ok, strict=True)
        ]

    set_aside: list[DiffRow] = []  # rows whose match email repeats: planned last, in key order
    with progress.phase(f"{config.model}: matching and planning changed rows"):
        for chunk, more in _with_more(stream.present):
            if frozen is not None and more and not totals.changed_rows:  # a plan worth freezing for
                frozen.enter_context(older_objects_frozen(gc_pause.MIN_ROWS))
            totals.changed_rows += len(chunk)
            now: Sequence[DiffRow] = chunk
            if repeated and isinstance(chunk, RowChunk):
                now = _keep_unrepeated(config, chunk, repeated, set_aside)
            elif repeated:
                aside = [_unbound(r) and _match_value(config, r) in repeated for r in chunk]
                now = [r for r, later in zip(chunk, aside, strict=True) if not later]
                set_aside += [r for r, later in zip(chunk, aside, strict=True) if later]
            yield plan_rows(now, more or bool(set_aside)), PRESENT
            progress.advance(len(chunk))
        set_aside.sort(key=lambda r: r.key)
        size = D.CHUNK_ROWS
        for start in range(0, len(set_aside), size):
            more = start + size < len(set_aside)
            yield plan_rows(set_aside[start : start + size], more), PRESENT
        left: set[str] = set()  # old keys of re-keys whose rows left the model
        olds = {old for old, _ in rekeyed.values()}  # every row still in the model is planned
        for chunk in stream.deleted:
            left.update(row.key for row in chunk if row.key in olds)
            gone = [_plan_delete(config, adapter, row, rekeyed) for row in chunk]
            totals.deletes += sum(1 for c in gone if c.action == "delete")
            yield gone, DELETED
            progress.advance(len(chunk))
    # a re-keyed row whose old key is not in the diff (delete: nothing) is retired all the same
    retired = [_rekey(config, old, new, sid, None) for sid, (old, new) in rekeyed.items() if old not in left]
    yield retired, RETIRED
    directory_for(gw).chunks_done()
    if config.object == "customer":  # this sync may create customers: "none with this email" expires
        directory_for(gw).forget_absences()
    totals.guard = _delete_guard(config, prep.settings, totals.deletes, totals.model_rows, totals.live)


def spooled(stream: DiffStream) -> DiffStream:
    """The diff read to its end at once into temporary files (pickled chunks), then served from them:
    no warehouse cursor or transaction stays open while `run` writes the ledger. An open DuckDB reader
    keeps every version of the rows written meanwhile (a streamed first sync of 80,000 rows grew to
    472 MB and ran slower than planning it whole), and the rows read are those of one snapshot, as
    when the diff is read whole."""
    parts = []
    for chunks in (stream.present, stream.deleted):
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _unspool when read)
        for chunk in chunks:
            pickle.dump(chunk, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.seek(0)
        parts.append(_unspool(spool))
    return DiffStream(stream.model_rows, parts[0], parts[1])


def _unspool(spool: Any) -> Iterator[list[DiffRow]]:
    with spool:
        while True:
            try:
                yield pickle.load(spool)
            except EOFError:
                return


# The parts of a plan in the order build_plan lists them (a tie in natural key order keeps it).
PRESENT, DELETED, RETIRED = 0, 1, 2


def _with_more(chunks: Iterator[list[DiffRow]]) -> Iterator[tuple[list[DiffRow], bool]]:
    """Each chunk, and whether another one follows (read one chunk ahead)."""
    current = next(chunks, None)
    while current is not None:
        following = next(chunks, None)
        yield current, following is not None
        current = following


def repeated_match_values(wh: Warehouse, config: SyncConfig, relation: str) -> frozenset[str]:
    """Match emails that more than one row of the model carries: the only ones the planner must
    remember across rows (a second row with one is rejected). Found in SQL, not by holding every email."""
    if config.match is None or config.match.field != "email" or not config.match.column:
        return frozenset()
    _, rows = wh.query(wh.macro("repeated_values_sql", model_relation=relation, column=config.match.column))
    return frozenset(str(v) for (v,) in rows)


def _keep_unrepeated(
    config: SyncConfig, chunk: RowChunk, repeated: frozenset[str], set_aside: list[DiffRow]
) -> RowChunk:
    """The chunk's rows but those an unbound row's repeated match email sets aside (added to
    `set_aside`, as DiffRows), as `_unbound` and `_match_value` tell them apart."""
    values = chunk.column(config.match.column)  # type: ignore[union-attr,arg-type]
    later = [
        i
        for i, (v, u) in enumerate(zip(values, chunk.unbound(), strict=True))
        if v is not None and u and str(v) in repeated
    ]
    if not later:
        return chunk
    set_aside += [chunk[i] for i in later]
    aside = set(later)
    return chunk.take([i for i in range(len(chunk)) if i not in aside])


def _unbound(row: DiffRow) -> bool:
    """A row not yet tied to a Stripe object: only such a row is matched (and remembers its email)."""
    entry = row.ledger
    return entry is None or not entry.stripe_id or entry.status == L.DELETED


class _OnlyRepeated(dict):  # type: ignore[type-arg]
    """build_plan's `seen_match` that remembers only values known to repeat: a value seen once is never
    looked up again, so forgetting it changes no outcome."""

    def __init__(self, repeated: frozenset[str]) -> None:
        super().__init__()
        self.repeated = repeated

    def __setitem__(self, key: str, value: str) -> None:
        if key in self.repeated:
            super().__setitem__(key, value)
