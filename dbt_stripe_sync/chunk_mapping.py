"""A chunk of diff rows mapped to payloads column by column, and the rows `row_problems` need not see.

`planner.map_row` maps one row at a time, and `row_checks.row_problems` then walks its payload again;
per row that is one dict look-up, type test and branch per field, twice (~5 us of a 12-field row).
Here each field's values are converted for the whole chunk at once, with the field's converter
(`payload.converter`) decided once, and checked the way `row_problems` passes a value on sight
(`row_checks.quick_rule`): a string within its path's limit, a valid email, a list of such strings.
A row whose every entry passes is known to have no problem; any other row is checked by
`row_problems` as before. So the outcome is `map_row`'s and `row_problems`' exactly (same payload,
same insertion order, same problems and reasons), which tests/unit/test_chunk_mapping.py checks
against them row by row over varied configs and values.

A value a converter refuses (a CoercionError) sends the whole chunk back to `map_row`, which names the
column, the field and the value. References are left to `planner.add_references` per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.payload import _EXACT_TYPES, CLEAR, CoercionError, _copier, to_string
from dbt_stripe_sync.planner import MappedFields, _fields_of
from dbt_stripe_sync.row_checks import (
    EMAIL_MAX,
    METADATA_MAX_KEYS,
    QuickRule,
    quick_rule,
    valid_email,
    valid_emails,
)
from dbt_stripe_sync.row_chunk import RowChunk

_ABSENT: Any = object()  # a null value under on_null: skip (the field is left out of the payload)
_NULL = type(None)
_TEXTS = frozenset({str, _NULL})


def map_chunk(config: SyncConfig, rows: Sequence[DiffRow]) -> list[MappedFields] | None:
    """Per row: (the payload of its fields, [], True when row_problems would find nothing in the payload
    `_plan_row` checks), as map_row + row_problems give it; None: map these rows one by one."""
    mapped = map_columns(config, rows)
    if mapped is None:
        return None
    return [(flat, [], ok) for flat, ok in zip(mapped.flats(range(len(rows))), mapped.clean, strict=True)]


class MappedColumns:
    """A chunk's fields mapped column by column: each row's payload is made only when asked (`flats`),
    so rows that need no payload (a plain create `plan` only counts) never get one."""

    __slots__ = ("clean", "clear", "columns", "nulls_of", "paths", "shared")

    def __init__(
        self, paths: list[str], columns: list[list[Any]], nulls_of: list[list[int]], clear: bool
    ) -> None:
        self.paths, self.columns, self.nulls_of, self.clear = paths, columns, nulls_of, clear
        self.clean: list[bool] = []  # per row: row_problems is known to find nothing (map_columns)
        # per field: its rows may share one list or dict (one per distinct text), copied into a payload
        self.shared: list[bool] = [False] * len(paths)

    def flats(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        """map_row's payload of the fields of each of these rows (indices into the chunk)."""
        paths = self.paths
        if not paths:
            return [{} for _ in rows]
        every = len(rows) == len(self.columns[0])
        columns = self.columns if every else [[column[i] for i in rows] for column in self.columns]
        if any(self.shared):  # a payload shares no list or dict with another (as map_row's)
            columns = [_copies(c) if shared else c for c, shared in zip(columns, self.shared, strict=True)]
        flats = [dict(zip(paths, vs, strict=True)) for vs in zip(*columns, strict=True)]
        if not self.clear:  # a null leaves its field out (the other fields keep their order)
            at = None if every else {r: j for j, r in enumerate(rows)}
            for path, nulls in zip(paths, self.nulls_of, strict=True):
                for i in nulls:
                    j = i if at is None else at.get(i)
                    if j is not None:
                        del flats[j][path]
        return flats


def map_columns(config: SyncConfig, rows: Sequence[DiffRow]) -> MappedColumns | None:
    """The chunk's fields converted column by column, and per row whether row_problems would find
    nothing (`clean`); None: map these rows one by one (a value a converter refuses)."""
    fields = _fields_of(config)
    clear = config.on_null == "clear"
    if not fields:
        mapped = MappedColumns([], [], [], clear)
        mapped.clean = [False] * len(rows)
        return mapped
    if not rows:
        return MappedColumns(
            [path for path, _, _ in fields], [[] for _ in fields], [[] for _ in fields], clear
        )
    columns: list[list[Any]] = []
    nulls_of: list[list[int]] = []  # per field: the rows whose value is None
    texts: list[bool] = []  # per field: every value in the payload is a str
    shared: list[bool] = []
    for values, (_, _, convert) in zip(_columns(rows, [c for _, c, _ in fields]), fields, strict=True):
        kinds = set(map(type, values))
        nulls = [i for i, v in enumerate(values) if v is None] if _NULL in kinds else []
        try:
            columns.append(_converted(values, kinds, convert, CLEAR if clear else _ABSENT, nulls))
        except CoercionError:
            return None  # map_row names the value
        nulls_of.append(nulls)
        texts.append(convert is to_string)  # stable_string's result is always a str
        shared.append(convert is not to_string and kinds <= _TEXTS)  # converted once per distinct text
    paths = [path for path, _, _ in fields]
    mapped = MappedColumns(paths, columns, nulls_of, clear)
    mapped.shared = shared
    mapped.clean = _clean_rows(config, rows, paths, columns, nulls_of, texts, clear)
    return mapped


