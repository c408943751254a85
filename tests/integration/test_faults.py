"""Issue acceptance: a 2,000-row sync of the whole billing chain against an emulator answering 10% of
requests with 500s, 5% with 429 rate_limit, 2% of writes with 429 lock_timeout and dropping 2% of
writes' connections after applying them, with latency added, completes; Stripe ends equal to the
models with zero duplicates, the ledger names exactly the objects Stripe holds, every API call (retries
included) is in the runs table, and a second run with faults off sends nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from dbt_stripe_sync.tagging import RESERVED_KEYS
from tests.support import scale
from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(400)

FAULTS: dict[str, Any] = {
    "error_rate": 0.10,
    "rate_limited_rate": 0.05,
    "lock_timeout_rate": 0.02,
    "drop_rate": 0.02,
    "latency_ms": 3,
    "seed": 2024,
    # As Stripe does, a keyed POST's 500 is saved and replayed for its key; in a third of them the
    # write was applied before the 500 (the dangerous case): the applier finds it by its tag
    # before re-sending under a new key.
    "replay_errors": True,
    "error_applied_rate": 0.33,
}
NO_FAULTS: dict[str, Any] = {k: 0 for k in FAULTS if k not in ("seed", "replay_errors")}
# Fast enough for CI, but every attempt still goes through the gateway's limiter, retries and locks.
VARS = (
    "{dbt_stripe_sync: {rate_limit: 1000, endpoint_rate_limit: 1000, concurrency: 4, batch_size: 100, "
    "max_retries: 12}}"
)

Row = dict[str, Any]
Obj = dict[str, Any]

# sync (model) -> (seed, primary key column, emulator object type)
SYNCS: dict[str, tuple[str, str, str]] = {
    "stripe_customers": ("raw_customers", "user_id", "customer"),
    "stripe_products": ("raw_products", "product_key", "product"),
    "stripe_prices": ("raw_prices", "price_key", "price"),
    "stripe_subscriptions": ("raw_subscriptions", "subscription_key", "subscription"),
    "stripe_invoices": ("raw_invoices", "invoice_key", "invoice"),
    "stripe_invoice_items": ("raw_invoice_items", "item_key", "invoiceitem"),
    "stripe_quotes": ("raw_quotes", "quote_key", "quote"),
}


@pytest.mark.slow
def test_chain_of_2000_rows_under_faults_ends_exact(dbt_project, warehouse):
    if warehouse == "postgres" and not os.environ.get("DSS_SLOW_TESTS"):
        # It passes there too (~3.6 min); the SQL it exercises is covered on PostgreSQL by the
        # every-write-dropped scenario below and by the crash-safety suite.
        pytest.skip("the 2,000-row fault run takes ~3.6 min on PostgreSQL; set DSS_SLOW_TESTS=1 to run it")
    requests = _scenario(dbt_project, scale.ChainSizes(), FAULTS)
    faults = Counter(r["fault"] for r in requests if r["fault"])
    for kind in ("error", "rate_limit", "lock_timeout", "dropped"):
        assert faults[kind] > 0, f"no {kind} fault was injected: the test would prove nothing"


SMALL = scale.ChainSizes(customers=40, products=3, subscriptions=20, invoices=8, invoice_items=16, quotes=6)


def test_every_write_dropped_after_apply_is_recovered_once(dbt_project):
    """Each write is applied by Stripe but its response lost: creates and updates are recovered by
    their idempotent replay, deletes (no key) by reading the object's end state."""
    requests = _scenario(dbt_project, SMALL, {"drop_rate": 1.0, "seed": 1})
    dropped = [r for r in requests if r["fault"] == "dropped"]
    assert len(dropped) > 100 and any(r["method"] == "DELETE" for r in dropped)
    assert all(r["status"] != 200 or r["replayed"] or r["fault"] for r in api_writes(requests))


