"""Shared fixtures: a copy of the integration_tests dbt project per test, on DuckDB or PostgreSQL,
built with the real `dbt` CLI and synced with the real `dbt-stripe-sync` CLI."""

from __future__ import annotations

import os

import pytest

from tests.support.dbt_project import DbtProject, postgres_env
from tests.support.prebuilt_postgres import PrebuiltPostgres, unique_schema

WAREHOUSES = ["duckdb", "postgres"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--warehouse",
        action="append",
        choices=WAREHOUSES,
        help="warehouse(s) for integration tests (default: duckdb, plus postgres when DSS_PG_HOST is set)",
    )


def _warehouses(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--warehouse")
    if chosen:
        return chosen
    return ["duckdb", "postgres"] if os.environ.get("DSS_PG_HOST") else ["duckdb"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "warehouse" in metafunc.fixturenames:
        metafunc.parametrize("warehouse", _warehouses(metafunc.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (a minute or more each) run first, so that with several workers
    (scripts/test: `-n 2 --dist worksteal`) the short tests fill in around them and no worker is left
    running a long one alone at the end. A stable sort: the order is otherwise unchanged."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def project_template(tmp_path_factory):
    return DbtProject.template(tmp_path_factory.mktemp("template") / "project")


@pytest.fixture(scope="session")
def prebuilt_duckdb(project_template, tmp_path_factory):
    return DbtProject.prebuilt_duckdb(project_template, tmp_path_factory.mktemp("prebuilt") / "project")


@pytest.fixture(scope="session")
def prebuilt_postgres(project_template, tmp_path_factory):
    """The project built once per worker in a schema of its own; each test gets a copy (see module)."""
    prebuilt = PrebuiltPostgres.build(project_template, tmp_path_factory.mktemp("prebuilt_pg") / "project")
    yield prebuilt
    prebuilt.drop()


@pytest.fixture
def dbt_project(request, tmp_path, warehouse: str, stripe_emulator, project_template) -> DbtProject:
    """The integration_tests project copied to tmp_path, deps installed, pointed at a fresh emulator."""
    env = {"STRIPE_API_KEY": "sk_test_dssintegration", "STRIPE_API_BASE": stripe_emulator.url}
    if warehouse == "duckdb":
        # the DuckDB file lives inside the project copy, under the name the prebuilt manifest expects
        env.update(
            {"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(tmp_path / "project" / "warehouse.duckdb")}
        )
        prebuilt = request.getfixturevalue("prebuilt_duckdb")
        project = DbtProject.create(tmp_path / "project", env, project_template, prebuilt)
    else:  # the tables copied into a schema of the test's own, target/ rewritten to name it
        env.update(postgres_env(unique_schema()))
        project = request.getfixturevalue("prebuilt_postgres").copy(tmp_path / "project", env)
    project.build()  # every test starts from built models (a no-op for both prebuilt copies)
    project.emulator = stripe_emulator
    yield project
    project.drop_schemas()
