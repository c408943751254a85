"""dbt-native behaviour against the real dbt CLI: selection is dbt's, --target decides the relations,
staleness is by content, and usage errors say what to run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from dbt_stripe_sync import project as P
from dbt_stripe_sync.selection import SelectionArgs
from dbt_stripe_sync.warehouse import Warehouse
from tests.support.dbt_project import BIN, DbtProject, postgres_env

ANNOTATED_EXTRA = """
version: 2
models:
  - name: crm_accounts
    config:
      tags: ["crm"]
      materialized: view
      meta:
        stripe_sync: {object: customer, mode: update, primary_key: user_id,
                      match: {field: email, column: email}, fields: {name: full_name}}
  - name: crm_plans
    config:
      tags: ["crm", "catalog"]
      meta:
        stripe_sync: {object: product, mode: upsert, primary_key: product_key,
                      match: {field: id, column: product_id}, fields: {name: name}}
"""

SELECTORS = """
selectors:
  - name: billing_no_quotes
    definition:
      union:
        - method: tag
          value: billing
        - exclude:
            - method: fqn
              value: stripe_quotes
"""

# (select, exclude, selector, use --state): each is evaluated by `dbt ls` and by us.
EXPRESSIONS: list[tuple[tuple[str, ...], tuple[str, ...], str | None, bool]] = [
    (("stripe_customers",), (), None, False),
    (("stripe_customers stripe_prices",), (), None, False),  # space-separated union in one argument
    (("stripe_customers", "stripe_prices"), (), None, False),  # -s a b
    (("tag:billing,stripe_prices",), (), None, False),  # comma: intersection
    (("tag:crm",), (), None, False),
    (("stripe_customers+",), (), None, False),
    (("+crm_notes",), (), None, False),
    (("1+crm_notes",), (), None, False),
    (("@crm_accounts",), (), None, False),
    (("path:models/billing",), (), None, False),
    (("config.materialized:view",), (), None, False),
    (("stripe_*",), (), None, False),
    (("tag:billing",), ("stripe_quotes stripe_invoices",), None, False),
    (("tag:stripe,tag:billing", "tag:crm"), ("crm_plans",), None, False),
    ((), (), "billing_no_quotes", False),
    (("state:modified",), (), None, True),
    (("state:modified+",), (), None, True),
]


def _extend_project(path: Path) -> None:
    """Models beyond integration_tests/: a chain through an unannotated model, a view, a selector."""
    (path / "models" / "crm").mkdir()
    (path / "models" / "crm" / "stg_plans.sql").write_text(
        "select product_key, product_id, name from {{ ref('stripe_products') }}\n"
    )
    (path / "models" / "crm" / "crm_plans.sql").write_text("select * from {{ ref('stg_plans') }}\n")
    (path / "models" / "crm" / "crm_accounts.sql").write_text(
        "select user_id, email, full_name from {{ ref('stripe_customers') }}\n"
    )
    (path / "models" / "crm" / "crm_notes.sql").write_text("select user_id from {{ ref('crm_accounts') }}\n")
    (path / "models" / "crm" / "crm.yml").write_text(ANNOTATED_EXTRA)
    (path / "selectors.yml").write_text(SELECTORS)


_DBT_LS = """
import json, sys
from dbt.cli.main import dbtRunner
out = []
for args in json.loads(sys.argv[1]):
    res = dbtRunner().invoke(["ls", "--resource-type", "model", "--output", "name", "--quiet", *args])
    if not res.success:
        raise SystemExit(f"dbt ls {args} failed: {res.exception}")
    out.append(sorted(res.result))
