"""Stripe's search query language, the subset a sync needs.

Clauses: `field:'v'` (exact, case-insensitive), `field~'v'` (substring, >= 3 chars), numeric
`field>N` / `>=` / `<` / `<=`, `metadata['k']:'v'`, `field:null`, negation `-field:'v'`,
joined by `AND` or by `OR` (not both, at most 10 clauses, as in Stripe).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.emulator.errors import invalid
from dbt_stripe_sync.emulator.listing import check_limit

SEARCH_FIELDS: dict[str, dict[str, str]] = {
    "customer": {"created": "int", "email": "str", "name": "str", "phone": "str", "metadata": "meta"},
    "product": {
        "active": "bool",
        "created": "int",
        "description": "str",
        "name": "str",
        "shippable": "bool",
        "url": "str",
        "metadata": "meta",
    },
    "price": {
        "active": "bool",
        "created": "int",
        "currency": "str",
        "lookup_key": "str",
        "product": "str",
        "type": "str",
        "metadata": "meta",
    },
    "subscription": {"created": "int", "status": "str", "metadata": "meta"},
    "invoice": {
        "created": "int",
        "currency": "str",
        "customer": "str",
        "number": "str",
        "receipt_number": "str",
        "status": "str",
        "subscription": "str",
        "total": "int",
        "metadata": "meta",
    },
}

RESOURCE_PLURAL = {
    "customer": "customers",
    "product": "products",
    "price": "prices",
    "subscription": "subscriptions",
    "invoice": "invoices",
}

MAX_CLAUSES = 10

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
        (?P<field>[a-z_]+)(?:\[(?P<q>['"])(?P<key>.*?)(?P=q)\])?
        \s*(?P<op>>=|<=|:|~|>|<)\s*
        (?:(?P<vq>['"])(?P<sval>(?:\\.|(?!(?P=vq)).)*)(?P=vq)|(?P<bare>[^\s'"]+))
        \s*""",
    re.VERBOSE,
)
_JOINER = re.compile(r"\s*(AND|OR)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    field: str
    key: str | None
    op: str
    value: str | None  # None means `null`
    negated: bool


def parse_query(query: str, type_name: str) -> tuple[list[Clause], str]:
    """Parse `query` into clauses and the joiner ("AND"/"OR"); raise Stripe's 400 on bad syntax."""
    if not query.strip():
        raise invalid("Missing required param: query.", param="query", code="parameter_missing")
    clauses: list[Clause] = []
    joiners: set[str] = set()
    pos = 0
    while True:
        m = _CLAUSE.match(query, pos)
        if not m or m.end() == pos:
            raise _syntax_error(query, pos)
        clauses.append(_clause(m, type_name))
        pos = m.end()
        if pos >= len(query):
            break
        j = _JOINER.match(query, pos)
        if not j:
            raise _syntax_error(query, pos)
        joiners.add(j.group(1).upper())
        pos = j.end()
    if len(joiners) > 1:
        raise invalid(
            "The query contains both `AND` and `OR`; a query may use only one of them.", param="query"
        )
    if len(clauses) > MAX_CLAUSES:
        raise invalid(f"The query has more than {MAX_CLAUSES} clauses.", param="query")
    return clauses, (joiners.pop() if joiners else "AND")


def _syntax_error(query: str, pos: int) -> Exception:
    return invalid(
        "We were unable to parse your search query. Try using the format `metadata['key']:'value'` to "
        f"query for metadata or `key:'value'` to query for other fields (near position {pos} of {query!r}).",
        param="query",
    )


def _clause(m: re.Match[str], type_name: str) -> Clause:
    field, key, op = m.group("field"), m.group("key"), m.group("op")
    fields = SEARCH_FIELDS[type_name]
    if field not in fields or (key is None) != (fields[field] != "meta"):
        raise invalid(
            f"Field `{field}` is an unsupported search field for resource `{RESOURCE_PLURAL[type_name]}`. "
            f"See http://stripe.com/docs/search#query-fields-for-{RESOURCE_PLURAL[type_name]} for a list of "
            "supported fields.",
            param="query",
        )
    if m.group("vq") is not None:
        value: str | None = re.sub(r"\\(.)", r"\1", m.group("sval"))
    else:
        bare = m.group("bare")
        value = None if bare == "null" else bare
        if value is not None and fields[field] != "int":
            raise invalid(f"String values in a search query must be quoted: {bare}", param="query")
    if op in (">", "<", ">=", "<=") and fields[field] != "int":
        raise invalid(f"Field `{field}` does not support the `{op}` operator.", param="query")
    if op == "~" and (value is None or len(value) < 3):
        raise invalid("Substring matching (`~`) requires at least 3 characters.", param="query")
    return Clause(field, key, op, value, m.group("neg") is not None)


def _matches(obj: dict[str, Any], clause: Clause, kind: str) -> bool:
    actual = (obj.get("metadata") or {}).get(clause.key or "") if kind == "meta" else obj.get(clause.field)
    if isinstance(actual, dict):  # expanded reference
        actual = actual.get("id")
    if clause.value is None:
        result = actual is None
    elif actual is None:
        result = False
    elif kind == "int":
        try:
            want = int(clause.value)
        except ValueError:
            raise invalid(f"Field `{clause.field}` expects a number.", param="query") from None
        result = {
            ":": actual == want,
            ">": actual > want,
            "<": actual < want,
            ">=": actual >= want,
            "<=": actual <= want,
            "~": False,
        }[clause.op]
    elif kind == "bool":
        result = str(actual).lower() == clause.value.lower()
    elif clause.op == "~":
        result = clause.value.lower() in str(actual).lower()
    else:
        result = str(actual).lower() == clause.value.lower()
    return result != clause.negated


def search(
    objects: list[dict[str, Any]],
    params: dict[str, Any],
    type_name: str,
    url: str,
    render: Callable[[dict[str, Any]], dict[str, Any]] = lambda o: o,
) -> dict[str, Any]:
    """A `search_result` page over `objects` (as the search index sees them, newest first)."""
    query = params.get("query")
    if query is None:
        raise invalid("Missing required param: query.", param="query", code="parameter_missing")
    clauses, joiner = parse_query(query, type_name)
    limit = check_limit(params)
    fields = SEARCH_FIELDS[type_name]
    combine = all if joiner == "AND" else any
    hits = [o for o in objects if combine(_matches(o, c, fields[c.field]) for c in clauses)]
    offset = _decode_page(params.get("page"))
    page = hits[offset : offset + limit]
    has_more = offset + limit < len(hits)
    result: dict[str, Any] = {
        "object": "search_result",
        "data": [render(o) for o in page],
        "has_more": has_more,
        "next_page": _encode_page(offset + limit) if has_more else None,
        "url": url,
    }
    if "total_count" in (params.get("expand") or []):
        result["total_count"] = len(hits)
    return result


def _encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(["emu", offset]).encode()).decode().rstrip("=")


def _decode_page(page: str | None) -> int:
    if not page:
        return 0
    try:
        padded = page + "=" * (-len(page) % 4)
        tag, offset = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if tag != "emu" or not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, TypeError, json.JSONDecodeError):
        raise invalid(f"Invalid page: {page}", param="page") from None
