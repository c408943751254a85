"""Which syncs send together (waves): independent ones do; every kind of dependency keeps its order."""

from __future__ import annotations

from dbt_stripe_sync.config.model import Reference, SyncConfig
from dbt_stripe_sync.waves import depend, sync_waves


def _sync(name: str, obj: str, *refs: Reference) -> SyncConfig:
    return SyncConfig(
        model=name,
        unique_id=f"model.p.{name}",
        object=obj,
        mode="upsert",
        primary_key="id",
        match=None,
        fields=(),
        references=refs,
    )


def _names(waves: list[list[SyncConfig]]) -> list[list[str]]:
    return [[c.name for c in w] for w in waves]


def test_independent_syncs_of_different_objects_share_one_wave():
    custs, prods = _sync("custs", "customer"), _sync("prods", "product")
    prices = _sync("prices", "price")  # its product is a literal ID column: no dependency in this run
    items = _sync("items", "invoice_item", Reference("customer", "cus_col"))
    assert _names(sync_waves([custs, prods, prices, items])) == [["custs", "prods", "prices", "items"]]


def test_each_kind_of_dependency_starts_a_later_wave():
    custs = _sync("custs", "customer")
    prods = _sync("prods", "product")
    prices = _sync("prices", "price", Reference("product", "product_key", sync="prods"))
    subs = _sync("subs", "subscription", Reference("customer", "email", by="email"))
    more_custs = _sync("more_custs", "customer")
    items = _sync("items", "invoice_item")
    invoices = _sync("invoices", "invoice")
    waves = sync_waves([custs, more_custs, prods, prices, subs, items, invoices])
    # the order sync_order gives (references, then customer, product, price, subscription, ...)
    assert _names(waves) == [["custs", "prods"], ["more_custs", "prices"], ["subs"], ["items"], ["invoices"]]
    assert depend(prices, prods) and depend(prods, prices)  # sync: reference, either way round
    assert depend(subs, custs) and depend(custs, subs)  # by: email finds customers
    assert not depend(subs, prods)
    assert depend(more_custs, custs)  # same object: matching by email could race
    assert depend(invoices, items) and depend(subs, items)  # pending items are swept in


def test_a_pair_keeps_its_order_even_when_the_dependency_points_back():
    """A by: email sync ordered before a customers sync still sends before it, never beside it."""
    subs = _sync("subs", "subscription", Reference("customer", "email", by="email"))
    custs = _sync("custs", "customer")
    assert _names(sync_waves([subs, custs])) == [["subs"], ["custs"]]


def test_a_chain_stays_one_sync_per_wave():
    a = _sync("a", "product")
    b = _sync("b", "price", Reference("product", "k", sync="a"))
    c = _sync("c", "subscription", Reference("items[0].price", "k", sync="b"))
    assert _names(sync_waves([a, b, c])) == [["a"], ["b"], ["c"]]
