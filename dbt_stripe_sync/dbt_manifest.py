"""dbt's own view of the project for the chosen target, and the SQL macros this tool runs.

The manifest is parsed in-process by dbt's ManifestLoader with the chosen target's profile, so
relations (database, schema, alias through the project's generate_*_name macros), configs and
selection are exactly what `dbt ls --target T` sees, whatever target `target/manifest.json` was
last written for. Partial parsing reads dbt's saved state (`target/partial_parse.msgpack`) and
compares file checksums, so an unchanged project costs a fraction of a full parse. Nothing is
written to the project: the user's `target/` stays as dbt left it.

The diff and ledger macros come from the dbt package `dbt_stripe_sync` when the project installs
it (packages.yml; then the project's copy and its dispatch overrides win), else from the copy
shipped inside this Python package, loaded as that same package name so
`adapter.dispatch('x', 'dbt_stripe_sync')` resolves either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt_stripe_sync.errors import UsageError

PACKAGE_NAME = "dbt_stripe_sync"
_HERE = Path(__file__).resolve().parent


def shipped_package_dir() -> Path:
    """The dbt package (dbt_project.yml + macros/) shipped with this Python package.

    In a wheel it sits inside the package (`dbt_stripe_sync/dbt_package/`); in a source checkout
    or an editable install it is the repository root, which is itself that dbt package.
    """
    for candidate in (_HERE / "dbt_package", _HERE.parent):
        if (candidate / "dbt_project.yml").is_file() and (candidate / "macros").is_dir():
            return candidate
    raise UsageError(
        f"the SQL macros of dbt-stripe-sync are missing from its installation ({_HERE}); "
        "reinstall it with `pip install --force-reinstall dbt-stripe-sync`"
    )


def parse_manifest(config: Any) -> Any:
    """dbt's Manifest for `config`'s target, parsed the way `dbt parse` would, writing nothing."""
    from dbt.exceptions import UninstalledPackagesFoundError
    from dbt.parser.manifest import ManifestLoader
    from dbt_common.exceptions import DbtBaseException

    class _ReadOnlyLoader(ManifestLoader):
        def write_manifest_for_partial_parse(self) -> None:  # the user's target/ is dbt's, not ours
            pass

        def track_project_load(self) -> None:  # no anonymous usage tracking from this tool
            pass

    try:
        return _ReadOnlyLoader.get_full_manifest(config)
    except UninstalledPackagesFoundError as exc:
        raise UsageError(
            f"the packages in {config.packages_specified_path} are not installed "
            f"in {config.packages_install_path}: run `dbt deps` in {config.project_root} first"
        ) from exc
    except DbtBaseException as exc:
        text = " ".join(str(exc).split())[:800]
        raise UsageError(
            f"dbt could not parse the project {config.project_root}: {text} — fix it "
            "(`dbt parse` shows the same error), then run again"
        ) from exc


def ensure_package_macros(config: Any, manifest: Any) -> str:
    """Make the dbt_stripe_sync macros resolvable in `manifest`; say where they come from."""
    if any(m.package_name == PACKAGE_NAME for m in manifest.macros.values()):
        return "project"
    from dbt.parser.manifest import ManifestLoader

    package = config.new_project(str(shipped_package_dir()))
    loader = ManifestLoader(config, {PACKAGE_NAME: package})
    shipped = loader.create_macro_manifest()
    manifest.macros.update(shipped.macros)
    # the manifest caches its macro look-ups: drop them so the added macros are found
    manifest._macros_by_name = None
    manifest._macros_by_package = None
    # dispatch searches [root project, package] only for a namespace that is a dependency: register it,
    # so a project's own default__/<adapter>__ override wins over the shipped macro as it would otherwise
    if config.dependencies is not None:
        config.dependencies[PACKAGE_NAME] = package
    return "shipped"
