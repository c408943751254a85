"""Which syncs of a run may send at the same time.

Stripe limits each endpoint (`POST /v1/customers`, `POST /v1/products`, ...) to 25 requests/s, so one
sync of creates can never use more than a quarter of a live account's 100/s. Syncs that do not depend
on each other are therefore sent together, in "waves": the syncs of a wave are planned one after the
other (the warehouse is used by one thread) and their writes interleaved in one pipeline.

Two syncs depend on each other, and keep the order `sync_order` gave them, when:
- one names the other in a `sync:` reference (the IDs it needs are written by that sync);
- one has a `by: email` reference and the other syncs customers (the customer looked up by email
  may be one the other sync creates in this run);
- one fills a Stripe ID field from a plain column (`fields: {product: product_id}`, `customer`,
  `items[0].price`, `price_data.product`, `invoice`, ...) and the other creates that kind of object
  under IDs its model chose (a products sync matched on `id`): the ID named may be one it creates in
  this run. Which fields hold which object's ID comes from the SDK's param types
  (`config.objects.referenced_object`). A sync of objects Stripe names itself cannot create an ID a
  model already holds, so a price naming existing products by ID still goes with the products sync
  (IDs this tool writes in the run are named through `sync:`, which orders the pair);
- both sync the same kind of object (two customer models matching by email could both create the
  same customer; one after the other, the second finds the first's);
- one syncs invoice items and the other invoices or subscriptions (Stripe sweeps a customer's
  pending invoice items into the next invoice, so the order decides which invoice bills them).
Every such pair runs in the order it would run one sync at a time, so a run in waves does what the
same run one sync after another does.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.config.objects import referenced_object

# (earlier object, later object): Stripe itself makes the later one depend on what the earlier one wrote.
_SWEPT_INTO = {("invoice_item", "invoice"), ("invoice_item", "subscription")}


def depend(a: SyncConfig, b: SyncConfig) -> bool:
    """Whether the two syncs must not send at the same time (either way round)."""
    return a.object == b.object or needs(a, b) or needs(b, a)


def needs(later: SyncConfig, earlier: SyncConfig) -> bool:
    """Whether `later` must run after `earlier` (it uses what `earlier` writes)."""
    if any(r.sync == earlier.name for r in later.references):
        return True
    if earlier.object == "customer" and any(r.by == "email" for r in later.references):
        return True
    if chooses_ids(earlier) and earlier.object in plain_id_objects(later):
        return True
    return (earlier.object, later.object) in _SWEPT_INTO


def plain_id_objects(config: SyncConfig) -> set[str]:
    """The other Stripe object types whose IDs the sync writes straight from a model column (not
    through a `sync:` or `by:` look-up), e.g. {"product"} for a price with `fields: {product: product_id}`."""
    return {referenced_object(config.object, p) or "" for p in plain_id_paths(config)}


def plain_id_paths(config: SyncConfig) -> list[str]:
    """The sync's fields holding another Stripe object's ID straight from a model column."""
    paths = [f.path for f in config.fields]
    paths += [r.target for r in config.references if r.sync is None and r.by is None]
    return [p for p in paths if referenced_object(config.object, p) not in (None, config.object)]


def chooses_ids(config: SyncConfig) -> bool:
    """Whether the sync may create objects under IDs its model chose (a product matched on `id`)."""
    from dbt_stripe_sync.stripe_objects import adapter_for

    return config.match is not None and config.match.field == "id" and adapter_for(config.object).chosen_id


def sync_waves(ordered: Sequence[SyncConfig]) -> list[list[SyncConfig]]:
    """Group syncs, given in dependency order, into waves run one after the other: each sync goes in
    the wave after the last one holding an earlier sync it depends on. Order within a wave is kept."""
    wave_of: dict[str, int] = {}
    waves: list[list[SyncConfig]] = []
    for i, config in enumerate(ordered):
        after = [wave_of[e.name] for e in ordered[:i] if depend(config, e)]
        n = max(after) + 1 if after else 0
        wave_of[config.name] = n
        while len(waves) <= n:
            waves.append([])
        waves[n].append(config)
    return [w for w in waves if w]
