"""The primary-key check groups the key itself first (cheaper than its text) and looks at the text only
when that finds something: what it reports is still decided by the text, as the diff joins on it."""

from __future__ import annotations

import io

import pytest

from dbt_stripe_sync import engine
from dbt_stripe_sync.diff import _check_keys
from dbt_stripe_sync.errors import SyncAborted

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        (["1.5", "2.5", "3.5"], None),
        (["0.0", "-0.0", "1.5"], None),  # natively equal, textually not: two rows for the diff
        (["1.5", "1.5", "2.5"], "'1.5' (2 rows)"),
        (["1.5", "null", "2.5"], "but found null"),
    ],
)
def test_the_key_check_reports_what_the_text_of_the_key_repeats(
    dbt_project, warehouse, monkeypatch, keys, error
):
    if warehouse != "duckdb":
        pytest.skip("the native first look is DuckDB's (PostgreSQL checks the text alone)")
    project = dbt_project
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    prep = engine.prepare(engine.Invocation("plan", str(project.path), str(project.path)), io.StringIO())
    try:
        config = next(c for c in prep.configs if c.name == "stripe_customers")
        values = ", ".join(f"(cast({k if k == 'null' else repr(k)} as double))" for k in keys)
        with prep.wh.transaction():
            prep.wh.execute(
                f"create or replace table main.dss_keys as select * from (values {values}) v(user_id)"
            )
        if error is None:
            _check_keys(prep.wh, config, "main.dss_keys")
        else:
            with pytest.raises(SyncAborted, match="must be unique and not null") as raised:
                _check_keys(prep.wh, config, "main.dss_keys")
            assert error in str(raised.value)
    finally:
        prep.wh.close()
