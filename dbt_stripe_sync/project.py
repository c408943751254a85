"""The dbt project for the chosen target: annotated models, dbt's selection, staleness, sync order."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.config.loader import META_KEY, block_of
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.selection import SelectionArgs, select_unique_ids, sync_edges
from dbt_stripe_sync.staleness import stale_models

# Objects others point at go first, so IDs created earlier in a run can be referenced later.
OBJECT_ORDER = ("customer", "product", "price", "subscription", "invoice_item", "invoice", "quote")


@dataclass(frozen=True)
class ModelNode:
    unique_id: str
    name: str
    relation: str  # fully-qualified, quoted relation name as dbt renders it
    block: Any  # the raw stripe_sync block, checked later by config
    tags: tuple[str, ...]
    columns: tuple[str, ...]  # documented columns (the built relation is checked separately)
    original_file_path: str
    patch_path: str | None


@dataclass(frozen=True)
class Project:
    manifest_path: str  # target/manifest.json: what dbt last wrote (staleness is checked against it)
    nodes: Mapping[str, ModelNode]  # unique_id -> annotated model, relations for the chosen target
    failed: frozenset[str]  # unique_ids whose last dbt run (on this target) failed or was skipped
    dbt_manifest: Any = None  # dbt's Manifest for the chosen target, for selection

    def by_name(self) -> dict[str, ModelNode]:
        return {n.name: n for n in self.nodes.values()}


def load_project(dbt_manifest: Any, target_path: str, target_name: str | None = None) -> Project:
    """The annotated models of dbt's manifest as parsed for the chosen target (see dbt_manifest.py)."""
    nodes: dict[str, ModelNode] = {}
    for uid, node in dbt_manifest.nodes.items():
        if getattr(node, "resource_type", None) != "model" or not _annotated(node):
            continue
        raw = node_dict(node)
        nodes[uid] = ModelNode(
            unique_id=uid,
            name=node.name,
            relation=node.relation_name or _relation_from_parts(raw),
            block=block_of(raw),
            tags=tuple(node.tags or ()),
            columns=tuple((node.columns or {}).keys()),
            original_file_path=node.original_file_path or "",
            patch_path=node.patch_path,
        )
    return Project(
        manifest_path=os.path.join(target_path, "manifest.json"),
        nodes=nodes,
        failed=frozenset(_failed_models(target_path, target_name)),
        dbt_manifest=dbt_manifest,
    )


def node_dict(node: Any) -> dict[str, Any]:
    """The manifest.json shape of the parts of a node this tool reads (JSON values only)."""
    raw = {
        "unique_id": node.unique_id,
        "name": node.name,
        "database": node.database,
        "schema": node.schema,
        "alias": node.alias,
        "checksum": {"name": node.checksum.name, "checksum": node.checksum.checksum},
        "config": {"meta": dict(node.config.meta or {})},
        "meta": dict(node.meta or {}),
        "original_file_path": node.original_file_path,
        "patch_path": node.patch_path,
    }
    return json.loads(json.dumps(raw, default=str))


def _annotated(node: Any) -> bool:
    return META_KEY in (node.config.meta or {}) or META_KEY in (node.meta or {})


def stale(project: Project, selected: Iterable[ModelNode]) -> str | None:
    """Why target/manifest.json no longer matches the selected models' files, or None."""
    manifest = project.dbt_manifest
    problems = stale_models(
        os.path.dirname(project.manifest_path), [node_dict(manifest.nodes[n.unique_id]) for n in selected]
    )
    if not problems:
        return None
    names = " ".join(sorted({n.name for n in selected}))
    return (
        "; ".join(problems)
        + " after target/manifest.json was written, so the warehouse may not hold what the files say; "
        f"run `dbt run -s {names}` (or at least `dbt parse`) first"
    )


def has_stripe_sync(node: Mapping[str, Any]) -> bool:
    return any(META_KEY in (m or {}) for m in ((node.get("config") or {}).get("meta"), node.get("meta")))


