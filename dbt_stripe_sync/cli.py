"""`dbt-stripe-sync [run|plan|validate|emulator|demo] [options]`; no sub-command means `run`.

Exit codes: 0 everything synced; 1 the run finished but rows were rejected or a sync failed;
2 invalid configuration or usage (nothing was sent).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from dbt_stripe_sync import __version__, closed_output, fast_exit, log_setup
from dbt_stripe_sync.errors import DssError, UsageError
from dbt_stripe_sync.secrets import install_log_filter, redact_all

COMMANDS = ("run", "plan", "validate", "history", "report", "emulator", "demo")


def _dbt_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--project-dir",
        default=os.environ.get("DBT_PROJECT_DIR", "."),
        help="dbt project directory (env DBT_PROJECT_DIR; default: current directory)",
    )
    p.add_argument(
        "--profiles-dir",
        default=os.environ.get("DBT_PROFILES_DIR"),
        help="directory of profiles.yml (env DBT_PROFILES_DIR; default: project dir, then ~/.dbt)",
    )
    p.add_argument(
        "--target",
        "-t",
        default=os.environ.get("DBT_TARGET"),
        help="dbt target whose relations are read and whose schema holds the ledger (env DBT_TARGET)",
    )
    p.add_argument(
        "--select",
        "-s",
        nargs="+",
        action="extend",
        default=[],
        metavar="SELECTOR",
        help="models to sync, as dbt selects them: names, tag:x, path:x, config.x:y, state:modified, "
        "+x, x+, a,b (intersection), a b (union)",
    )
    p.add_argument(
        "--exclude", nargs="+", action="extend", default=[], metavar="SELECTOR", help="as dbt's --exclude"
    )
    p.add_argument("--selector", default=None, help="a selector defined in selectors.yml")
    p.add_argument("--state", default=None, metavar="DIR", help="artifacts state: selectors compare with")
    p.add_argument("--vars", default=None, help="dbt vars as YAML/JSON, e.g. '{dbt_stripe_sync: {...}}'")
    _verbose(p)


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true", help="log every API call and warehouse step")
    _output_options(p)


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=argparse.SUPPRESS,
        help="json: every log line on stderr is one JSON object (as dbt's flag)",
    )
    p.add_argument(
        "--no-progress", action="store_true", default=argparse.SUPPRESS, help="no progress display on stderr"
    )


def build_parser(emulator_options: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbt-stripe-sync",
        description="Sync dbt models annotated with a stripe_sync meta block to Stripe. Options may come "
        "before or after the sub-command; no sub-command means run.",
    )
    parser.add_argument("--version", action="version", version=f"dbt-stripe-sync {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="sync every selected model (the default)")
    _dbt_options(run)
    run.add_argument("--output", "-o", help="also write the run report as JSON to this file")
    plan = sub.add_parser("plan", help="show what would change, field by field; writes nothing anywhere")
    _dbt_options(plan)
    for p in (run, plan):
        p.add_argument(
            "--full-refresh",
            action="store_true",
            help="re-send every row of the selected syncs as if never synced (matched objects are "
            "updated, never duplicated; no deletes are inferred)",
        )
    plan.add_argument("--output", "-o", help="also write the whole plan (every row) as JSON to this file")
    plan.add_argument("--sample", type=int, default=5, help="rows shown per action (default 5)")
    plan.add_argument(
        "--against",
        choices=("ledger", "stripe"),
        default="ledger",
        help="stripe: read the changed rows' current Stripe objects for real before-values and drift",
    )
    validate = sub.add_parser("validate", help="check every stripe_sync block; no API calls, no writes")
    _dbt_options(validate)
    history = sub.add_parser("history", help="recent runs per sync, or one row's operations (--key)")
    _dbt_options(history)
    history.add_argument("--key", help="show every operation on the row with this primary key")
    history.add_argument("--limit", type=_positive_int, default=20, help="rows shown (default 20)")
    report = sub.add_parser("report", help="write one self-contained HTML page from the warehouse tables")
    _dbt_options(report)
    report.add_argument("--output", "-o", default="stripe_sync_report.html", help="the HTML file to write")
    report.add_argument("--days", type=_positive_int, default=30, help="runs of the last N days (default 30)")
    emulator = sub.add_parser("emulator", help="run the bundled Stripe emulator")
    if emulator_options:  # importing the emulator (an HTTP server) is for its own command only
        from dbt_stripe_sync.emulator import add_arguments

        add_arguments(emulator)
    _verbose(emulator)
    demo = sub.add_parser("demo", help="build the bundled example on DuckDB and sync it to the emulator")
    demo.add_argument("--workdir", help="where to copy the example project (default: a temporary directory)")
    _verbose(demo)
    return parser


# Options that take exactly one value: the token after one is never the sub-command.
_ONE_VALUE = {
    "--project-dir",
    "--profiles-dir",
    "--target",
    "-t",
    "--vars",
    "--selector",
    "--state",
    "--output",
    "-o",
    "--sample",
    "--workdir",
    "--log-format",
    "--key",
    "--limit",
    "--days",
    "--against",
}


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Put the sub-command first, wherever it was given (`-v plan` == `plan -v`); none means run."""
    argv = list(argv)
    if any(a in {"-h", "--help", "--version"} for a in argv[:1]):
        return argv
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in COMMANDS:
            return [token, *argv[:i], *argv[i + 1 :]]
        if token == "--":
            break
        i += 2 if token in _ONE_VALUE else 1
    return ["run", *argv]


