"""Pre-send checks of a mapped row: what Stripe would refuse, found before any API call.

`payload.coerce` already fits each value to its parameter's type (integers, booleans, enums, lists);
these checks cover the rules a type cannot express: email shape, metadata limits, currency codes,
non-negative amounts, string lengths and characters. A row with a problem is rejected by the planner
with every problem named, so it makes no API call and is retried once its data changes.

Limits are only the ones with a source: the SDK's own parameter docstrings (`stripe.params`), Stripe's
metadata rules, Stripe's changelog, and Stripe's generic 5,000-character limit on string parameters.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from dbt_stripe_sync.payload import CLEAR, field_spec
from dbt_stripe_sync.tagging import RESERVED_KEYS, TAG_KEY

__all__ = ["ISO_4217", "quick_rule", "row_problems", "valid_email", "valid_emails"]

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
STRING_MAX = 5000  # Stripe's default maximum length of a string parameter
EMAIL_MAX = 512  # SDK docstring: "This may be up to *512 characters*"

# Shorter (or longer) limits, by object ("*" = any) and path with list indexes as `[]`, matched on the
# path's end. Sources: the SDK's parameter docstrings unless noted.
_LENGTH_LIMITS: tuple[tuple[str, str, int], ...] = (
    ("*", "statement_descriptor", 22),
    ("*", "custom_fields[].name", 40),
    ("*", "custom_fields[].value", 140),
    ("*", "marketing_features[].name", 80),
    ("*", "lookup_key", 200),
    ("customer", "business_name", 150),
    ("customer", "individual_name", 150),
    ("customer", "description", 350),  # Stripe changelog 2018-10-31: customer descriptions <= 350
    ("product", "description", 40000),  # Stripe's API spec: a product description may be long
)
# Characters Stripe refuses in a statement descriptor (SDK docstring).
_DESCRIPTOR_FORBIDDEN = frozenset("<>\\\"'")

# Amount-like fields that may be negative (a credit), per the SDK docstrings; every other amount or
# quantity must be >= 0.
_SIGNED_AMOUNTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("invoice_item", "amount"),
        ("invoice_item", "unit_amount_decimal"),
        ("subscription", "add_invoice_items[].price_data.unit_amount"),
        ("subscription", "add_invoice_items[].price_data.unit_amount_decimal"),
    }
)
_AMOUNT_NAME = re.compile(r"^(?:\w+_)?amount(?:_\w+)?$|^quantity(?:_decimal)?$")
_CURRENCY_NAMES = frozenset({"currency", "default_currency"})
_CURRENCY_OPTION = re.compile(r"(?:^|\.)currency_options\.([^.\[\]]+)")

# ISO 4217 alphabetic codes (list one, current), plus recently withdrawn codes that Stripe still
# knows; Stripe takes them in lower case.
_ISO_4217_TEXT = """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn bwp
    byn bzd cad cdf che chf chw clf clp cny cop cou crc cuc cup cve czk djf dkk dop dzd egp ern etb
    eur fjd fkp gbp gel ghs gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd jod jpy
    kes kgs khr kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur
    mvr mwk mxn mxv myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub
    rwf sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd
    twd tzs uah ugx usd usn uyi uyu uyw uzs ved ves vnd vuv wst xaf xag xau xba xbb xbc xbd xcd xcg
    xdr xof xpd xpf xpt xsu xts xua xxx yer zar zmw zwg zwl
    hrk mro std vef byr ltl lvl eek
