"""Field catalog: which Stripe parameters exist per object and operation, derived from the SDK.

The installed `stripe` SDK ships generated TypedDicts for every request (`stripe.params`), e.g.
`CustomerCreateParams`. Their annotations are forward-reference strings such as
`NotRequired["Literal['']|CustomerCreateParamsAddress"]`; this module evaluates them lazily in the
defining module's namespace (so unrelated names like `StripeContext` never need resolving) and turns
them into immutable `ParamSpec` trees.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache, lru_cache
from types import MappingProxyType, UnionType
from typing import Any

import typing_extensions

from dbt_stripe_sync.stripe_sdk import load_stripe

__all__ = [
    "OBJECT_CLASS_PREFIX",
    "REQUEST_OPTION_KEYS",
    "ParamSpec",
    "field_paths",
    "operation_params",
    "params_class_name",
    "resolve_path",
    "suggest",
]

_EMPTY: Mapping[str, ParamSpec] = MappingProxyType({})


@dataclass(frozen=True)
class ParamSpec:
    """Shape of one Stripe request parameter.

    `items` is the element spec of an array and, for a map (`metadata`), the spec of its values.
    """

    kind: str  # string | integer | number | boolean | enum | object | array | map | any | union
    required: bool = False
    enum: tuple[str, ...] = ()
    emptyable: bool = False
    fields: Mapping[str, ParamSpec] = field(default_factory=lambda: _EMPTY, hash=False)
    items: ParamSpec | None = None
    alternatives: tuple[ParamSpec, ...] = ()


OBJECT_CLASS_PREFIX: dict[str, str] = {
    "customer": "Customer",
    "product": "Product",
    "price": "Price",
    "subscription": "Subscription",
    "invoice": "Invoice",
    "quote": "Quote",
    "invoice_item": "InvoiceItem",
}

# Keys of stripe's RequestOptions mixed into some *Params classes; they are not API parameters.
REQUEST_OPTION_KEYS: frozenset[str] = frozenset(
    {
        "api_key",
        "stripe_account",
        "stripe_version",
        "stripe_context",
        "idempotency_key",
        "max_network_retries",
        "headers",
        "content_type",
    }
)
# Parameters that shape the response rather than the object: never a writable field.
_NON_FIELD_KEYS: frozenset[str] = frozenset({"expand"})

_MAX_DEPTH = 12
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d*)\]|(\.)")


def params_class_name(object_name: str, operation: str) -> str:
    """`("invoice_item", "create")` -> `"InvoiceItemCreateParams"`."""
    try:
        prefix = OBJECT_CLASS_PREFIX[object_name]
    except KeyError:
        raise KeyError(
            f"unknown Stripe object {object_name!r}; known: {', '.join(sorted(OBJECT_CLASS_PREFIX))}"
        ) from None
    camel = "".join(part.capitalize() for part in operation.split("_") if part)
    return f"{prefix}{camel}Params"


def _module_name(class_name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    return f"stripe.params._{snake}"


@cache
def _params_class(object_name: str, operation: str) -> type:
    name = params_class_name(object_name, operation)
    load_stripe()  # the package first, without the async HTTP library it would import (stripe_sdk.py)
    try:
        module = importlib.import_module(_module_name(name))
        return getattr(module, name)
    except (ImportError, AttributeError):
        pass
    import stripe.params  # slower fallback: the package's lazy attribute lookup

    cls = getattr(stripe.params, name, None)
    if cls is None:
        raise KeyError(f"Stripe SDK has no {name} (no {operation!r} operation on {object_name!r})")
    return cls


def _namespace(cls: type) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "Literal": typing_extensions.Literal,
        "Union": typing.Union,
        "Optional": typing.Optional,
        "List": typing.List,  # noqa: UP006 - names as written in the SDK's forward refs
        "Dict": typing.Dict,  # noqa: UP006
        "Any": typing.Any,
        "Decimal": Decimal,
    }
    ns.update(vars(sys.modules[cls.__module__]))
    return ns


def _evaluate(annotation: Any, ns: Mapping[str, Any]) -> Any:
    """Evaluate a string / ForwardRef annotation; unresolved names become Any."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        try:
            return eval(annotation, dict(ns))  # SDK-generated type expressions only
        except Exception:
            return Any
    return annotation


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__required_keys__") and hasattr(tp, "__annotations__")


