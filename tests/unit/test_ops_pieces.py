"""Pure pieces of issue #11: natural key order, changed-leaf display, run status, alert settings."""

from __future__ import annotations

import pytest
import yaml

from dbt_stripe_sync.alerts import Alert, is_failure, parse_alerts, send_alerts, slack_message
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.plan_view import leaf_changes, natural_key
from dbt_stripe_sync.planner import _pct
from dbt_stripe_sync.report import SyncSummary
from dbt_stripe_sync.run_report import build_report, overall_status


def test_keys_sort_naturally():
    keys = ["10", "2", "1", "row10", "row2", "b", "a", "11"]
    assert sorted(keys, key=natural_key) == ["1", "2", "10", "11", "a", "b", "row2", "row10"]


def test_only_changed_leaves_are_shown():
    params = {"address": {"line1": "1 Main St", "country": "US", "city": "Boston"}, "name": "Ada"}
    before = {"address": {"line1": "1 Main St", "country": "US", "city": "Austin"}, "name": "Ada"}
    assert leaf_changes(params, before) == {"address.city": {"before": "Austin", "after": "Boston"}}
    flat = {"address.country": "US", "address.city": "Boston"}
    assert leaf_changes(flat, {"address.country": "US", "address.city": "Austin"}) == {
        "address.city": {"before": "Austin", "after": "Boston"}
    }
    assert leaf_changes({"tags": ["a", "c"]}, {"tags": ["a", "b"]}) == {
        "tags[1]": {"before": "b", "after": "c"}
    }
    assert leaf_changes({"name": "Ada"}, {}) == {"name": {"before": None, "after": "Ada"}}  # a create


def test_delete_share_is_never_rounded_to_zero():
    assert [_pct(0.005), _pct(0.6), _pct(0.125), _pct(0.5), _pct(1.0)] == [
        "0.5%",
        "60%",
        "12.5%",
        "50%",
        "100%",
    ]


def test_overall_status():
    assert overall_status(["success", "skipped"]) == "success"
    assert overall_status(["success", "partial"]) == "partial"
    assert overall_status(["blocked", "error"]) == "failed"
    assert overall_status(["blocked", "success"]) == "partial"
    assert overall_status([]) == "success"


def test_alert_settings_parse_yaml_on_key_and_refuse_urls():
    raw = yaml.safe_load("alerts:\n  - url_env: HOOK\n    format: json\n    on: always\n")["alerts"]
    assert True in raw[0]  # YAML 1.1 reads `on:` as the boolean True, as dbt's loader does
    assert parse_alerts(raw) == [Alert("HOOK", "json", "always")]
    assert parse_alerts([{"url_env": "HOOK"}]) == [Alert("HOOK", "slack", "failure")]
    with pytest.raises(UsageError, match=r"alerts\[0\]\.format: 'email' is not one of slack, json"):
        parse_alerts([{"url_env": "HOOK", "format": "email"}])
    with pytest.raises(UsageError, match="put the URL in an environment variable") as exc:
        parse_alerts([{"url_env": "https://hooks.slack.com/services/T/B/secret"}])
    assert "secret" not in str(exc.value)
    with pytest.raises(UsageError, match=r"alerts\[0\]: unknown key\(s\) url"):
        parse_alerts([{"url_env": "HOOK", "url": "x"}])


def test_failure_means_blocked_errored_or_any_rejected_row_and_slack_text_names_them():
    ok = SyncSummary("stripe_customers", "customer", "success", counts={"created": 2})
    rejected = SyncSummary(
        "stripe_prices", "price", "partial", counts={"rejected": 1}, rejected_rows=[("pro", "no product")]
    )
    import datetime as dt

    now = dt.datetime(2024, 1, 1)
    good = build_report("r1", now, now, [ok])
    bad = build_report("r2", now, now, [ok, rejected])
    assert not is_failure(good) and is_failure(bad)
    text = slack_message(bad)["text"]
    assert "run partial" in text and "*stripe_prices* (price): partial — 1 rejected" in text
    assert "row pro: no product" in text

    sent: list[bytes] = []
    alerts = [Alert("HOOK", "json", "failure"), Alert("HOOK", "slack", "always")]
    problems = send_alerts(
        alerts, good, env={"HOOK": "http://127.0.0.1:9/x"}, post=lambda u, b, t: sent.append(b) or 200
    )
    assert problems == [] and len(sent) == 1  # the failure-only alert was not due
    problems = send_alerts(alerts, bad, env={}, post=lambda u, b, t: 200)
    assert problems == [
        "alert 1 (json, url_env HOOK) not sent: the environment variable HOOK is not set",
        "alert 2 (slack, url_env HOOK) not sent: the environment variable HOOK is not set",
    ]


class _Tty(__import__("io").StringIO):
    def isatty(self) -> bool:
        return True


def test_summary_colour_on_a_terminal_only_and_never_with_no_color(monkeypatch):
    import io

    from dbt_stripe_sync.report import print_summary

    rows = [SyncSummary("stripe_customers", "customer", "blocked", message="stripe_customers: primary_key x")]
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, plain = _Tty(), io.StringIO()
    print_summary(tty, rows)
    print_summary(plain, rows)
    assert "\033[31mblocked" in tty.getvalue()
    assert "\033[" not in plain.getvalue()
    assert "stripe_customers: primary_key x" in plain.getvalue()
    assert "stripe_customers: stripe_customers:" not in plain.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    no_colour = _Tty()
    print_summary(no_colour, rows)
    assert "\033[" not in no_colour.getvalue()


