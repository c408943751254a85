"""A chunk of the diff's rows still in the model, held as the columns the warehouse returned.

A first sync's `plan` reads a million rows, and nearly all of them are only counted (plain_creates.py).
Building a `DiffRow` and its `values` dict per row cost ~2.5 us a row, and the steps after it
(matching, binding, mapping, the plain-create split) each read every row's dict again. A `RowChunk`
keeps a chunk as columns, taken from the fetched tuples at C speed (`zip(*rows)`), and those steps read
the columns they need (`column`, `unbound`, `keys`, `ledgers`). It is a `Sequence[DiffRow]` all the
same: a row asked for by index is built then, exactly as `diff._RowReader` builds it, so any reader
that knows nothing of columns reads the same rows as before (only slower).

Only `plan`'s plain-create lane reads the diff this way (`stream_diff(columnar=True)`), and only for
chunks with no `sync:` reference columns and no deleted row. tests/unit/test_row_chunk.py checks that
every row and every step's answer is the same as with the chunk's DiffRows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.ledger import LedgerEntry


class RowChunk(Sequence[DiffRow]):
    """Rows of the diff's `present` part as columns: `names` the model columns read (config.columns()),
    `cols` their values (one sequence per name, in that order), and per row its key, change, hash and
    ledger entry (None: no ledger row, a first sync's every row)."""

    __slots__ = ("_at", "_rows", "bare", "changes", "cols", "hashes", "keys", "ledgers", "names", "quicks")

    def __init__(
        self,
        names: Sequence[str],
        keys: Sequence[str],
        changes: Sequence[str],
        hashes: Sequence[str | None],
        cols: Sequence[Sequence[Any]],
        ledgers: Sequence[LedgerEntry | None],
        quicks: Sequence[int | None] | None = None,  # each row's DiffRow.quick_hash (None: every None)
    ) -> None:
        self.names, self.keys, self.changes, self.hashes = tuple(names), keys, changes, hashes
        self.quicks = quicks if quicks is not None else [None] * len(keys)
        self.cols, self.ledgers = list(cols), ledgers
        self.bare = all(e is None for e in ledgers)  # no row has a ledger entry
        # a name read twice: the last value wins, as in dict(zip(names, values))
        self._at = {name: i for i, name in enumerate(self.names)}
        self._rows: list[DiffRow] | None = None

    @classmethod
    def of(cls, names: Sequence[str], rows: Sequence[DiffRow]) -> RowChunk:
        """The chunk of these rows (each with a value for every name, no references, none deleted)."""
        for row in rows:
            assert list(row.values) == list(dict.fromkeys(names)) and not row.refs and row.change != "deleted"
        cols = [[row.values[n] for row in rows] for n in names]
        return cls(
            names,
            [r.key for r in rows],
            [r.change for r in rows],
            [r.row_hash for r in rows],
            cols,
            [r.ledger for r in rows],
            [r.quick_hash for r in rows],
        )

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> DiffRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[DiffRow]: ...

    def __getitem__(self, index: int | slice) -> DiffRow | list[DiffRow]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._row(index)

    def __iter__(self) -> Iterator[DiffRow]:
        return iter(self.rows())

    def _row(self, i: int) -> DiffRow:
        if self._rows is not None:
            return self._rows[i]
        values = dict(zip(self.names, [col[i] for col in self.cols], strict=True))
        ledger, quick = self.ledgers[i], self.quicks[i]
        return DiffRow(self.keys[i], self.changes[i], self.hashes[i], values, {}, ledger, quick)

    def rows(self) -> list[DiffRow]:
        """Every row as a DiffRow (built once, then kept)."""
        if self._rows is None:
            names = self.names
            values = zip(*self.cols, strict=True) if self.cols else (() for _ in self.keys)
            rows = zip(self.keys, self.changes, self.hashes, values, self.ledgers, self.quicks, strict=True)
            self._rows = [
                DiffRow(k, c, h, dict(zip(names, v, strict=True)), {}, e, q) for k, c, h, v, e, q in rows
            ]
        return self._rows

    def column(self, name: str) -> Sequence[Any]:
        """Each row's value of model column `name` (None for every row when it is not read)."""
        at = self._at.get(name)
        return [None] * len(self.keys) if at is None else self.cols[at]

    def unbound(self) -> list[bool]:
        """Per row: not yet tied to a Stripe object (no ledger entry, none with an ID, or a deleted one)."""
        if self.bare:
            return [True] * len(self.keys)
        return [e is None or not e.stripe_id or e.status == L.DELETED for e in self.ledgers]

    def take(self, indices: Sequence[int]) -> RowChunk:
        """The chunk of the rows at `indices`, in that order."""

        def pick(values: Sequence[Any]) -> list[Any]:
            return [values[i] for i in indices]

        return RowChunk(
            self.names,
            pick(self.keys),
            pick(self.changes),
            pick(self.hashes),
            [pick(col) for col in self.cols],
            pick(self.ledgers),
            pick(self.quicks),
        )
