"""Customers: matched on email (upsert) or on Stripe ID or email (update); deleted outright."""

from __future__ import annotations

from collections.abc import Iterable

from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.stripe_objects.base import StripeObject


class Customer(StripeObject):
    name = "customer"
    resource = "/v1/customers"
    id_prefix = "cus_"
    delete_description = "delete the customer"

    def restore_params(self) -> dict:
        return {}


def find_by_email(gw: StripeGateway, emails: Iterable[str]) -> dict[str, list[dict]]:
    """Stripe customers per email, oldest first, with the fewest list calls.

    Listing by email costs a call per address; paging through every customer costs a call per
    100 customers. We page while that is still cheaper than the per-email look-ups left, and
    finish with per-email look-ups if the account turns out to be larger. Never search: it is
    eventually consistent and would miss customers created moments ago.
    """
    wanted = sorted({e for e in emails if e})
    found: dict[str, list[dict]] = {e: [] for e in wanted}
    if not wanted:
        return found
    complete = False
    if len(wanted) > 1:
        budget = len(wanted) - 1  # pages we may spend and still beat per-email look-ups
        pages = 0
        starting_after = None
        while pages < budget:
            params: dict = {"limit": 100}
            if starting_after:
                params["starting_after"] = starting_after
            page = gw.request("get", "/v1/customers", params)
            pages += 1
            data = page.get("data", [])
            for c in data:
                if c.get("email") in found:
                    found[c["email"]].append(c)
            if not page.get("has_more") or not data:
                complete = True
                break
            starting_after = data[-1]["id"]
    if not complete:
        for email in wanted:
            if found[email]:
                continue
            found[email] = list(gw.list_all("/v1/customers", {"email": email}))
    for email in found:
        found[email].sort(key=lambda c: (c.get("created") or 0, c.get("id", "")))
    return found
