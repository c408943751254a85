"""Pre-send row checks: each bad value gives one problem naming the field and the fix; good ones none."""

from __future__ import annotations

import pytest

from dbt_stripe_sync.row_checks import ISO_4217, row_problems

pytestmark = pytest.mark.timeout(60)

META_49 = {f"metadata.k{i}": "v" for i in range(49)}
META_50 = {f"metadata.k{i}": "v" for i in range(50)}

# (id, object, flat payload, creating, fragments of the single expected problem; None = no problem)
CASES: list[tuple[str, str, dict, bool, tuple[str, ...] | None]] = [
    # email
    ("email ok", "customer", {"email": "ada@example.com"}, True, None),
    ("email plus tag ok", "customer", {"email": "a.b+tag@sub.example.co.uk"}, True, None),
    ("email idn ok", "customer", {"email": "jose@exämple.de"}, True, None),
    ("email punycode tld ok", "customer", {"email": "ivan@example.xn--p1ai"}, True, None),
    ("email hyphen label", "customer", {"email": "a@-bad.com"}, True, ("email", "not a valid email")),
    (
        "receipt_email checked too",
        "invoice",
        {"receipt_email": "nope"},
        True,
        ("receipt_email", "not a valid"),
    ),
    ("email no at", "customer", {"email": "ada.example.com"}, True, ("email", "not a valid email", "name@")),
    ("email no tld", "customer", {"email": "ada@example"}, True, ("email", "not a valid email")),
    ("email space", "customer", {"email": "ada @example.com"}, True, ("email", "not a valid email")),
    ("email two ats", "customer", {"email": "a@b@example.com"}, True, ("email", "not a valid email")),
    ("email double dot", "customer", {"email": "a..b@example.com"}, True, ("email", "not a valid email")),
    ("email too long", "customer", {"email": "a" * 510 + "@x.io"}, True, ("email", "515", "512")),
    # metadata
    ("meta 500 ok", "customer", {"metadata.note": "x" * 500}, True, None),
    ("meta 501", "customer", {"metadata.note": "x" * 501}, True, ("metadata.note", "501", "500")),
    ("meta nested map 501", "product", {"metadata": {"note": "y" * 501}}, True, ("metadata.note", "501")),
    ("meta key 41", "customer", {"metadata." + "k" * 41: "v"}, True, ("metadata.kkk", "41", "40")),
    ("meta key bracket", "customer", {"metadata": {"a[b]": "v"}}, True, ("metadata.a[b]", "'['")),
    ("meta 49 + tag ok", "customer", META_49, True, None),
    ("meta 50 + tag", "customer", META_50, True, ("metadata", "51 metadata keys", "dbt_stripe_sync")),
    ("meta 50 on update ok", "customer", META_50, False, None),
    ("meta 51 on update", "customer", {**META_50, "metadata.x": "v"}, False, ("51 metadata keys",)),
    ("meta cleared keys not counted", "customer", {**META_49, "metadata.gone": ""}, True, None),
    ("meta reserved key", "customer", {"metadata.dbt_stripe_sync": "x"}, False, ("reserved",)),
    (
        "item metadata own map",
        "subscription",
        {"items[0].metadata.k": "z" * 501},
        True,
        ("items[0].metadata.k",),
    ),
    # currency
    ("currency ok", "price", {"currency": "usd"}, True, None),
    ("currency upper ok", "price", {"currency": "EUR"}, True, None),
    ("currency typo", "price", {"currency": "usdd"}, True, ("currency", "'usdd'", "ISO 4217", "'usd'")),
    ("currency word", "invoice_item", {"currency": "dollars"}, True, ("currency", "ISO 4217")),
    (
        "currency nested",
        "subscription",
        {"items[0].price_data.currency": "xyz"},
        True,
        ("items[0].price_data",),
    ),
    ("currency option key", "price", {"currency_options": {"euro": {"unit_amount": 5}}}, True, ("euro",)),
    # amounts
    ("amount zero ok", "price", {"unit_amount": 0}, True, None),
    ("unit_amount negative", "price", {"unit_amount": -100}, True, ("unit_amount", "-100", ">= 0")),
    ("decimal negative", "price", {"unit_amount_decimal": "-0.5"}, True, ("unit_amount_decimal", ">= 0")),
    ("quantity negative", "subscription", {"items[1].quantity": -2}, True, ("items[1].quantity", ">= 0")),
    (
        "tier flat negative",
        "price",
        {"tiers": [{"flat_amount": -1, "up_to": 5}]},
        True,
        ("tiers[0].flat_amount",),
    ),
    ("invoice item credit ok", "invoice_item", {"amount": -500}, True, None),
    ("customer balance credit ok", "customer", {"balance": -500}, True, None),
    (
        "credit item in subscription ok",
        "subscription",
        {"add_invoice_items[0].price_data.unit_amount": -5},
        True,
        None,
    ),
    ("days not an amount", "invoice", {"days_until_due": -1}, True, None),
    # strings
    ("5000 chars ok", "customer", {"address.line1": "x" * 5000}, True, None),
    ("5001 chars", "customer", {"address.line1": "x" * 5001}, True, ("address.line1", "5001", "5000")),
    ("product description long ok", "product", {"description": "d" * 6000}, True, None),
    ("customer description 351", "customer", {"description": "d" * 351}, True, ("description", "350")),
    ("descriptor 23", "product", {"statement_descriptor": "S" * 23}, True, ("statement_descriptor", "22")),
    ("descriptor quote", "product", {"statement_descriptor": "Bob's"}, True, ("statement_descriptor", "'")),
    (
        "custom field name 41",
        "invoice",
        {"custom_fields[0].name": "n" * 41},
        True,
        ("custom_fields[0].name", "40"),
    ),
    (
        "custom field value list",
        "invoice",
        {"custom_fields": [{"name": "PO", "value": "v" * 141}]},
        True,
        ("140",),
    ),
    ("NUL in name", "customer", {"name": "Ada\x00"}, True, ("name", "NUL")),
    ("other control chars ok", "customer", {"name": "tab\there\nnew line\x07bell"}, True, None),
    ("unicode ok", "customer", {"name": "Ada 👩‍💻 李 مرحبا", "metadata.rtl": "שלום"}, True, None),
]


