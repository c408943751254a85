"""A chunk mapped column by column (chunk_mapping.py) plans every row exactly as map_row + row_problems
do one row at a time, and a deferred create builds exactly the Change `_plan_row` returns."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from dbt_stripe_sync.chunk_mapping import map_chunk
from dbt_stripe_sync.config.loader import build
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.ledger import LedgerEntry
from dbt_stripe_sync.payload import to_json
from dbt_stripe_sync.planner import DeferredCreate, Lookups, _plan_row, map_row
from dbt_stripe_sync.row_checks import row_problems
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects import adapter_for

# values that pass, values near and past a limit, values a converter refuses, odd types
ODD: list[Any] = [
    "",
    "x",
    "a" * 5001,
    "b" * 351,
    "nul\x00x",
    "ü" * 30,
    "<bad>",
    "  12 ",
    "true",
    "usd",
    "usdd",
    "-5",
    "3.5",
    '["en","fr"]',
    '["en",',
    '{"a":"1"}',
    "[1,2]",
    "ada@example.com",
    "bad@",
    "a..b@x.io",
    "x" * 501,
    None,
    0,
    -1,
    12,
    True,
    False,
    3.0,
    2.5,
    Decimal("12.50"),
    Decimal("-1"),
    Decimal("1.0"),
    dt.date(2024, 1, 2),
    dt.datetime(2024, 1, 2, 3, 4, 5),
    ["en", "fr"],
    ["x" * 6000],
    [],
    {"k": "v"},
    {"k" * 41: "v"},
]
PLAIN = ["plain", "Ada Lovelace", None, "x" * 40, "z" * 5000]
GOOD: dict[str, list[Any]] = {
    "email": ["ada@example.com", "u1@x.io", None, "bad@", "a" * 600 + "@x.io", "nul\x00@x.io", ""],
    "f": ['["en","fr"]', ["de"], None, [], ["x" * 6000], ["a\x00"]],
    "h": [Decimal("12.50"), 3, dt.date(2024, 1, 1), True, None, "y" * 501],
    "k": ["none", "exempt", None],
    "d": ["Main St", "x" * 5001, None, "nul\x00"],
}
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    (
        "customer",
        {
            "match": {"field": "email", "column": "email"},
            "fields": {
                "email": "email",
                "name": "a",
                "phone": "b",
                "description": "c",
                "address.line1": "d",
                "preferred_locales": "f",
                "metadata.plan": "g",
                "metadata.ltv": "h",
                "tax_exempt": "k",
            },
        },
    ),
    (
        "customer",
        {"match": {"field": "email", "column": "email"}, "fields": {"name": "a", "metadata.x": "h"}},
    ),
    (
        "customer",
        {
            "on_null": "clear",
            "match": {"field": "email", "column": "email"},
            "fields": {"email": "email", "name": "a", "metadata.x": "b", "preferred_locales": "f"},
        },
    ),
    ("customer", {"fields": {"name": "a", "metadata.dbt_stripe_sync": "c", "metadata": "g"}}),
    (
        "product",
        {"match": {"field": "id", "column": "a"}, "fields": {"name": "a", "statement_descriptor": "c"}},
    ),
    ("price", {"fields": {"product": "a", "unit_amount": "b", "currency": "c", "nickname": "d"}}),
    ("invoice_item", {"fields": {"customer": "a", "amount": "b", "currency": "c", "description": "d"}}),
]


def _config(index: int, name: str = "s") -> SyncConfig:
    obj, extra = CONFIGS[index]
    return build(name, f"model.p.{name}", {"object": obj, "mode": "upsert", "primary_key": "k", **extra})


def _rows(config: SyncConfig, rnd: random.Random, count: int, odd: float) -> list[DiffRow]:
    columns = sorted(set(config.columns()) | {"email"})
    rows = []
    for i in range(count):
        values = {c: rnd.choice(ODD if rnd.random() < odd else GOOD.get(c, PLAIN)) for c in columns}
        ledger = None
        if rnd.random() < 0.2:
            status = rnd.choice(["synced", "rejected", "archived", "deleted", "pending"])
            payload = {"name": "x", "metadata.plan": "pro"}
            stripe_id = rnd.choice([f"id_{i}", None])
            entry = (config.name, str(i), config.object, stripe_id, "ph", to_json(payload), status)
            ledger = LedgerEntry(*entry)
        rows.append(DiffRow(str(i), "new" if ledger is None else "changed", f"h{i}", values, {}, ledger))
    return rows


def _planned(config: SyncConfig, rows: list[DiffRow], mapped: list[Any] | None, defer: bool) -> list[Any]:
    adapter, settings, lookups = adapter_for(config.object), Settings(), Lookups()
    seen: dict[str, str] = {}
    rekeyed: dict[str, tuple[str, str]] = {}
    out = []
    for i, row in enumerate(rows):
        m = None if mapped is None else mapped[i]
        change = _plan_row(config, adapter, settings, row, lookups, seen, rekeyed, None, None, defer, m)
        out.append(change.build() if isinstance(change, DeferredCreate) else change)
    return out


@pytest.mark.parametrize("odd", [0.0, 0.03])
@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_a_chunk_plans_every_row_as_map_row_and_row_problems_do(index: int, odd: float) -> None:
    config = _config(index, f"s{index}")
    rnd = random.Random(index * 100 + int(odd * 100))
    mapped_chunks = 0
    for _ in range(6):
        rows = _rows(config, rnd, 200, odd)
        mapped = map_chunk(config, rows)
        if mapped is not None:
            mapped_chunks += 1
            for row, (flat, problems, clean) in zip(rows, mapped, strict=True):
                one_flat, one_problems = map_row(config, row, {})
                assert list(flat.items()) == list(one_flat.items())  # same payload, same order
                assert problems == ([] if config.references else one_problems)
                if clean:
                    by_email = config.match is not None and config.match.field == "email"
                    sent = {"email": row.values.get("email"), **flat} if by_email else flat
                    assert row_problems(config.object, sent, creating=True) == []
                    assert row_problems(config.object, sent, creating=False) == []
        fresh = [DiffRow(r.key, r.change, r.row_hash, dict(r.values), {}, r.ledger) for r in rows]
        one_by_one = _planned(config, fresh, None, defer=False)
        assert _planned(config, rows, mapped, defer=True) == one_by_one
        assert _planned(config, rows, None, defer=True) == one_by_one
    if odd == 0.0 and index in (0, 1, 2):  # plain values: the column path is taken, not only the fallback
        assert mapped_chunks == 6


def test_clean_rows_are_found_clean() -> None:
    """The quick path is taken for plain rows (else it would save nothing)."""
    config = _config(0)
    values = {"email": "ada@example.com", "a": "Ada", "b": None, "c": "x", "d": "1 Main St", "f": '["en"]'}
    values |= {"g": "pro", "h": Decimal("1.50"), "k": "none", "k_": None}
    rows = [DiffRow(str(i), "new", "h", dict(values, email=f"u{i}@x.io"), {}, None) for i in range(50)]
    mapped = map_chunk(config, rows)
    assert mapped is not None and all(clean for _, _, clean in mapped)
    bad = [DiffRow("x", "new", "h", dict(values, d="nul\x00"), {}, None)]
    mapped = map_chunk(config, rows + bad)
    assert mapped is not None and [clean for _, _, clean in mapped] == [True] * 50 + [False]


def test_a_value_a_converter_refuses_sends_the_chunk_to_map_row() -> None:
    config = _config(0)
    rows = [DiffRow("1", "new", "h", {"email": "a@x.io", "k": "not-an-enum"}, {}, None)]
    assert map_chunk(config, rows) is None
    change = _plan_row(config, adapter_for("customer"), Settings(), rows[0], Lookups(), {}, {})
    assert change.action == "reject" and "column `k` -> tax_exempt" in (change.reason or "")


PLAIN_ROW = {"email": "ada@example.com", "a": "Ada", "b": None, "c": "x", "d": "1 Main St", "f": '["en"]'}
PLAIN_ROW |= {"g": "pro", "h": Decimal("1.50"), "k": "none"}


@pytest.mark.parametrize(
    ("index", "column", "value"),
    [
        (0, "email", "bad@"),  # a short, NUL-free address the pattern refuses
        (0, "email", "a..b@x.io"),
        (0, "d", "x" * 5001),
        (0, "d", "nul\x00"),
        (0, "g", "y" * 501),  # a metadata value past 500
        (0, "f", '["x\\u0000"]'),  # a list item with a NUL
        (0, "f", ["z" * 6000]),
        (1, "email", "bad@"),  # no `email` field: the match email is what is sent
        (1, "email", "nul\x00@x.io"),
        (2, "email", "bad@"),
    ],
)
def test_one_bad_value_among_plain_ones_is_rejected_as_row_problems_says(
    index: int, column: str, value: Any
) -> None:
    config = _config(index)
    rows = [DiffRow(str(i), "new", "h", dict(PLAIN_ROW, email=f"u{i}@x.io"), {}, None) for i in range(20)]
    rows.append(DiffRow("bad", "new", "h", dict(PLAIN_ROW, **{column: value}), {}, None))
    mapped = map_chunk(config, rows)
    assert mapped is not None and mapped[-1][2] is False  # the bad row is left to row_problems
    planned = _planned(config, rows, mapped, defer=True)
    assert planned == _planned(config, rows, None, defer=False)
    assert planned[-1].action == "reject" and planned[0].action == "create"


def test_a_text_parsed_once_for_its_rows_gives_each_payload_its_own_list() -> None:
    """A column of texts to parse ('["en","fr"]') is converted once per distinct text; the rows' payloads
    still share no list (as map_row's do), and a bad text still sends the chunk to map_row."""
    config = _config(0)
    rows = [DiffRow(str(i), "new", "h", dict(PLAIN_ROW, f='["en","fr"]'), {}, None) for i in range(4)]
    mapped = map_chunk(config, rows)
    assert mapped is not None
    lists = [flat["preferred_locales"] for flat, _, _ in mapped]
    assert lists == [["en", "fr"]] * 4 and len({id(v) for v in lists}) == 4
    lists[0].append("de")
    assert [flat["preferred_locales"] for flat, _, _ in map_chunk(config, rows) or []] == [["en", "fr"]] * 4
    refused = [*rows, DiffRow("x", "new", "h", dict(PLAIN_ROW, f='["en",'), {}, None)]
    assert map_chunk(config, refused) is None
