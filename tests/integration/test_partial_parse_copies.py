"""A `dbt_project` copy (tests/support/partial_parse.py) is parsed partially by dbt, as a project
built in place would be, and the partial parse gives the manifest a full parse gives."""

from __future__ import annotations

import json

from tests.support.dbt_project import DbtProject
from tests.support.partial_parse import MSGPACK


def _nodes(project: DbtProject) -> dict[str, dict]:
    manifest = json.loads((project.path / "target" / "manifest.json").read_text())
    keep = ("database", "schema", "alias", "relation_name", "checksum", "config", "original_file_path")
    return {
        uid: {k: node.get(k) for k in keep}
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }


def test_prebuilt_projects_parse_partially(dbt_project):
    partial = dbt_project.dbt("parse")
    assert "Unable to do partial parsing" not in partial.stdout, partial.stdout
    assert "Starting full parse" not in partial.stdout, partial.stdout
    nodes = _nodes(dbt_project)
    assert {n["schema"] for n in nodes.values()} == {dbt_project.schema}

    (dbt_project.path / MSGPACK).unlink()
    full = dbt_project.dbt("parse")
    assert "Starting full parse" in full.stdout, full.stdout
    assert _nodes(dbt_project) == nodes
