"""Finding what this tool created in Stripe by the metadata tag every created object carries.

The ledger normally says which Stripe object a row became. When it cannot — a sync's ledger rows
are missing (its first run, or a dropped state schema), or a write's outcome is unknown and its
idempotency key can no longer be trusted (older than Stripe's window, or burnt by a saved 500) —
the objects are found by `metadata[dbt_stripe_sync] = "<sync>:<key>"` before anything is created.

Always with list calls: Stripe's list endpoints are strongly consistent (an object is listed as soon
as the request that created it returned), while search is eventually consistent (up to a minute
behind) and could miss an object created seconds ago. One list page holds 100 objects, so a whole
scan of N objects costs ceil(N / 100) reads; a look-up of one recent write filters by `created`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dbt_stripe_sync import stripe_catalog
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.payload import split_path
from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.tagging import TAG_KEY, foreign, object_tag

# List filters that make a list endpoint return every object, not only the default subset.
_LIST_ALL = {"subscription": {"status": "all"}}
_ENDED = {
    "subscription": {"canceled", "incomplete_expired"},
    "invoice": {"void"},
    "quote": {"canceled"},
}
# A margin on `created` filters: the checkpoint is written just before the request, on another clock.
CLOCK_MARGIN_S = 3600


def is_live(object_name: str, obj: Mapping[str, Any]) -> bool:
    """Not archived, cancelled, voided or deleted: the object a row should be bound to."""
    if obj.get("deleted") or obj.get("active") is False:
        return False
    return obj.get("status") not in _ENDED.get(object_name, ())


def best(object_name: str, objects: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Of the objects carrying one tag (a replaced price leaves its archived predecessor), the live
    one, newest first; else the newest."""
    ranked = sorted(
        objects, key=lambda o: (is_live(object_name, o), o.get("created") or 0, o.get("id", "")), reverse=True
    )
    return dict(ranked[0]) if ranked else None


def scan(
    gw: StripeGateway, adapter: StripeObject, sync_name: str, *, since: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every object of this type carrying a tag of `sync_name`, by tag (list calls, 100 a page)."""
    params: dict[str, Any] = dict(_LIST_ALL.get(adapter.name, {}))
    if since is not None and "created" in stripe_catalog.operation_params(adapter.name, "list"):
        params["created"] = {"gte": int(since) - CLOCK_MARGIN_S}
    prefix = f"{sync_name}:"
    found: dict[str, list[dict[str, Any]]] = {}
    for obj in gw.list_all(adapter.resource, params):
        tag = (obj.get("metadata") or {}).get(TAG_KEY)
        if isinstance(tag, str) and tag.startswith(prefix):
            found.setdefault(tag, []).append(obj)
    return found


def adopt_by_key(
    object_name: str,
    tagged: Mapping[str, list[dict[str, Any]]],
    sync_name: str,
    keys: Iterable[str],
    marker: str | None = None,
) -> dict[str, dict[str, Any]]:
    """source key -> the object to bind it to, for the keys whose tag was found. An object whose state
    marker names another state (`marker` is ours) belongs to another target's ledger: never adopted."""
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        mine = [o for o in tagged.get(object_tag(sync_name, key), []) if not foreign(o, marker)]
        chosen = best(object_name, mine)
        if chosen is not None:
            out[key] = chosen
    return out


def find_one(
    gw: StripeGateway,
    adapter: StripeObject,
    sync_name: str,
    key: str,
    *,
    since: int | None,
    marker: str | None = None,
) -> dict[str, Any] | None:
    """The object a pending create of `key` may have made (created at `since` or later)."""
    tagged = scan(gw, adapter, sync_name, since=since)
    return adopt_by_key(adapter.name, tagged, sync_name, [key], marker).get(key)


def values_in(obj: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The flat values Stripe holds at these field paths (`address.city`, `items[0].price`), for
    the fields present: a matched object's real before-values. Expanded objects count as their ID."""
    out: dict[str, Any] = {}
    for path in paths:
        found, value = _value_at(obj, path)
        if found:
            out[path] = value
    return out


def _value_at(obj: Any, path: str) -> tuple[bool, Any]:
    current = obj
    for part in split_path(path):
        if isinstance(current, Mapping) and current.get("object") == "list" and "data" in current:
            current = current["data"]
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                return False, None
            current = current[part]
        else:
            if not isinstance(current, Mapping) or part not in current:
                return False, None
            current = current[part]
    if isinstance(current, Mapping) and "id" in current:
        current = current["id"]
    return current is not None, current