def _relation_from_parts(node: Mapping[str, Any]) -> str:
    parts = [node.get("database"), node.get("schema"), node.get("alias") or node.get("name")]
    return ".".join(f'"{p}"' for p in parts if p)


def _failed_models(target_path: str, target_name: str | None) -> set[str]:
    """Models whose last dbt run failed or was skipped — on the same target (another target's
    failures say nothing about this target's tables)."""
    path = os.path.join(target_path, "run_results.json")
    if not os.path.exists(path):
        return set()
    try:
        with open(path, encoding="utf-8") as fh:
            artifact = json.load(fh)
    except (OSError, ValueError):
        return set()
    ran_for = (artifact.get("args") or {}).get("target")
    if ran_for and target_name and ran_for != target_name:
        return set()
    return {
        r["unique_id"]
        for r in artifact.get("results", [])
        if r.get("unique_id", "").startswith("model.") and r.get("status") in {"error", "fail", "skipped"}
    }


# ---- selection ------------------------------------------------------------------------------
def select(project: Project, config: Any, args: SelectionArgs | None = None) -> list[ModelNode]:
    """The annotated models among those dbt selects for `args` (every annotated model by default)."""
    args = args or SelectionArgs()
    if not project.nodes:
        raise UsageError(
            "no model in this dbt project has a stripe_sync block under `config: meta:` (or `meta:`); "
            "annotate one (see the README's Quickstart), then run `dbt run` and try again"
        )
    uid_of = {n.name: uid for uid, n in project.nodes.items()}
    edges = sync_edges({uid: _sync_targets(n.block) for uid, n in project.nodes.items()}, uid_of)
    chosen = select_unique_ids(config, project.dbt_manifest, args, edges)
    selected = [n for uid, n in project.nodes.items() if uid in chosen]
    if not selected:
        models = project.dbt_manifest.nodes
        dbt_chose = sorted(models[u].name for u in chosen if u in models)
        shown = ", ".join(dbt_chose[:10]) + (" …" if len(dbt_chose) > 10 else "") if dbt_chose else "no model"
        annotated = ", ".join(sorted(uid_of))
        raise UsageError(
            f"{args.describe() or 'the default selector'} selects no model with a stripe_sync block "
            f"(dbt selects: {shown}); models with one: {annotated}. "
            f"`dbt ls --resource-type model {args.describe()}` shows what dbt selects; "
            "pass one of the annotated models, e.g. `-s " + sorted(uid_of)[0] + "`"
        )
    return selected


def _sync_targets(block: Any) -> list[str]:
    refs = block.get("references") if isinstance(block, Mapping) else None
    if not isinstance(refs, Mapping):
        return []
    return [r["sync"] for r in refs.values() if isinstance(r, Mapping) and isinstance(r.get("sync"), str)]


# ---- ordering ------------------------------------------------------------------------------
def sync_order(names_objects: Mapping[str, str], depends_on: Mapping[str, set[str]]) -> list[str]:
    """Topological order of syncs by their `sync:` references, ties broken by OBJECT_ORDER, then name.

    A cycle is a configuration error: it names the syncs involved.
    """
    remaining = {
        n: {d for d in depends_on.get(n, set()) if d in names_objects and d != n} for n in names_objects
    }
    order: list[str] = []

    def rank(n: str) -> tuple[int, str]:
        obj = names_objects[n]
        return (OBJECT_ORDER.index(obj) if obj in OBJECT_ORDER else len(OBJECT_ORDER), n)

    while remaining:
        ready = sorted((n for n, deps in remaining.items() if not deps), key=rank)
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise UsageError(f"the `sync:` references of these models form a cycle: {cycle}")
        nxt = ready[0]
        order.append(nxt)
        del remaining[nxt]
        for deps in remaining.values():
            deps.discard(nxt)
    return order