def test_slack_text_escapes_every_run_value_and_a_stopped_run_names_its_reason(tmp_path):
    """F6 and F4 in pure form: `&`, `<`, `>` escaped; a run stopped before syncing is a failure whose
    report carries `error`; the alert list is read from dbt_project.yml when settings never loaded."""
    import datetime as dt

    from dbt_stripe_sync.alerts import slack_escape
    from dbt_stripe_sync.errors import UsageError
    from dbt_stripe_sync.start_failure import configured_alerts, failure_report

    assert slack_escape("<!channel> a&b <https://x|y>") == "&lt;!channel&gt; a&amp;b &lt;https://x|y&gt;"
    now = dt.datetime(2026, 1, 1)
    hostile = SyncSummary("m<x>", "customer", "partial", counts={"rejected": 1})
    hostile.rejected_rows = [("<!here>", "email: '<@U123>&co' is not valid")]
    text = slack_message(build_report("r3", now, now, [hostile]))["text"]
    assert "<" not in text and ">" not in text
    assert "row &lt;!here&gt;: email: '&lt;@U123&gt;&amp;co'" in text and "*m&lt;x&gt;*" in text

    stopped = failure_report(UsageError("model <x> was edited"), now)
    assert stopped.status == "failed" and stopped.exit_code == 1 and is_failure(stopped)
    assert stopped.to_dict()["error"] == "model <x> was edited" and stopped.to_dict()["syncs"] == []
    assert "stopped before syncing: model &lt;x&gt; was edited" in slack_message(stopped)["text"]
    assert "error" not in build_report("r4", now, now, []).to_dict()  # the run report keeps its keys

    (tmp_path / "dbt_project.yml").write_text(
        "name: p\nvars:\n  dbt_stripe_sync:\n    alerts: [{url_env: HOOK_A, on: always}]\n"
    )
    assert configured_alerts(str(tmp_path), {}, None) == [Alert("HOOK_A", "slack", "always")]
    cli = {"dbt_stripe_sync": {"alerts": [{"url_env": "HOOK_B", "format": "json"}]}}
    assert configured_alerts(str(tmp_path), cli, None) == [Alert("HOOK_B", "json", "failure")]
    assert configured_alerts(str(tmp_path), {}, ({"url_env": "HOOK_C"},)) == [Alert("HOOK_C")]
    assert configured_alerts(str(tmp_path), {"dbt_stripe_sync": {"alerts": ["bad"]}}, None) == []


def test_changelog_rows_take_the_account_of_the_ledger_entry_written_with_them():
    import datetime as dt

    from dbt_stripe_sync.changelog import ChangelogRecorder, with_accounts
    from dbt_stripe_sync.ledger import LedgerEntry

    rec = ChangelogRecorder("run1", lambda: dt.datetime(2026, 1, 1))
    for key in ("a", "b", "c"):
        rec.record("s", key, action="create", outcome="ok")
    entries = [
        LedgerEntry(sync_name="s", source_key="a", stripe_account="acct_1A"),
        LedgerEntry(sync_name="s", source_key="b"),
        LedgerEntry(sync_name="other", source_key="c", stripe_account="acct_1C"),
    ]
    rows = with_accounts(rec.take("s", ["a", "b", "c"]), entries)
    assert [(r.source_key, r.stripe_account) for r in rows] == [("a", "acct_1A"), ("b", None), ("c", None)]


def test_an_alert_url_that_is_not_http_is_never_opened_nor_printed():
    import datetime as dt

    now = dt.datetime(2024, 1, 1)
    report = build_report("r1", now, now, [SyncSummary("stripe_customers", "customer", "error")])
    opened: list[str] = []
    url = "file:///etc/HOOKSECRETfile"
    problems = send_alerts(
        [Alert("HOOK", "json", "failure")],
        report,
        env={"HOOK": url},
        post=lambda u, b, t: opened.append(u) or 200,
    )
    assert opened == []
    assert problems == ["alert 1 (json, url_env HOOK) not sent: the URL in HOOK is not an http(s) URL"]
    assert "HOOKSECRET" not in problems[0]


def test_a_state_schema_that_is_not_a_plain_name_is_refused():
    from dbt_stripe_sync.settings import load_settings

    assert load_settings({"dbt_stripe_sync": {"state_schema": "billing_sync"}}).state_schema == "billing_sync"
    for bad in ('atk bad"schema', "a;drop", "x.y", ""):
        with pytest.raises(UsageError, match="state_schema"):
            load_settings({"dbt_stripe_sync": {"state_schema": bad}})


@pytest.mark.parametrize(
    "args", [["history", "--limit", "0"], ["history", "--limit", "-1"], ["report", "--days", "-5"]]
)
def test_history_limit_and_report_days_must_be_positive(args, capsys):
    from dbt_stripe_sync.cli import main

    assert main(args) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_an_output_path_that_cannot_be_written_is_refused_before_anything_runs(tmp_path, capsys):
    from dbt_stripe_sync.cli import main

    missing = tmp_path / "no" / "such" / "report.json"
    # the project does not even exist: the path is checked first, so nothing else is reached
    assert main(["run", "--output", str(missing), "--project-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key", ["rate_limit", "endpoint_rate_limit", "search_rate_limit", "request_timeout_s"]
)
@pytest.mark.parametrize("bad", [0, -1, "0", "-2.5", "nan", "inf", "abc", None, True])
def test_rate_limits_and_timeouts_must_be_above_zero(key, bad):
    """Finding 11: `rate_limit: 0` passed the settings check, then failed after connecting (exit 1)."""
    from dbt_stripe_sync.settings import load_settings

    with pytest.raises(UsageError, match=rf"vars\.dbt_stripe_sync\.{key}: invalid value .*above 0") as err:
        load_settings({"dbt_stripe_sync": {key: bad}})
    assert "remove the setting to use the default" in str(err.value)
    assert getattr(load_settings({"dbt_stripe_sync": {key: "12.5"}}), key) == 12.5