print("RESULT" + json.dumps(out))
"""


def _dbt_ls_all(project: DbtProject, arg_lists: list[list[str]]) -> list[set[str]]:
    """`dbt ls` for each argument list, through dbt's own runner in one separate process."""
    common = ["--project-dir", str(project.path), "--profiles-dir", str(project.path)]
    proc = subprocess.run(
        [sys.executable, "-c", _DBT_LS, json.dumps([[*a, *common] for a in arg_lists])],
        env=project.env,
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return [set(names) for names in json.loads(line[len("RESULT") :])]


def _ls_args(select, exclude, selector, state: str | None) -> list[str]:
    args: list[str] = []
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    if selector:
        args += ["--selector", selector]
    if state:
        args += ["--state", state]
    return args


def test_selection_is_dbts_for_every_selector_form(tmp_path, project_template, monkeypatch):
    """Our selection equals `dbt ls` restricted to annotated models, for 17 selector expressions."""
    env = {"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(tmp_path / "project" / "warehouse.duckdb")}
    project = DbtProject.create(tmp_path / "project", env, project_template)
    _extend_project(project.path)
    project.dbt("parse")
    state = tmp_path / "prod-artifacts"
    shutil.copytree(project.path / "target", state)
    # after the "production" artifacts were taken: one annotated model and one upstream model change
    (project.path / "models" / "crm" / "stg_plans.sql").write_text(
        "select product_key, product_id, upper(name) as name from {{ ref('stripe_products') }}\n"
    )
    (project.path / "models" / "billing" / "stripe_quotes.sql").write_text(
        (project.path / "models" / "billing" / "stripe_quotes.sql").read_text() + "\n-- reviewed\n"
    )
    arg_lists = [_ls_args(s, e, sel, str(state) if st else None) for s, e, sel, st in EXPRESSIONS]
    dbt_says = _dbt_ls_all(project, arg_lists)

    monkeypatch.chdir(project.path)  # dbt resolves path: selectors from the working directory, as here
    wh = _open(project)
    try:
        proj = P.load_project(wh.manifest, wh.target_path, wh.target.name)
        annotated = {n.name for n in proj.nodes.values()}
        assert "crm_plans" in annotated and "crm_notes" not in annotated
        for (select, exclude, selector, st), expected in zip(EXPRESSIONS, dbt_says, strict=True):
            args = SelectionArgs(select, exclude, selector, str(state) if st else None)
            ours = {n.name for n in P.select(proj, wh.config, args)}
            assert ours == expected & annotated, (args.describe(), expected)
        # the state: cases select something, so the comparison above is not vacuous
        assert dbt_says[-2] & annotated == {"stripe_quotes"}
        assert dbt_says[-1] & annotated == {"stripe_quotes", "crm_plans"}
        # the one addition to dbt's graph: a `sync:` reference is an edge, so `stripe_prices+` also
        # selects the models whose rows point at prices
        chosen = {n.name for n in P.select(proj, wh.config, SelectionArgs(("stripe_prices+",)))}
        assert chosen == {"stripe_prices", "stripe_subscriptions", "stripe_invoice_items", "stripe_quotes"}
    finally:
        wh.close()


def _open(project: DbtProject, target: str | None = None) -> Warehouse:
    saved = dict(os.environ)
    os.environ.update(project.env)
    try:
        return Warehouse.open(str(project.path), str(project.path), target)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_empty_selection_exits_2_saying_what_to_run(dbt_project):
    proc = dbt_project.sync("plan", "-s", "raw_customers")
    assert proc.returncode == 2
    assert "selects no model with a stripe_sync block" in proc.stderr
    assert "dbt ls --resource-type model --select raw_customers" in proc.stderr
    proc = dbt_project.sync("-v", "validate", "-s", "tag:billing", "--exclude", "tag:stripe")
    assert proc.returncode == 2 and "models with one: stripe_customers" in proc.stderr


# ---- --target -------------------------------------------------------------------------------------
def _two_target_profile(project: DbtProject, warehouse: str, tmp_path: Path) -> dict[str, str]:
    """Profile with `dev` and `ci` targets: two DuckDB files, or two schemas of one PostgreSQL database.

    Returns the schema each target writes to."""
    if warehouse == "duckdb":
        outputs = {
            name: {"type": "duckdb", "path": str(tmp_path / f"{name}.duckdb"), "schema": "main", "threads": 1}
            for name in ("dev", "ci")
        }
        schemas = {"dev": "main", "ci": "main"}
    else:
        base = project.env["DSS_PG_SCHEMA"]
        schemas = {"dev": f"{base}_dev", "ci": f"{base}_ci"}
        outputs = {
            name: {
                "type": "postgres",
                "host": project.env["DSS_PG_HOST"],
                "port": int(project.env["DSS_PG_PORT"]),
                "user": project.env["DSS_PG_USER"],
                "password": project.env["DSS_PG_PASSWORD"],
                "dbname": project.env["DSS_PG_DBNAME"],
                "schema": schemas[name],
                "threads": 1,
            }
            for name in ("dev", "ci")
        }
        project.extra_schemas += [s for v in schemas.values() for s in (v, f"{v}_stripe_sync")]
    profile = {"dss_integration_tests": {"target": "dev", "outputs": outputs}}
    (project.path / "profiles.yml").write_text(json.dumps(profile))  # JSON is YAML
    return schemas


def _schema_tables(warehouse: str, tmp_path: Path, project: DbtProject, target: str, schema: str) -> set[str]:
    sql = f"select table_name from information_schema.tables where table_schema = '{schema}'"
    if warehouse == "duckdb":
        import duckdb

        con = duckdb.connect(str(tmp_path / f"{target}.duckdb"), read_only=True)
        try:
            return {r[0] for r in con.execute(sql).fetchall()}
        finally:
            con.close()
    return {r[0] for r in project.query(sql)}


def test_target_decides_which_relations_are_read(warehouse, tmp_path, stripe_emulator, project_template):
    """dev and ci hold different customers; dbt last compiled for ci; `--target dev` syncs dev's rows
    and keeps its ledger in dev's own state schema. On PostgreSQL both targets share one database."""
    # DBT_TARGET names the warehouse for the test helpers only: every command below passes --target
    env = {"STRIPE_API_KEY": "sk_test_dsstargets", "STRIPE_API_BASE": stripe_emulator.url}
    env["DBT_TARGET"] = warehouse
    if warehouse == "postgres":
        env.update(postgres_env(f"t_{uuid.uuid4().hex[:10]}"))
    project = DbtProject.create(tmp_path / "project", env, project_template)
    try:
        schemas = _two_target_profile(project, warehouse, tmp_path)
        dev_rows = project.read_seed("raw_customers")
        project.dbt("build", "--target", "dev", "--exclude", "resource_type:test", "-s", "+stripe_customers")
        project.write_seed("raw_customers", [{**r, "email": "ci-" + r["email"]} for r in dev_rows])
        project.dbt("build", "--target", "ci", "--exclude", "resource_type:test", "-s", "+stripe_customers")
        project.dbt("ls", "--target", "ci")  # target/ now describes ci

        proc = project.sync("run", "--target", "dev", "-s", "stripe_customers")
        assert proc.returncode == 0, proc.stdout + proc.stderr

        emails = sorted(c["email"] for c in stripe_emulator.objects("customer"))
        assert emails == sorted(r["email"] for r in dev_rows)
        creates = [r for r in stripe_emulator.requests() if r["method"] == "POST"]
        assert len(creates) == len(dev_rows)
        dev_state = _schema_tables(warehouse, tmp_path, project, "dev", f"{schemas['dev']}_stripe_sync")
        assert "stripe_sync_ledger" in dev_state
        ci_state = _schema_tables(warehouse, tmp_path, project, "ci", f"{schemas['ci']}_stripe_sync")
        assert ci_state == set()  # nothing written for the target that was not asked for

        # and the other way round: --target ci plans ci's customers (new emails), against ci's empty ledger
        proc = project.sync("plan", "--target", "ci", "-s", "stripe_customers")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "ci-" in proc.stdout
    finally:
        project.drop_schemas()


# ---- staleness by content, usage errors ------------------------------------------------------------
def test_no_op_rewrites_do_not_refuse_but_a_block_edit_does(dbt_project):
    profiles = dbt_project.path / "profiles.yml"
    subprocess.run(["sed", "-i", "s/threads/threads/", str(profiles)], check=True)
    (dbt_project.path / "models" / "stripe_customers.sql").touch()
    schema_yml = dbt_project.path / "models" / "schema.yml"
    schema_yml.write_text(schema_yml.read_text())  # rewritten, same content
    proc = dbt_project.sync("plan", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    dbt_project.emulator.clear_requests()
    dbt_project.edit_schema_yml("metadata.plan: plan_tier", "metadata.tier: plan_tier")
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 2
    assert "the stripe_sync block of stripe_customers in models/schema.yml was edited" in proc.stderr
    assert "run `dbt run -s stripe_customers`" in proc.stderr
    assert [r for r in dbt_project.emulator.requests() if r["path"].startswith("/v1/")] == []
    dbt_project.dbt("run", "-s", "stripe_customers")
    proc = dbt_project.sync("plan", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_dbt_deps_and_unbuilt_models_say_what_to_run(tmp_path, project_template, stripe_emulator):
    env = {
        "DBT_TARGET": "duckdb",
        "DSS_DUCKDB_PATH": str(tmp_path / "fresh.duckdb"),
        "STRIPE_API_KEY": "sk_test_x",
        "STRIPE_API_BASE": stripe_emulator.url,
    }
    project = DbtProject.create(tmp_path / "project", env, project_template)
    shutil.rmtree(project.path / "dbt_packages")
    proc = project.sync("plan")
    assert proc.returncode == 2
    assert "run `dbt deps`" in proc.stderr and "Traceback" not in proc.stderr

    project.dbt("deps")  # no target/, nothing built
    proc = project.sync("plan", "-s", "stripe_customers")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "run `dbt run -s stripe_customers` first" in proc.stderr
    proc = project.sync("validate", "-s", "stripe_customers")
    assert proc.returncode == 0
    assert "columns not checked" in proc.stdout and "dbt run -s stripe_customers" in proc.stdout


def test_verbose_before_the_sub_command(dbt_project):
    proc = dbt_project.sync("-v", "validate", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stderr
    assert "OK: 1 stripe_sync block(s) valid (stripe_customers)" in proc.stdout


def test_cli_entry_point_runs_from_a_subprocess(dbt_project):
    proc = subprocess.run(
        [str(BIN / "dbt-stripe-sync"), "--project-dir", str(dbt_project.path), "validate", "-s", "stripe_*"],
        env={**dbt_project.env, "DBT_PROFILES_DIR": str(dbt_project.path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK: 7 stripe_sync block(s) valid" in proc.stdout


# ---- zero-config macros -----------------------------------------------------------------------------
def test_without_packages_yml_the_shipped_macros_run_and_project_overrides_still_win(dbt_project):
    (dbt_project.path / "packages.yml").unlink()
    shutil.rmtree(dbt_project.path / "dbt_packages")
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(dbt_project.ledger("stripe_customers")) == len(dbt_project.read_seed("raw_customers"))

    # a project macro overrides one of the package's dispatched macros, as adapter.dispatch promises
    (dbt_project.path / "macros").mkdir(exist_ok=True)
    (dbt_project.path / "macros" / "override.sql").write_text(
        "{% macro default__key_check_sql(model_relation, key_column) %}"
        "{{ return(\"select 'from-the-project' as k, 2 as n\") }}{% endmacro %}\n"
    )
    proc = dbt_project.sync("plan", "-s", "stripe_customers")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'from-the-project' (2 rows)" in proc.stdout + proc.stderr
