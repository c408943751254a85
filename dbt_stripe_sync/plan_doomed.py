"""`plan` applies the run's rules for objects the run deletes (doomed.py), in the run's order, so the
plan predicts the run: a later sync's reference to a doomed object is unresolved, a row binding to
one takes it over (the earlier plan's delete becomes the retirement of its row, `moved: ...`).

`plan` keeps only a digest per sync (plan_digest.py), which cannot take a row back. So a sync's
deletes (few) are held here, registered as the run registers them, and added to its digest once every
sync is planned: each as planned, or as the retirement a later takeover turned it into.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dbt_stripe_sync.bound_elsewhere import Bound, held_note, split, vet
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.doomed import Checkpoint, Doomed, cancel_in
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.plan_digest import PlanDigest
from dbt_stripe_sync.plan_stream import DELETED
from dbt_stripe_sync.waves import sync_waves


def run_order(configs: Sequence[SyncConfig]) -> list[SyncConfig]:
    """The order `run` plans the syncs in: wave by wave (waves.py), each wave in its order."""
    return [c for wave in sync_waves(configs) for c in wave]


# (deletes by sync, syncs whose deletes are blocked, syncs planned again, syncs recovered) -> the rows
# holding them (bound_elsewhere.py)
BoundCheck = Callable[[dict[str, list[Change]], set[str], set[str], set[str]], Bound]


class PlannedDeletes:
    """The plan's Doomed registry and the deletes held back from each sync's digest."""

    def __init__(self, configs: Sequence[SyncConfig], bound: BoundCheck | None = None) -> None:
        self.doomed = Doomed.for_syncs(configs)
        self._bound = bound  # bound_elsewhere.py, as `run` asks it (None: no ledger yet)
        self._held: dict[str, list[Change]] = {}  # sync name -> its deletes (cancel_in drops them)
        self._retired: dict[str, list[Change]] = {}  # sync name -> retirements of dropped deletes
        self._digests: list[PlanDigest] = []
        self._before: tuple[Checkpoint, dict[str, list[Change]], dict[str, list[Change]]] | None = None

    def sieve(self, config: SyncConfig) -> Callable[[list[Change]], list[Change]]:
        """What happens to each planned chunk of `config` before its digest keeps it: as `run`
        treats it (doomed objects unresolved or taken over), its deletes held back."""
        held = self._held.setdefault(config.name, [])
        self._retired.setdefault(config.name, [])
        # undone if the sync turns out blocked (`planned`); deletes and retirements are few
        self._before = (
            self.doomed.checkpoint(),
            {n: list(h) for n, h in self._held.items()},
            {n: list(r) for n, r in self._retired.items()},
        )

        def sieve(changes: list[Change]) -> list[Change]:
            changes = self.doomed.hand_over(config, self.doomed.unresolve_plain(config, changes))
            held.extend(c for c in changes if c.action == "delete")
            return [c for c in changes if c.action != "delete"]

        return sieve

    def planned(self, config: SyncConfig, digest: PlanDigest) -> None:
        """The sync is planned: its deletes doom their objects for the syncs planned after it. Not when
        its delete guard blocks it: `run` sends nothing for it, and it takes nothing over."""
        self._digests.append(digest)
        if digest.blocked and self._before is not None:  # it takes nothing over either
            checkpoint, held, retired = self._before
            self.doomed.rollback(checkpoint)
            for name, changes in held.items():
                self._held[name][:] = changes  # the lists the cancels of earlier syncs' deletes hold
            for name, changes in retired.items():
                self._retired[name][:] = changes
            self._before = None
            return
        self._before = None
        self.doomed.commit()
        held = self._held.setdefault(config.name, [])
        retired = self._retired.setdefault(config.name, [])
        awaited = self._vet(config, held, retired)
        dooming = [c for c in held if c.key not in awaited]
        self.doomed.add(config, dooming, cancel_in(held, lambda change, *_taker: retired.append(change)))

    def _vet(self, config: SyncConfig, held: list[Change], retired: list[Change]) -> set[str]:
        """As `run` does before its deletes doom their objects: one whose object another row is bound to
        is retired now, never doomed (run_syncs._vet_deletes), unless a row of this plan took it over
        (`Doomed.add`); the rest are checked again by `finish`. Returns the keys of those whose object
        a pending write of another row is aimed at: kept, but they doom nothing (the run cannot send
        them)."""
        checked = [c for c in held if c.stripe_id and not self.doomed.taken_here(config, c)]
        if self._bound is None or not checked:
            return set()
        # the ledger as the run finds it when it plans this sync: the syncs before it sent, this one's
        # pending writes recovered
        before = {d.config.name for d in self._digests if not d.blocked}
        blocked = {d.config.name for d in self._digests if d.blocked}
        found = self._bound({config.name: checked}, blocked, before - {config.name}, before)
        moved, awaited = vet(config.name, checked, found)
        gone = {c.key for c in moved}
        held[:] = [c for c in held if c.key not in gone]
        retired += moved
        return awaited

    def finish(self) -> None:
        """Every sync planned: each digest gets its deletes, or their retirements — also of deletes
        whose object another row is still bound to (`bound`: bound_elsewhere.py, told which syncs'
        deletes are blocked and which are planned again) — or a warning for those held back, as `run`
        does."""
        sending = {d.config.name: self._held.get(d.config.name, []) for d in self._digests if not d.blocked}
        blocked = {d.config.name for d in self._digests if d.blocked}
        live = {n: cs for n, cs in sending.items() if cs}
        found = self._bound(live, blocked, set(sending), set(sending)) if self._bound and live else {}
        for digest in self._digests:
            name = digest.config.name
            deletes, retired, held = split(name, self._held.pop(name, []), found)
            changes = [*deletes, *self._retired.pop(name, []), *retired]
            if changes:
                digest.add(changes, DELETED)
            note = held_note(name, held, found)
            if note:
                digest.hold("delete", [note], counted=False)
