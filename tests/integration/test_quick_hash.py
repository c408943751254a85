"""The diff's quick hash (`quick_hash_sql`, the ledger's payload_quick_hash) is only a filter in front
of the md5 row hash (payload_hash): a row it vouches for is unchanged, every other row is compared by
md5 as before. So a ledger without quick hashes (an older version's, or PostgreSQL's) or with wrong
ones costs speed, never a re-send, and whatever the quick hashes say the diff picks the rows the md5
alone picks."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dbt_stripe_sync import engine
from dbt_stripe_sync.diff import fingerprint, run_diff
from dbt_stripe_sync.engine import Prepared
from dbt_stripe_sync.ledger import StateStore
from tests.integration.test_run_stream import streamed  # noqa: F401 (a fixture: `run` in chunks)
from tests.support.dbt_project import DbtProject, pg_connect

pytestmark = pytest.mark.timeout(600)

LEDGER = "stripe_sync_ledger"


def _execute(project: DbtProject, *statements: str) -> None:
    """Statements run against the project's warehouse (the tests' stand-in for an older version or a
    faulty writer)."""
    if project.target == "duckdb":
        import duckdb

        con = duckdb.connect(project.env["DSS_DUCKDB_PATH"])
        try:
            for sql in statements:
                con.execute(sql)
        finally:
            con.close()
        return
    con = pg_connect(project.env, autocommit=True)
    try:
        with con.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        con.close()


@contextmanager
def _prepared(project: DbtProject, monkeypatch: pytest.MonkeyPatch) -> Iterator[Prepared]:
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    prep = engine.prepare(engine.Invocation("plan", str(project.path), str(project.path)), io.StringIO())
    try:
        yield prep
    finally:
        prep.wh.close()


def _diffs(project: DbtProject, monkeypatch: pytest.MonkeyPatch, syncs: tuple[str, ...]) -> dict[str, list]:
    """Each sync's whole diff (`run`'s), as (key, change, row hash) in key order."""
    out: dict[str, list] = {}
    with _prepared(project, monkeypatch) as prep:
        store = StateStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
        for config in prep.configs:
            if config.name in syncs:
                diff = run_diff(
                    prep.wh,
                    config,
                    prep.relations[config.model],
                    store.readable_sql(),
                    include_deletes=True,
                    retry_rejected=False,
                )
                out[config.name] = [(r.key, r.change, r.row_hash) for r in diff.rows]
    return out


def _ledger_table(project: DbtProject) -> str:
    return f'"{project.state_schema}".{LEDGER}'


def _quick_hashes(project: DbtProject, sync: str) -> dict[str, int | None]:
    rows = project.query(
        f"select source_key, payload_quick_hash from {_ledger_table(project)} where sync_name = '{sync}'"
    )
    return dict(rows)


def _no_op(project: DbtProject) -> None:
    """`plan` plans nothing and `run` sends nothing: no request reaches Stripe."""
    emu = project.emulator
    emu.clear_requests()
    planned = project.sync("plan")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-2000:]
    ran = project.sync()
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert emu.requests() == []


def test_a_ledger_without_quick_hashes_or_with_wrong_ones_costs_speed_never_a_resend(
    dbt_project, warehouse, monkeypatch
):
    project = dbt_project
    assert project.sync().returncode == 0  # every sync of the project: customers, billing, references
    syncs = tuple(sorted({r[0] for r in project.query(f"select sync_name from {_ledger_table(project)}")}))
    assert len(syncs) >= 4
    written = {s: _quick_hashes(project, s) for s in syncs}
    synced = project.query(f"select count(*) from {_ledger_table(project)} where status = 'synced'")[0][0]
    filled = sum(v is not None for hashes in written.values() for v in hashes.values())
    if warehouse == "duckdb":
        assert filled == synced > 0  # every row the run synced got its quick hash
    else:
        assert filled == 0  # PostgreSQL compares by md5 alone (no quick hash)
    _no_op(project)
    assert {s: _quick_hashes(project, s) for s in syncs} == written  # a no-op writes nothing
    assert _diffs(project, monkeypatch, syncs) == {s: [] for s in syncs}

    # wrong quick hashes (another DuckDB's hash(), a faulty writer): the md5 says unchanged
    _execute(project, f"update {_ledger_table(project)} set payload_quick_hash = 12345")
    assert _diffs(project, monkeypatch, syncs) == {s: [] for s in syncs}
    _no_op(project)

    # a ledger written by the previous version: no column at all, then added by `run` and filled
    # (quick_fill.py) on DuckDB, left null on PostgreSQL
    _execute(project, f"alter table {_ledger_table(project)} drop column payload_quick_hash")
    assert _diffs(project, monkeypatch, syncs) == {s: [] for s in syncs}  # `plan` reads it as null
    _no_op(project)
    assert {s: _quick_hashes(project, s) for s in syncs} == written


def _picked_with_and_without_quick_hashes(project: DbtProject, monkeypatch, syncs: tuple[str, ...]):
    with_quick = _diffs(project, monkeypatch, syncs)
    saved = project.query(f"select sync_name, source_key, payload_quick_hash from {_ledger_table(project)}")
    _execute(project, f"update {_ledger_table(project)} set payload_quick_hash = null")
    md5_only = _diffs(project, monkeypatch, syncs)
    _execute(
        project,
        *(
            f"update {_ledger_table(project)} set payload_quick_hash = {q} "
            f"where sync_name = '{s}' and source_key = '{k}'"
            for s, k, q in saved
            if q is not None
        ),
    )
    return with_quick, md5_only


def test_whatever_the_quick_hashes_say_the_diff_picks_what_md5_picks(dbt_project, warehouse, monkeypatch):
    """Changes the quick hash must not hide, each caught by the md5 path: a value in the middle and the
    last column, a `sync:` reference's Stripe ID, a payload_hash rewritten without its quick hash, and a
    column whose type changes while its values stay natively equal (true -> 1: DuckDB's hash(true) =
    hash(1), their texts differ)."""
    if warehouse != "duckdb":
        pytest.skip("PostgreSQL has no quick hash: its diff is the md5 path itself")
    project = dbt_project
    assert project.sync().returncode == 0
    ledger = _ledger_table(project)
    rows = project.read_seed("raw_customers")
    rows[0]["city"] = "Paris"  # user 1: a middle column
    rows[2]["ltv"] = "1.25"  # user 3: the last column
    project.write_seed("raw_customers", rows)
    project.build()
    product = project.query(
        f"select source_key from {ledger} where sync_name = 'stripe_products' order by 1 limit 1"
    )[0][0]
    priced = project.query(f"select price_key from main.stripe_prices where product_key = '{product}'")
    assert priced  # prices that reference this product by `sync:`
    _execute(
        project,
        # the referenced product's Stripe ID changes: its prices' `product` resolves anew
        f"update {ledger} set stripe_id = stripe_id || 'x' "
        f"where sync_name = 'stripe_products' and source_key = '{product}'",
        # a writer that changed payload_hash and left the quick hash as it was (user 2)
        f"update {ledger} set payload_hash = 'rewritten' "
        "where sync_name = 'stripe_customers' and source_key = '2'",
    )
    syncs = ("stripe_customers", "stripe_prices")
    with_quick, md5_only = _picked_with_and_without_quick_hashes(project, monkeypatch, syncs)
    assert with_quick == md5_only
    assert [k for k, _, _ in with_quick["stripe_customers"]] == ["1", "2", "3"]
    assert {k for k, _, _ in with_quick["stripe_prices"]} == {k for (k,) in priced}

    # is_vip turned from boolean to integer: true -> 1, false -> 0, natively equal, textually not
    _execute(
        project,
        "create or replace table main.stripe_customers as "
        "select * replace (cast(is_vip as integer) as is_vip) from main.stripe_customers where user_id > 3",
    )
    with_quick, md5_only = _picked_with_and_without_quick_hashes(project, monkeypatch, ("stripe_customers",))
    assert with_quick == md5_only
    vips = project.query(
        "select cast(user_id as varchar) from main.stripe_customers where is_vip is not null"
    )
    assert len(vips) >= 2  # the rows of users 1-3 left the model (deleted), the rest changed type
    changed = [k for k, change, _ in with_quick["stripe_customers"] if change != "deleted"]
    assert changed == sorted(k for (k,) in vips)


def test_a_case_only_edit_of_a_collated_column_is_sent(dbt_project, warehouse):
    """Outside attack 12: DuckDB's hash() of a text applies its collation, so with `collate nocase`
    (or a profile's default_collation) a quick hash of the text vouched for 'ADA LOVELACE' as unchanged
    from 'Ada Lovelace' and the edit was never sent, on any later run. The quick hash reads the bytes."""
    if warehouse != "duckdb":
        pytest.skip("PostgreSQL has no quick hash: its diff is the md5 path itself")
    project = dbt_project
    sql = (project.path / "models" / "stripe_customers.sql").read_text()
    collated = sql.replace("    full_name,", "    full_name collate nocase as full_name,")
    assert collated != sql
    project.write_file("models/stripe_customers.sql", collated)
    project.build()
    assert project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = project.ledger("stripe_customers")["1"]["stripe_id"]
    rows = project.read_seed("raw_customers")
    rows[0]["full_name"] = rows[0]["full_name"].upper()
    project.write_seed("raw_customers", rows)
    project.build()
    project.emulator.clear_requests()
    assert project.sync("run", "-s", "stripe_customers").returncode == 0
    writes = [(r["method"], r["path"]) for r in project.emulator.requests() if r["method"] != "GET"]
    assert writes == [("POST", f"/v1/customers/{ada}")]
    assert next(c for c in project.emulator.objects("customer") if c["id"] == ada)["name"] == "ADA LOVELACE"


@pytest.mark.parametrize("how", ["whole", "streamed"])
def test_the_quick_hash_written_is_the_one_the_next_diff_trusts(
    dbt_project, warehouse, monkeypatch, request, how
):
    """Every synced row's payload_quick_hash is quick_hash_sql over its values and its payload_hash, and
    the diff takes a row that hash vouches for as unchanged without its md5: a forged ledger entry (the
    quick hash of the row's values with a different payload_hash) is left alone, which the md5 path
    alone would pick. If the writers stored another value, every row would fall back to md5 (slow,
    and nothing else would tell). `run` plans a sync whole or streams it in chunks (run_stream.py,
    spooled diff): both write it."""
    if warehouse != "duckdb":
        pytest.skip("PostgreSQL has no quick hash")
    project = dbt_project
    if how == "streamed":
        parts = request.getfixturevalue("streamed")  # chunks of 2 rows, parts counted (test_run_stream)
        vars_ = ("--vars", json.dumps({"dbt_stripe_sync": {"stream_min_rows": 0}}))
        assert project.sync("-s", "stripe_customers", *vars_).returncode == 0
        assert parts and parts[0] >= 3  # 5 rows streamed in chunks of 2
    else:
        assert project.sync("-s", "stripe_customers").returncode == 0
    ledger = _ledger_table(project)
    with _prepared(project, monkeypatch) as prep:
        config = next(c for c in prep.configs if c.name == "stripe_customers")
        parts = [f"'{fingerprint(config)}'", *(f"m.{prep.wh.quote(c)}" for c in config.columns())]
        key = f"cast(m.{prep.wh.quote(config.primary_key)} as varchar)"

        def quick(payload_hash: str) -> str:
            return prep.wh.macro("quick_hash_sql", expressions=[*parts, payload_hash])

        relation = prep.relations[config.model]
        _, expected = prep.wh.query(
            f"select {key}, {quick('l.payload_hash')} from {relation} m join {ledger} l "
            f"on l.sync_name = 'stripe_customers' and l.source_key = {key} where l.status = 'synced'"
        )
        forged_sql = quick("'forged'")
        forged = f"select {forged_sql} from {relation} m where {key} = '1'"
        _, ((forged_quick,),) = prep.wh.query(forged)
    assert len(expected) >= 4
    assert dict(expected) == {
        k: v for k, v in _quick_hashes(project, "stripe_customers").items() if v is not None
    }
    _execute(
        project,
        f"update {ledger} set payload_hash = 'forged', payload_quick_hash = {forged_quick} "
        "where sync_name = 'stripe_customers' and source_key = '1'",
    )
    with_quick, md5_only = _picked_with_and_without_quick_hashes(project, monkeypatch, ("stripe_customers",))
    assert with_quick == {"stripe_customers": []}  # vouched for: no md5 computed, unchanged
    assert [k for k, _, _ in md5_only["stripe_customers"]] == ["1"]  # the md5 sees 'forged' <> its hash


def test_a_run_fills_an_upgraded_ledgers_null_quick_hashes_and_sends_nothing(dbt_project, warehouse):
    """A ledger whose quick hashes are null (written before the column, or by a writer that left it)
    would compare every row by md5 on every run until the row changes: `run` fills each synced row
    whose md5 still matches with the quick hash a send would have written (quick_fill.py), before its
    diff, sending nothing for them; the diff then trusts them (plan: nothing). A row that changed is
    not filled (a quick hash of its new values would hide the change): it is sent, as before.
    PostgreSQL has no quick hash: nothing to fill, nothing runs."""
    project = dbt_project
    assert project.sync().returncode == 0  # every sync: customers, billing, `sync:` references
    ledger = _ledger_table(project)
    syncs = tuple(sorted({r[0] for r in project.query(f"select sync_name from {ledger}")}))
    written = {s: _quick_hashes(project, s) for s in syncs}
    _execute(project, f"update {ledger} set payload_quick_hash = null")
    rows = project.read_seed("raw_customers")
    rows[1]["city"] = "Paris"  # user 2 changed while the quick hashes were null
    project.write_seed("raw_customers", rows)
    project.build()
    grace = project.ledger("stripe_customers")["2"]["stripe_id"]
    project.emulator.clear_requests()
    ran = project.sync("run", "-s", "stripe_customers")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    writes = [(r["method"], r["path"]) for r in project.emulator.requests() if r["method"] != "GET"]
    assert writes == [("POST", f"/v1/customers/{grace}")]  # user 2 alone
    filled = _quick_hashes(project, "stripe_customers")
    assert {k: v for k, v in filled.items() if k != "2"} == {
        k: v for k, v in written["stripe_customers"].items() if k != "2"
    }
    if warehouse == "duckdb":
        assert filled["2"] is not None and filled["2"] != written["stripe_customers"]["2"]  # by its send
    others = [s for s in syncs if s != "stripe_customers"]
    assert {s: set(_quick_hashes(project, s).values()) for s in others} == {s: {None} for s in others}

    _no_op(project)  # every sync (`sync:` references too): filled, nothing sent, plan plans nothing
    assert {s: _quick_hashes(project, s) for s in syncs if s != "stripe_customers"} == {
        s: written[s] for s in others
    }
    assert _quick_hashes(project, "stripe_customers") == filled
    if warehouse == "duckdb":
        assert sum(v is not None for hashes in written.values() for v in hashes.values()) > 0
