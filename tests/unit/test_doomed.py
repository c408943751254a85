"""doomed.py: what later syncs of a run see of the objects it deletes (an outside tester's findings)."""

from __future__ import annotations

from dbt_stripe_sync.config.model import FieldMapping, SyncConfig
from dbt_stripe_sync.doomed import TAG, Doomed, Retag, cancel_in
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.plan_doomed import PlannedDeletes


def _sync(name: str, mode: str = "upsert", obj: str = "customer", fields: tuple = ()) -> SyncConfig:
    return SyncConfig(
        model=name,
        unique_id=f"model.p.{name}",
        object=obj,
        mode=mode,
        primary_key="id",
        match=None,
        fields=fields,
    )


def _delete(key: str, stripe_id: str) -> Change:
    return Change(key=key, action="delete", stripe_id=stripe_id)


def test_an_object_two_models_delete_and_a_third_takes_over_is_deleted_by_neither() -> None:
    a, b, c = _sync("a"), _sync("b"), _sync("c")
    doomed = Doomed(frozenset({"customer"}))
    a_deletes, b_deletes, retired = [_delete("1", "cus_X")], [_delete("5", "cus_X")], []
    doomed.add(a, a_deletes, cancel_in(a_deletes, lambda c, *_: retired.append(c)))
    doomed.add(b, b_deletes, cancel_in(b_deletes, lambda c, *_: retired.append(c)))
    doomed.hand_over(c, [Change(key="21", action="update", stripe_id="cus_X")])
    assert a_deletes == [] and b_deletes == []  # both dropped, not only the last planned
    assert sorted(r.key for r in retired) == ["1", "5"] and {r.action for r in retired} == {"rekey"}
    assert not doomed.has_deletes


def test_an_insert_mode_row_bound_to_a_doomed_object_takes_it_over() -> None:
    """Insert mode skips a row already in Stripe, but the skip binds the row to the object all the same:
    deleting it would leave that row's ledger pointing at a deleted customer."""
    a, z = _sync("a"), _sync("z", mode="insert")
    doomed = Doomed(frozenset({"customer"}))
    deletes, retired = [_delete("1", "cus_X")], []
    doomed.add(a, deletes, cancel_in(deletes, lambda c, *_: retired.append(c)))
    doomed.hand_over(z, [Change(key="11", action="skip", stripe_id="cus_X")])
    assert deletes == [] and [r.key for r in retired] == ["1"]


def test_an_empty_registry_is_still_a_registry() -> None:
    """`doomed or Doomed()` once replaced the run's empty registry by a new one, so what it learnt
    (the objects rows bound to) was lost: it has no truth value of its own, `has_deletes` says."""
    doomed = Doomed(frozenset({"customer"}))
    assert (doomed or Doomed()) is doomed and not doomed.has_deletes
    deletes: list[Change] = [_delete("1", "cus_X")]
    doomed.add(_sync("a"), deletes, cancel_in(deletes, lambda *_: None))
    assert doomed.has_deletes


def test_a_takeover_writes_the_new_rows_tag() -> None:
    """An update taking an object over sends the new row's tag with its fields; an adopt (nothing
    else to send) becomes a tag-only update; an insert-mode skip never writes to the object."""
    a, c, z = _sync("a"), _sync("c"), _sync("z", mode="insert")
    doomed = Doomed(frozenset({"customer"}))
    deletes = [_delete("1", "cus_X"), _delete("2", "cus_Y"), _delete("3", "cus_Z")]
    doomed.add(a, deletes, cancel_in(deletes, lambda *_: None))
    update = Change(key="21", action="update", stripe_id="cus_X", params={"name": "Ada"}, row_hash="h")
    adopt = Change(key="22", action="adopt", stripe_id="cus_Y", full={"email": "y@example.com"}, row_hash="h")
    (u, d) = doomed.hand_over(c, [update, adopt])
    (skip,) = doomed.hand_over(z, [Change(key="23", action="skip", stripe_id="cus_Z")])
    assert u.action == "update" and u.params == {"name": "Ada", TAG: "c:21"}
    assert u.before[TAG] == "a:1"  # what the plan shows: the old model's tag is replaced
    assert d.action == "update" and d.params == {TAG: "c:22"} and d.idempotency_key
    assert d.full == {"email": "y@example.com"}  # the ledger keeps the row's payload
    assert skip.action == "skip" and not skip.params
    assert deletes == []


