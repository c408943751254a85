"""Per-object rules of the `stripe_sync` contract and the semantic checks built on them.

The shape of a block is checked by `schema.py`; these checks run on whatever parts of the block are
well-shaped, so one pass reports every problem. Field paths are checked against the Stripe SDK's own
parameter types through `stripe_catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync import stripe_catalog

from .errors import ConfigProblem, did_you_mean, key_path, quoted_list
from .model import MODES, OBJECTS


@dataclass(frozen=True)
class ObjectRules:
    """What a sync of one Stripe object may configure."""

    name: str
    match_fields: Mapping[str, tuple[str, ...]]  # mode -> allowed `match.field` values
    match_required: frozenset[str]  # modes in which a `match` block is required
    options: Mapping[str, Any]  # object option -> default


def _rules(name: str) -> ObjectRules:
    if name == "customer":
        # Customers have no user-chosen ID, so upserts find them by email; insert may match on email to
        # skip addresses that already exist.
        match = {"upsert": ("email",), "update": ("id", "email"), "insert": ("email",)}
        required = frozenset({"upsert", "update"})
    else:
        # Other objects match on their Stripe ID; objects the tool created are found through the ledger.
        match = {mode: ("id",) for mode in MODES}
        required = frozenset({"update"})
    return ObjectRules(name, match, required, OBJECT_OPTIONS.get(name, {}))


OBJECT_OPTIONS: dict[str, dict[str, Any]] = {
    "price": {"on_price_change": "replace", "move_subscriptions": False},
    "subscription": {"proration_behavior": "create_prorations"},
    "invoice": {"void_finalized": False},
}
OPTION_OWNER: dict[str, str] = {opt: obj for obj, opts in OBJECT_OPTIONS.items() for opt in opts}
RULES: dict[str, ObjectRules] = {name: _rules(name) for name in OBJECTS}

# Last segment of a Stripe ID-valued parameter -> the object whose ID it holds.
ID_REFERENCE_LEAVES: dict[str, str] = {
    "customer": "customer",
    "price": "price",
    "default_price": "price",
    "product": "product",
    "invoice": "invoice",
    "subscription": "subscription",
    "quote": "quote",
}
METADATA_KEY_MAX_CHARS = 40
METADATA_KEYS_MAX = 50
_INDEX = re.compile(r"\[\d*\]")


@dataclass(frozen=True)
class BlockView:
    """A possibly malformed block, with accessors that only return well-shaped parts."""

    model: str
    raw: Mapping[str, Any]
    columns: Collection[str] | None = None
    known_syncs: Collection[str] | Mapping[str, str] | None = None

    def choice(self, key: str, allowed: Collection[str]) -> str | None:
        value = self.raw.get(key)
        return value if isinstance(value, str) and value in allowed else None

    @property
    def object(self) -> str | None:
        return self.choice("object", OBJECTS)

    @property
    def mode(self) -> str | None:
        return self.choice("mode", MODES)

    def mapping(self, key: str) -> Mapping[Any, Any]:
        value = self.raw.get(key)
        return value if isinstance(value, Mapping) else {}

    def fields(self) -> list[tuple[str, Any]]:
        return [(p, c) for p, c in self.mapping("fields").items() if isinstance(p, str)]

    def references(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [
            (t, r)
            for t, r in self.mapping("references").items()
            if isinstance(t, str) and isinstance(r, Mapping)
        ]

    def problem(self, key: str, message: str, hint: str | None = None) -> ConfigProblem:
        return ConfigProblem(self.model, key, message, hint)


def check_semantics(view: BlockView) -> list[ConfigProblem]:
    """Every object-dependent problem of a block (the shape may be partly wrong)."""
    checks = (
        _check_match,
        _check_delete,
        _check_options,
        _check_non_string_keys,
        _check_field_paths,
        _check_metadata_count,
        _check_required_create_fields,
        _check_references,
        _check_duplicate_targets,
        _check_list_indexes,
        _check_something_to_sync,
        _check_columns,
        _check_account,
    )
    return [problem for check in checks for problem in check(view)]


# --- match, delete, options -------------------------------------------------------------------------


def _check_match(view: BlockView) -> Iterator[ConfigProblem]:
    obj, mode = view.object, view.mode
    if obj is None or mode is None:
        return
    rules = RULES[obj]
    allowed = rules.match_fields[mode]
    example = f"`match: {{field: {allowed[0]}, column: <column>}}`"
    match = view.raw.get("match")
    if match is None:
        if mode in rules.match_required:
            yield view.problem(
                key_path("match"), f"is required for a {obj} sync in {mode} mode", f"add {example}"
            )
        return
    field = match.get("field") if isinstance(match, Mapping) else None
    if isinstance(field, str) and field and field not in allowed:
        yield view.problem(
            key_path("match", "field"),
            f"a {obj} sync in {mode} mode cannot match on '{field}'",
            f"match on {' or '.join(repr(a) for a in allowed)}",
        )


def _check_delete(view: BlockView) -> Iterator[ConfigProblem]:
    mode = view.mode
    if view.raw.get("delete") == "delete" and mode is not None and mode != "upsert":
        yield view.problem(
            key_path("delete"),
            f"`delete: delete` only works in upsert mode (this sync is in {mode} mode)",
            "use `delete: nothing`, or `mode: upsert`",
        )


def _check_options(view: BlockView) -> Iterator[ConfigProblem]:
    obj = view.object
    if obj is None:
        return
    for option, owner in OPTION_OWNER.items():
        if option in view.raw and owner != obj:
            yield view.problem(
                key_path(option), f"applies only to {owner} syncs, not to a {obj} sync", "remove it"
            )


def _check_non_string_keys(view: BlockView) -> Iterator[ConfigProblem]:
    for section in ("fields", "references"):
        for key in view.mapping(section):
            if not isinstance(key, str):
                yield view.problem(
                    key_path(section, str(key)),
                    "a Stripe field path must be text",
                    "quote it in YAML if it looks like a number",
                )


# --- field paths ----------------------------------------------------------------------------------


def split_metadata(path: str) -> tuple[str, str] | None:
    """`metadata.plan` -> ("metadata", "plan"); `items[0].metadata.a.b` -> ("items[0].metadata", "a.b")."""
    match = re.search(r"(?:^|(?<=\.))metadata\.", path)
    return (path[: match.end() - 1], path[match.end() :]) if match else None


def _spec_for(obj: str, path: str) -> tuple[Any, Any]:
    """(create spec, update spec) of a path; a metadata entry resolves through its map."""
    meta = split_metadata(path)
    lookup = meta[0] if meta else path
    specs = []
    for op in ("create", "update"):
        spec = stripe_catalog.resolve_path(obj, op, lookup)
        if meta and (spec is None or spec.kind != "map"):
            spec = None
        specs.append(spec)
    return specs[0], specs[1]


def _candidates(obj: str) -> list[str]:
    paths: dict[str, None] = {}
    for op in ("create", "update"):
        paths.update(dict.fromkeys(stripe_catalog.field_paths(obj, op)))
    return list(paths)


def _check_field_paths(view: BlockView) -> Iterator[ConfigProblem]:
    obj = view.object
    if obj is None:
        return
    for path, _column in view.fields():
        yield from _check_one_path(view, obj, path)


def _check_one_path(view: BlockView, obj: str, path: str) -> Iterator[ConfigProblem]:
    key = key_path("fields", path)
    meta = split_metadata(path)
    create, update = _spec_for(obj, path)
    if create is None and update is None:
        yield view.problem(key, f"no such Stripe field on {obj}", _path_hint(obj, path))
        return
    if meta:
        yield from _check_metadata_key(view, key, meta[1])
    if view.mode == "insert" and create is None:
        yield view.problem(
            key,
            f"Stripe only accepts this field when updating a {obj}, and insert mode only creates",
            "use `mode: upsert` or `mode: update`, or drop the field",
        )


def _path_hint(obj: str, path: str) -> str | None:
    if path == "id":
        return f"a {obj}'s Stripe ID is matched, not written: use `match: {{field: id, column: <column>}}`"
    return did_you_mean(stripe_catalog.suggest(path, _candidates(obj)))


def _check_metadata_key(view: BlockView, key: str, meta_key: str) -> Iterator[ConfigProblem]:
    if not meta_key:
        yield view.problem(key, "metadata key is empty", "write `metadata.<key>`, e.g. `metadata.plan`")
    if len(meta_key) > METADATA_KEY_MAX_CHARS:
        yield view.problem(
            key,
            f"metadata key is {len(meta_key)} characters long; the limit is {METADATA_KEY_MAX_CHARS}",
            "use a shorter key",
        )
    if "[" in meta_key or "]" in meta_key:
        safe = meta_key.replace("[", "_").replace("]", "")
        yield view.problem(key, "metadata keys cannot contain '[' or ']'", f"use e.g. 'metadata.{safe}'")


def _check_metadata_count(view: BlockView) -> Iterator[ConfigProblem]:
    per_map: dict[str, int] = {}
    for path, _column in view.fields():
        meta = split_metadata(path)
        if meta:
            prefix = _INDEX.sub("[]", meta[0])
            per_map[prefix] = per_map.get(prefix, 0) + 1
    for prefix, count in per_map.items():
        # the tool's own tag (metadata[dbt_stripe_sync]) takes one of Stripe's 50 keys on top-level metadata
        limit = METADATA_KEYS_MAX - (1 if prefix == "metadata" else 0)
        if count > limit:
            yield view.problem(
                key_path("fields"),
                f"maps {count} keys into {prefix}; Stripe allows at most {METADATA_KEYS_MAX} metadata keys"
                + (", one of which dbt-stripe-sync uses to tag the objects it creates" if limit < 50 else ""),
                f"keep the {limit} that matter, or pack the rest into fewer keys",
            )


def _check_required_create_fields(view: BlockView) -> Iterator[ConfigProblem]:
    obj, mode = view.object, view.mode
    if obj is None or mode not in ("upsert", "insert"):
        return
    given = {_top(p) for p, _c in view.fields()} | {_top(t) for t, _r in view.references()}
    for name, spec in stripe_catalog.operation_params(obj, "create").items():
        if spec.required and name not in given:
            yield view.problem(
                key_path("fields"),
                f"a {obj} sync in {mode} mode creates {obj}s, and Stripe requires '{name}' to create one",
                f"map it to a column: `{name}: <column>`",
            )


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


# --- references -----------------------------------------------------------------------------------


def id_reference_paths(obj: str) -> list[str]:
    """Every Stripe ID-valued path of an object's create/update params, e.g. `items[].price`."""
    return [p for p in _candidates(obj) if referenced_object(obj, p) is not None]


