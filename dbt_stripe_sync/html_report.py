"""`dbt-stripe-sync report`: one self-contained HTML page (no script, no external asset) from the
warehouse tables — runs over time, per-sync totals, and the rows rejected or failed right now."""

from __future__ import annotations

import datetime as dt
import html
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TextIO

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.state_reader import chosen_syncs, existing_state

COUNTS = ("created", "updated", "deleted", "archived", "skipped", "rejected", "api_calls")
_BAR_COLOURS = {"created": "#2e7d32", "updated": "#1565c0", "deleted": "#c62828", "rejected": "#ef6c00"}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child,td.text{text-align:left}
.success{color:#2e7d32}.partial{color:#ef6c00}.blocked,.error,.failed{color:#c62828}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def write_report(
    project_dir: str,
    profiles_dir: str | None,
    target: str | None,
    cli_vars: dict[str, Any],
    *,
    output: str,
    models: Sequence[str] = (),
    days: int = 30,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    with existing_state(project_dir, profiles_dir, target, cli_vars) as store:
        models = chosen_syncs(store, models)
        since = L.utcnow() - dt.timedelta(days=days)
        runs = _runs(store, models, since)
        problems = _problems(store, models)
        page = render(store.wh.project_name, store.wh.target.name, runs, problems, days, L.utcnow())
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(page)
    out.write(f"Report written to {output} ({len(runs)} sync runs, {len(problems)} rows needing attention)\n")
    return 0


def _models_filter(store: StateStore, models: Sequence[str], binds: list[Any]) -> str:
    if not models:
        return ""
    binds += list(models)
    return f" and sync_name in ({', '.join([store.wh.placeholder] * len(models))})"


def _runs(store: StateStore, models: Sequence[str], since: dt.datetime) -> list[dict[str, Any]]:
    binds: list[Any] = [since]
    cols = ["run_id", "sync_name", "started_at", "status", *COUNTS, "duration_s"]
    names, rows = store.wh.query(
        f"select {', '.join(store.wh.quote(c) for c in cols)} from {store.runs} "
        f"where started_at >= {store.wh.placeholder}{_models_filter(store, models, binds)} "
        "order by started_at",
        binds,
    )
    return [dict(zip(names, r, strict=True)) for r in rows]


def _problems(store: StateStore, models: Sequence[str]) -> list[dict[str, Any]]:
    binds: list[Any] = [L.REJECTED, L.FAILED, L.PENDING]
    names, rows = store.wh.query(
        f"select sync_name, source_key, status, last_error, updated_at from {store.ledger} "
        f"where status in ({', '.join([store.wh.placeholder] * 3)}){_models_filter(store, models, binds)}",
        binds,
    )
    found = [dict(zip(names, r, strict=True)) for r in rows]
    return sorted(found, key=lambda r: (r["sync_name"], natural_key(str(r["source_key"]))))


def render(
    project: str,
    target: str,
    runs: Sequence[dict[str, Any]],
    problems: Sequence[dict[str, Any]],
    days: int,
    now: dt.datetime,
) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dbt-stripe-sync — {e(project)} ({e(target)})</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>dbt-stripe-sync: {e(project)}, target {e(target)}</h1>",
        f"<p>Last {days} days, generated {e(now.isoformat(sep=' '))} UTC from the warehouse tables.</p>",
        "<h2>Runs over time</h2>",
        _chart(runs),
        "<h2>Per sync</h2>",
        _per_sync(runs),
        f"<h2>Rows needing attention ({len(problems)})</h2>",
        _problem_table(problems),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _by_run(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for r in runs:
        g = grouped.setdefault(
            r["run_id"], {"run_id": r["run_id"], "started_at": r["started_at"], "statuses": []}
        )
        g["statuses"].append(r["status"])
        for c in COUNTS:
            g[c] = g.get(c, 0) + int(r.get(c) or 0)
    return sorted(grouped.values(), key=lambda g: str(g["started_at"]))


def _chart(runs: Sequence[dict[str, Any]]) -> str:
    groups = _by_run(runs)
    if not groups:
        return "<p>No run in this period.</p>"
    width, height, bar = 720, 160, max(4, min(40, 720 // max(len(groups), 1) - 4))
    top = max(sum(g[c] for c in _BAR_COLOURS) for g in groups) or 1
    shapes = []
    for i, g in enumerate(groups):
        x, y = i * (bar + 4), height
        for c, colour in _BAR_COLOURS.items():
            h = round(g[c] / top * (height - 10))
            if h:
                y -= h
                shapes.append(
                    f'<rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="{colour}">'
                    f"<title>{html.escape(str(g['started_at']))}: {g[c]} {c}</title></rect>"
                )
        if any(s in ("blocked", "error", "interrupted") for s in g["statuses"]):
            shapes.append(f'<rect x="{x}" y="{height + 2}" width="{bar}" height="4" fill="#c62828"/>')
    legend = "".join(f'<span style="background:{c}"></span>{n}' for n, c in _BAR_COLOURS.items())
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 8}" role="img" '
        f'aria-label="rows changed per run">{"".join(shapes)}</svg>'
    )
    return f'{svg}<p class="legend">{legend} (red underline: a sync blocked or errored)</p>'


def _per_sync(runs: Sequence[dict[str, Any]]) -> str:
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {c: 0 for c in COUNTS} | {"runs": 0})
    for r in runs:
        t = totals[r["sync_name"]]
        t["runs"] += 1
        t["last_status"], t["last_at"] = r["status"], r["started_at"]
        for c in COUNTS:
            t[c] += int(r.get(c) or 0)
    if not totals:
        return "<p>No run in this period.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("sync", "runs", "last run", "last status", *COUNTS))
    body = []
    for name in sorted(totals):
        t = totals[name]
        status = html.escape(str(t["last_status"]))
        cells = "".join(f"<td>{t[c]}</td>" for c in COUNTS)
        body.append(
            f"<tr><td>{html.escape(name)}</td><td>{t['runs']}</td><td>{html.escape(str(t['last_at']))}</td>"
            f'<td class="text {status}">{status}</td>{cells}</tr>'
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _problem_table(problems: Sequence[dict[str, Any]]) -> str:
    if not problems:
        return "<p>None: every synced row is in Stripe as the model has it.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("sync", "row", "status", "since", "reason"))
    e = html.escape
    body = [
        f'<tr><td>{e(p["sync_name"])}</td><td class="text">{e(str(p["source_key"]))}</td>'
        f'<td class="text">{e(str(p["status"]))}</td><td>{e(str(p["updated_at"]))}</td>'
        f'<td class="text">{e(str(p["last_error"] or ""))}</td></tr>'
        for p in problems[:500]
    ]
    more = f"<p>… and {len(problems) - 500} more (see the ledger).</p>" if len(problems) > 500 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