def _is_untyped_object(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return getattr(origin, "__name__", "") == "UntypedStripeObject"


def _spec(tp: Any, ns: Mapping[str, Any], required: bool, depth: int) -> ParamSpec:
    tp = _evaluate(tp, ns)
    origin = typing.get_origin(tp)
    if origin in (typing.NotRequired, typing_extensions.NotRequired, typing.Required):
        return _spec(typing.get_args(tp)[0], ns, required, depth)
    if origin in (typing.Union, UnionType):
        return _union_spec(typing.get_args(tp), ns, required, depth)
    if origin in (typing.Literal, typing_extensions.Literal):
        values = tuple(str(v) for v in typing.get_args(tp))
        if values == ("",):
            return ParamSpec("string", required, emptyable=True)
        return ParamSpec("enum", required, enum=tuple(v for v in values if v), emptyable="" in values)
    if origin in (list, typing.List):  # noqa: UP006
        args = typing.get_args(tp)
        item = _spec(args[0], ns, False, depth + 1) if args else ParamSpec("any")
        return ParamSpec("array", required, items=item)
    if origin in (dict, typing.Dict) or _is_untyped_object(tp):  # noqa: UP006
        args = typing.get_args(tp)
        value = _spec(args[1], ns, False, depth + 1) if len(args) == 2 else ParamSpec("any")
        return ParamSpec("map", required, items=value)
    if _is_typeddict(tp):
        if depth > _MAX_DEPTH:
            return ParamSpec("object", required)
        return ParamSpec("object", required, fields=_LazyFields(tp, depth + 1))
    return ParamSpec(_SCALARS.get(tp, "any"), required)


_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    Decimal: "number",
    bool: "boolean",
}


def _union_spec(args: tuple[Any, ...], ns: Mapping[str, Any], required: bool, depth: int) -> ParamSpec:
    """Flatten a union.

    `Literal['']` marks emptyable; `Literal[...] | str` stays an enum (the `str` is only the SDK's forward
    compatibility); `Dict | UntypedStripeObject` is one map; a single survivor is returned bare.
    """
    specs = [_spec(a, ns, False, depth) for a in args if _evaluate(a, ns) is not type(None)]
    emptyable = any(s.emptyable for s in specs)
    specs = [s for s in specs if not (s.kind == "string" and s.emptyable and not s.enum)] or [
        ParamSpec("string")
    ]
    flat: list[ParamSpec] = []
    for s in specs:
        flat.extend(s.alternatives if s.kind == "union" else (s,))
    maps = [s for s in flat if s.kind == "map"]
    if len(maps) > 1:
        typed = [m for m in maps if m.items is not None and m.items.kind != "any"] or maps
        flat = [s for s in flat if s.kind != "map"] + [typed[0]]
    enums = [s for s in flat if s.kind == "enum"]
    if enums:
        values = tuple(dict.fromkeys(v for s in enums for v in s.enum))
        rest = [s for s in flat if s.kind not in ("enum", "string")]
        flat = [ParamSpec("enum", enum=values), *rest]
    unique = list(dict.fromkeys(flat))
    if len(unique) == 1:
        only = unique[0]
        return replace(only, required=required, emptyable=emptyable or only.emptyable)
    return ParamSpec("union", required, emptyable=emptyable, alternatives=tuple(unique))


class _LazyFields(Mapping[str, ParamSpec]):
    """The fields of a nested parameter type, evaluated when first read. A command resolves a few
    paths per object (`address.line1`), so most of the SDK's nested types (hundreds per operation)
    are never evaluated; walking every path (`field_paths`) evaluates them all, as before."""

    __slots__ = ("_cls", "_depth", "_fields")

    def __init__(self, cls: type, depth: int) -> None:
        self._cls = cls
        self._depth = depth
        self._fields: Mapping[str, ParamSpec] | None = None

    def _evaluated(self) -> Mapping[str, ParamSpec]:
        if self._fields is None:
            self._fields = _typeddict_fields(self._cls, self._depth)
        return self._fields

    def __getitem__(self, key: str) -> ParamSpec:
        return self._evaluated()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._evaluated())

    def __len__(self) -> int:
        return len(self._evaluated())

    def __repr__(self) -> str:
        return f"_LazyFields({self._cls.__name__})"


