"""The integration project built once per session on PostgreSQL, then copied per test.

`dbt build` of the project costs each PostgreSQL test ~6-10 s of dbt start-up, seeding and DDL. As
the prebuilt DuckDB copy does, a worker builds the project once, in a schema of its own, and each test
then gets a copy: the warehouse tables copied by SQL into the test's own schema (`create table ... as
table ...`, column types kept), and the project directory copied with its target/ artefacts, in which
the build schema's name is replaced by the test's (same length, so msgpack and pickle stay valid).
target/manifest.json then says what `dbt build` would have written for that schema, so the CLI's
staleness check and selection see exactly what they would after a build of their own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support import partial_parse
from tests.support.dbt_project import DbtProject, pg_connect, postgres_env

_KEEP_PACKAGES = shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal")


def unique_schema() -> str:
    """A schema name unique to one test (or one prebuilt project); all have the same length."""
    return f"t_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class PrebuiltPostgres:
    path: Path  # the built project directory, target/ included
    schema: str  # the schema its models and seeds were built in

    @classmethod
    def build(cls, template: Path, path: Path) -> PrebuiltPostgres:
        shutil.copytree(template, path, symlinks=True, ignore=_KEEP_PACKAGES)
        schema = unique_schema()
        DbtProject(path, postgres_env(schema)).build()
        return cls(path, schema)

    def copy(self, path: Path, env: Mapping[str, str]) -> DbtProject:
        """A built project at `path` whose tables live in env's DSS_PG_SCHEMA."""
        schema = env["DSS_PG_SCHEMA"]
        if len(schema) != len(self.schema):
            raise ValueError(f"schema {schema!r} must be as long as {self.schema!r} (binary artefacts)")
        shutil.copytree(self.path, path, symlinks=True, ignore=shutil.ignore_patterns("logs"))
        old, new = self.schema.encode(), schema.encode()
        for file in (path / "target").rglob("*"):
            if file.is_file() and not file.is_symlink():
                data = file.read_bytes()
                if old in data:
                    file.write_bytes(data.replace(old, new))
        partial_parse.retarget(path, postgres_env(self.schema), env)  # no full parse in the copy
        project = DbtProject(path, env, built=True)
        self._copy_tables(project, schema)
        return project

    def _copy_tables(self, project: DbtProject, schema: str) -> None:
        con = pg_connect(project.env)
        try:
            with con, con.cursor() as cur:  # one transaction: the copy is whole or absent
                cur.execute(
                    "select table_name, table_type from information_schema.tables "
                    "where table_schema = %s order by table_name",
                    [self.schema],
                )
                found = cur.fetchall()
                tables = [name for name, kind in found if kind == "BASE TABLE"]
                others = [name for name, kind in found if kind != "BASE TABLE"]
                # views would need their definitions rewritten: build such a project per test instead
                assert tables and not others, (
                    f"prebuilt schema {self.schema}: tables {tables}, others {others}"
                )
                cur.execute(f'create schema "{schema}"')
                for table in tables:
                    cur.execute(f'create table "{schema}"."{table}" as table "{self.schema}"."{table}"')
        finally:
            con.close()

    def drop(self) -> None:
        DbtProject(self.path, postgres_env(self.schema)).drop_schemas()
