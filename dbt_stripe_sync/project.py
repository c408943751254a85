"""The dbt project as dbt left it: manifest.json, run_results.json, selection and sync order."""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.config.loader import META_KEY, block_of
from dbt_stripe_sync.errors import UsageError

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
    manifest_path: str
    nodes: Mapping[str, ModelNode]  # unique_id -> annotated model
    all_models: Mapping[str, dict]  # unique_id -> manifest node (every model, for selection)
    parent_map: Mapping[str, list[str]]
    child_map: Mapping[str, list[str]]
    failed: frozenset[str]  # unique_ids whose last dbt run failed or was skipped

    def by_name(self) -> dict[str, ModelNode]:
        return {n.name: n for n in self.nodes.values()}


def manifest_is_stale(project_dir: str, target_path: str) -> str | None:
    """Name a project file edited after manifest.json was written, or None when it is current."""
    manifest = os.path.join(target_path, "manifest.json")
    if not os.path.exists(manifest):
        return None
    built = os.path.getmtime(manifest)
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in {"target", "dbt_packages", "logs", ".git", "node_modules"}]
        for f in files:
            if f.endswith((".yml", ".yaml", ".sql")):
                path = os.path.join(root, f)
                if os.path.getmtime(path) > built:
                    return os.path.relpath(path, project_dir)
    return None


def load_project(target_path: str) -> Project:
    manifest_path = os.path.join(target_path, "manifest.json")
    if not os.path.exists(manifest_path):
        raise UsageError(
            f"no manifest at {manifest_path}: run `dbt run` (or `dbt parse`) in the project first"
        )
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    models = {uid: n for uid, n in manifest.get("nodes", {}).items() if n.get("resource_type") == "model"}
    nodes: dict[str, ModelNode] = {}
    for uid, n in models.items():
        if not has_stripe_sync(n):
            continue
        block = block_of(n)
        nodes[uid] = ModelNode(
            unique_id=uid,
            name=n["name"],
            relation=n.get("relation_name") or _relation_from_parts(n),
            block=block,
            tags=tuple(n.get("tags") or ()),
            columns=tuple((n.get("columns") or {}).keys()),
            original_file_path=n.get("original_file_path", ""),
            patch_path=n.get("patch_path"),
        )
    parents, children = _with_sync_edges(nodes, manifest.get("parent_map", {}), manifest.get("child_map", {}))
    return Project(
        manifest_path=manifest_path,
        nodes=nodes,
        all_models=models,
        parent_map=parents,
        child_map=children,
        failed=frozenset(_failed_models(target_path)),
    )


def _with_sync_edges(
    nodes: Mapping[str, ModelNode], parent_map: Mapping[str, list[str]], child_map: Mapping[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """dbt's graph plus an edge for every `sync:` reference, so `+subscriptions` selects the prices
    its rows point at, as it would a dbt ref."""
    parents = {k: list(v) for k, v in parent_map.items()}
    children = {k: list(v) for k, v in child_map.items()}
    uid_of = {n.name: uid for uid, n in nodes.items()}
    for uid, node in nodes.items():
        refs = node.block.get("references") if isinstance(node.block, Mapping) else None
        for ref in (refs or {}).values() if isinstance(refs, Mapping) else ():
            target = uid_of.get(ref.get("sync")) if isinstance(ref, Mapping) else None
            if target and target not in parents.setdefault(uid, []):
                parents[uid].append(target)
                children.setdefault(target, []).append(uid)
    return parents, children


def has_stripe_sync(node: Mapping[str, Any]) -> bool:
    return any(META_KEY in (m or {}) for m in ((node.get("config") or {}).get("meta"), node.get("meta")))


def _relation_from_parts(node: Mapping[str, Any]) -> str:
    parts = [node.get("database"), node.get("schema"), node.get("alias") or node.get("name")]
    return ".".join(f'"{p}"' for p in parts if p)


def _failed_models(target_path: str) -> set[str]:
    path = os.path.join(target_path, "run_results.json")
    if not os.path.exists(path):
        return set()
    try:
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh).get("results", [])
    except (OSError, ValueError):
        return set()
    return {
        r["unique_id"]
        for r in results
        if r.get("unique_id", "").startswith("model.") and r.get("status") in {"error", "fail", "skipped"}
    }


# ---- selection ------------------------------------------------------------------------------
def select(project: Project, selectors: Iterable[str] | None) -> list[ModelNode]:
    """Annotated models matching dbt-style selectors: names, globs, tag:x, path:x, +x, x+, 2+x, x+1."""
    terms = [t for s in (selectors or []) for t in s.replace(",", " ").split()]
    if not terms:
        return list(project.nodes.values())
    chosen: set[str] = set()
    for term in terms:
        matched = _select_term(project, term)
        if not matched:
            raise UsageError(f"--select {term!r} matches no model with a stripe_sync block")
        chosen |= matched
    return [project.nodes[u] for u in project.nodes if u in chosen]


def _select_term(project: Project, term: str) -> set[str]:
    up, term = _split_operator(term, leading=True)
    term, down = _split_operator(term, leading=False)
    seeds = {uid for uid, node in project.all_models.items() if _matches(node, term)}
    result = set(seeds)
    if up is not None:
        result |= _walk(project.parent_map, seeds, up)
    if down is not None:
        result |= _walk(project.child_map, seeds, down)
    return result & set(project.nodes)


def _split_operator(term: str, *, leading: bool) -> tuple[Any, Any]:
    """'+x' -> (inf, 'x'); '2+x' -> (2, 'x'); 'x+' -> ('x', inf); 'x+1' -> ('x', 1)."""
    if leading:
        head, sep, rest = term.partition("+")
        if sep and (head == "" or head.isdigit()) and rest:
            return (int(head) if head else 10**9), rest
        return None, term
    rest, sep, tail = term.rpartition("+")
    if sep and (tail == "" or tail.isdigit()) and rest:
        return rest, (int(tail) if tail else 10**9)
    return term, None


def _matches(node: Mapping[str, Any], term: str) -> bool:
    if term.startswith("tag:"):
        tags = set(node.get("tags") or ()) | set((node.get("config") or {}).get("tags") or ())
        return any(fnmatch.fnmatchcase(t, term[4:]) for t in tags)
    if term.startswith("path:"):
        return fnmatch.fnmatchcase(node.get("original_file_path", ""), term[5:] + "*")
    if term.startswith("fqn:"):
        term = term[4:]
    fqn = ".".join(node.get("fqn") or ())
    return fnmatch.fnmatchcase(node["name"], term) or fnmatch.fnmatchcase(fqn, term)


def _walk(edges: Mapping[str, list[str]], seeds: set[str], depth: int) -> set[str]:
    seen: set[str] = set()
    frontier = set(seeds)
    for _ in range(depth):
        frontier = {n for f in frontier for n in edges.get(f, ()) if n not in seen and n not in seeds}
        if not frontier:
            break
        seen |= frontier
    return seen


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
