"""Drift guard: where localstripe (PyPI, not ours) implements a behaviour, the emulator must agree.

The same scenario runs through the real SDK against a localstripe subprocess and against the
emulator; ids are replaced by labels and only outcomes both implement are compared (status,
key fields, list membership). Known localstripe divergences from Stripe are left out and listed in
docs/emulator.md (e.g. it answers 404 for a deleted customer, where Stripe returns a stub).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe

pytest.importorskip("localstripe")

from tests.support.localstripe import localstripe


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with localstripe(tmp_path_factory.mktemp("localstripe")) as url:
        yield url


class Recorder:
    """Runs steps, turning results into comparable outcomes with ids replaced by labels."""

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}
        self.outcomes: list[tuple[str, Any]] = []

    def label(self, object_id: str, name: str) -> None:
        self.labels[object_id] = name

    def norm(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.labels.get(value, value)
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        if isinstance(value, dict):
            return {k: self.norm(v) for k, v in value.items()}
        return value

    def step(self, name: str, call: Callable[[], Any], fields: tuple[str, ...] = ()) -> Any:
        try:
            result = call()
        except stripe.StripeError as exc:
            self.outcomes.append((name, ("error", exc.http_status)))
            return None
        data = result.to_dict()
        if data.get("object") == "list":
            outcome: Any = sorted(self.norm([o["id"] for o in data["data"]]))
        else:
            outcome = {f: self.norm(data.get(f)) for f in fields}
        self.outcomes.append((name, ("ok", outcome)))
        return result


def run_scenario(client: stripe.StripeClient, tag: str) -> list[tuple[str, Any]]:
    """`tag` keeps emails and product ids unique: localstripe's state lives for the module."""
    r = Recorder()
    e1, e2 = f"same-{tag}@example.com", f"other-{tag}@example.com"

    # customers: create, update (metadata merge; localstripe keeps "" values instead of unsetting
    # them, so unsetting is covered by the emulator's own tests), list by email, delete
    a = r.step(
        "create a",
        lambda: client.v1.customers.create(
            params={"email": e1, "name": "A", "metadata": {"x": "1", "y": "2"}}
        ),
        ("email", "name", "metadata", "object"),
    )
    r.label(a.id, "a")
    b = r.step("create b", lambda: client.v1.customers.create(params={"email": e1}), ("email", "object"))
    r.label(b.id, "b")
    c = r.step(
        "create c", lambda: client.v1.customers.create(params={"email": e2, "name": "C"}), ("email", "name")
    )
    r.label(c.id, "c")
    r.step(
        "update a",
        lambda: client.v1.customers.update(a.id, params={"name": "A2", "metadata": {"z": "3"}}),
        ("id", "name", "metadata", "email"),
    )
    r.step("retrieve a", lambda: client.v1.customers.retrieve(a.id), ("id", "name", "metadata"))
    r.step("list e1", lambda: client.v1.customers.list(params={"email": e1}))
    r.step("delete c", lambda: client.v1.customers.delete(c.id), ("id", "deleted"))
    r.step("list e2 after delete", lambda: client.v1.customers.list(params={"email": e2}))
    r.step("retrieve missing", lambda: client.v1.customers.retrieve(f"cus_missing{tag}"))
    r.step("update missing", lambda: client.v1.customers.update(f"cus_missing{tag}", params={"name": "x"}))
    r.step("unknown parameter", lambda: client.v1.customers.create(params={"not_a_param": "x"}))

    # products: create with a caller-chosen id, update, list
    pid = f"prod_parity_{tag}"
    r.label(pid, "p")
    r.step(
        "create product",
        lambda: client.v1.products.create(params={"id": pid, "name": "Gold", "metadata": {"tier": "g"}}),
        ("id", "name", "metadata", "active", "object"),
    )
    r.step(
        "update product",
        lambda: client.v1.products.update(
            pid, params={"name": "Platinum", "description": "Best", "metadata": {"tier": "p"}}
        ),
        ("id", "name", "description", "metadata"),
    )
    r.step("retrieve product", lambda: client.v1.products.retrieve(pid), ("id", "name", "description"))
    listed = r.step("list products", lambda: client.v1.products.list(params={"limit": 100}))
    r.outcomes.append(("product listed", "p" in r.norm([o.id for o in listed.data])))
    r.step("product without name", lambda: client.v1.products.create(params={"description": "nameless"}))

    # invoice items: create with amount and currency
    r.step(
        "invoice item",
        lambda: client.v1.invoice_items.create(
            params={"customer": b.id, "amount": 1250, "currency": "usd", "description": "setup"}
        ),
        ("amount", "currency", "customer", "description", "invoice", "object"),
    )
    r.step(
        "invoice item for missing customer",
        lambda: client.v1.invoice_items.create(
            params={"customer": f"cus_missing{tag}", "amount": 1, "currency": "usd"}
        ),
    )
    return r.outcomes


@pytest.mark.timeout(60)
def test_emulator_and_localstripe_agree(localstripe_url: str, stripe_emulator, client_factory) -> None:
    theirs = run_scenario(client_factory(localstripe_url), "t1")
    ours = run_scenario(client_factory(stripe_emulator.url), "t1")
    assert len(ours) == len(theirs)
    for (step, expected), (_, actual) in zip(theirs, ours, strict=True):
        assert actual == expected, f"step {step!r}: localstripe {expected!r}, emulator {actual!r}"
