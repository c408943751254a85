"""Packaging that pyproject.toml cannot express: the wheel carries, inside dbt_stripe_sync/,
- dbt_package/: the dbt package (dbt_project.yml + the repository's macros/), loaded when a dbt
  project does not install dbt_stripe_sync through packages.yml;
- demo_project/: the example dbt project (the repository's integration_tests/) for `dbt-stripe-sync demo`.
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

DEMO_FILES = ["dbt_project.yml", "profiles.yml", "models/*", "models/**/*", "seeds/*.csv"]

setup(
    packages=[
        *find_packages(include=["dbt_stripe_sync", "dbt_stripe_sync.*"]),
        "dbt_stripe_sync.dbt_package",
        "dbt_stripe_sync.dbt_package.macros",
        "dbt_stripe_sync.demo_project",
    ],
    package_dir={
        "dbt_stripe_sync.dbt_package.macros": "macros",
        "dbt_stripe_sync.demo_project": "integration_tests",
    },
    package_data={
        "dbt_stripe_sync": ["py.typed"],
        "dbt_stripe_sync.dbt_package": ["dbt_project.yml"],
        "dbt_stripe_sync.dbt_package.macros": ["*.sql"],
        "dbt_stripe_sync.demo_project": DEMO_FILES,
    },
    exclude_package_data={"dbt_stripe_sync.demo_project": ["*.duckdb", "*.duckdb.wal"]},
)