def referenced_object(obj: str, path: str) -> str | None:
    """The Stripe object whose ID `path` holds (e.g. `items[0].price` -> "price"), else None."""
    leaf = re.split(r"[.\]]", path)[-1]
    target = ID_REFERENCE_LEAVES.get(leaf)
    if target is None:
        return None
    create, update = _spec_for(obj, path)
    spec = create or update
    return target if spec is not None and spec.kind == "string" else None


def _check_references(view: BlockView) -> Iterator[ConfigProblem]:
    obj = view.object
    for target, ref in view.references():
        key = key_path("references", target)
        if obj is not None:
            yield from _check_reference_target(view, obj, key, target, ref)
        sync = ref.get("sync")
        if isinstance(sync, str) and sync and view.known_syncs is not None:
            yield from _check_sync_name(view, obj, key, target, sync)


def _check_reference_target(
    view: BlockView, obj: str, key: str, target: str, ref: Mapping[str, Any]
) -> Iterator[ConfigProblem]:
    create, update = _spec_for(obj, target)
    if create is None and update is None:
        yield view.problem(key, f"no such Stripe field on {obj}", _path_hint(obj, target))
        return
    kind = referenced_object(obj, target)
    if kind is None:
        choices = sorted({_INDEX.sub("[0]", p) for p in id_reference_paths(obj)})
        hint = (
            f"ID fields of a {obj}: {quoted_list(choices)}"
            if choices
            else f"a {obj} has no ID fields to fill"
        )
        yield view.problem(key, "is not a Stripe ID field, so it cannot be filled by a reference", hint)
        return
    if view.mode == "insert" and create is None:
        yield view.problem(
            key,
            f"Stripe only accepts this field when updating a {obj}, and insert mode only creates",
            "use `mode: upsert` or `mode: update`, or drop the reference",
        )
    if ref.get("by") == "email" and kind != "customer":
        yield view.problem(
            key_path("references", target, "by"),
            f"`by: email` looks up customers, but '{target}' holds a {kind} ID",
            f"use `sync: <the model that syncs {kind}s>`",
        )


