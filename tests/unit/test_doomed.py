"""doomed.py: what later syncs of a run see of the objects it deletes (an outside tester's findings)."""

from __future__ import annotations

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.doomed import Doomed, cancel_in
from dbt_stripe_sync.plan import Change


def _sync(name: str, mode: str = "upsert") -> SyncConfig:
    return SyncConfig(
        model=name,
        unique_id=f"model.p.{name}",
        object="customer",
        mode=mode,
        primary_key="id",
        match=None,
        fields=(),
    )


def _delete(key: str, stripe_id: str) -> Change:
    return Change(key=key, action="delete", stripe_id=stripe_id)


def test_an_object_two_models_delete_and_a_third_takes_over_is_deleted_by_neither() -> None:
    a, b, c = _sync("a"), _sync("b"), _sync("c")
    doomed = Doomed(frozenset({"customer"}))
    a_deletes, b_deletes, retired = [_delete("1", "cus_X")], [_delete("5", "cus_X")], []
    doomed.add(a, a_deletes, cancel_in(a_deletes, retired.append))
    doomed.add(b, b_deletes, cancel_in(b_deletes, retired.append))
    doomed.hand_over(c, [Change(key="21", action="update", stripe_id="cus_X")])
    assert a_deletes == [] and b_deletes == []  # both dropped, not only the last planned
    assert sorted(r.key for r in retired) == ["1", "5"] and {r.action for r in retired} == {"rekey"}
    assert not doomed


def test_an_insert_mode_row_bound_to_a_doomed_object_takes_it_over() -> None:
    """Insert mode skips a row already in Stripe, but the skip binds the row to the object all the same:
    deleting it would leave that row's ledger pointing at a deleted customer."""
    a, z = _sync("a"), _sync("z", mode="insert")
    doomed = Doomed(frozenset({"customer"}))
    deletes, retired = [_delete("1", "cus_X")], []
    doomed.add(a, deletes, cancel_in(deletes, retired.append))
    doomed.hand_over(z, [Change(key="11", action="skip", stripe_id="cus_X")])
    assert deletes == [] and [r.key for r in retired] == ["1"]
