"""The command line: global options before or after the sub-command, usage errors exit 2."""

from __future__ import annotations

import pytest

from dbt_stripe_sync.cli import build_parser, main, normalize_argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["run"]),
        (["-v"], ["run", "-v"]),
        (["plan", "-v"], ["plan", "-v"]),
        (["-v", "plan"], ["plan", "-v"]),
        (["--verbose", "validate", "-s", "a"], ["validate", "--verbose", "-s", "a"]),
        (["--project-dir", "plan", "validate"], ["validate", "--project-dir", "plan"]),  # a dir named plan
        (["-s", "a", "b", "--target", "ci", "plan"], ["plan", "-s", "a", "b", "--target", "ci"]),
        (["--version"], ["--version"]),
    ],
)
def test_the_sub_command_may_come_anywhere(argv, expected):
    assert normalize_argv(argv) == expected


def test_space_separated_selectors_and_repeated_flags_accumulate():
    argv = ["-s", "a", "b", "plan", "-s", "tag:x", "--exclude", "c"]
    args = build_parser().parse_args(normalize_argv(argv))
    assert args.command == "plan"
    assert args.select == ["a", "b", "tag:x"]
    assert args.exclude == ["c"]


def test_full_refresh_is_a_run_and_plan_option():
    assert build_parser().parse_args(["run", "--full-refresh"]).full_refresh is True
    assert build_parser().parse_args(["plan", "--full-refresh"]).full_refresh is True


def test_usage_errors_exit_2(capsys):
    assert main(["plan", "--no-such-option"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    assert main(["validate", "--project-dir", "/nonexistent/dir"]) == 2
    err = capsys.readouterr().err
    assert "no dbt_project.yml in /nonexistent/dir" in err and "--project-dir" in err
