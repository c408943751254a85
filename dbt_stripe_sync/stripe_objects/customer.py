"""Customers: matched on email (upsert) or on Stripe ID or email (update); deleted outright."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.stripe_objects.base import StripeObject


class Customer(StripeObject):
    name = "customer"
    resource = "/v1/customers"
    id_prefix = "cus_"
    delete_description = "delete the customer"

    def restore_params(self) -> dict:
        return {}


@dataclass(frozen=True)
class EmailSearch:
    """What `search_by_email` learnt: the customers of each wanted email (oldest first), and, when it
    happened to page through the whole account, every customer by email (else None)."""

    found: dict[str, list[dict]]
    everyone: dict[str, list[dict]] | None


def find_by_email(gw: StripeGateway, emails: Iterable[str]) -> dict[str, list[dict]]:
    """Stripe customers per email, oldest first, with at most N + 1 list calls for N emails."""
    return search_by_email(gw, emails).found


def search_by_email(
    gw: StripeGateway, emails: Iterable[str], *, more_coming: bool = False, page: bool = True
) -> EmailSearch:
    """Stripe customers per email, oldest first, in at most N + 1 list calls for N emails.

    Listing by email costs a call per address; paging through every customer costs a call per 100
    customers, and finds them all at once. We cannot know the account's size in advance, so we page
    only while it pays: a next page is read only when the pages read so far found at least as many
    of the wanted emails (`pages <= found`), so that paging plus one look-up per email still missing
    never exceeds N + 1 calls (`pages + N - found <= N + 1`). A 1-email look-up goes straight to the
    email filter (1 call). Never search: it is eventually consistent and would miss customers created
    moments ago.

    A plan read in chunks looks up each chunk's emails: `more_coming` says later chunks have emails too
    (so paging may pay even for one email here), `page=False` that an earlier chunk paged without
    reaching the end (so these go straight to the email filter); the whole sync stays within N + 1.
    """
    wanted = sorted({e for e in emails if e})
    found: dict[str, list[dict]] = {e: [] for e in wanted}
    if not wanted:
        return EmailSearch(found, None)
    everyone: dict[str, list[dict]] = {}
    complete = False
    if (len(wanted) > 1 or more_coming) and page:
        pages, hits = 0, 0
        starting_after = None
        while pages <= hits and (len(wanted) - hits > 1 or more_coming):
            params: dict = {"limit": 100}
            if starting_after:
                params["starting_after"] = starting_after
            page = gw.request("get", "/v1/customers", params)
            pages += 1
            data = page.get("data", [])
            for c in data:
                slim = _slim(c)
                everyone.setdefault(slim["email"], []).append(slim)
                if slim["email"] in found:  # wanted: kept whole, its values are an update's before
                    hits += not found[slim["email"]]
                    found[slim["email"]].append(c)
            if not page.get("has_more") or not data:
                complete = True
                break
            starting_after = data[-1]["id"]
    if not complete:
        for email in wanted:
            if not found[email]:
                found[email] = list(gw.list_all("/v1/customers", {"email": email}))
    for customers in (*found.values(), *everyone.values()):
        customers.sort(key=lambda c: (c.get("created") or 0, c.get("id", "")))
    return EmailSearch(found, everyone if complete else None)


def _slim(customer: dict) -> dict:
    """What matching uses of a customer (a listing of the whole account is kept for the run)."""
    return {"id": customer["id"], "email": customer.get("email"), "created": customer.get("created")}