def _scenario(project, sizes: scale.ChainSizes, faults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Sync the chain under `faults`, change it and sync again, then once more without faults; check
    Stripe, the ledger and the runs table after each step. Returns the faulty syncs' requests."""
    emu = project.emulator
    seeds = scale.chain(sizes)
    assert sum(len(rows) for rows in seeds.values()) == sizes.total
    _write_seeds(project, seeds)

    # 1. Everything is new: creates (and the look-ups they need) through the faults.
    first = _faulty_sync(project, faults)
    _assert_replayed(first)
    _assert_calls_accounted(project, first)
    for sync in SYNCS:
        _assert_stripe_equals_model(project, sync, seeds)

    # 2. Updates, price replacements (moving subscriptions and quotes along) and deletes through the
    # faults: un-keyed DELETEs whose connection drops after Stripe applied them, a new price whose
    # response is lost before the old one is archived...
    removed = _change_some_rows(seeds, sizes)
    _write_seeds(project, seeds)
    second = _faulty_sync(project, faults)
    _assert_replayed(second)
    _assert_calls_accounted(project, second, latest=True)
    for sync in SYNCS:
        _assert_stripe_equals_model(project, sync, seeds, removed.get(sync, set()))

    # 3. Nothing left to do: no write, not even a look-up.
    emu.clear_requests()
    again = project.sync("--vars", VARS)
    assert again.returncode == 0, again.stdout[-4000:]
    assert api_writes(emu.requests()) == []
    assert emu.requests() == []
    assert _run_calls(project, latest=True) == dict.fromkeys(SYNCS, 0)
    return first + second


def _assert_replayed(requests: list[Mapping[str, Any]]) -> None:
    """Each keyed write whose response was dropped was sent again and answered by Stripe's replay."""
    replayed = {r["idempotency_key"] for r in requests if r["replayed"]}
    lost = [r for r in requests if r["fault"] == "dropped" and r["idempotency_key"]]
    assert {r["idempotency_key"] for r in lost} <= replayed, "a dropped write was not recovered by a replay"


def _write_seeds(project, seeds: Mapping[str, list[Row]]) -> None:
    for name, rows in seeds.items():
        project.write_seed(name, rows, scale.COLUMNS[name])
    project.build()


def _faulty_sync(project, faults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One sync with the faults on; returns the requests the emulator saw."""
    emu = project.emulator
    emu.set_faults(**faults)
    emu.clear_requests()
    started = time.monotonic()
    try:
        proc = project.sync("--vars", VARS)
    finally:
        emu.set_faults(**NO_FAULTS)
    requests = emu.requests()
    faults = Counter(r["fault"] for r in requests if r["fault"])
    print(f"faulty sync: {time.monotonic() - started:.1f}s, {len(requests)} requests, faults {dict(faults)}")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return requests


def _change_some_rows(seeds: dict[str, list[Row]], sizes: scale.ChainSizes) -> dict[str, set[str]]:
    """Edit the seeds in place: ~12% of the rows updated, 2 price amounts changed, ~2% of the rows
    removed. Returns the primary keys removed per sync."""
    edit = {
        "raw_customers": lambda i, r: i % 10 == 1 and r.update(city="Lisbon", country="PT"),
        "raw_products": lambda i, r: i % 7 == 0 and r.update(name=r["name"] + " (2025)"),
        "raw_prices": lambda i, r: (
            r["price_key"] in {"p000_monthly", "p001_monthly"}
            and r.update(unit_amount=int(r["unit_amount"]) + 500)
        ),
        "raw_subscriptions": lambda i, r: i % 17 == 2 and r.update(quantity=int(r["quantity"]) + 1),
        "raw_invoices": lambda i, r: i % 10 == 3 and r.update(description=r["description"] + " (revised)"),
        "raw_invoice_items": lambda i, r: i % 25 == 4 and r.update(description=r["description"] + "!"),
        "raw_quotes": lambda i, r: i % 12 == 5 and r.update(header=r["header"] + " v2"),
    }
    for seed, change in edit.items():
        for i, row in enumerate(seeds[seed]):
            change(i, row)
    unreferenced = range(max(sizes.subscriptions, sizes.quotes), sizes.customers - sizes.invoices)
    pending = [k for k in range(sizes.invoices, sizes.invoice_items) if k % 2 == 0]
    drop = {  # customers no subscription, invoice or quote refers to; pending invoice items
        "stripe_customers": {str(i + 1) for i in unreferenced[: max(2, sizes.customers // 40)]},
        "stripe_subscriptions": {
            f"s{i:05d}" for i in range(sizes.subscriptions)[-max(2, sizes.subscriptions // 50) :]
        },
        "stripe_invoice_items": {f"ii{k:05d}" for k in pending[: max(2, sizes.invoice_items // 30)]},
    }
    for sync, keys in drop.items():
        seed, pk, _ = SYNCS[sync]
        seeds[seed] = [r for r in seeds[seed] if str(r[pk]) not in keys]
    return drop


# ---- the runs table against the emulator's request log --------------------------------------------
def _runs(project, latest: bool = False) -> list[tuple[str, int, str]]:
    """(sync, api_calls, status) of the first (or latest) run, in the order the syncs ran."""
    columns = "run_id, sync_name, api_calls, status, started_at"
    rows = project.query(f"select {columns} from {project.state_schema}.stripe_sync_runs")
    first = {}
    for run_id, _, _, _, started in rows:
        first[run_id] = min(first.get(run_id, started), started)
    run_id = sorted(first, key=first.__getitem__)[-1 if latest else 0]
    chosen = sorted((r for r in rows if r[0] == run_id), key=lambda r: r[4])
    return [(r[1], int(r[2]), r[3]) for r in chosen]


def _run_calls(project, latest: bool = False) -> dict[str, int]:
    runs = _runs(project, latest)
    assert {status for _, _, status in runs} == {"success"}, runs
    return {sync: calls for sync, calls, _ in runs}


def _assert_calls_accounted(project, requests: list[Mapping[str, Any]], latest: bool = False) -> None:
    """The runs table's api_calls add up to every request the emulator logged, and each sync's share is
    exactly its own. Independent syncs send at once, so requests interleave; but each sync touches only
    its own resource, plus customer look-ups by email (GETs of customers), so every other sync's count
    is its resource's requests plus some customer GETs, and the customers sync's count is what is left
    of the customer requests."""
    runs = _runs(project, latest)
    assert sum(calls for _, calls, _ in runs) == len(requests), (runs, len(requests))
    by_resource = Counter(_resource(r) for r in requests)
    foreign = [
        (r["method"], r["path"])
        for r in requests
        if _resource(r) not in {SYNCS[sync][2] for sync, _, _ in runs}
    ]
    assert not foreign, f"requests no sync of the run owns: {foreign[:5]}"
    lookups = 0  # customer GETs counted for other syncs
    for sync, calls, _ in runs:
        resource = SYNCS[sync][2]
        if resource == "customer":
            continue
        extra = calls - by_resource[resource]
        assert extra >= 0, f"{sync}: {calls} calls counted, {by_resource[resource]} requests to {resource}"
        lookups += extra
    customers = dict((sync, calls) for sync, calls, _ in runs).get("stripe_customers", 0)
    assert customers + lookups == by_resource["customer"], (customers, lookups, by_resource["customer"])


def _resource(request: Mapping[str, Any]) -> str:
    name = request["path"].split("/")[2]
    return {"invoiceitems": "invoiceitem"}.get(name, name.removesuffix("s"))


# ---- Stripe against the models --------------------------------------------------------------------
def _assert_stripe_equals_model(
    project, sync: str, seeds: Mapping[str, list[Row]], removed: set[str] = frozenset()
) -> None:
    """One live Stripe object per model row, carrying the row's values, and none for removed rows;
    every object of the type is ours; the ledger names exactly these objects."""
    seed, pk, kind = SYNCS[sync]
    emu = project.emulator
    rows = {str(r[pk]): r for r in seeds[seed]}
    objects = emu.objects(kind)
    tagged = [o for o in objects if _tag(o).startswith(sync + ":")]
    assert len(objects) == len(tagged), f"{sync}: {len(objects) - len(tagged)} {kind}(s) without our tag"
    live = [o for o in tagged if _alive(kind, o)]
    tags = Counter(_tag(o) for o in live)
    duplicates = {t: n for t, n in tags.items() if n > 1}
    assert not duplicates, f"{sync}: duplicated objects {list(duplicates.items())[:5]}"
    assert set(tags) == {f"{sync}:{k}" for k in rows}, (
        f"{sync}: live objects missing {sorted({f'{sync}:{k}' for k in rows} - set(tags))[:5]}, "
        f"extra {sorted(set(tags) - {f'{sync}:{k}' for k in rows})[:5]}"
    )
    by_key = {_tag(o).split(":", 1)[1]: o for o in live}
    # A dead object is a removed row's (deleted, cancelled) or a replaced price's archived predecessor.
    dead = Counter(_tag(o).split(":", 1)[1] for o in tagged if not _alive(kind, o))
    assert set(dead) <= set(removed) | set(by_key), f"{sync}: rows ended in Stripe: {dead}"
    assert all(dead[k] <= 1 for k in removed), f"{sync}: a removed row had duplicates: {dead}"

    ledger = project.ledger(sync)
    assert {k: (e["status"], e["stripe_id"]) for k, e in ledger.items() if k not in removed} == {
        k: ("synced", o["id"]) for k, o in by_key.items()
    }, f"{sync}: the ledger does not name the objects Stripe holds"
    gone = {k: e["status"] for k, e in ledger.items() if k in removed}
    assert gone == dict.fromkeys(removed, "deleted"), f"{sync}: removed rows not deleted: {gone}"
    assert not {e["stripe_id"] for k, e in ledger.items() if k in removed} & {o["id"] for o in live}

    ids = _ids(project, seeds)
    expect = EXPECTED[sync]
    wrong = []
    for key, row in rows.items():
        want, got = expect(row, ids), _view(kind, by_key[key])
        diff = {f: (want[f], got.get(f)) for f in want if got.get(f) != want[f]}
        if diff:
            wrong.append((key, diff))
    assert not wrong, f"{sync}: {len(wrong)} object(s) differ from the model, e.g. {wrong[:3]}"


def _tag(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("dbt_stripe_sync", "")


def _alive(kind: str, obj: Obj) -> bool:
    if obj.get("deleted"):
        return False
    if kind == "subscription":
        return obj["status"] in {"active", "trialing"}
    if kind == "quote":
        return obj["status"] == "draft"
    if kind in {"price", "product"}:
        return obj["active"] is True
    if kind == "invoice":
        return obj["status"] == "draft"
    return True


@dataclass(frozen=True)
class _Ids:
    """What the model's references resolve to: Stripe IDs by email or primary key, price amounts."""

    customer: dict[str, str]
    product: dict[str, str]
    price: dict[str, str]
    invoice: dict[str, str]
    unit_amount: dict[str, int]


def _ids(project, seeds: Mapping[str, list[Row]]) -> _Ids:
    def synced(sync: str) -> dict[str, str]:
        return {k: v["stripe_id"] for k, v in project.ledger(sync).items()}

    return _Ids(
        customer={c["email"]: c["id"] for c in project.emulator.objects("customer")},
        product=synced("stripe_products"),
        price=synced("stripe_prices"),
        invoice=synced("stripe_invoices"),
        unit_amount={p["price_key"]: int(p["unit_amount"]) for p in seeds["raw_prices"]},
    )


def _view(kind: str, obj: Obj) -> dict[str, Any]:
    """The mapped fields of a Stripe object, flattened the way EXPECTED names them."""
    meta = {f"metadata.{k}": v for k, v in (obj.get("metadata") or {}).items() if k not in RESERVED_KEYS}
    view: dict[str, Any] = {"metadata": meta}
    if kind == "customer":
        address = obj.get("address") or {}
        view |= {k: obj.get(k) for k in ("email", "name", "phone", "preferred_locales")}
        view |= {f"address.{k}": address.get(k) for k in ("line1", "city", "country")}
    elif kind == "product":
        view |= {k: obj.get(k) for k in ("id", "name", "description")}
    elif kind == "price":
        view |= {k: obj.get(k) for k in ("currency", "unit_amount", "nickname", "product")}
        view["recurring.interval"] = (obj.get("recurring") or {}).get("interval")
    elif kind == "subscription":
        view["customer"] = obj["customer"]
        view["items"] = [(_id(i["price"]), i["quantity"]) for i in obj["items"]["data"]]
    elif kind == "invoice":
        view |= {k: obj.get(k) for k in ("customer", "collection_method", "days_until_due", "description")}
    elif kind == "invoiceitem":
        view |= {k: obj.get(k) for k in ("customer", "amount", "currency", "description")}
        view["invoice"] = _id(obj.get("invoice"))
        view["price"] = ((obj.get("pricing") or {}).get("price_details") or {}).get("price")
    elif kind == "quote":
        view |= {k: obj.get(k) for k in ("customer", "header", "amount_total")}
    return view


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else value


def _or_none(value: Any) -> Any:
    return None if value in ("", None) else value


def _meta(**values: Any) -> dict[str, str]:
    """metadata as Stripe holds it: a null is skipped (on_null: skip), the rest is text."""
    return {f"metadata.{k}": str(v) for k, v in values.items() if v not in ("", None)}


def _customer(r: Row, ids: _Ids) -> dict[str, Any]:
    return {
        "email": r["email"],
        "name": r["full_name"],
        "phone": _or_none(r["phone"]),
        "address.line1": r["street"],
        "address.city": r["city"],
        "address.country": r["country"],
        "preferred_locales": json.loads(r["locales"]) if r["locales"] else [],
        "metadata": _meta(plan=r["plan_tier"], signup_date=r["signup_date"], vip=r["is_vip"], ltv=r["ltv"]),
    }


def _product(r: Row, ids: _Ids) -> dict[str, Any]:
    return {
        "id": r["product_id"],
        "name": r["name"],
        "description": r["description"],
        "metadata": _meta(tier=r["tier"]),
    }


def _price(r: Row, ids: _Ids) -> dict[str, Any]:
    return {
        "currency": r["currency"],
        "unit_amount": int(r["unit_amount"]),
        "nickname": r["nickname"],
        "product": ids.product[r["product_key"]],
        "recurring.interval": _or_none(r["billing_interval"]),
        "metadata": _meta(price_key=r["price_key"]),
    }


def _subscription(r: Row, ids: _Ids) -> dict[str, Any]:
    items = [(ids.price[r["price_key"]], int(r["quantity"]))]
    if r["addon_price_key"]:
        items.append((ids.price[r["addon_price_key"]], int(r["addon_quantity"])))
    return {
        "customer": ids.customer[r["customer_email"]],
        "items": items,
        "metadata": _meta(deal=r["deal_note"]),
    }


def _invoice(r: Row, ids: _Ids) -> dict[str, Any]:
    return {
        "customer": ids.customer[r["customer_email"]],
        "collection_method": "send_invoice",
        "days_until_due": int(r["days_until_due"]),
        "description": r["description"],
        "metadata": _meta(invoice_key=r["invoice_key"]),
    }


def _invoice_item(r: Row, ids: _Ids) -> dict[str, Any]:
    want: dict[str, Any] = {
        "customer": ids.customer[r["customer_email"]],
        "description": r["description"],
        "invoice": ids.invoice[r["invoice_key"]] if r["invoice_key"] else None,
    }
    if r["price_key"]:
        want["price"] = ids.price[r["price_key"]]
    else:
        want |= {"amount": int(r["amount"]), "currency": r["currency"], "price": None}
    return want


def _quote(r: Row, ids: _Ids) -> dict[str, Any]:
    return {
        "customer": ids.customer[r["customer_email"]],
        "header": r["header"],
        "amount_total": int(r["quantity"]) * ids.unit_amount[r["price_key"]],
    }


_UNIT_AMOUNTS = {p["price_key"]: int(p["unit_amount"]) for p in scale.prices(scale.ChainSizes().products)}

EXPECTED: dict[str, Callable[[Row, _Ids], dict[str, Any]]] = {
    "stripe_customers": _customer,
    "stripe_products": _product,
    "stripe_prices": _price,
    "stripe_subscriptions": _subscription,
    "stripe_invoices": _invoice,
    "stripe_invoice_items": _invoice_item,
    "stripe_quotes": _quote,
}
