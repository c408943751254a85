"""Which syncs send together (waves): independent ones do; every kind of dependency keeps its order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dbt_stripe_sync.config.model import FieldMapping, Match, Reference, SyncConfig
from dbt_stripe_sync.waves import depend, plain_id_objects, sync_waves


def _sync(name: str, obj: str, *refs: Reference, fields: tuple[FieldMapping, ...] = ()) -> SyncConfig:
    return SyncConfig(
        model=name,
        unique_id=f"model.p.{name}",
        object=obj,
        mode="upsert",
        primary_key="id",
        match=None,
        fields=fields,
        references=refs,
    )


def _fields(*paths: str) -> tuple[FieldMapping, ...]:
    return tuple(FieldMapping(p, f"col_{i}") for i, p in enumerate(paths))


def _names(waves: list[list[SyncConfig]]) -> list[list[str]]:
    return [[c.name for c in w] for w in waves]


def test_independent_syncs_of_different_objects_share_one_wave():
    custs, prods = _sync("custs", "customer"), _sync("prods", "product", fields=_fields("name"))
    prices = _sync("prices", "price", fields=_fields("currency", "unit_amount", "metadata.product"))
    items = _sync("items", "invoice_item", fields=_fields("amount", "description"))
    assert _names(sync_waves([custs, prods, prices, items])) == [["custs", "prods", "prices", "items"]]


@pytest.mark.parametrize(
    ("obj", "path", "target"),
    [
        ("price", "product", "product"),
        ("product", "default_price", "price"),
        ("subscription", "customer", "customer"),
        ("subscription", "items[0].price", "price"),
        ("subscription", "items[1].price_data.product", "product"),
        ("invoice", "customer", "customer"),
        ("invoice", "subscription", "subscription"),
        ("invoice_item", "customer", "customer"),
        ("invoice_item", "invoice", "invoice"),
        ("invoice_item", "subscription", "subscription"),
        ("invoice_item", "price_data.product", "product"),
        ("quote", "customer", "customer"),
        ("quote", "line_items[0].price", "price"),
    ],
)
def test_an_id_field_filled_from_a_plain_column_names_its_object(obj: str, path: str, target: str):
    """Which fields hold an ID comes from the SDK's param types, so every entry is a real field."""
    assert plain_id_objects(_sync("s", obj, fields=_fields(path))) == {target}


def test_metadata_and_plain_fields_hold_no_id():
    assert plain_id_objects(_sync("s", "price", fields=_fields("metadata.product", "nickname"))) == set()
    items = _sync("s", "invoice_item", fields=_fields("metadata.customer", "amount"))
    assert plain_id_objects(items) == set()


def test_a_plain_id_column_waits_for_syncs_that_create_under_chosen_ids():
    """Prices naming products by the ID the products model chose must not race those products (a 404);
    a sync of objects Stripe names cannot create an ID a model already holds, so it is not waited for."""
    custs, prods = _sync("custs", "customer"), _sync("prods", "product")
    chosen = replace(_sync("chosen", "product"), match=Match(field="id", column="product_id"))
    prices = _sync("prices", "price", fields=_fields("product", "unit_amount"))
    items = _sync("items", "invoice_item", fields=_fields("customer", "price_data.product"))
    subs = _sync("subs", "subscription", fields=_fields("items[0].price"))
    assert plain_id_objects(prices) == {"product"} and plain_id_objects(items) == {"customer", "product"}
    assert depend(prices, chosen) and depend(chosen, prices) and depend(items, chosen)
    assert not depend(prices, prods) and not depend(items, prods) and not depend(items, custs)
    assert not depend(subs, prices) and not depend(subs, custs)
    waves = sync_waves([custs, prods, chosen, prices, subs, items])
    # prods and chosen: the same object, one after the other; prices and items wait for chosen;
    # items wait for subs too: pending items are swept into subscription invoices
    assert _names(waves) == [["custs", "prods", "subs"], ["chosen"], ["prices", "items"]]


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
