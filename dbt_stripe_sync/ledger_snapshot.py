"""`run`'s ledger counts, read once: one query for every sync instead of four or five per sync.

Each sync of a run asks the ledger the same small questions: how many rows it has (binding.py),
how many objects it keeps in Stripe (the delete guard), which writes earlier runs left pending
(recovery, before planning and again after sending), and which rows earlier runs rejected. On a
no-op run every answer is 0 or a count, yet each was a statement of its own (~35 for 7 syncs).

`SnapshotStore.snapshot()` counts them for every sync in one query, under the run's state lock
(no other run writes the ledger meanwhile). A sync's counts answer for it only while this run has
written none of its ledger rows: every ledger write goes through `StateStore.write`, which marks the
synced names it touches, and from then on that sync is asked again, as before. The answers are the
same either way, so `plan` (which asks the ledger directly) plans exactly what `run` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync import changelog as C
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.ledger import LedgerEntry, StateStore


@dataclass(frozen=True)
class SyncCounts:
    """One sync's ledger rows as the run found them."""

    rows: int = 0  # in any status
    live: int = 0  # bound to an object it keeps in Stripe (`StateStore.count_live`)
    pending: int = 0  # writes left pending
    rejected: int = 0  # rows rejected (all by earlier runs: this run wrote none of them yet)


class SnapshotStore(StateStore):
    """A StateStore whose per-sync counts come from one read, taken by `snapshot()`."""

    def __init__(self, warehouse: Any, schema: str) -> None:
        super().__init__(warehouse, schema)
        self._counts: dict[str, SyncCounts] | None = None  # None: no snapshot, every question is asked
        self._written: set[str] = set()  # syncs whose ledger rows this run wrote: asked again

    def snapshot(self) -> None:
        """Count every sync's rows now (after recovery of interrupted runs' history, before any sync).
        Should the query fail, nothing is known and every question goes to the ledger as before."""
        p = self.wh.placeholder
        try:
            _, rows = self.wh.query(
                "select sync_name, count(*), "
                f"sum(case when stripe_id is not null and status in ({p}, {p}, {p}, {p}) then 1 else 0 end), "
                f"sum(case when status = {p} then 1 else 0 end), "
                f"sum(case when status = {p} then 1 else 0 end) "
                f"from {self.ledger} group by sync_name",
                [L.SYNCED, L.FAILED, L.REJECTED, L.PENDING, L.PENDING, L.REJECTED],
            )
        except Exception:
            self.wh.rollback()
            self._counts = None
            return
        self._counts = {
            str(name): SyncCounts(int(n or 0), int(live or 0), int(pending or 0), int(rejected or 0))
            for name, n, live, pending, rejected in rows
        }

    def _known(self, sync_name: str) -> SyncCounts | None:
        """The sync's counts, while the snapshot still holds for it."""
        if self._counts is None or sync_name in self._written:
            return None
        return self._counts.get(sync_name, SyncCounts())

    def count_rows(self, sync_name: str) -> int:
        known = self._known(sync_name)
        return known.rows if known is not None else super().count_rows(sync_name)

    def count_live(self, sync_name: str) -> int:
        known = self._known(sync_name)
        return known.live if known is not None else super().count_live(sync_name)

    def entries(self, sync_name: str, statuses: Iterable[str] | None = None) -> list[LedgerEntry]:
        statuses = list(statuses) if statuses is not None else None
        known = self._known(sync_name)
        if known is not None and statuses == [L.PENDING] and known.pending == 0:
            return []  # recovery's question on most runs: nothing left pending
        return super().entries(sync_name, statuses)

    def none_rejected_earlier(self, sync_name: str) -> bool:
        """True when the sync has no rejected row at all (so none an earlier run rejected)."""
        known = self._known(sync_name)
        return known is not None and known.rejected == 0

    def write(
        self,
        entries: Sequence[LedgerEntry],
        crash_inside: str | None = None,
        changelog: Sequence[C.ChangelogRow] = (),
    ) -> None:
        self._written.update(e.sync_name for e in entries)  # before: a failed write may have landed part
        super().write(entries, crash_inside, changelog)

    def close_interrupted_runs(self, changelog: str, run_id: str) -> None:
        """As `StateStore.close_interrupted_runs`, asked first whether any row is `running`: its update
        (six correlated counts, planned anew each run) costs a no-op run ~10 ms, and has nothing to do
        unless a run was killed."""
        p = self.wh.placeholder
        _, rows = self.wh.query(
            f"select count(*) from {self.runs} where status = 'running' and run_id <> {p}", [run_id]
        )
        if int(rows[0][0]):
            super().close_interrupted_runs(changelog, run_id)