@pytest.mark.parametrize(
    ("obj", "flat", "creating", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_row_problems(obj, flat, creating, expected):
    problems = row_problems(obj, flat, creating=creating)
    if expected is None:
        assert problems == []
        return
    assert len(problems) == 1, problems
    for fragment in expected:
        assert fragment in problems[0], (fragment, problems[0])


def test_every_problem_of_a_row_is_reported():
    flat = {"email": "nope", "metadata.note": "x" * 501, "currency": "usdd", "unit_amount": -1}
    problems = row_problems("customer", flat, creating=True)
    assert len(problems) == 3  # customer has no unit_amount: not an amount of a customer, not checked
    problems = row_problems(
        "price", {"currency": "usdd", "unit_amount": -1, "metadata.a": "x" * 501}, creating=True
    )
    assert [p.split(":")[0] for p in problems] == ["currency", "unit_amount", "metadata.a"]


def test_cleared_and_null_values_are_not_checked():
    assert row_problems("customer", {"email": "", "name": None, "metadata.x": ""}, creating=False) == []


def test_currency_list_is_iso_4217():
    assert len(ISO_4217) > 150
    assert all(len(c) == 3 and c.islower() for c in ISO_4217)
    assert {"usd", "eur", "jpy", "gbp", "chf", "inr", "brl", "xof"} <= ISO_4217
    assert "usdd" not in ISO_4217 and "abc" not in ISO_4217


def test_checks_cached_per_path_give_the_same_problems_as_checks_worked_out_per_row(monkeypatch):
    """Path rules are kept per (object, path); with them warm from every other case (paths shared
    across objects and rows), each case gives exactly what a rule worked out per row gives."""
    from dbt_stripe_sync import row_checks

    row_checks._RULES.clear()
    mixed = [(obj, flat, creating) for _, obj, flat, creating, _ in CASES]
    mixed += [("product", {"description": "d" * 400}, True), ("customer", {"description": "d" * 400}, True)]
    extra = {"metadata.extra": "v", "email": "ok@example.com"}
    mixed += [(obj, {**flat, **extra}, not c) for obj, flat, c in mixed]
    warm = [row_problems(obj, flat, creating=c) for obj, flat, c in mixed * 2]  # second pass: all hits
    assert row_checks._RULES["customer"].plain and row_checks._RULES["price"].rules  # kept, read by pass 2
    monkeypatch.setattr(row_checks, "_rules_of", lambda object_name: row_checks._Kept())  # per row
    per_row = [row_problems(obj, flat, creating=c) for obj, flat, c in mixed * 2]
    assert warm == per_row
    # the same path on two objects keeps its own limit: a product description may be long, a customer's not
    assert per_row[len(CASES)] == [] and "350" in per_row[len(CASES) + 1][0]


def test_many_addresses_checked_at_once_are_judged_as_one_by_one() -> None:
    """valid_emails joins the addresses for one regex call; its answer is valid_email's for each."""
    import random

    from dbt_stripe_sync.row_checks import valid_email, valid_emails

    parts = [
        "ada",
        "a.b",
        "x",
        "ü",
        "a..b",
        ".a",
        "a.",
        "-",
        "@",
        "",
        " ",
        "\n",
        "co",
        "xn--p1ai",
        "1",
        "_",
        ".",
        '"',
    ]
    rnd = random.Random(7)

    def address() -> str:
        local, domain, top = (rnd.choice(parts) + rnd.choice(parts) for _ in range(3))
        text = f"{local}@{domain}.{top}"
        return (
            text if rnd.random() < 0.9 else rnd.choice(["a@b.co\n", "a@b.co\nc@d.co", "", "a@b.co", "é@x.io"])
        )

    outcomes = set()
    for _ in range(3000):
        texts = [f"u{i}@example.com" for i in range(rnd.randint(0, 4))]
        texts.insert(rnd.randint(0, len(texts)), address())
        outcomes.add(valid_emails(texts))
        assert valid_emails(texts) == all(valid_email(t) for t in texts), texts
    assert outcomes == {True, False}
    assert valid_emails([]) and valid_emails(["a@b.co\n"]) == valid_email("a@b.co\n")
