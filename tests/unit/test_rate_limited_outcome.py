"""Which refused writes are certainly not applied (applier.rate_limited_unapplied): only a plain 429
`rate_limit` of a first send whose change had no earlier write land."""

from __future__ import annotations

from dbt_stripe_sync.applier import rate_limited_unapplied
from dbt_stripe_sync.gateway import StripeRequestError
from dbt_stripe_sync.gateway.client import ResponseMeta
from dbt_stripe_sync.ledger import LedgerEntry
from dbt_stripe_sync.plan import Change

REFUSED = ResponseMeta("post", "/v1/prices", 429, "req_2")


def _error(status: int = 429, code: str = "rate_limit", **kw: bool) -> StripeRequestError:
    return StripeRequestError("Too many requests", status=status, code=code, retryable=True, **kw)


def test_only_a_plain_rate_limit_of_a_first_send_is_not_applied() -> None:
    fresh = Change(key="p1", action="create", params={"currency": "usd"})
    assert rate_limited_unapplied(_error(), fresh, [REFUSED])
    assert not rate_limited_unapplied(_error(code="lock_timeout"), fresh, [REFUSED])
    assert not rate_limited_unapplied(_error(status=500, code="api_error"), fresh, [REFUSED])
    # an earlier attempt of the request got a 5xx or lost its response: it may have landed
    assert not rate_limited_unapplied(_error(outcome_unknown=True), fresh, [REFUSED])
    # a price replace whose new price was created before the archive was refused
    made = ResponseMeta("post", "/v1/prices", 200, "req_1")
    assert not rate_limited_unapplied(_error(), fresh, [made, REFUSED])
    # a re-send of a write a killed run left pending: the first send may have landed
    pending = Change(key="p1", action="create", ledger=LedgerEntry("prices", "p1", status="pending"))
    assert not rate_limited_unapplied(_error(), pending, [REFUSED])
