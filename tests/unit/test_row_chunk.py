"""A chunk of diff rows read as columns (row_chunk.RowChunk) is the chunk of DiffRows it stands for, and
every step that reads its columns (matching, binding, mapping, the plain-create split, the repeated-email
set-aside) answers exactly as it does for the same rows as DiffRows."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dbt_stripe_sync.binding import _unbound_rows, bind
from dbt_stripe_sync.chunk_mapping import map_columns
from dbt_stripe_sync.diff import DiffResult, DiffRow, _RowReader
from dbt_stripe_sync.ledger import LEDGER_COLUMNS, LedgerEntry
from dbt_stripe_sync.matching import match_emails
from dbt_stripe_sync.plain_creates import split_plain
from dbt_stripe_sync.plan_stream import _keep_unrepeated, _match_value, _unbound
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.row_chunk import RowChunk
from dbt_stripe_sync.stripe_objects import adapter_for
from tests.unit.test_chunk_mapping import CONFIGS, _rows
from tests.unit.test_plain_creates import _config, _lookups, _spread


class _Owners:
    """A state store as `bind` asks it: which Stripe objects the matched rows' objects are bound to."""

    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    def count_rows(self, sync_name: str) -> int:
        return 0

    def owners(self, sync_name: str, ids: set[str], relation: str, key: str) -> dict[str, tuple[str, bool]]:
        self.asked.append(set(ids))
        return {sid: (f"key_of_{sid}", i % 2 == 0) for i, sid in enumerate(sorted(ids))}


def _chunks(index: int, odd: float) -> list[tuple[Any, list[DiffRow], RowChunk]]:
    config = _config(index)
    rnd = random.Random(index * 10 + int(odd * 100))
    out = []
    for c in range(3):
        rows = _spread(_rows(config, rnd, 150, odd), rnd)
        rows = [DiffRow(f"{c}.{r.key}", r.change, r.row_hash, r.values, {}, r.ledger) for r in rows]
        out.append((config, rows, RowChunk.of(list(rows[0].values), rows)))
    return out


@pytest.mark.parametrize("odd", [0.0, 0.05])
@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_every_step_reads_a_row_chunk_as_it_reads_its_rows(index: int, odd: float) -> None:
    rnd = random.Random(index)
    for config, rows, chunk in _chunks(index, odd):
        assert (
            list(chunk) == rows and chunk[3] == rows[3] and chunk[-1] == rows[-1] and chunk[2:9] == rows[2:9]
        )
        fresh = RowChunk.of(list(rows[0].values), rows)  # rows built one by one, not all at once
        assert [fresh[i] for i in range(len(rows))] == rows
        picked = [i for i in range(len(rows)) if rnd.random() < 0.5]
        assert list(chunk.take(picked)) == [rows[i] for i in picked]

        assert match_emails(config, DiffResult(chunk, 0)) == match_emails(config, DiffResult(rows, 0))  # type: ignore[arg-type]
        lookups = _lookups(rows, rnd)
        adapter = adapter_for(config.object)
        as_columns, as_rows = _Owners(), _Owners()
        bound = bind(config, adapter, DiffResult(chunk, 0), None, as_columns, "m", lookups)  # type: ignore[arg-type]
        assert bound == bind(config, adapter, DiffResult(rows, 0), None, as_rows, "m", lookups)  # type: ignore[arg-type]
        assert as_columns.asked == as_rows.asked
        keys, values_of = _unbound_rows(DiffResult(chunk, 0))  # type: ignore[arg-type]
        row_keys, row_values_of = _unbound_rows(DiffResult(rows, 0))
        assert keys == row_keys and list(values_of("email")) == row_values_of("email")
        assert list(values_of("nope")) == row_values_of("nope")

        by_columns, by_rows = map_columns(config, chunk), map_columns(config, rows)
        assert (by_columns is None) == (by_rows is None)
        if by_columns is None or by_rows is None:
            continue
        assert by_columns.columns == by_rows.columns and by_columns.nulls_of == by_rows.nulls_of
        assert by_columns.clean == by_rows.clean
        assert by_columns.flats(picked) == by_rows.flats(picked)
        emails = {str(r.values.get("email")) for r in rows}
        for repeated in (frozenset(), frozenset(sorted(emails)[:5])):
            for found in (lookups, Lookups()):
                split = split_plain(config, chunk, by_columns, found, repeated)
                assert split == split_plain(config, rows, by_rows, found, repeated)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_rows_with_a_repeated_match_email_are_set_aside_as_from_the_rows(index: int) -> None:
    for config, rows, chunk in _chunks(index, 0.05):
        emails = sorted({str(r.values.get("email")) for r in rows})
        repeated = frozenset(emails[::3])
        aside: list[DiffRow] = []
        now = _keep_unrepeated(config, chunk, repeated, aside)
        later = [_unbound(r) and _match_value(config, r) in repeated for r in rows]
        assert aside == [r for r, x in zip(rows, later, strict=True) if x] and aside
        assert list(now) == [r for r, x in zip(rows, later, strict=True) if not x]
        assert _keep_unrepeated(config, chunk, frozenset({"nobody@x.io"}), aside) is chunk


def _result(rows: list[DiffRow], columns: list[str], ref: bool = False) -> tuple[list[str], list[tuple]]:
    """The diff SQL's result columns and rows for these DiffRows (`ref`: one `sync:` reference column)."""
    names = ["_dss_key", "_dss_hash", "_dss_change", *[f"_l_{c}" for c in LEDGER_COLUMNS]]
    names += [f"c{i}" for i in range(len(columns))] + (["r0"] if ref else []) + ["_dss_end"]
    out = []
    for r in rows:
        entry = (
            [None] * len(LEDGER_COLUMNS)
            if r.ledger is None
            else [getattr(r.ledger, c) for c in LEDGER_COLUMNS]
        )
        values = [r.values.get(c) for c in columns]
        out.append((r.key, r.row_hash, r.change, *entry, *values, *(["cus_1"] if ref else []), 1))
    return names, out


def test_the_reader_gives_the_same_rows_as_columns() -> None:
    config = _config(0)
    columns = config.columns()
    rnd = random.Random(5)
    rows = [
        DiffRow(r.key, r.change, r.row_hash, {c: r.values.get(c) for c in columns}, {}, r.ledger)
        for r in _rows(config, rnd, 300, 0.05)
    ]
    assert any(r.ledger is not None for r in rows) and any(r.ledger is None for r in rows)
    names, result = _result(rows, columns)
    read = _RowReader(config, names)
    chunk = read.columnar(result)
    assert isinstance(chunk, RowChunk) and list(chunk) == read.chunk(result) == rows
    assert isinstance(chunk.ledgers[0], LedgerEntry | None)
    bare = [r for r in rows if r.ledger is None]
    assert list(read.columnar(_result(bare, columns)[1])) == bare  # a first sync's chunk
    gone = DiffRow("9999", "deleted", None, {}, {}, rows[0].ledger)
    names, result = _result([*rows[:5], gone], columns)
    assert read.columnar(result) == read.chunk(result)  # a deleted row: read as DiffRows
    assert read.columnar([]) == []
