"""Selection evaluated by dbt itself: `--select/--exclude/--selector/--state` mean what they mean
to `dbt ls`, because dbt's own graph selector evaluates them over dbt's manifest.

The one addition: every `sync:` reference is a graph edge (target -> referencing model), so
`+stripe_subscriptions` also selects the prices its rows point at, as a dbt ref would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_stripe_sync.errors import UsageError


@dataclass(frozen=True)
class SelectionArgs:
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    state: str | None = None  # --state DIR: the manifest `state:` methods compare with

    def describe(self) -> str:
        parts = [f"--select {' '.join(self.select)}"] if self.select else []
        parts += [f"--exclude {' '.join(self.exclude)}"] if self.exclude else []
        parts += [f"--selector {self.selector}"] if self.selector else []
        parts += [f"--state {self.state}"] if self.state else []
        return " ".join(parts)


def select_unique_ids(
    config: Any, manifest: Any, args: SelectionArgs, extra_edges: Iterable[tuple[str, str]] = ()
) -> set[str]:
    """unique_ids of the models dbt selects for `args` (dbt's default selector when none is given)."""
    from dbt.compilation import Linker
    from dbt.graph import Graph, ResourceTypeSelector, parse_difference
    from dbt.node_types import NodeType
    from dbt_common.exceptions import DbtBaseException

    linker = Linker()
    linker.link_graph(manifest)
    for parent, child in extra_edges:
        linker.graph.add_edge(parent, child)
    try:
        spec = _spec(config, args, parse_difference)
        selector = ResourceTypeSelector(
            graph=Graph(linker.graph),
            manifest=manifest,
            previous_state=_previous_state(config, args.state),
            resource_types=[NodeType.Model],
            include_empty_nodes=True,
        )
        return set(selector.get_selected(spec))
    except DbtBaseException as exc:
        text = " ".join(str(exc).split())[:600]
        raise UsageError(f"dbt cannot evaluate the selection {args.describe()}: {text}") from exc


def _spec(config: Any, args: SelectionArgs, parse_difference: Any) -> Any:
    if args.selector:
        if args.selector not in config.selectors:
            known = ", ".join(sorted(config.selectors)) or "none (add selectors.yml)"
            raise UsageError(f"--selector {args.selector}: no such selector in selectors.yml; known: {known}")
        return config.get_selector(args.selector)
    default = config.get_default_selector_name()
    if not (args.select or args.exclude) and default:
        return config.get_selector(default)
    return parse_difference(list(args.select) or None, list(args.exclude) or None)


def _previous_state(config: Any, state: str | None) -> Any:
    if not state:
        return None
    from dbt.contracts.state import PreviousState

    path = Path(state)
    if not (Path(config.project_root) / path / "manifest.json").is_file():
        raise UsageError(
            f"--state {state}: no manifest.json there; point it at the target/ directory of the run "
            "to compare with (e.g. the production artifacts)"
        )
    return PreviousState(
        state_path=path,
        target_path=Path(os.path.join(config.project_root, config.target_path)),
        project_root=Path(config.project_root),
    )


def sync_edges(references: Mapping[str, Sequence[str]], uid_of: Mapping[str, str]) -> list[tuple[str, str]]:
    """(target uid, referencing uid) for each `sync:` reference between annotated models."""
    edges = []
    for uid, targets in references.items():
        for name in targets:
            target = uid_of.get(name)
            if target and target != uid:
                edges.append((target, uid))
    return edges
