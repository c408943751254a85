"""The Python API (issues #9, #11): `dbt_stripe_sync.run/plan` return the run report; the Airflow and
Dagster examples of docs/orchestrators.md run as written (only the orchestrator imports are stubbed)."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

import dbt_stripe_sync
from dbt_stripe_sync.run_report import RunReport, SyncFailed
from tests.support.dbt_project import REPO, api_writes

pytestmark = pytest.mark.timeout(300)
DOC = REPO / "docs" / "orchestrators.md"


def _example(heading: str) -> str:
    text = DOC.read_text()
    section = text.split(f"## {heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block under ## {heading}"
    return match.group(1)


def _use_project_env(monkeypatch, project) -> None:
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project.path))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(project.path))


def _stub(monkeypatch, name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, module)


def _airflow_stubs(monkeypatch) -> list[str]:
    dags: list[str] = []

    def task(**_kwargs):
        return lambda fn: fn

    def dag(**_kwargs):
        def register(fn):
            return lambda: dags.append(fn.__name__)  # building the DAG does not run its tasks

        return register

    _stub(monkeypatch, "airflow")
    _stub(monkeypatch, "airflow.decorators", dag=dag, task=task)
    return dags


def _dagster_stubs(monkeypatch) -> None:
    class MaterializeResult:
        def __init__(self, metadata=None):
            self.metadata = metadata or {}

    class MetadataValue:
        @staticmethod
        def json(value):
            return {"json": value}

    class Definitions:
        def __init__(self, assets=()):
            self.assets = list(assets)

    def asset(**_kwargs):
        return lambda fn: fn

    _stub(
        monkeypatch,
        "dagster",
        asset=asset,
        Definitions=Definitions,
        MaterializeResult=MaterializeResult,
        MetadataValue=MetadataValue,
    )


def test_plan_then_run_return_the_report(dbt_project, tmp_path):
    emu = dbt_project.emulator
    common = {
        "project_dir": dbt_project.path,
        "profiles_dir": dbt_project.path,
        "select": ["stripe_customers"],
        "target": dbt_project.target,
    }
    import os

    saved = dict(os.environ)
    os.environ.update(dbt_project.env)
    try:
        planned = dbt_stripe_sync.plan(**common)
        assert isinstance(planned, RunReport) and planned.ok
        assert planned.sync("stripe_customers").counts["created"] == 5
        assert len(planned.plans[0]["rows"]) == 5
        assert api_writes(emu.requests()) == []

        emu.clear_requests()
        out = tmp_path / "report.json"
        report = dbt_stripe_sync.run(**common, output=out, vars={"dbt_stripe_sync": {"batch_size": 2}})
        assert report.status == "success" and report.exit_code == 0
        assert report.to_dict() == json.loads(out.read_text())
        assert report.sync("stripe_customers").api_calls == len(emu.requests()) == 6  # 1 list, 5 creates
        assert report.raise_for_status() is report
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_airflow_and_dagster_examples_run_as_documented(dbt_project, monkeypatch):
    emu = dbt_project.emulator
    _use_project_env(monkeypatch, dbt_project)
    dags = _airflow_stubs(monkeypatch)
    _dagster_stubs(monkeypatch)

    airflow_ns: dict = {"__name__": "airflow_example"}
    exec(compile(_example("Airflow"), str(DOC), "exec"), airflow_ns)
    assert dags == ["stripe_sync"] and len(emu.requests()) == 0  # defining the DAG sent nothing
    xcom = airflow_ns["sync_to_stripe"]()
    assert xcom["status"] == "success" and xcom["syncs"][0]["counts"]["created"] == 5
    assert len([c for c in emu.objects("customer") if not c.get("deleted")]) == 5

    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Augusta Ada King"
    rows[1]["email"] = "grace-at-example.com"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    dagster_ns: dict = {"__name__": "dagster_example"}
    exec(compile(_example("Dagster"), str(DOC), "exec"), dagster_ns)
    assert dagster_ns["defs"].assets == [dagster_ns["stripe_customers_in_stripe"]]
    with pytest.raises(SyncFailed, match=r"partial.*stripe_customers: partial") as failed:
        dagster_ns["stripe_customers_in_stripe"]()  # a rejected row fails the asset
    sync = failed.value.report.sync("stripe_customers")
    assert (sync.counts["updated"], sync.counts["rejected"]) == (1, 1)
    assert sync.rejected_rows[0].key == "2"

    rows[1]["email"] = "grace@example.com"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    result = dagster_ns["stripe_customers_in_stripe"]()
    assert result.metadata["report"]["json"]["status"] == "success"
    assert (result.metadata["updated"], result.metadata["created"]) == (0, 0)  # grace back as she was
    assert Path(dbt_project.path).exists()


@pytest.mark.parametrize("stream_min_rows", [0, 20_000])
def test_a_run_counts_each_model_once(dbt_project, monkeypatch, stream_min_rows):
    """`run` decides whether to stream a model by its row count; the diff that follows (streamed or whole)
    reuses that count instead of querying the model (for a view: evaluating it) a second time."""
    from dbt_stripe_sync import diff

    counted: list[str] = []
    real = diff.model_row_count

    def spy(wh, relation):
        counted.append(relation)
        return real(wh, relation)

    monkeypatch.setattr(diff, "model_row_count", spy)
    for name, value in dbt_project.env.items():
        monkeypatch.setenv(name, value)
    common = {
        "project_dir": dbt_project.path,
        "profiles_dir": dbt_project.path,
        "select": ["stripe_customers"],
        "target": dbt_project.target,
        "vars": {"dbt_stripe_sync": {"stream_min_rows": stream_min_rows}},
    }
    first = dbt_stripe_sync.run(**common)
    assert first.sync("stripe_customers").counts["created"] == 5
    again = dbt_stripe_sync.run(**common)  # a no-op
    assert again.sync("stripe_customers").counts["unchanged"] == 5
    assert len(counted) == 2 and "stripe_customers" in counted[0], counted
