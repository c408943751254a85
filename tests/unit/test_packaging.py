"""The dbt package shipped in the wheel is the repository's dbt package."""

from __future__ import annotations

from pathlib import Path

import yaml

from dbt_stripe_sync.dbt_manifest import shipped_package_dir

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_dbt_project_matches_the_repository_root():
    root = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    shipped = yaml.safe_load((REPO / "dbt_stripe_sync" / "dbt_package" / "dbt_project.yml").read_text())
    assert shipped == root


def test_a_source_checkout_uses_the_repository_macros():
    assert shipped_package_dir() == REPO
    assert (shipped_package_dir() / "macros" / "diff.sql").is_file()
