"""`dbt-stripe-sync report` (issue #11, optional part): one self-contained HTML page from the
warehouse tables. No headless browser is installable offline here, so the page is checked with a
strict parser: balanced tags, no script and no external asset, values escaped."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")
VOID = {"meta", "br", "img", "input", "link", "hr"}


class StrictPage(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.external: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "link", "iframe", "img"):
            self.external.append(tag)
        for name, value in attrs:
            if name in ("src", "href") or (
                (value or "").startswith(("http:", "https:", "//")) and name != "xmlns"
            ):
                self.external.append(f"{tag}[{name}]")
        if tag not in VOID:
            self.stack.append(tag)
        self._in_cell = tag == "td"
        if self._in_cell:
            self.cells.append("")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def test_report_page_is_self_contained_and_shows_runs_and_rejections(dbt_project, tmp_path):
    assert dbt_project.sync("run", *SEL).returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["email"] = "<grace>@example"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    assert dbt_project.sync("run", *SEL).returncode == 1

    page_file = tmp_path / "report.html"
    result = dbt_project.sync("report", "--output", str(page_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 sync runs, 1 rows needing attention" in result.stdout
    page = page_file.read_text()
    parser = StrictPage()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert parser.external == []  # one file: no script, stylesheet or image to fetch
    assert "<grace>" not in page and "&lt;grace&gt;@example" in page  # model values are escaped
    assert "stripe_customers" in parser.cells and "2" in parser.cells  # sync name, its row key
    assert any("is not a valid email address" in c for c in parser.cells)
    assert page.count("<rect") >= 2  # a bar per run (created, then updated/rejected)
