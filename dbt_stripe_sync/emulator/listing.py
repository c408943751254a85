"""Stripe list pagination: newest first, `limit` 1-100, `starting_after` / `ending_before`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, resource_missing

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def check_limit(params: dict[str, Any]) -> int:
    limit = params.get("limit", DEFAULT_LIMIT)
    if limit == "":
        limit = DEFAULT_LIMIT
    if not isinstance(limit, int) or limit < 1 or limit > MAX_LIMIT:
        raise invalid(
            f"This value must be greater than or equal to 1 and less than or equal to {MAX_LIMIT}.",
            param="limit",
            code="parameter_invalid_integer",
        )
    return limit


def created_matches(created: int, condition: Any) -> bool:
    """`created` filter: an exact int or a dict of gt/gte/lt/lte."""
    if condition is None or condition == "":
        return True
    if isinstance(condition, int):
        return created == condition
    checks = {
        "gt": lambda b: created > b,
        "gte": lambda b: created >= b,
        "lt": lambda b: created < b,
        "lte": lambda b: created <= b,
    }
    return all(checks[op](bound) for op, bound in condition.items() if op in checks)


def paginate(
    objects: Iterable[dict[str, Any]],
    params: dict[str, Any],
    url: str,
    object_name: str,
    render: Callable[[dict[str, Any]], dict[str, Any]] = lambda o: o,
) -> dict[str, Any]:
    """Page an already filtered newest-first sequence the way Stripe's list endpoints do."""
    limit = check_limit(params)
    items = list(objects)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
    ids = [o["id"] for o in items]
    if after:
        if after not in ids:
            raise resource_missing(object_name, after, "starting_after")
        rest = items[ids.index(after) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise resource_missing(object_name, before, "ending_before")
        rest = items[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": [render(o) for o in page], "has_more": has_more, "url": url}
