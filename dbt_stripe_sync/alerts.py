"""Alerts after a run: `vars.dbt_stripe_sync.alerts`, each a Slack incoming-webhook message or the
JSON run report POSTed to a URL held in an environment variable.

An alert that cannot be sent never fails the sync: the problem is returned (and printed by the
CLI) naming the alert by its env var — the URL itself is a secret and is never printed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.run_report import RunReport
from dbt_stripe_sync.secrets import register_secret

FORMATS = ("slack", "json")
WHEN = ("failure", "always")
TIMEOUT_S = 10.0

Poster = Callable[[str, bytes, float], int]  # (url, JSON body, timeout) -> HTTP status


@dataclass(frozen=True)
class Alert:
    url_env: str
    format: str = "slack"
    on: str = "failure"

    def wanted(self, report: RunReport) -> bool:
        return self.on == "always" or is_failure(report)


def is_failure(report: RunReport) -> bool:
    """The run stopped before syncing, a sync blocked or errored, or any row rejected
    (design.md: `on: failure`)."""
    return report.error is not None or any(
        s.status in ("blocked", "error") or s.counts.get("rejected", 0) for s in report.syncs
    )


def parse_alerts(raw: Sequence[Any]) -> list[Alert]:
    where = "vars.dbt_stripe_sync.alerts"
    alerts = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise UsageError(
                f"{where}[{i}]: each alert is a mapping like "
                "{url_env: SLACK_WEBHOOK_URL, format: slack, on: failure}"
            )
        # YAML 1.1 (PyYAML, so dbt) reads a bare `on:` key as the boolean True
        item = {("on" if k is True else k): v for k, v in item.items()}
        unknown = set(item) - {"url_env", "format", "on"}
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise UsageError(f"{where}[{i}]: unknown key(s) {names}; an alert has url_env, format and on")
        url_env = item.get("url_env")
        if not isinstance(url_env, str) or not url_env:
            raise UsageError(
                f"{where}[{i}].url_env: the name of the environment variable holding the webhook URL "
                "(the URL itself must not sit in git), e.g. url_env: SLACK_WEBHOOK_URL"
            )
        if url_env.startswith(("http://", "https://")):
            raise UsageError(
                f"{where}[{i}].url_env holds a URL; put the URL in an environment variable and name "
                "that variable here (e.g. url_env: SLACK_WEBHOOK_URL)"
            )
        fmt, on = str(item.get("format", "slack")), str(item.get("on", "failure"))
        if fmt not in FORMATS:
            raise UsageError(f"{where}[{i}].format: {fmt!r} is not one of {', '.join(FORMATS)}")
        if on not in WHEN:
            raise UsageError(f"{where}[{i}].on: {on!r} is not one of {', '.join(WHEN)}")
        alerts.append(Alert(url_env, fmt, on))
    return alerts


def slack_escape(text: str) -> str:
    """Slack's incoming-webhook text escaping: `&`, `<`, `>` (so a warehouse value can neither
    mention `<!channel>` nor render a `<https://…|link>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(report: RunReport) -> dict[str, Any]:
    """The Slack text; every value from the run (names, keys, reasons) is escaped."""
    e = slack_escape
    icon = {"success": ":white_check_mark:", "partial": ":warning:", "failed": ":x:"}[report.status]
    lines = [f"{icon} dbt-stripe-sync run {report.status} (run {report.run_id})"]
    if report.error is not None:
        lines.append(f"    stopped before syncing: {e(report.error[:500])}")
    for s in report.syncs:
        c = s.counts
        counts = ", ".join(
            f"{c[k]} {k}" for k in ("created", "updated", "deleted", "archived", "rejected") if c.get(k)
        )
        lines.append(f"• *{e(s.model)}* ({s.object}): {s.status}" + (f" — {counts}" if counts else ""))
        if s.message:
            lines.append(f"    {e(s.message[:300])}")
        for r in s.rejected_rows[:3]:
            lines.append(f"    row {e(r.key)}: {e(r.reason[:200])}")
        if len(s.rejected_rows) > 3:
            lines.append(f"    … and {len(s.rejected_rows) - 3} more rejected rows")
    return {"text": "\n".join(lines)}


def body_for(alert: Alert, report: RunReport) -> bytes:
    data = slack_message(report) if alert.format == "slack" else report.to_dict()
    return json.dumps(data).encode("utf-8")


def _post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "dbt-stripe-sync"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


def send_alerts(
    alerts: Sequence[Alert],
    report: RunReport,
    env: Mapping[str, str] | None = None,
    post: Poster = _post,
) -> list[str]:
    """Send each wanted alert; return one problem line per alert that could not be sent."""
    env = os.environ if env is None else env
    problems = []
    for i, alert in enumerate(alerts):
        if not alert.wanted(report):
            continue
        name = f"alert {i + 1} ({alert.format}, url_env {alert.url_env})"
        url = env.get(alert.url_env)
        if not url:
            problems.append(f"{name} not sent: the environment variable {alert.url_env} is not set")
            continue
        register_secret(url)
        if not url.lower().startswith(("http://", "https://")):  # urllib would open files, ftp, ...
            problems.append(f"{name} not sent: the URL in {alert.url_env} is not an http(s) URL")
            continue
        try:
            status = post(url, body_for(alert, report), TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            problems.append(f"{name} not sent: the webhook answered HTTP {exc.code}")
            continue
        except Exception as exc:  # a broken alert must never fail the sync
            reason = getattr(exc, "reason", None) or type(exc).__name__
            problems.append(f"{name} not sent: {_without_url(str(reason), url)}")
            continue
        if not 200 <= status < 300:
            problems.append(f"{name} not sent: the webhook answered HTTP {status}")
    return problems


def _without_url(text: str, url: str) -> str:
    return text.replace(url, "[webhook URL]")