def _check_sync_name(
    view: BlockView, obj: str | None, key: str, target: str, sync: str
) -> Iterator[ConfigProblem]:
    known = view.known_syncs or ()
    sync_key = key_path("references", target, "sync")
    if sync not in known:
        close = stripe_catalog.suggest(sync, known)
        hint = did_you_mean(close) or "name a model that has its own `stripe_sync` block"
        yield view.problem(sync_key, f"no synced model named '{sync}'", hint)
        return
    if isinstance(known, Mapping) and obj is not None:
        needed = referenced_object(obj, target)
        synced = known.get(sync)
        if needed and synced and synced != needed:
            yield view.problem(
                sync_key,
                f"model '{sync}' syncs {synced}s, but '{target}' needs a {needed} ID",
                f"reference a model that syncs {needed}s",
            )


# --- duplicates, emptiness, columns ---------------------------------------------------------------


def _normalize(path: str) -> str:
    return re.sub(r"\[0*(\d+)\]", r"[\1]", path)


def _check_duplicate_targets(view: BlockView) -> Iterator[ConfigProblem]:
    seen: dict[str, str] = {}  # normalized Stripe path -> key of its first mapping
    entries = [(p, key_path("fields", p)) for p, _c in view.fields()]
    entries += [(t, key_path("references", t)) for t, _r in view.references()]
    for path, key in entries:
        norm = _normalize(path)
        for other, other_key in seen.items():
            if other == norm:
                yield view.problem(key, f"sets the same Stripe field as {other_key}", "map each field once")
            elif _nested(norm, other) or _nested(other, norm):
                outer, inner = (other, norm) if _nested(norm, other) else (norm, other)
                yield view.problem(
                    key,
                    f"overlaps {other_key}: '{outer}' would be sent whole and '{inner}' inside it",
                    "map either the whole field or its parts",
                )
        seen.setdefault(norm, key)