"""
ISO_4217: frozenset[str] = frozenset(_ISO_4217_TEXT.split())

_INDEX = re.compile(r"\[\d+\]")
_METADATA = re.compile(r"(?:^|\.)metadata\.")
# name@domain.tld: no spaces, one @, dotted domain labels, a top-level domain of 2+ letters (or punycode).
_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[^\s@\"(),:;<>\[\]\\]+(?<!\.)"
    r"@(?:(?!-)[^\s@.\"(),:;<>\[\]\\_]+(?<!-)\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)$"
)
# _EMAIL without its anchors and its no-`..` look-ahead, for many addresses joined by newlines (no part
# of it matches a newline, so each line must be one whole address): valid_emails
_ADDRESS = (
    r"(?!\.)[^\s@\"(),:;<>\[\]\\]+(?<!\.)"
    r"@(?:(?!-)[^\s@.\"(),:;<>\[\]\\_]+(?<!-)\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)"
)
_EMAIL_LINES = re.compile(f"{_ADDRESS}(?:\n{_ADDRESS})*")


def row_problems(object_name: str, flat: Mapping[str, Any], *, creating: bool) -> list[str]:
    """What Stripe would refuse in this flat payload, one line per problem naming the field and the fix.

    `creating`: the tool adds its own metadata tag (`dbt_stripe_sync`) to an object it creates, so the
    tag counts towards the 50-key limit there; on an update Stripe judges the merged metadata.

    Everything that depends only on the field path (is it metadata, which length limit, is it an email,
    a currency, a non-negative amount) is worked out once per (object, path) by `path_rule` and kept
    (`_rules_of`); per row only the value is checked, and a string within a plain path's length limit
    (most values) costs one look-up and two tests.
    """
    problems: list[str] = []
    metadata: dict[str, list[str]] = {}  # metadata map path -> keys set by this row
    kept = _rules_of(object_name)
    rules, plain, meta, email = kept.rules, kept.plain, kept.meta, kept.email
    for top, whole in flat.items():
        kind = type(whole)
        if kind is str:  # most values: a string whose path needs only a length and NUL check
            limit = plain.get(top)
            if limit is not None:
                if len(whole) <= limit and "\x00" not in whole:
                    continue
            elif top in email:
                if len(whole) <= EMAIL_MAX and "\x00" not in whole and _EMAIL.match(whole):
                    continue
            else:
                where = meta.get(top)
                if where is not None and len(whole) <= METADATA_VALUE_MAX and "\x00" not in whole:
                    if whole:  # a cleared key ("") does not count
                        metadata.setdefault(where[0], []).append(where[1])
                    continue
            leaves: Any = ((top, whole),)
        elif kind is list and _plain_strings(kept, object_name, top, whole):
            continue  # a list of strings (preferred_locales) within its element's limits
        else:  # objects and lists from JSON columns are opened up
            leaves = ((top, whole),) if kind in _SCALARS else _walk(top, whole)
        for path, value in leaves:
            if value is None or value == CLEAR:
                continue
            rule = rules.get(path) or _rule(kept, object_name, path)
            if rule.metadata is not None:
                prefix, key = rule.metadata
                metadata.setdefault(prefix, []).append(key)
                if rule.path_problems:
                    problems += rule.path_problems
                if not (isinstance(value, str) and len(value) <= METADATA_VALUE_MAX and "\x00" not in value):
                    problems += _metadata_value_problems(path, value)
                continue
            if isinstance(value, str):
                if rule.plain_string:
                    if len(value) > rule.length_limit or "\x00" in value:
                        problems += _string_problems(rule, path, value)
                else:
                    problems += _string_problems(rule, path, value)
            if rule.currency:
                problems += _currency_problems(path, value)
            if rule.path_problems:
                problems += rule.path_problems  # a currency_options key that is not a currency
            if rule.non_negative:
                problems += _amount_problems(path, value)
    for prefix, keys in metadata.items():
        # at most len(keys) + 1 keys with the tag: only a map near the limit, or naming the tag, is counted
        if len(keys) >= METADATA_MAX_KEYS or any(k in keys for k in RESERVED_KEYS):
            problems += _metadata_count_problems(prefix, keys, tagged=prefix == "metadata", creating=creating)
    return list(dict.fromkeys(problems)) if problems else problems  # one line per problem


class _Kept:
    """The path rules of one object, and the quick answers they give for a string value."""

    __slots__ = ("email", "meta", "plain", "rules")

    def __init__(self) -> None:
        self.rules: dict[str, PathRule] = {}
        self.plain: dict[str, int] = {}  # path -> a length within which a string has no problem
        self.meta: dict[str, tuple[str, str]] = {}  # the same for a metadata entry: (map path, key)
        self.email: set[str] = set()  # email paths with no other check: a valid address passes


_RULES: dict[str, _Kept] = {}
_RULES_MAX = 16384  # paths remembered per object (JSON columns can carry arbitrary keys)


def _rules_of(object_name: str) -> _Kept:
    kept = _RULES.get(object_name)
    if kept is None:
        kept = _RULES[object_name] = _Kept()
    return kept


def _rule(kept: _Kept, object_name: str, path: str) -> PathRule:
    rule = path_rule(object_name, path)
    if len(kept.rules) < _RULES_MAX:
        kept.rules[path] = rule
        if rule.quick_length and rule.metadata is None:
            kept.plain[path] = rule.quick_length
        elif rule.quick_length and rule.metadata is not None and rule.metadata[1] != TAG_KEY:
            kept.meta[path] = rule.metadata  # the reserved tag key is never quick: its row is counted
        elif (
            rule.email
            and rule.length_limit == EMAIL_MAX
            and not (rule.descriptor or rule.currency or rule.non_negative or rule.path_problems)
        ):
            kept.email.add(path)
    return rule


class QuickRule(NamedTuple):
    """How `row_problems` passes a value at one path on sight, in its first test of each entry
    (chunk_mapping.py checks a chunk's columns this way)."""

    # a str of at most `limit` characters with no NUL has no problem when `kind` is "string"; is a
    # valid address too when "email"; for "metadata", its key also counts towards its map's 50 keys
    # (a cleared "" does not). None: a str value there needs `row_problems`
    kind: str | None
    limit: int
    item_limit: int  # a list of such strings, each at most this long (0: a list needs `row_problems`)


def quick_rule(object_name: str, path: str) -> QuickRule:
    """The QuickRule of `path`, from the path rules `row_problems` keeps (`_rules_of`)."""
    kept = _rules_of(object_name)
    rule = kept.rules.get(path) or _rule(kept, object_name, path)
    first = f"{path}[0]"
    item = kept.rules.get(first) or _rule(kept, object_name, first)
    item_limit = item.quick_length if item.quick_length and item.metadata is None else 0
    if rule.quick_length and rule.metadata is None:
        return QuickRule("string", rule.quick_length, item_limit)
    if rule.quick_length and rule.metadata is not None and rule.metadata[1] != TAG_KEY:
        return QuickRule("metadata", rule.quick_length, item_limit)
    if (
        rule.email
        and rule.length_limit == EMAIL_MAX
        and not (rule.descriptor or rule.currency or rule.non_negative or rule.path_problems)
    ):
        return QuickRule("email", EMAIL_MAX, item_limit)
    return QuickRule(None, 0, item_limit)


def valid_email(text: str) -> bool:
    """The address test `row_problems` makes (its shape, not its length)."""
    return _EMAIL.match(text) is not None


def valid_emails(texts: list[str]) -> bool:
    """valid_email of every text (stops at the first that is not). Tried first on the texts joined by
    newlines, one regex call for all (none may hold a newline or `..`, which _EMAIL refuses); any
    doubt is settled text by text."""
    joined = "\n".join(texts)
    if ".." not in joined and joined.count("\n") == len(texts) - 1 and _EMAIL_LINES.fullmatch(joined):
        return True
    return all(map(_EMAIL.match, texts))


def _plain_strings(kept: _Kept, object_name: str, top: str, items: list[Any]) -> bool:
    """A list of strings that its element rule passes (the rule of `top[i]` depends on the path only
    through `top[]`, so `top[0]`'s stands for all). False: check it leaf by leaf."""
    if not items:
        return True
    first = f"{top}[0]"
    rule = kept.rules.get(first) or _rule(kept, object_name, first)
    limit = rule.quick_length
    if not limit or rule.metadata is not None:
        return False
    return all(type(item) is str and len(item) <= limit and "\x00" not in item for item in items)


@dataclass(frozen=True)
class PathRule:
    """The checks that apply to one field path of one object, decided once per path."""

    metadata: tuple[str, str] | None  # (metadata map path, key) for a metadata entry
    path_problems: tuple[str, ...]  # problems of the path itself (a metadata key, a currency option)
    length_limit: int
    email: bool
    descriptor: bool
    currency: bool
    non_negative: bool
    plain_string: bool  # only the length and NUL checks apply to a string value here
    # a string value no longer than this, with no NUL, has no problem at all here (0: always check)
    quick_length: int = 0


def path_rule(object_name: str, path: str) -> PathRule:
    """The rule of one path, worked out (row_problems keeps it per object and path: `_rules_of`)."""
    meta = _split_metadata(path)
    if meta is not None:
        key_problems = tuple(_metadata_key_problems(path, meta[1]))
        quick = 0 if key_problems else METADATA_VALUE_MAX
        return PathRule(meta, key_problems, METADATA_VALUE_MAX, False, False, False, False, True, quick)
    name = _leaf_name(path)
    option = _CURRENCY_OPTION.search(path)  # currency_options.<currency>...: the key is a currency
    option_problems = _currency_problems(path[: option.end()], option.group(1)) if option else []
    email = name == "email" or name.endswith("_email")
    descriptor = name == "statement_descriptor"
    currency = name in _CURRENCY_NAMES
    non_negative = _is_non_negative_amount(object_name, path, name)
    limit = _length_limit(object_name, path)
    quick = not (email or descriptor or currency or non_negative or option_problems)
    return PathRule(
        metadata=None,
        path_problems=tuple(option_problems),
        length_limit=limit,
        email=email,
        descriptor=descriptor,
        currency=currency,
        non_negative=non_negative,
        plain_string=not (email or descriptor),
        quick_length=limit if quick else 0,
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})


