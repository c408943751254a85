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
  `items[0].price`, `price_data.product`, `invoice`, ...) and the other syncs that kind of object (the
  ID may be one the other sync creates in this run, e.g. a product whose ID the model chose). Which
  fields hold which object's ID comes from the SDK's param types (`config.objects.referenced_object`).
  Every sync of that object, not only ones choosing IDs: a model may also be a view over the ledger,
  read when the sync is planned, so it sees IDs an earlier sync of the run wrote (sequential order);
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
    return a.object == b.object or _needs(a, b) or _needs(b, a)


def _needs(later: SyncConfig, earlier: SyncConfig) -> bool:
    if any(r.sync == earlier.name for r in later.references):
        return True
    if earlier.object == "customer" and any(r.by == "email" for r in later.references):
        return True
    if earlier.object in plain_id_objects(later):
        return True
    return (earlier.object, later.object) in _SWEPT_INTO


def plain_id_objects(config: SyncConfig) -> set[str]:
    """The other Stripe object types whose IDs the sync writes straight from a model column (not
    through a `sync:` or `by:` look-up), e.g. {"product"} for a price with `fields: {product: product_id}`."""
    paths = [f.path for f in config.fields]
    paths += [r.target for r in config.references if r.sync is None and r.by is None]
    found = {referenced_object(config.object, p) for p in paths}
    return {o for o in found if o is not None and o != config.object}


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
