"""Reading dbt's artifacts: annotated models, dbt-style selection, failed models, sync order."""

from __future__ import annotations

import json
import os
import time

import pytest

from dbt_stripe_sync import project as P
from dbt_stripe_sync.errors import UsageError


def _node(name: str, tags=(), meta_in_config=True, block=None) -> dict:
    block = block if block is not None else {"object": "customer"}
    meta = {"stripe_sync": block}
    return {
        "resource_type": "model",
        "name": name,
        "fqn": ["proj", "stripe", name],
        "tags": list(tags),
        "config": {"meta": meta if meta_in_config else {}, "tags": list(tags)},
        "meta": {} if meta_in_config else meta,
        "relation_name": f'"db"."main"."{name}"',
        "original_file_path": f"models/stripe/{name}.sql",
    }


@pytest.fixture
def target(tmp_path):
    nodes = {
        "model.proj.raw": {**_node("raw"), "config": {"meta": {}}, "meta": {}},
        "model.proj.stripe_customers": _node("stripe_customers", tags=["billing"]),
        "model.proj.stripe_prices": _node("stripe_prices", tags=["billing", "catalog"], meta_in_config=False),
        "model.proj.stripe_subscriptions": _node("stripe_subscriptions"),
        "model.proj.other_customers": _node("other_customers"),
    }
    parent_map = {
        "model.proj.stripe_customers": ["model.proj.raw"],
        "model.proj.stripe_prices": ["model.proj.raw"],
        "model.proj.stripe_subscriptions": ["model.proj.stripe_customers", "model.proj.stripe_prices"],
        "model.proj.other_customers": [],
        "model.proj.raw": [],
    }
    child_map: dict[str, list[str]] = {k: [] for k in parent_map}
    for child, parents in parent_map.items():
        for p in parents:
            child_map[p].append(child)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"nodes": nodes, "parent_map": parent_map, "child_map": child_map})
    )
    (tmp_path / "run_results.json").write_text(
        json.dumps({"results": [{"unique_id": "model.proj.other_customers", "status": "error"}]})
    )
    return tmp_path


def _names(nodes) -> set[str]:
    return {n.name for n in nodes}


def test_annotated_models_from_either_meta_location(target):
    project = P.load_project(str(target))
    assert _names(project.nodes.values()) == {
        "stripe_customers",
        "stripe_prices",
        "stripe_subscriptions",
        "other_customers",
    }
    assert project.failed == {"model.proj.other_customers"}


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        ([], {"stripe_customers", "stripe_prices", "stripe_subscriptions", "other_customers"}),
        (["stripe_customers"], {"stripe_customers"}),
        (["stripe_*"], {"stripe_customers", "stripe_prices", "stripe_subscriptions"}),
        (["tag:catalog"], {"stripe_prices"}),
        (["tag:billing,other_customers"], {"stripe_customers", "stripe_prices", "other_customers"}),
        (["+stripe_subscriptions"], {"stripe_customers", "stripe_prices", "stripe_subscriptions"}),
        (["stripe_prices+"], {"stripe_prices", "stripe_subscriptions"}),
        (["raw+1"], {"stripe_customers", "stripe_prices"}),
        (["path:models/stripe/stripe_p"], {"stripe_prices"}),
    ],
)
def test_selection_follows_dbt(target, selectors, expected):
    assert _names(P.select(P.load_project(str(target)), selectors)) == expected


def test_a_selector_matching_nothing_is_a_usage_error(target):
    with pytest.raises(UsageError, match="matches no model"):
        P.select(P.load_project(str(target)), ["nope"])


def test_missing_manifest_says_what_to_run(tmp_path):
    with pytest.raises(UsageError, match="run `dbt run`"):
        P.load_project(str(tmp_path))


def test_sync_order_by_references_then_object_kind():
    objects = {
        "subs": "subscription",
        "prices": "price",
        "custs": "customer",
        "prods": "product",
        "q": "quote",
    }
    order = P.sync_order(objects, {"subs": {"prices", "custs"}, "prices": {"prods"}})
    assert order.index("prods") < order.index("prices") < order.index("subs")
    assert order.index("custs") < order.index("subs")
    assert order[-1] == "q"
    # a reference can pull an object ahead of the default kind order
    assert P.sync_order({"c": "customer", "p": "product"}, {"c": {"p"}}) == ["p", "c"]


def test_reference_cycle_is_named():
    with pytest.raises(UsageError, match="cycle: a, b"):
        P.sync_order({"a": "price", "b": "product"}, {"a": {"b"}, "b": {"a"}})


def test_stale_manifest_names_the_edited_file(tmp_path):
    (tmp_path / "models").mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    old = time.time() - 100
    os.utime(target / "manifest.json", (old, old))
    (tmp_path / "models" / "schema.yml").write_text("version: 2\n")
    assert P.manifest_is_stale(str(tmp_path), str(target)) == os.path.join("models", "schema.yml")
    os.utime(tmp_path / "models" / "schema.yml", (old - 10, old - 10))
    assert P.manifest_is_stale(str(tmp_path), str(target)) is None


def test_sync_references_are_graph_edges_for_selection(tmp_path):
    subs = _node(
        "subs", block={"object": "subscription", "references": {"items[0].price": {"sync": "prices"}}}
    )
    nodes = {"model.p.prices": _node("prices"), "model.p.subs": subs}
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {"nodes": nodes, "parent_map": {k: [] for k in nodes}, "child_map": {k: [] for k in nodes}}
        )
    )
    project = P.load_project(str(tmp_path))
    assert _names(P.select(project, ["+subs"])) == {"prices", "subs"}
    assert _names(P.select(project, ["prices+"])) == {"prices", "subs"}
