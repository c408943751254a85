"""Alerts (issue #11): `vars.dbt_stripe_sync.alerts` POSTs a Slack message or the JSON run report to a
local webhook after a real run; a failed alert never fails the sync and never prints its URL."""

from __future__ import annotations

import pytest

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