def _typeddict_fields(cls: type, depth: int) -> Mapping[str, ParamSpec]:
    ns = _namespace(cls)
    required_keys = getattr(cls, "__required_keys__", frozenset())
    out: dict[str, ParamSpec] = {}
    for key, annotation in cls.__annotations__.items():
        if key in REQUEST_OPTION_KEYS:
            continue
        out[key] = _spec(annotation, ns, key in required_keys, depth)
    return MappingProxyType(out)


@cache
def operation_params(object_name: str, operation: str) -> Mapping[str, ParamSpec]:
    """Top-level parameters of `stripe.params.<Prefix><Operation>Params`, request options removed.

    Raises KeyError (with a readable message) for an unknown object or operation.
    """
    return _typeddict_fields(_params_class(object_name, operation), 0)


def _children(spec: ParamSpec) -> Iterable[tuple[str, ParamSpec]]:
    """(suffix, child) pairs below a node: `.key` for object fields, `[]` for array elements."""
    if spec.kind == "object":
        for key, child in spec.fields.items():
            yield f".{key}", child
    elif spec.kind == "array" and spec.items is not None:
        yield "[]", spec.items
    elif spec.kind == "union":
        for alt in spec.alternatives:
            yield from _children(alt)


@cache
def _field_paths(object_name: str, operation: str) -> Mapping[str, ParamSpec]:
    out: dict[str, ParamSpec] = {}

    def walk(path: str, spec: ParamSpec, depth: int) -> None:
        out.setdefault(path, spec)
        if depth < _MAX_DEPTH:
            for suffix, child in _children(spec):
                walk(path + suffix, child, depth + 1)

    for key, spec in operation_params(object_name, operation).items():
        if key not in _NON_FIELD_KEYS:
            walk(key, spec, 0)
    return MappingProxyType(out)


def field_paths(object_name: str, operation: str) -> dict[str, ParamSpec]:
    """Every writable path, intermediate nodes and leaves: `address`, `address.line1`, `items[].price`,
    `metadata` (a map: any `metadata.<key>` resolves to its value spec)."""
    return dict(_field_paths(object_name, operation))


def _parse_path(path: str) -> list[str] | None:
    """`items[0].price` -> ["items", "[]", "price"]; None when malformed."""
    parts: list[str] = []
    pos = 0
    expect_name = True
    for m in _SEGMENT.finditer(path):
        if m.start() != pos:
            return None
        pos = m.end()
        name, _index, dot = m.groups()
        if dot:
            if expect_name:
                return None
            expect_name = True
        elif name is not None:
            if not expect_name:
                return None
            parts.append(name)
            expect_name = False
        else:
            if expect_name:
                return None
            parts.append("[]")
    if pos != len(path) or expect_name:
        return None
    return parts


def _step(spec: ParamSpec, part: str) -> ParamSpec | None:
    if spec.kind == "union":
        for alt in spec.alternatives:
            found = _step(alt, part)
            if found is not None:
                return found
        return None
    if part == "[]":
        return spec.items if spec.kind == "array" else None
    if spec.kind == "object":
        return spec.fields.get(part)
    if spec.kind == "map":
        return spec.items or ParamSpec("string")
    return None


@lru_cache(maxsize=4096)
def resolve_path(object_name: str, operation: str, path: str) -> ParamSpec | None:
    """Spec of a user path (`address.line1`, `items[0].price`, `metadata.plan`); None if it does not exist.

    Below a map the rest of the path is one key, so `metadata.a.b` is the metadata key `a.b`.
    """
    parts = _parse_path(path)
    if not parts or parts[0] in _NON_FIELD_KEYS:
        return None
    spec = operation_params(object_name, operation).get(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if spec is None:
            return None
        if spec.kind == "map":
            return None if "[]" in parts[i:] else (spec.items or ParamSpec("string"))
        spec = _step(spec, part)
    return spec


def suggest(path: str, candidates: Iterable[str]) -> str | None:
    """Closest candidate to `path` (difflib), or None when nothing is close."""
    pool = list(dict.fromkeys(candidates))
    normalized = re.sub(r"\[\d+\]", "[]", path)
    matches = difflib.get_close_matches(normalized, pool, n=1, cutoff=0.6)
    if not matches:
        return None
    best = matches[0]
    if normalized != path and "[]" in best:
        # Give back the user's own indexes: items[0].pirce -> items[0].price.
        indexes = iter(re.findall(r"\[\d+\]", path))
        best = re.sub(r"\[\]", lambda _m: next(indexes, "[0]"), best)
    return best
