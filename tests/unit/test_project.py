"""The dbt project for a target: failed models, staleness by content, sync order, sync: edges.

Selection itself is dbt's (tests/integration/test_dbt_native.py compares it with `dbt ls`)."""

from __future__ import annotations

import json

import pytest

from dbt_stripe_sync import project as P
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.selection import SelectionArgs, sync_edges
from dbt_stripe_sync.staleness import stale_models


def _node(name: str, sql_sum: str = "aaa", block=None, meta_in_config=True) -> dict:
    meta = {"stripe_sync": block if block is not None else {"object": "customer"}}
    return {
        "unique_id": f"model.p.{name}",
        "name": name,
        "checksum": {"name": "sha256", "checksum": sql_sum},
        "config": {"meta": meta if meta_in_config else {}},
        "meta": {} if meta_in_config else meta,
        "original_file_path": f"models/{name}.sql",
        "patch_path": "p://models/schema.yml",
    }


def _write_manifest(target, *nodes) -> None:
    target.mkdir(exist_ok=True)
    (target / "manifest.json").write_text(json.dumps({"nodes": {n["unique_id"]: n for n in nodes}}))


def test_staleness_is_by_content_not_time(tmp_path):
    _write_manifest(tmp_path, _node("a"), _node("b", meta_in_config=False))
    # same content (whatever the files' mtimes): nothing to refuse
    assert stale_models(str(tmp_path), [_node("a"), _node("b", meta_in_config=False)]) == []
    # the block moved from meta to config.meta with the same value: still the same block
    assert stale_models(str(tmp_path), [_node("b")]) == []


def test_staleness_names_an_edited_block_an_edited_sql_and_a_new_model(tmp_path):
    _write_manifest(tmp_path, _node("a"), _node("b"))
    edited_block = _node("a", block={"object": "customer", "mode": "update"})
    problems = stale_models(str(tmp_path), [edited_block, _node("b", sql_sum="bbb"), _node("c")])
    assert problems == [
        "the stripe_sync block of a in models/schema.yml was edited",
        "models/b.sql (model b) was edited",
        "c is new since dbt last parsed the project",
    ]


def test_no_manifest_json_means_nothing_to_compare(tmp_path):
    assert stale_models(str(tmp_path), [_node("a")]) == []


def _run_results(tmp_path, target: str | None) -> None:
    (tmp_path / "run_results.json").write_text(
        json.dumps(
            {
                "args": {"target": target},
                "results": [
                    {"unique_id": "model.p.a", "status": "error"},
                    {"unique_id": "model.p.b", "status": "success"},
                    {"unique_id": "model.p.c", "status": "skipped"},
                ],
            }
        )
    )


def test_failed_models_come_from_a_run_on_the_same_target(tmp_path):
    _run_results(tmp_path, "dev")
    assert P._failed_models(str(tmp_path), "dev") == {"model.p.a", "model.p.c"}
    # another target's failures say nothing about this target's tables
    assert P._failed_models(str(tmp_path), "ci") == set()
    _run_results(tmp_path, None)  # dbt ran on the profile's default target
    assert P._failed_models(str(tmp_path), "dev") == {"model.p.a", "model.p.c"}


def test_sync_references_become_graph_edges():
    edges = sync_edges(
        {"model.p.subs": ["prices", "customers_not_annotated"], "model.p.prices": ["prices"]},
        {"prices": "model.p.prices", "subs": "model.p.subs"},
    )
    assert edges == [("model.p.prices", "model.p.subs")]  # parent -> child, no self edge


def test_selection_args_describe_themselves():
    args = SelectionArgs(("a", "tag:x"), ("b",), None, "prod-artifacts")
    assert args.describe() == "--select a tag:x --exclude b --state prod-artifacts"


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
