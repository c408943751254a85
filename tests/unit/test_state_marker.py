"""The state marker (tagging.py): stable per state, never pushes an object past 50 metadata keys,
and adoption by tag refuses an object another state created."""

from __future__ import annotations

from dbt_stripe_sync.adoption import adopt_by_key
from dbt_stripe_sync.tagging import STATE_KEY, TAG_KEY, foreign, state_marker, tag_params


def test_marker_is_short_stable_and_differs_per_state() -> None:
    dev = state_marker("duckdb", "dev", "main_stripe_sync")
    assert dev == state_marker("duckdb", "dev", "main_stripe_sync") and len(dev) == 12
    assert dev != state_marker("duckdb", "dev", "ci_stripe_sync")
    assert dev != state_marker("postgres", "dev", "main_stripe_sync")
    assert "stripe_sync" not in dev  # nothing readable about the warehouse


def test_tags_are_added_and_the_users_keys_come_first() -> None:
    params = {"name": "x", "metadata.plan": "pro"}
    tagged = tag_params(params, "prices", "p1", "abc123abc123")
    assert tagged == {**params, f"metadata.{TAG_KEY}": "prices:p1", f"metadata.{STATE_KEY}": "abc123abc123"}
    assert params == {"name": "x", "metadata.plan": "pro"}  # the caller's params are not changed
    full = {f"metadata.k{i}": "v" for i in range(49)}  # 49 of the user's keys + the tag = Stripe's 50
    assert f"metadata.{STATE_KEY}" not in tag_params(full, "prices", "p1", "abc123abc123")
    cleared = {**{f"metadata.k{i}": "v" for i in range(48)}, "metadata.gone": ""}
    assert f"metadata.{STATE_KEY}" in tag_params(cleared, "prices", "p1", "abc123abc123")
    assert f"metadata.{STATE_KEY}" not in tag_params(params, "prices", "p1", "")


def test_adoption_refuses_another_states_object_and_takes_unmarked_ones() -> None:
    mine = {"id": "price_mine", "created": 1, "metadata": {TAG_KEY: "prices:p1", STATE_KEY: "aaa"}}
    theirs = {"id": "price_theirs", "created": 2, "metadata": {TAG_KEY: "prices:p1", STATE_KEY: "bbb"}}
    legacy = {"id": "price_legacy", "created": 1, "metadata": {TAG_KEY: "prices:p2"}}
    tagged = {"prices:p1": [mine, theirs], "prices:p2": [legacy]}
    assert foreign(theirs, "aaa") and not foreign(legacy, "aaa") and not foreign(theirs, "")
    found = adopt_by_key("price", tagged, "prices", ["p1", "p2"], "aaa")
    assert {k: v["id"] for k, v in found.items()} == {"p1": "price_mine", "p2": "price_legacy"}
    only_theirs = {"prices:p1": [theirs]}
    assert adopt_by_key("price", only_theirs, "prices", ["p1"], "aaa") == {}