def test_an_object_bound_before_its_delete_was_planned_is_retagged_after_the_deletes() -> None:
    """The taking row was planned (and sent) first: its object's tag is rewritten once the deletes are
    done (`retags`); not for an insert-mode skip, which never writes to the object."""
    a, c, z = _sync("a"), _sync("c"), _sync("z", mode="insert")
    doomed = Doomed(frozenset({"customer"}))
    doomed.hand_over(c, [Change(key="21", action="update", stripe_id="cus_X")])
    doomed.hand_over(z, [Change(key="23", action="skip", stripe_id="cus_Z")])
    deletes = [_delete("1", "cus_X"), _delete("3", "cus_Z")]
    doomed.add(a, deletes, cancel_in(deletes, lambda *_: None))
    assert deletes == [] and doomed.retags == [Retag(c, "21", "cus_X")]


def test_a_plain_column_id_naming_a_doomed_object_is_unresolved() -> None:
    """A price's `product: product_id` naming a product the run deletes: rejected (retried every run,
    no attempt hash), with the field, the object and the row that deletes it named."""
    products = _sync("products", obj="product")
    prices = _sync("prices", obj="price", fields=(FieldMapping("product", "product_id"),))
    doomed = Doomed()
    deletes = [_delete("gold", "prod_gold")]
    doomed.add(products, deletes, cancel_in(deletes, lambda *_: None))
    on_gold = Change(key="g_m", action="create", params={"product": "prod_gold"}, row_hash="h")
    on_silver = Change(key="s_m", action="create", params={"product": "prod_silver"}, row_hash="h")
    kept = Change(key="g_y", action="noop", stripe_id="price_1")
    rejected, silver, noop = doomed.unresolve_plain(prices, [on_gold, on_silver, kept])
    assert rejected.action == "reject" and rejected.row_hash is None
    assert "product: Stripe product prod_gold is deleted by this run (products row gold" in str(
        rejected.reason
    )
    assert silver is on_silver and noop is kept


def test_plan_turns_an_earlier_plans_delete_into_a_retirement() -> None:
    """`plan` keeps a digest per sync: the deletes wait until every sync is planned, so a later
    takeover shows as the earlier sync's `rekey` (moved: ...), not as a delete."""
    a, c = _sync("a"), _sync("c")
    planned = PlannedDeletes([a, c])
    digests = {cfg.name: PlanDigest(cfg, Keep(sample=5)) for cfg in (a, c)}
    digests["a"].add(planned.sieve(a)([_delete("1", "cus_X"), _delete("2", "cus_Y")]), 1)
    planned.planned(a, digests["a"])
    digests["c"].add(planned.sieve(c)([Change(key="21", action="update", stripe_id="cus_X")]), 0)
    planned.planned(c, digests["c"])
    planned.finish()
    assert digests["a"].count("delete") == 1 and digests["a"].count("rekey") == 1
    (moved,) = [r for r in digests["a"].sample_rows() if r["action"] == "rekey"]
    assert moved["key"] == "1" and moved["reason"].startswith("moved: cus_X is now synced by c (row 21)")
    assert digests["c"].count("update") == 1


def test_plan_undoes_the_takeovers_of_a_sync_its_delete_guard_blocks() -> None:
    """`run` sends nothing for a blocked sync, so it takes nothing over: the earlier sync's delete
    stays a delete in the plan too, and a later sync's delete of what it bound to is not a move."""
    a, c, d = _sync("a"), _sync("c"), _sync("d")
    planned = PlannedDeletes([a, c, d])
    digests = {cfg.name: PlanDigest(cfg, Keep(sample=5)) for cfg in (a, c, d)}
    digests["a"].add(planned.sieve(a)([_delete("1", "cus_X")]), 1)
    planned.planned(a, digests["a"])
    taking = [
        Change(key="21", action="update", stripe_id="cus_X"),
        Change(key="22", action="update", stripe_id="cus_Y"),
    ]
    digests["c"].add(planned.sieve(c)(taking), 0)
    digests["c"].blocked = "c: deletes 3 of 4 rows, more than max_delete_fraction"
    planned.planned(c, digests["c"])
    digests["d"].add(planned.sieve(d)([_delete("7", "cus_Y")]), 1)
    planned.planned(d, digests["d"])
    planned.finish()
    assert digests["a"].count("delete") == 1 and digests["a"].count("rekey") == 0
    assert digests["d"].count("delete") == 1 and planned.doomed.retags == []
