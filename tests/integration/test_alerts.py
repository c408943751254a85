"""Alerts (issue #11): `vars.dbt_stripe_sync.alerts` POSTs a Slack message or the JSON run report to a
local webhook after a real run; a failed alert never fails the sync and never prints its URL."""

from __future__ import annotations

import pytest

from tests.support.dbt_project import pg_connect
from tests.support.webhook import Webhook

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")


def _alerts(*items: str) -> str:
    return "{dbt_stripe_sync: {alerts: [" + ", ".join(items) + "]}}"


def test_json_alert_always_posts_the_run_report_and_slack_only_on_failure(dbt_project, tmp_path):
    with Webhook() as report_hook, Webhook() as slack_hook:
        env = {"DSS_REPORT_URL": report_hook.url, "SLACK_WEBHOOK_URL": slack_hook.url}
        alerts = _alerts(
            "{url_env: DSS_REPORT_URL, format: json, on: always}",
            "{url_env: SLACK_WEBHOOK_URL, format: slack, on: failure}",
        )
        out = tmp_path / "report.json"
        ok = dbt_project.sync("run", *SEL, "--vars", alerts, "--output", str(out), env=env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        (posted,) = report_hook.received
        import json

        assert posted["json"] == json.loads(out.read_text())  # the body is exactly the run report
        assert posted["headers"]["Content-Type"] == "application/json"
        assert slack_hook.received == []  # nothing failed: the failure-only alert stays quiet

        rows = dbt_project.read_seed("raw_customers")
        rows[3]["email"] = "katherine-at-example"
        dbt_project.write_seed("raw_customers", rows)
        dbt_project.build()
        partial = dbt_project.sync("run", *SEL, "--vars", alerts, env=env)
        assert partial.returncode == 1
        assert len(report_hook.received) == 2 and report_hook.received[1]["json"]["status"] == "partial"
        (slack,) = slack_hook.received
        text = slack["json"]["text"]
        assert "run partial" in text and "*stripe_customers* (customer): partial" in text
        assert "row 4:" in text and "not a valid email" in text


def test_a_failing_alert_never_fails_the_sync_and_never_shows_its_url(dbt_project):
    with Webhook(status=500) as broken:
        env = {"SLACK_WEBHOOK_URL": broken.url}
        alerts = _alerts(
            "{url_env: SLACK_WEBHOOK_URL, format: slack, on: always}", "{url_env: NOT_SET_ANYWHERE}"
        )
        result = dbt_project.sync("run", *SEL, "--vars", alerts, env=env)
    assert result.returncode == 0, result.stdout + result.stderr  # the sync itself succeeded
    assert len(broken.received) == 1
    assert (
        "alert 1 (slack, url_env SLACK_WEBHOOK_URL) not sent: the webhook answered HTTP 500" in result.stderr
    )
    # a failure-only alert after a successful run is not due, so a missing variable is not reported
    assert "NOT_SET_ANYWHERE" not in result.stderr
    output = result.stdout + result.stderr
    assert broken.url not in output and "SECRETPART" not in output and "127.0.0.1:" not in output

    refused = dbt_project.sync("run", *SEL, "--vars", _alerts("{url_env: 'https://hooks.slack.com/x'}"))
    assert refused.returncode == 2 and "put the URL in an environment variable" in refused.stderr
    assert "hooks.slack.com" not in refused.stderr


def test_an_unreachable_alert_is_reported_without_its_url(dbt_project):
    with Webhook() as hook:
        url = hook.url
    # the server is gone: the connection is refused
    alerts = _alerts("{url_env: DSS_REPORT_URL, format: json, on: always}")
    result = dbt_project.sync("run", *SEL, "--vars", alerts, env={"DSS_REPORT_URL": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alert 1 (json, url_env DSS_REPORT_URL) not sent:" in result.stderr
    assert url not in result.stderr and "SECRETPART" not in result.stderr


def test_slack_text_escapes_warehouse_values_so_they_cannot_ping_or_link(dbt_project):
    """F6: Slack's incoming-webhook format needs `&`, `<`, `>` escaped; the JSON format stays raw."""
    hostile = "<!here>&<https://evil.example|click>"
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["email"] = hostile
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    with Webhook() as slack_hook, Webhook() as json_hook:
        env = {"SLACK_WEBHOOK_URL": slack_hook.url, "DSS_REPORT_URL": json_hook.url}
        alerts = _alerts("{url_env: SLACK_WEBHOOK_URL}", "{url_env: DSS_REPORT_URL, format: json}")
        result = dbt_project.sync("run", *SEL, "--vars", alerts, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    (slack,) = slack_hook.received
    text = slack["json"]["text"]
    assert "row 2:" in text and "&lt;!here&gt;&amp;&lt;https://evil.example|click&gt;" in text
    assert "<" not in text and ">" not in text and "&lt;!here" in text
    (posted,) = json_hook.received
    (rejected,) = posted["json"]["syncs"][0]["rejected_rows"]
    assert hostile in rejected["reason"]  # the JSON report carries the value as it is


def _holding_the_state_lock(project, warehouse):
    """A context manager in which this test process holds what a run in progress would hold."""
    import contextlib

    @contextlib.contextmanager
    def held():
        if warehouse == "postgres":
            from tests.integration.test_one_writer import _lock_id

            env = project.env
            con = pg_connect(env, autocommit=True)
            try:
                with con.cursor() as cur:
                    cur.execute(
                        "select pg_try_advisory_lock(%s)",
                        [_lock_id(env["DSS_PG_DBNAME"], project.state_schema)],
                    )
                    assert cur.fetchone()[0] is True
                yield
            finally:
                con.close()
        else:
            import duckdb

            con = duckdb.connect(project.env["DSS_DUCKDB_PATH"])  # the file is held by this process
            try:
                yield
            finally:
                con.close()

    return held()


def test_a_run_stopped_before_syncing_still_alerts_with_its_reason(dbt_project, warehouse):
    """F4: lock busy, a model edited without `dbt run`, an invalid block: `on: failure` and `on: always`
    alerts are sent with the reason; the exit code is the one the failure has without alerts."""
    with Webhook() as report_hook, Webhook() as slack_hook:
        env = {"DSS_REPORT_URL": report_hook.url, "SLACK_WEBHOOK_URL": slack_hook.url}
        alerts = (
            "{dbt_stripe_sync: {lock_wait_s: 1, alerts: [{url_env: DSS_REPORT_URL, format: json, on: always},"
            " {url_env: SLACK_WEBHOOK_URL, format: slack, on: failure}]}}"
        )
        with _holding_the_state_lock(dbt_project, warehouse):
            busy = dbt_project.sync("run", *SEL, "--vars", alerts, env=env, subprocess_=True)
        assert busy.returncode == 1, busy.stdout + busy.stderr
        assert "locked by" in busy.stderr and dbt_project.emulator.requests() == []
        (report,) = [r["json"] for r in report_hook.received]
        assert report["status"] == "failed" and report["syncs"] == [] and "locked by" in report["error"]
        assert {"run_id", "started_at", "finished_at"} <= set(report)
        (slack,) = [r["json"]["text"] for r in slack_hook.received]
        assert "run failed" in slack and "stopped before syncing: " in slack and "locked by" in slack

        dbt_project.edit_schema_yml(
            "plan: plan_tier", "plan: plan_tier\n            metadata.tier: plan_tier"
        )
        stale = dbt_project.sync("run", *SEL, "--vars", alerts, env=env)
        assert stale.returncode == 2, stale.stdout + stale.stderr
        assert len(report_hook.received) == 2 and len(slack_hook.received) == 2
        assert "was edited" in report_hook.received[1]["json"]["error"]
        assert "was edited" in slack_hook.received[1]["json"]["text"]

        bad = alerts.replace("lock_wait_s: 1", "lock_wait_s: 1, max_delete_fraction: lots")
        invalid = dbt_project.sync("run", *SEL, "--vars", bad, env=env)
        assert invalid.returncode == 2, invalid.stdout + invalid.stderr
        assert "max_delete_fraction" in report_hook.received[2]["json"]["error"]
        assert len(slack_hook.received) == 3
    output = busy.stderr + stale.stderr + invalid.stderr
    assert report_hook.url not in output and "SECRETPART" not in output


def test_a_failed_alert_of_a_stopped_run_keeps_its_exit_code_and_json_lines(dbt_project):
    """F4 + F10: the alert problem is a warning (one JSON object under --log-format json), not a new
    failure; the fatal error line carries ts, level, logger and msg too."""
    import json

    dbt_project.edit_schema_yml("plan: plan_tier", "plan: plan_tier\n            metadata.tier: plan_tier")
    with Webhook(status=500) as broken:
        alerts = _alerts("{url_env: SLACK_WEBHOOK_URL, on: always}", "{url_env: NOT_SET_ANYWHERE}")
        result = dbt_project.sync(
            "run", *SEL, "--log-format", "json", "--vars", alerts, env={"SLACK_WEBHOOK_URL": broken.url}
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(broken.received) == 1
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records), records
    warnings = [r for r in records if r["level"] == "warning"]
    assert [r["logger"] for r in warnings] == ["dbt_stripe_sync.alerts"] * 2
    assert (
        "alert 1 (slack, url_env SLACK_WEBHOOK_URL) not sent: the webhook answered HTTP 500"
        in (warnings[0]["msg"])
    )
    assert "NOT_SET_ANYWHERE is not set" in warnings[1]["msg"]
    (error,) = [r for r in records if r["level"] == "error"]
    assert "was edited" in error["msg"] and error["logger"] == "dbt_stripe_sync"
