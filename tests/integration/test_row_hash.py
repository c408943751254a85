"""DuckDB's row hash (`duckdb__hash_sql`, built for speed) is the default hash of the same string:
the ledger's payload_hash must not change with the way it is computed, or every row would be re-sent."""

from __future__ import annotations

import pytest

from tests.integration.test_diff_partitions import _duckdb_only, _opened

pytestmark = pytest.mark.timeout(300)

# nulls, empty strings, separators and markers inside values, non-ASCII text, numbers and dates
ROWS = """(values
    ('x', null, 1.50::decimal(12, 2), date '2024-01-02', true),
    ('', 'é€😀', null, null, false),
    ('a:b|c', 'N', -0.01::decimal(12, 2), date '1999-12-31', null),
    ('N', '', 0::decimal(12, 2), null, true),
    ('ab', 'c', 10::decimal(12, 2), date '2024-01-02', false),
    ('a', 'bc', 10::decimal(12, 2), date '2024-01-02', false),
    (null, null, null, null, null)
) as t(a, b, c, d, e)"""


def test_duckdb_hash_is_the_default_hash_of_the_same_string(warehouse, dbt_project, monkeypatch):
    _duckdb_only(warehouse)
    prep = _opened(dbt_project, monkeypatch)
    try:
        parts = ["'8b045e5b9bf0fce1'", "a", "b", "c", "d", "e"]  # a fingerprint literal first, as the diff
        default = prep.wh.macro("default__hash_sql", expressions=parts)
        ours = prep.wh.macro("duckdb__hash_sql", expressions=parts)
        assert default != ours  # two ways of writing it, or this compares nothing
        _, rows = prep.wh.query(f"select {default}, {ours} from {ROWS}")
    finally:
        prep.wh.close()
    assert len(rows) == 7
    assert [d for d, _ in rows] == [o for _, o in rows]
    assert len({d for d, _ in rows}) == 7  # ('ab', 'c') and ('a', 'bc'), '' and null: all told apart