def _check_list_indexes(view: BlockView) -> Iterator[ConfigProblem]:
    """`items[1].price` without `items[0]` would send a list with a hole in it."""
    used: dict[str, set[int]] = {}
    where: dict[str, str] = {}  # list prefix -> key of a mapping that uses it
    entries = [(p, key_path("fields", p)) for p, _c in view.fields()]
    entries += [(t, key_path("references", t)) for t, _r in view.references()]
    for path, key in entries:
        for match in re.finditer(r"\[(\d+)\]", path):
            used.setdefault(path[: match.start()], set()).add(int(match.group(1)))
            where.setdefault(path[: match.start()], key)
    for prefix, indexes in used.items():
        missing = sorted(set(range(max(indexes) + 1)) - indexes)
        if missing:
            shown = ", ".join(f"{prefix}[{i}]" for i in missing)
            yield view.problem(
                where[prefix],
                f"maps {prefix}[{max(indexes)}] but nothing into {shown}; Stripe lists have no holes",
                f"number the entries of {prefix} from 0",
            )


def _nested(inner: str, outer: str) -> bool:
    return inner.startswith(outer) and inner[len(outer) : len(outer) + 1] in (".", "[")


def _check_something_to_sync(view: BlockView) -> Iterator[ConfigProblem]:
    fields, refs = view.raw.get("fields"), view.raw.get("references")
    if not fields and not refs and isinstance(fields, (Mapping, type(None))):
        yield view.problem(
            key_path("fields"),
            "nothing to sync",
            "map Stripe fields to columns (`fields: {name: full_name}`) and/or add `references`",
        )


def named_columns(view: BlockView) -> list[tuple[str, str]]:
    """(key, column) for every column the block names, in block order."""
    out: list[tuple[str, Any]] = [(key_path("primary_key"), view.raw.get("primary_key"))]
    out.append((key_path("match", "column"), view.mapping("match").get("column")))
    out += [(key_path("fields", p), c) for p, c in view.fields()]
    out += [(key_path("references", t, "column"), r.get("column")) for t, r in view.references()]
    account = view.raw.get("account")
    if isinstance(account, Mapping):
        out.append((key_path("account", "column"), account.get("column")))
    return [(k, c) for k, c in out if isinstance(c, str) and c]


def _check_account(view: BlockView) -> Iterator[ConfigProblem]:
    """A literal `account:` must look like a Stripe account ID (the column form is checked per row)."""
    from dbt_stripe_sync.connect import looks_like_account

    account = view.raw.get("account")
    if isinstance(account, str) and account and not looks_like_account(account):
        yield view.problem(
            key_path("account"),
            f"{account!r} is not a Stripe account ID",
            "write the connected account's ID (acct_ followed by letters and digits, as in the Dashboard), "
            "or `account: {column: <column>}` to read it per row",
        )


def _plain(column: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in column).strip("_").lower() or "column_1"


def _check_columns(view: BlockView) -> Iterator[ConfigProblem]:
    for key, column in named_columns(view):
        if '"' in column or "`" in column:  # dbt's adapter.quote does not escape quotes inside a name
            yield view.problem(
                key,
                f"column name {column!r} contains a quote character, which cannot be quoted safely",
                f"alias it in the model to a plain name, e.g. {_plain(column)}, and map that",
            )
    if view.columns is None:
        return
    columns = list(view.columns)
    # Case-insensitive: warehouses fold unquoted identifiers (Snowflake upper-cases, Postgres lower-cases).
    lowered = {c.lower() for c in columns}
    for key, column in named_columns(view):
        if column in columns or column.lower() in lowered:
            continue
        close = stripe_catalog.suggest(column, columns)
        if close:
            hint = did_you_mean(close)
        elif columns and len(columns) <= 12:
            hint = f"columns of {view.model}: {quoted_list(columns)}"
        else:
            hint = "add the column to the model (and to its schema.yml entry)"
        yield view.problem(key, f"no column '{column}' in model {view.model}", hint)
