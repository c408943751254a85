"""`plan` counts plain creates by key (plain_creates.py) and plans only the rows it keeps: the digest is
exactly the one planning every row gives, and every row counted as a plain create is one."""

from __future__ import annotations

import random

import pytest

from dbt_stripe_sync.chunk_mapping import map_columns
from dbt_stripe_sync.config.loader import build
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.plain_creates import plain_lane, split_plain
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.plan_stream import PRESENT
from dbt_stripe_sync.planner import DeferredCreate, Lookups, _plan_row
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects import adapter_for
from tests.unit.test_chunk_mapping import CONFIGS, PLAIN_ROW, _rows


def _config(index: int, mode: str = "upsert") -> SyncConfig:
    obj, extra = CONFIGS[index]
    return build(f"s{index}", f"model.p.s{index}", {"object": obj, "mode": mode, "primary_key": "k", **extra})


def _lookups(rows: list[DiffRow], rnd: random.Random) -> Lookups:
    """Some match emails found in Stripe, some keys bound by their tag."""
    emails = {str(r.values.get("email")) for r in rows if r.values.get("email") is not None}
    found = {e: [{"id": f"cus_{i}"}] for i, e in enumerate(sorted(emails)) if rnd.random() < 0.3}
    found |= {e: [] for e in sorted(emails)[:1]}  # looked up, none found: still a create
    adopted = {r.key: {"id": f"tagged_{r.key}", "object": "x"} for r in rows if rnd.random() < 0.05}
    return Lookups(by_email=found, adopted=adopted)


def _keyed(row: DiffRow, key: str) -> DiffRow:
    return DiffRow(key, row.change, row.row_hash, row.values, {}, row.ledger)


def _spread(rows: list[DiffRow], rnd: random.Random) -> list[DiffRow]:
    """Unique match emails mostly (a real model's), a few repeated; keys unique."""
    out = []
    for r in rows:
        values = dict(r.values)
        if rnd.random() < 0.5:  # a row of plain values (most rows of a real model)
            values.update({c: v for c, v in PLAIN_ROW.items() if c in values})
        if rnd.random() < 0.8:
            values["email"] = f"u{r.key}@x.io"
        out.append(DiffRow(r.key, r.change, r.row_hash, values, {}, r.ledger))
    return out


def _digests(
    config: SyncConfig, chunks: list[list[DiffRow]], lookups: Lookups, sample: int
) -> tuple[PlanDigest, PlanDigest, list[str]]:
    adapter, settings = adapter_for(config.object), Settings()
    repeated = frozenset(
        e
        for e in {str(r.values.get("email")) for c in chunks for r in c}
        if sum(str(r.values.get("email")) == e for c in chunks for r in c) > 1
    )
    every, counted = PlanDigest(config, Keep(sample)), PlanDigest(config, Keep(sample))
    seen_every: dict[str, str] = {}
    seen_counted: dict[str, str] = {}
    plain_keys: list[str] = []
    for rows in chunks:
        every.add(
            [
                _plan_row(config, adapter, settings, r, lookups, seen_every, {}, None, None, True)
                for r in rows
            ],
            PRESENT,
        )
        mapped = map_columns(config, rows)
        if mapped is None:  # a value a converter refuses: the chunk goes the full way
            counted.add(
                [
                    _plan_row(config, adapter, settings, r, lookups, seen_counted, {}, None, None, True)
                    for r in rows
                ],
                PRESENT,
            )
            continue
        chosen, other = [], list(range(len(rows)))
        if plain_lane(config, adapter):
            chosen, other = split_plain(config, rows, mapped, lookups, repeated)
        kept = [rows[i] for i in chosen]
        plain_keys += [r.key for r in kept]
        counted.add_plain_creates(
            [r.key for r in kept],
            PRESENT,
            lambda i, kept=kept: _plan_row(config, adapter, settings, kept[i], lookups, {}, {}),  # type: ignore[misc]
        )
        flats = mapped.flats(other)
        counted.add(
            [
                _plan_row(
                    config,
                    adapter,
                    settings,
                    rows[i],
                    lookups,
                    seen_counted,
                    {},
                    None,
                    None,
                    True,
                    (f, [], mapped.clean[i]),
                )
                for i, f in zip(other, flats, strict=True)
            ],
            PRESENT,
        )
    # soundness: every row counted is one the full way creates
    for rows in chunks:
        for r in rows:
            if r.key in set(plain_keys):
                change = _plan_row(config, adapter, settings, r, lookups, {}, {}, None, None, True)
                assert isinstance(change, DeferredCreate), (r, change)
    return every, counted, plain_keys


@pytest.mark.parametrize("mode", ["upsert", "insert", "update"])
@pytest.mark.parametrize("index", range(len(CONFIGS)))
@pytest.mark.parametrize("odd", [0.0, 0.03])
def test_counting_plain_creates_gives_the_digest_of_planning_every_row(
    index: int, mode: str, odd: float
) -> None:
    config = _config(index, mode)
    rnd = random.Random(index * 1000 + int(odd * 100) + len(mode))
    chunks = [_rows(config, rnd, 200, odd) for _ in range(3)]
    chunks = [_spread([_keyed(r, f"{c}{r.key}") for r in rows], rnd) for c, rows in enumerate(chunks)]
    found = _lookups([r for c in chunks for r in c], rnd)
    for lookups, sample in ((found, 0), (found, 40), (Lookups(), 5)):  # Lookups(): a first sync's
        every, counted, plain_keys = _digests(config, chunks, lookups, sample)
        assert counted.to_dict(sample=sample) == every.to_dict(sample=sample)
        assert counted.total == every.total
    if index in (0, 1, 2) and odd == 0.0 and mode != "update":  # plain values: the lane is taken
        assert len(plain_keys) > 100


def test_syncs_whose_creates_depend_on_more_than_the_row_take_the_full_way() -> None:
    assert plain_lane(_config(0), adapter_for("customer"))
    assert not plain_lane(_config(0, "update"), adapter_for("customer"))
    assert not plain_lane(_config(4), adapter_for("product"))  # matched on id
    assert not plain_lane(_config(5), adapter_for("price"))  # a product ID in a plain column
    assert not plain_lane(_config(6), adapter_for("invoice_item"))  # conditionally required fields


@pytest.mark.parametrize(
    "keys",
    [
        [str(n) for n in range(100, 0, -1)],
        ["7", "07", "007", "10", "2", "0", "00", "12", "3", "70", "8", "9"],  # equal numbers, leading zeros
        ["7", "07", "x1", "2", "", "10", "3", "4", "5", "6"],  # not all digits: every key is compared
        ["٣", "1", "2", "3", "4", "5", "6", "7"],  # a non-ASCII digit
    ],
)
def test_the_sample_of_plain_creates_is_the_first_keys_in_natural_order(keys: list[str]) -> None:
    config = _config(0)
    adapter, settings = adapter_for("customer"), Settings()
    rows = [
        DiffRow(k, "new", f"h{k}", dict(PLAIN_ROW, email=f"u{i}@x.io"), {}, None) for i, k in enumerate(keys)
    ]
    every, counted = PlanDigest(config, Keep(5)), PlanDigest(config, Keep(5))
    every.add([_plan_row(config, adapter, settings, r, Lookups(), {}, {}) for r in rows], PRESENT)
    counted.add_plain_creates(
        keys, PRESENT, lambda i: _plan_row(config, adapter, settings, rows[i], Lookups(), {}, {})
    )  # type: ignore[arg-type,return-value]
    assert counted.to_dict() == every.to_dict()
