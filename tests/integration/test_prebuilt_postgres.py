"""The PostgreSQL copy every `dbt_project` test starts from (tests/support/prebuilt_postgres.py) is what
`dbt build` in the test's own schema would give: the same tables, column types and rows, and a
target/manifest.json naming the test's schema that the CLI reads as up to date."""

from __future__ import annotations

import json

import pytest

from tests.support.dbt_project import DbtProject, postgres_env
from tests.support.prebuilt_postgres import unique_schema


def _tables(project: DbtProject) -> dict[str, list[tuple]]:
    columns = project.query(
        "select table_name, column_name, data_type from information_schema.columns "
        f"where table_schema = '{project.schema}' order by table_name, ordinal_position"
    )
    tables: dict[str, list[tuple]] = {}
    for table, column, type_ in columns:
        tables.setdefault(table, []).append((column, type_))
    return {
        table: [*cols, sorted(project.query(f'select * from "{project.schema}"."{table}"'), key=repr)]
        for table, cols in tables.items()
    }


def _nodes(project: DbtProject) -> dict[str, dict]:
    manifest = json.loads((project.path / "target" / "manifest.json").read_text())
    keep = ("database", "schema", "alias", "relation_name", "checksum", "config", "original_file_path")
    return {
        uid: {k: node.get(k) for k in keep}
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }


def test_a_copied_project_equals_one_built_by_dbt(request, warehouse, project_template, tmp_path):
    if warehouse != "postgres":
        pytest.skip("DuckDB tests copy a prebuilt warehouse file, not tables")
    dbt_project = request.getfixturevalue("dbt_project")
    built = DbtProject.create(tmp_path / "built", postgres_env(unique_schema()), project_template)
    try:
        built.build()
        copy_tables, built_tables = _tables(dbt_project), _tables(built)
        assert copy_tables and copy_tables == built_tables
        copied_nodes = json.dumps(_nodes(dbt_project)).replace(dbt_project.schema, "SCHEMA")
        assert dbt_project.schema not in json.dumps(_nodes(built))
        assert copied_nodes == json.dumps(_nodes(built)).replace(built.schema, "SCHEMA")
        # the CLI reads the copy as built: a plan runs (no "run dbt first") and predicts the creates
        plan = dbt_project.sync("plan", "-s", "stripe_customers")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "dbt run" not in plan.stdout + plan.stderr
    finally:
        built.drop_schemas()