def _parse_vars(text: str | None) -> dict:
    if not text:
        return {}
    try:
        import yaml

        value = yaml.safe_load(text)
    except Exception:
        try:
            value = json.loads(text)
        except ValueError:
            raise UsageError(f"--vars is neither YAML nor JSON: {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise UsageError("--vars must be a mapping, e.g. '{dbt_stripe_sync: {max_delete_fraction: 0.2}}'")
    return value


def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(
            f"--output {path}: the folder {folder} does not exist; create it or pick another path"
        )
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"--output {path}: not writable; pick another path")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    with closed_output.guarded():  # a reader that left (`| head`) neither stops nor passes a run
        code = _main(argv)
    if argv is None and fast_exit.is_program():  # the program, not Python code calling main()
        fast_exit.exit_now(code)  # no interpreter teardown (~0.5 s of CPU): fast_exit.py
    return code


def _main(argv: Sequence[str] | None) -> int:
    argv = normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser(emulator_options=bool(argv) and argv[0] == "emulator")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return 2 if exc.code not in (0, None) else 0
    verbose = bool(getattr(args, "verbose", False))
    log_format = getattr(args, "log_format", "text")
    log_setup.setup(verbose, log_format)
    install_log_filter("", "dbt_stripe_sync", "stripe")
    try:
        if args.command == "emulator":
            from dbt_stripe_sync.emulator import run_from_args

            return run_from_args(args)
        if args.command == "demo":
            from dbt_stripe_sync.demo import run_demo

            return run_demo(args.workdir, progress=not getattr(args, "no_progress", False))
        if args.command == "history":
            from dbt_stripe_sync.history import show_history

            return show_history(
                args.project_dir, args.profiles_dir, args.target, _parse_vars(args.vars),
                models=tuple(args.select), key=args.key, limit=args.limit,
            )  # fmt: skip
        if args.command == "report":
            from dbt_stripe_sync.html_report import write_report

            return write_report(
                args.project_dir, args.profiles_dir, args.target, _parse_vars(args.vars),
                output=args.output, models=tuple(args.select), days=args.days,
            )  # fmt: skip
        from dbt_stripe_sync.engine import Invocation, execute

        inv = Invocation(
            command=args.command,
            project_dir=args.project_dir,
            profiles_dir=args.profiles_dir,
            target=args.target,
            select=tuple(args.select),
            exclude=tuple(args.exclude),
            selector=args.selector,
            state=args.state,
            full_refresh=getattr(args, "full_refresh", False),
            vars=_parse_vars(args.vars),
            output=getattr(args, "output", None),
            sample=getattr(args, "sample", 5),
            progress=not getattr(args, "no_progress", False),
            against=getattr(args, "against", "ledger"),
        )
        if inv.output and inv.command in ("run", "plan"):
            _check_writable(inv.output)  # before anything is sent, not after
        return execute(inv)
    except BrokenPipeError:  # `dbt-stripe-sync plan | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except DssError as exc:
        log_setup.emit_error(f"error: {redact_all(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        log_setup.emit_error("interrupted: pending writes are finished by the next run")
        return 1
    except Exception as exc:
        from dbt_stripe_sync.config.errors import ConfigError

        if isinstance(exc, ConfigError):
            log_setup.emit_error(
                "invalid stripe_sync configuration (nothing was sent):\n" + redact_all(str(exc))
            )
            return 2
        if verbose:
            raise
        log_setup.emit_error(
            f"error: {redact_all(f'{type(exc).__name__}: {exc}')} (run with --verbose for the traceback)"
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