def _columns(rows: Sequence[DiffRow], wanted: list[str]) -> list[list[Any]]:
    """The values of each wanted column, row by row (None where a row has no such column)."""
    if isinstance(rows, RowChunk):  # the chunk's own columns
        return [list(rows.column(column)) for column in wanted]
    pick = itemgetter(*wanted) if len(wanted) > 1 else (lambda values: (values[wanted[0]],))
    try:
        return [list(values) for values in zip(*[pick(row.values) for row in rows], strict=True)]
    except KeyError:  # rows not read by the diff (tests, a Python-side caller): a missing column is null
        return [[row.values.get(column) for row in rows] for column in wanted]


def _converted(
    values: list[Any], kinds: set[type], convert: Callable[[Any], Any], null: Any, nulls: list[int]
) -> list[Any]:
    """map_row's value of each row for one field (`null` where the row's value is None); `kinds`: the
    types of the values."""
    if convert is to_string:
        kinds = kinds - {_NULL}
        if kinds <= {str}:  # text for a text field: passed through
            out = values
        elif len(kinds) == 1 and (exact := _EXACT_TYPES.get(next(iter(kinds)))) is not None:
            # one type with one text form (a date, an int, a Decimal): what stable_string gives it
            out = [v if v is None else exact(v) for v in values] if nulls else list(map(exact, values))
        else:
            out = [v if v is None else to_string(v) for v in values]
    elif kinds <= _TEXTS:  # texts to parse (a JSON list, a number, a flag): each distinct one converted
        # once, in the order first seen; rows with one text share its result (flats copies it)
        known = {v: convert(v) for v in dict.fromkeys(values) if v is not None}
        out = [known.get(v) for v in values] if nulls else list(map(known.__getitem__, values))
    else:
        out = [v if v is None else convert(v) for v in values] if nulls else list(map(convert, values))
    for i in nulls:
        out[i] = null
    return out


def _copies(values: list[Any]) -> list[Any]:
    """The values, each list or dict among them copied (payload._copier)."""
    out = []
    for value in values:
        copy_of = _copier(value)
        out.append(value if copy_of is None else copy_of(value))
    return out


def _clean_rows(
    config: SyncConfig,
    rows: Sequence[DiffRow],
    paths: list[str],
    columns: list[list[Any]],
    nulls_of: list[list[int]],
    texts: list[bool],
    clear: bool,
) -> list[bool]:
    """Whether row_problems would find nothing in each row's payload, judged without it: every entry
    passes the test row_problems makes first. False: row_problems decides (it may still find nothing)."""
    count = len(rows)
    rules = [quick_rule(config.object, p) for p in paths]
    if config.references or sum(r.kind == "metadata" for r in rules) >= METADATA_MAX_KEYS:
        return [False] * count  # entries these columns do not hold, or a metadata map to count
    bad = bytearray(count)
    for values, rule, nulls, text in zip(columns, rules, nulls_of, texts, strict=True):
        for i in _failing(values, rule, bool(nulls) and not clear, text):
            bad[i] = 1
    match = config.match
    if match is not None and match.field == "email" and match.column:
        # `_plan_row` checks the match email too, where the row has no `email` field of its own
        own = paths.index("email") if "email" in paths else None
        without = range(count) if own is None else () if clear else nulls_of[own]
        email_rule = quick_rule(config.object, "email")
        column = match.column
        value_of = _value_of(rows, column)
        for i in without:
            value = value_of(i)
            if value is not None and not _passes(str(value), email_rule):
                bad[i] = 1
    return [not b for b in bad]


def _value_of(rows: Sequence[DiffRow], column: str) -> Callable[[int], Any]:
    """The i-th row's value of `column` (None where it has none)."""
    if isinstance(rows, RowChunk):
        return rows.column(column).__getitem__
    return lambda i: rows[i].values.get(column)


def _failing(values: list[Any], rule: QuickRule, gaps: bool, text: bool) -> list[int]:
    """Rows whose value (in the payload) row_problems would not pass on sight; `gaps`: some are _ABSENT;
    `text`: every other value is a str."""
    kind, limit, item_limit = rule
    present = [v for v in values if v is not _ABSENT] if gaps else values
    kinds = {str} if text else set(map(type, present))
    if kinds <= {str} and kind is not None:
        # the whole column at once: every value within the limit, no NUL (and valid addresses)
        emails = kind != "email" or (limit == EMAIL_MAX and valid_emails(present))
        if _plain_texts(present, limit) and emails:
            return []
    elif kinds == {list} and item_limit:
        items = [item for v in present for item in v]
        if set(map(type, items)) <= {str} and _plain_texts(items, item_limit):
            return []  # every list a list of plain strings (preferred_locales)
    return [i for i, v in enumerate(values) if v is not _ABSENT and not _passes_value(v, rule)]


def _plain_texts(texts: list[str], limit: int) -> bool:
    return max(map(len, texts), default=0) <= limit and "\x00" not in "".join(texts)


def _passes_value(value: Any, rule: QuickRule) -> bool:
    kind = type(value)
    if kind is str:
        return _passes(value, rule)
    if kind is list:
        limit = rule.item_limit
        return bool(limit) and all(type(v) is str and len(v) <= limit and "\x00" not in v for v in value)
    return False


def _passes(text: str, rule: QuickRule) -> bool:
    if rule.kind is None or len(text) > rule.limit or "\x00" in text:
        return False
    return rule.kind != "email" or (rule.limit == EMAIL_MAX and valid_email(text))
