"""Turn a model's `stripe_sync` meta block into a typed `SyncConfig`, or explain everything wrong with it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, ConfigProblem
from .model import Account, FieldMapping, Match, Reference, SyncConfig
from .objects import OBJECT_OPTIONS, BlockView, check_semantics
from .schema import check_shape

META_KEY = "stripe_sync"


def check_block(
    model_name: str,
    block: Any,
    *,
    columns: Collection[str] | None = None,
    known_syncs: Collection[str] | Mapping[str, str] | None = None,
) -> list[ConfigProblem]:
    """Every problem of one block (empty when it is valid): shape first, then the per-object rules.

    `known_syncs` may map each synced model to its Stripe object, so `sync:` references are also
    checked for pointing at the right kind of object.
    """
    problems = check_shape(model_name, block)
    if isinstance(block, Mapping):
        view = BlockView(model_name, block, columns, known_syncs)
        problems += check_semantics(view)
    return list(dict.fromkeys(problems))


def load_sync_config(
    model_name: str,
    unique_id: str,
    block: Mapping[str, Any],
    *,
    columns: Collection[str] | None = None,
    known_syncs: Collection[str] | Mapping[str, str] | None = None,
) -> SyncConfig:
    """Validate `block` and build its `SyncConfig`; raise `ConfigError` listing every problem."""
    problems = check_block(model_name, block, columns=columns, known_syncs=known_syncs)
    if problems:
        raise ConfigError(problems)
    return build(model_name, unique_id, block)


def build(model_name: str, unique_id: str, block: Mapping[str, Any]) -> SyncConfig:
    """Build the typed config from an already validated block, filling defaults."""
    obj = block["object"]
    match = block.get("match")
    options = dict(OBJECT_OPTIONS.get(obj, {}))
    options.update({k: block[k] for k in options if k in block})
    return SyncConfig(
        model=model_name,
        unique_id=unique_id,
        object=obj,
        mode=block["mode"],
        primary_key=block["primary_key"],
        match=Match(field=match["field"], column=match["column"]) if match else None,
        fields=tuple(FieldMapping(path, column) for path, column in (block.get("fields") or {}).items()),
        references=tuple(
            Reference(target=target, column=ref["column"], by=ref.get("by"), sync=ref.get("sync"))
            for target, ref in (block.get("references") or {}).items()
        ),
        on_null=block.get("on_null", "skip"),
        delete=block.get("delete", "nothing"),
        options=options,
        account=_account(block.get("account")),
    )


def _account(value: Any) -> Account | None:
    if isinstance(value, str):
        return Account(id=value)
    if isinstance(value, Mapping):
        return Account(column=value["column"])
    return None


@dataclass(frozen=True)
class ModelBlock:
    """One annotated dbt model: its names, its `stripe_sync` block and (when known) its columns."""

    model: str
    unique_id: str
    block: Any
    columns: Collection[str] | None = None


def load_all(models: Iterable[ModelBlock]) -> list[SyncConfig]:
    """Validate and build every sync of a project at once.

    `sync:` references are checked against the other blocks (including the object each one syncs);
    raises one `ConfigError` with the problems of every model.
    """
    entries = list(models)
    known = {m.model: _object_of(m.block) for m in entries}
    problems: list[ConfigProblem] = []
    configs: list[SyncConfig] = []
    for entry in entries:
        found = check_block(entry.model, entry.block, columns=entry.columns, known_syncs=known)
        problems += found
        if not found:
            configs.append(build(entry.model, entry.unique_id, entry.block))
    if problems:
        raise ConfigError(problems)
    return configs


def _object_of(block: Any) -> str:
    """The object a block syncs, or "" when unknown (a falsy object skips the kind check of `sync:`)."""
    value = block.get("object") if isinstance(block, Mapping) else None
    return value if isinstance(value, str) else ""


def block_of(node: Mapping[str, Any]) -> Any | None:
    """The `stripe_sync` block of a manifest node: `config.meta` (dbt >= 1.10 style) or top-level `meta`."""
    config = node.get("config")
    for meta in (config.get("meta") if isinstance(config, Mapping) else None, node.get("meta")):
        if isinstance(meta, Mapping) and META_KEY in meta:
            return meta[META_KEY]
    return None