# ---- walking the payload -------------------------------------------------------------------------
def _walk(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(path, scalar) pairs: `custom_fields: [{"name": ...}]` is checked as `custom_fields[0].name`."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _walk(f"{path}.{key}", sub)
    elif isinstance(value, (list, tuple)):
        for i, sub in enumerate(value):
            yield from _walk(f"{path}[{i}]", sub)
    else:
        yield path, value


def _split_metadata(path: str) -> tuple[str, str] | None:
    """`metadata.plan` -> ("metadata", "plan"); `items[0].metadata.a.b` -> ("items[0].metadata", "a.b")."""
    m = _METADATA.search(path)
    return (path[: m.end() - 1], path[m.end() :]) if m else None


def _generic(path: str) -> str:
    return _INDEX.sub("[]", path)


def _leaf_name(path: str) -> str:
    return _generic(path).rsplit(".", 1)[-1].replace("[]", "")


# ---- metadata ---------------------------------------------------------------------------------------
def _metadata_key_problems(path: str, key: str) -> list[str]:
    out: list[str] = []
    if len(key) > METADATA_KEY_MAX:
        out.append(
            f"{path}: metadata key is {len(key)} characters; Stripe allows {METADATA_KEY_MAX}, "
            "use a shorter key"
        )
    if "[" in key or "]" in key:
        out.append(f"{path}: metadata keys cannot contain '[' or ']'; rename the key")
    if "\x00" in key:
        out.append(f"{path}: metadata key contains a NUL character; remove it")
    return out


def _metadata_value_problems(path: str, value: Any) -> list[str]:
    text = value if isinstance(value, str) else str(value)
    if len(text) <= METADATA_VALUE_MAX and "\x00" not in text:
        return _NONE
    out: list[str] = []
    if len(text) > METADATA_VALUE_MAX:
        out.append(
            f"{path}: value is {len(text)} characters; Stripe allows {METADATA_VALUE_MAX} in a metadata "
            "value — shorten it in the model or split it over several keys"
        )
    if "\x00" in text:
        out.append(f"{path}: value contains a NUL character (\\x00), which cannot be stored; remove it")
    return out


_NONE: list[str] = []  # shared empty result of the hot paths (only ever read)


def _metadata_count_problems(prefix: str, keys: list[str], *, tagged: bool, creating: bool) -> list[str]:
    """`tagged`: the object's own metadata, where the tool keeps its tag (written when creating)."""
    out: list[str] = []
    for reserved in RESERVED_KEYS if tagged else ():
        if reserved in keys:
            out.append(
                f"{prefix}.{reserved}: this metadata key is reserved for the tool's own tag; map the column "
                "to another key"
            )
    with_tag = tagged and creating
    count = len(set(keys) | ({TAG_KEY} if with_tag else set()))
    if count > METADATA_MAX_KEYS:
        mine = f" (including the tool's own '{TAG_KEY}' tag)" if with_tag else ""
        out.append(
            f"{prefix}: {count} metadata keys{mine}; Stripe allows {METADATA_MAX_KEYS} — drop keys or "
            "pack several values into one"
        )
    return out


# ---- other fields -----------------------------------------------------------------------------------
def _string_problems(rule: PathRule, path: str, value: str) -> list[str]:
    length = len(value)
    if length <= rule.length_limit and "\x00" not in value and not rule.email and not rule.descriptor:
        return _NONE
    out: list[str] = []
    if length > rule.length_limit:
        limit = rule.length_limit
        out.append(f"{path}: {length} characters; Stripe allows {limit} — shorten it in the model")
    if "\x00" in value:
        out.append(f"{path}: contains a NUL character (\\x00), which cannot be stored or sent; remove it")
    if rule.email and length <= EMAIL_MAX and not _EMAIL.match(value):
        out.append(f"{path}: {_show(value)} is not a valid email address; expected name@domain.tld")
    if rule.descriptor:
        bad = sorted(set(value) & _DESCRIPTOR_FORBIDDEN)
        if bad:
            shown = " ".join(bad)
            out.append(
                f"{path}: Stripe refuses the characters {shown} in a statement descriptor; remove them"
            )
    return out


def _length_limit(object_name: str, path: str) -> int:
    generic = _generic(path)
    if _leaf_name(path) == "email" or generic.endswith("_email"):
        return EMAIL_MAX
    for obj, suffix, limit in _LENGTH_LIMITS:
        if obj in ("*", object_name) and (generic == suffix or generic.endswith("." + suffix)):
            return limit
    return STRING_MAX


def _currency_problems(path: str, value: Any) -> list[str]:
    text = str(value)
    if text.lower() in ISO_4217:
        return []
    close = difflib.get_close_matches(text.lower(), sorted(ISO_4217), n=1, cutoff=0.6)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    return [
        f"{path}: {_show(text)} is not an ISO 4217 currency code; use a 3-letter code such as 'usd'{hint}"
    ]


def _is_non_negative_amount(object_name: str, path: str, name: str) -> bool:
    generic = _generic(path)
    if (object_name, generic) in _SIGNED_AMOUNTS:
        return False
    if not (_AMOUNT_NAME.match(name) or ".custom_unit_amount." in f".{generic}"):
        return False
    spec = field_spec(object_name, path)
    return spec is not None and spec.kind in ("integer", "number")


def _amount_problems(path: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return []
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return []  # not a number at all: payload.coerce reports that
    if number < 0:
        return [
            f"{path}: {value} is negative; Stripe takes an amount or quantity >= 0 (in the currency's "
            "smallest unit, e.g. cents)"
        ]
    return []


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")
