"""What `plan` keeps of a sync's plan: counts, a sample per action, and only what is asked for besides.

A plan of a million rows is never held whole. Changes arrive chunk by chunk (plan_stream.py) and
leave behind:
- the count per action and the `sample` first rows per action in natural key order (what the
  terminal shows);
- the rejected rows, and the keys (and customer emails) of the rows it creates, only when a caller
  needs them (the Python API's report; a later sync's `sync:` or `by: email` reference);
- every row rendered, only for `plan --output` or the Python API: each chunk sorted and spilled to a
  temporary file, and the files merged in natural key order when read (`rows()`).

`to_dict` returns exactly what `SyncPlan.to_dict` returns for the same changes.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.plan import COUNTED, Change, SyncPlan
from dbt_stripe_sync.plan_view import leaf_changes, natural_key
from dbt_stripe_sync.planner import DeferredCreate

# The order `plan` shows rows in: natural key order; a tie (`01` and `1`) keeps build_plan's order
# (its part: rows in the model, deleted rows, retirements; then the key's text), or, for a plan built
# whole, the order of its changes.
_SortKey = tuple[tuple[Any, ...], int, str, int]


@dataclass(frozen=True)
class Keep:
    """What a digest keeps besides counts and the sample."""

    sample: int = 5
    rows: bool = False  # every row rendered (plan --output, the Python API's report)
    rejects: bool = False  # every rejected row with its reason (the Python API's report)
    creates: bool = False  # keys and emails of rows created (a later sync of the plan references them)


def render(change: Change) -> dict[str, Any]:
    """One row of a plan as JSON-ready data (as SyncPlan.to_dict shows it)."""
    return {
        "key": change.key,
        "action": change.action,
        "stripe_id": change.stripe_id,
        "reason": change.reason,
        "account": change.account,  # Stripe Connect: the account written to; None: the platform
        "fields": leaf_changes(change.params, change.before, change.ledger_before),
    }


@dataclass
class PlanDigest:
    config: SyncConfig
    keep: Keep
    model_rows: int = 0
    live_objects: int = 0
    unchanged: int = 0
    blocked: str | None = None
    warnings: tuple[str, ...] = ()
    lookup_calls: int = 0
    _counts: Counter[str] = field(default_factory=Counter)
    _seq: int = 0
    _sample: dict[str, list[tuple[_SortKey, Change]]] = field(default_factory=dict)
    _rejects: list[tuple[str, str]] = field(default_factory=list)
    # (account, key, what a reference to it shows or resolves to): created, or bound by its tag
    _created: list[tuple[str | None, str, str]] = field(default_factory=list)
    _emails: dict[tuple[str | None, str], str] = field(default_factory=dict)  # (account, email) -> key
    _runs: list[IO[bytes]] = field(default_factory=list)
    _was_rejected: set[str] = field(default_factory=set)  # planned rows an earlier run had rejected

    # ---- filling ----------------------------------------------------------------------------
    @classmethod
    def of(cls, plan: SyncPlan, keep: Keep) -> PlanDigest:
        """The digest of a plan built whole (Stripe Connect, `--against stripe`)."""
        digest = cls(plan.config, keep)
        digest.add(plan.changes)
        digest.finish(plan.model_rows, plan.live_objects, plan.unchanged, plan.blocked, plan.warnings)
        digest.lookup_calls = plan.lookup_calls
        return digest

    def add(self, changes: Iterable[Change | DeferredCreate], part: int | None = None) -> None:
        """More changes of the plan: of one `part` (plan_stream's PRESENT, DELETED, RETIRED), in any
        order, or, without `part`, the next changes in the order the plan has them. A DeferredCreate
        is built only when kept (the sample, `keep.rows`)."""
        run: list[tuple[_SortKey, dict[str, Any]]] = []
        keep, counts, sample = self.keep, self._counts, self._sample
        limit = keep.sample
        build_all = keep.rows
        seq = self._seq
        for change in changes:
            if build_all and type(change) is DeferredCreate:
                change = change.build()
            action = change.action
            counts[action] += 1
            key = change.key
            order = (natural_key(key), seq if part is None else part, key, seq)
            seq += 1
            if limit > 0:
                kept = sample.get(action)
                if kept is None:
                    kept = sample[action] = []
                # a max-heap of the `sample` first rows (negated order: heapq keeps the smallest on top)
                if len(kept) < limit:
                    heapq.heappush(kept, (_Desc(order), _built(change)))  # type: ignore[arg-type]
                elif order < kept[0][0].order:  # type: ignore[attr-defined]
                    heapq.heapreplace(kept, (_Desc(order), _built(change)))  # type: ignore[arg-type]
            if change.ledger is not None and change.ledger.status == "rejected":
                self._was_rejected.add(key)
            if action == "reject" and keep.rejects:
                self._rejects.append((key, change.reason or ""))
            if action == "create" and keep.creates:
                self._created.append(
                    (change.account, key, f"(after {self.config.model} row {key} is created)")
                )
                email = _params_of(change).get("email")
                if email and self.config.object == "customer":
                    at = (change.account, str(email))
                    first = self._emails.get(at)  # the row first in key order names it
                    if first is None or key < first:
                        self._emails[at] = key
            elif action == "adopt" and change.stripe_id and keep.creates:
                self._created.append((change.account, key, change.stripe_id))  # bound before later syncs
            if keep.rows:
                run.append((order, render(change)))
        self._seq = seq
        if run:
            self._spill(run)

    def add_plain_creates(self, keys: Sequence[str], part: int, build: Callable[[int], Change]) -> None:
        """Creates of one `part` known only by their keys (plain_creates.py): counted, and the i-th
        built (`build(i)`) only when the sample keeps it. Only for a digest that keeps no rows, rejects
        or creates (what those keep needs every change built)."""
        keep = self.keep
        assert not (keep.rows or keep.creates), "plain creates are only counted"
        self._counts["create"] += len(keys)
        seq = self._seq
        self._seq = seq + len(keys)
        limit = keep.sample
        if limit <= 0 or not keys:
            return
        kept = self._sample.get("create")
        if kept is None:
            kept = self._sample["create"] = []
        for i in _first_by_number(keys, limit):
            key = keys[i]
            if len(kept) < limit:
                heapq.heappush(kept, (_Desc((natural_key(key), part, key, seq + i)), build(i)))  # type: ignore[arg-type]
                continue
            order = (natural_key(key), part, key, seq + i)
            if order < kept[0][0].order:  # type: ignore[attr-defined]
                heapq.heapreplace(kept, (_Desc(order), build(i)))  # type: ignore[arg-type]

    def finish(
        self,
        model_rows: int,
        live_objects: int,
        unchanged: int,
        blocked: str | None,
        warnings: Iterable[str],
    ) -> None:
        self.model_rows, self.live_objects, self.unchanged = model_rows, live_objects, unchanged
        self.blocked, self.warnings = blocked, tuple(dict.fromkeys(warnings))

    def hold(self, action: str, notes: Sequence[str], counted: bool = True) -> None:
        """Planned `action`s the run will hold back (held_deletes.py, bound_elsewhere.py): warned of,
        not counted (`counted`: they were, and are taken off)."""
        if counted:
            self._counts[action] -= len(notes)
        self.warnings = (*self.warnings, *notes)

    # ---- reading ----------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Changes planned (every action)."""
        return self._seq

    def count(self, action: str) -> int:
        return self._counts[action]

    def counts(self) -> dict[str, int]:
        return {a: self._counts[a] for a in COUNTED}

    def rejected_rows(self) -> list[tuple[str, str]]:
        """Every rejected row and its reason, in natural key order (kept when `keep.rejects`)."""
        return sorted(self._rejects, key=lambda r: (natural_key(r[0]), r[0]))

    def retried_rejects(self) -> set[str]:
        """Keys of planned rows that an earlier run had rejected (retried now: their data changed)."""
        return set(self._was_rejected)

    def created(self) -> list[tuple[str | None, str, str]]:
        """(account, key, what a reference shows) of rows created or bound by their tag (`keep.creates`)."""
        return list(self._created)

    def created_emails(self) -> dict[tuple[str | None, str], str]:
        """(account, customer email) -> key of the first row creating a customer with it."""
        return dict(self._emails)

    def sample_rows(self, sample: int | None = None) -> list[dict[str, Any]]:
        """The first `sample` rows of each action, in natural key order."""
        limit = self.keep.sample if sample is None else sample
        if limit > self.keep.sample:
            raise ValueError(f"this plan kept a sample of {self.keep.sample} rows per action, not {limit}")
        chosen = []
        for kept in self._sample.values():
            chosen += sorted((d.order, c) for d, c in kept)[:limit]  # type: ignore[misc]
        return [render(c) for _, c in sorted(chosen, key=lambda t: t[0])]

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row in natural key order (kept when `keep.rows`), merged from the spilled runs."""
        if not self.keep.rows:
            raise ValueError("this plan did not keep its rows")
        streams = [self._read(run) for run in self._runs]
        for _, row in heapq.merge(*streams, key=lambda t: t[0]):
            yield row

    def to_dict(self, sample: int | None = 5) -> dict[str, Any]:
        """As SyncPlan.to_dict: counts and a sample per action, or every row when sample is None."""
        return {
            "model": self.config.model,
            "object": self.config.object,
            "mode": self.config.mode,
            "model_rows": self.model_rows,
            "unchanged": self.unchanged,
            "counts": self.counts(),
            "blocked": self.blocked,
            "warnings": list(self.warnings),
            **({"rows": list(self.rows())} if sample is None else {"sample": self.sample_rows(sample)}),
        }

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()

    # ---- spilling ---------------------------------------------------------------------------
    def _spill(self, run: list[tuple[_SortKey, dict[str, Any]]]) -> None:
        run.sort(key=lambda t: t[0])
        fh = tempfile.TemporaryFile()  # noqa: SIM115 - kept open until close(); removed when closed
        for (_, part, _, seq), row in run:
            fh.write(json.dumps([part, seq, row], default=str).encode() + b"\n")
        fh.seek(0)
        self._runs.append(fh)

    @staticmethod
    def _read(fh: IO[bytes]) -> Iterator[tuple[_SortKey, dict[str, Any]]]:
        fh.seek(0)
        for line in fh:
            part, seq, row = json.loads(line)
            yield (natural_key(row["key"]), part, row["key"], seq), row


def _first_by_number(keys: Sequence[str], limit: int) -> Sequence[int]:
    """The keys that may be among the `limit` first in natural order (indices), all but few of them
    ruled out with no natural_key: when every key is ASCII digits its natural order is its number
    first, so a key whose number is above the `limit`-th smallest has `limit` keys before it."""
    joined = "".join(keys)
    if len(keys) <= limit or not (joined.isascii() and joined.isdigit()):
        return range(len(keys))
    try:
        numbers = list(map(int, keys))
    except ValueError:  # an empty key among digit ones
        return range(len(keys))
    bound = heapq.nsmallest(limit, numbers)[-1]
    return [i for i, n in enumerate(numbers) if n <= bound]


def _params_of(change: Change | DeferredCreate) -> dict[str, Any]:
    """A create's params (a deferred one's without the tag, which never names an email)."""
    return change.payload if type(change) is DeferredCreate else change.params  # type: ignore[union-attr]


def _built(change: Change | DeferredCreate) -> Change:
    return change.build() if type(change) is DeferredCreate else change  # type: ignore[union-attr,return-value]


class _Desc:
    """An order compared backwards, so heapq's min-heap keeps the largest of the kept rows on top."""

    __slots__ = ("order",)

    def __init__(self, order: _SortKey) -> None:
        self.order = order

    def __lt__(self, other: _Desc) -> bool:
        return other.order < self.order

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.order == self.order
