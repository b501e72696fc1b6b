"""Tests of the HTML report (`analysis.report`) and the two commands: the page's sections and
figures, its notes on what is missing, the section list and its recipe, and the real study's
report drawn in a headless browser (slow)."""

from __future__ import annotations

import html
import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from fake_study import (
    make_all_errored_study,
    make_bench_study,
    make_confirmed_study,
    make_fake_study,
    raw_results,
)
from helpers import run_module

from analysis import html_table, report
from analysis.figures import MIN_IMPORTANCE_TRIALS
from analysis.report import build_report
from analysis.results import load_study
from names import MULTI_SPACE, single_space

pytest_plugins = ["real_study"]

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.access(p, os.X_OK)),
    shutil.which("chromium"),
)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


class ReportParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: set[str] = set()
        self.figures: set[str] = set()
        self.figure_divs: set[str] = set()
        self.headings: list[str] = []
        self.errors: list[str] = []
        self.scripts_with_src: list[str] = []
        self.verdict = False  # a verdict card
        self.trial_rows = 0  # body rows of the trials table
        self.declared_rows: int | None = None  # the trials table's data-rows
        self._tables: list[str] = []  # ids of the tables we are in
        self._in_body = False
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.add(a["id"])
        if tag == "div" and "figure" in (a.get("class") or "").split():
            self.figures.add(a.get("data-figure", ""))
        if tag == "div" and (a.get("id") or "").startswith("fig-"):
            self.figure_divs.add(a["id"][4:])
        if tag == "div" and "verdict" in (a.get("class") or "").split():
            self.verdict = True
        if tag == "table":
            self._tables.append(a.get("id") or "")
            if a.get("id") == "trials-table":
                self.declared_rows = int(a["data-rows"])
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body and self._tables[-1:] == ["trials-table"]:
            self.trial_rows += 1
        if tag == "script" and a.get("src"):
            self.scripts_with_src.append(a["src"])
        if tag in ("h1", "h2"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables.pop()
        if tag == "tbody":
            self._in_body = False
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.headings.append(data)
        self._text.append(data)

    @property
    def text(self) -> str:
        return " ".join(self._text)


def parse_report(path: Path) -> ReportParser:
    page = ReportParser()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.figures == page.figure_divs  # every figure wrapper holds its plotly div
    assert not page.scripts_with_src  # self-contained: nothing loaded from elsewhere
    return page


# ---------------------------------------------------------------------------------------------
# hand-built studies (fast)


def test_fake_report_sections(fake: Path, tmp_path: Path) -> None:
    out = build_report(fake, tmp_path / "r" / "report.html")
    page = parse_report(out)
    assert page.sections >= {
        "verdict",
        "parallel",
        "summary",
        "comparison",
        "test-seeds",
        "learning-curves",
        "history",
        "importances",
        "lr-scheme",
        "schemes",
        "pareto",
        "confusion",
        "trials",
    }
    assert page.figures >= {
        "learning-curves",
        "history",
        "lr-scheme",
        "schemes",
        "pareto",
        "confusion-multi-cifar10",
        "confusion-multi-fashionrgb",
        "parallel",
    }
    assert "trials" not in page.figures  # an HTML table, not a plotly one
    assert page.verdict and "validation, optimistic, selected on the same data" in page.text
    assert page.trial_rows == page.declared_rows == len(raw_results(fake))
    assert "synthetic" in page.headings[0].lower()
    assert "Learning curves (top 5 per task)" in page.headings
    assert "no optuna.db" in page.text  # importances: says what is missing
    assert "baseline configuration" in page.text and "(seed)" not in page.text
    assert "No test figures" in page.text and "python -m study.confirm" in page.text
    assert "test-seeds" not in page.figures  # the section says why instead
    for name in page.figures:
        assert (tmp_path / "r" / "report_figures" / f"{name}.html").is_file()
    assert (tmp_path / "r" / "report_figures" / "plotly.min.js").is_file()


def test_report_with_confirmation_runs(tmp_path: Path) -> None:
    """The comparison shows the test table and the labelled search section; the per-seed
    figure and the test confusion matrices appear beside the validation ones."""
    folder = make_confirmed_study(tmp_path, seeds=3)
    page = parse_report(build_report(folder, tmp_path / "report.html"))
    assert page.figures >= {
        "test-seeds",
        "confusion-test-multi-cifar10",
        "confusion-test-single-cifar10-cifar10",
        "confusion-multi-cifar10",
    }
    text = page.text
    assert "72.0% ± 5.0 (n=3)" in text and "No test figures" not in text
    assert "Search-stage selection figures (validation, optimistic)" in text
    assert "Test: tuned-1 run of each space, first seed" in text
    assert "Validation: top trial at its peak epoch (search stage, optimistic)" in text
    assert "Confirmation runs" in text and "could not be drawn" not in text


def test_report_with_optuna_db(tmp_path: Path) -> None:
    folder = make_bench_study(tmp_path, trials=24, epochs=4)
    page = parse_report(build_report(folder, tmp_path / "report.html"))
    assert "importances" in page.figures


def test_unreadable_optuna_db_is_a_note(fake: Path, tmp_path: Path) -> None:
    (fake / "optuna.db").write_text("not a database")
    assert "optuna.db unreadable" in parse_report(build_report(fake, tmp_path / "r.html")).text


def test_all_errored_study(tmp_path: Path) -> None:
    study = make_all_errored_study(tmp_path)
    page = parse_report(build_report(study, tmp_path / "report.html"))
    assert "all trials errored" in page.text
    assert page.trial_rows == 4  # the trials table still shows the errored trials
    assert (
        page.verdict
        and "single-cifar10: missing (single-cifar10: no trial ran all its epochs)" in page.text
    )


def test_only_one_space(tmp_path: Path) -> None:
    study = make_fake_study(tmp_path / "one", spaces=(MULTI_SPACE,))
    page = parse_report(build_report(study, tmp_path / "one.html"))
    assert "not in this study: single-cifar10, single-fashionrgb" in page.text
    assert "pareto" in page.figures

    single = make_fake_study(tmp_path / "two", spaces=(single_space("cifar10"),))
    page = parse_report(build_report(single, tmp_path / "two.html"))
    assert "no multi run" in page.text and "pareto" not in page.figures
    assert "missing (no multi run)" in page.text


def test_a_failing_section_is_a_note(fake: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(study, options):
        raise RuntimeError("boom")

    sections = [row if row[0] != "history" else (*row[:2], broken) for row in report.SECTIONS]
    monkeypatch.setattr(report, "SECTIONS", sections)
    page = parse_report(build_report(fake, tmp_path / "r.html"))
    assert "Optimization history could not be drawn: RuntimeError: boom" in page.text
    assert "history" in page.sections and "history" not in page.figures
    assert "pareto" in page.figures  # the rest of the report stands


def test_recipe_add_a_figure(fake: Path, tmp_path: Path, monkeypatch) -> None:
    """README's recipe "Add a report figure": an extract + render pair and one row in
    `report.SECTIONS`; the section, its figure and its standalone file appear."""

    def epochs_data(study) -> pd.DataFrame:  # extract: plain data, checked against raw files
        return study.trials.groupby("space", sort=False)["epochs"].sum().reset_index()

    def plot_epochs(data: pd.DataFrame) -> go.Figure:  # render: no computation
        return go.Figure(go.Bar(x=data["space"], y=data["epochs"]))

    assert epochs_data(load_study(fake))["epochs"].tolist() == [6, 6, 3 + 3 + 3 + 1 + 2 + 0 + 2]
    row = ("epochs", "Epochs per space", report.figure("epochs", epochs_data, plot_epochs, "none"))
    monkeypatch.setattr(report, "SECTIONS", [*report.SECTIONS, row])
    out = build_report(fake, tmp_path / "r" / "report.html")
    page = parse_report(out)
    assert "epochs" in page.sections and "epochs" in page.figures
    assert "Epochs per space" in page.headings
    assert (tmp_path / "r" / "report_figures" / "epochs.html").is_file()


# ---------------------------------------------------------------------------------------------
# the commands (fast)


def test_cli_outputs(fake: Path, tmp_path: Path) -> None:
    proc = run_module("analysis.table", str(fake))
    assert proc.returncode == 0 and "80.6% (↓ 8.1)" in proc.stdout and "synthetic" in proc.stdout
    proc = run_module(
        "analysis.table", str(fake), "--format", "csv", "--out", str(tmp_path / "t.csv")
    )
    assert proc.returncode == 0
    csv = pd.read_csv(tmp_path / "t.csv")
    assert set(csv["task"]) == {"cifar10", "fashionrgb"} and set(csv["split"]) == {"validation"}
    proc = run_module("analysis.report", str(fake))  # default: <study dir>/report.html
    assert proc.returncode == 0, proc.stderr
    assert (fake / "report.html").is_file() and (fake / "report_figures").is_dir()


@pytest.mark.parametrize("module", ["analysis.table", "analysis.report"])
def test_cli_not_a_study_exits_2(tmp_path: Path, module: str) -> None:
    proc = run_module(module, str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.fixture(scope="session")
def real_report(real_study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = run_module("analysis.report", str(real_study), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


EXPECTED_FIGURES = {
    "test-seeds",
    "confusion-test-single-cifar10-cifar10",
    "confusion-test-single-fashionrgb-fashionrgb",
    "confusion-test-multi-cifar10",
    "confusion-test-multi-fashionrgb",
    "learning-curves",
    "history",
    "lr-scheme",
    "schemes",
    "pareto",
    "parallel",
    "confusion-single-cifar10-cifar10",
    "confusion-single-fashionrgb-fashionrgb",
    "confusion-multi-cifar10",
    "confusion-multi-fashionrgb",
    "confusion-test-single-birds-birds",  # real_study's third task, an ImageFolder tree
    "confusion-test-multi-birds",
    "confusion-single-birds-birds",
    "confusion-multi-birds",
}


@pytest.mark.slow
def test_real_report_html(real_report: Path) -> None:
    from plotly.offline import get_plotlyjs

    page = parse_report(real_report)
    assert page.figures >= EXPECTED_FIGURES
    # 4 finished trials per space: importances drawn, with the caution that they are few
    assert "importances" in page.sections and f"(fewer than {MIN_IMPORTANCE_TRIALS})" in page.text
    assert "SYNTHETIC" not in page.headings[0]  # real-format files: not labelled synthetic
    text = real_report.read_text(encoding="utf-8")
    assert text.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    figures = real_report.parent / "report_figures"
    assert {p.stem for p in figures.glob("*.html")} == page.figures


CHECK_HEAD = """<script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||e))});
window.addEventListener('unhandledrejection',function(e){window.__errors.push(String(e.reason))});
</script>"""
# after load: what drew, the verdict, the trials table's rows, that sorting and filtering work,
# and that nothing but the scroll boxes is wider than the window
CHECK_TAIL = """<script>window.addEventListener('load',function(){setTimeout(function(){
var out={errors:window.__errors,plotly:typeof Plotly,figures:{},width:window.innerWidth,
page_width:document.documentElement.scrollWidth};
document.querySelectorAll('div.figure').forEach(function(d){
 out.figures[d.getAttribute('data-figure')]=d.querySelectorAll('.plotly .main-svg').length;});
out.verdict=document.querySelectorAll('.verdict .verdict-space').length;
var t=document.getElementById('trials-table');
out.rows=t?t.tBodies[0].rows.length:-1;
if(t){var th=t.tHead.rows[0].cells[0];th.click();
 var ids=Array.prototype.map.call(t.tBodies[0].rows,function(r){return r.cells[0].textContent;});
 out.sorted=ids.join('|')===ids.slice().sort(function(a,b){return a<b?-1:a>b?1:0;}).join('|');
 var box=document.querySelector('input[data-filter="trials-table"]');
 box.value=ids[0];box.dispatchEvent(new Event('input'));
 out.filtered=Array.prototype.filter.call(t.tBodies[0].rows,function(r){
  return r.style.display!=='none';}).length;}
function boxed(e){for(var p=e.parentElement;p;p=p.parentElement){
 var o=getComputedStyle(p).overflowX;if(o==='auto'||o==='scroll')return true;}return false;}
out.too_wide=[];document.querySelectorAll('body *').forEach(function(e){
 if(boxed(e))return;var r=e.getBoundingClientRect();
 if(r.right>window.innerWidth+1&&r.width>0){var f=e.closest('.figure');
 out.too_wide.push(f?f.getAttribute('data-figure')+': '+e.tagName+' '+e.textContent.slice(0,40)
 :e.tagName+'.'+e.className);}});
out.too_wide=out.too_wide.slice(0,10);
var pre=document.createElement('pre');pre.id='analysis-check';
pre.textContent=JSON.stringify(out);document.body.appendChild(pre);},1500);});</script>"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",  # the frame below reads the page it holds
]
WIDTHS = (480, 800, 1400)
SCREEN_HEIGHT = 7000  # tall: the verdict, the table and the first figures in one picture
MIN_WINDOW = 500  # headless Chromium's narrowest window: narrower widths go through a frame
FRAME = """<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="{src}"
style="border:0;width:{width}px;height:{height}px"></iframe><script>
var t=setInterval(function(){{var d=document.getElementById('f').contentDocument;
var p=d&&d.getElementById('analysis-check');if(p){{clearInterval(t);
var q=document.createElement('pre');q.id='analysis-check';q.textContent=p.textContent;
document.body.appendChild(q);}}}},200);</script></body></html>"""


def framed(page: Path, width: int, height: int) -> tuple[Path, int]:
    """A page that shows `page` exactly `width` px wide (in a frame), and the window width."""
    frame = page.with_name(f"frame-{width}-{page.name}")
    frame.write_text(FRAME.format(src=page.as_uri(), width=width, height=height))
    return frame, max(width, MIN_WINDOW)


def browser_check(report: Path, width: int, tmp_path: Path) -> dict:
    """The report opened in headless Chromium `width` px wide: CHECK_TAIL's findings."""
    checked = tmp_path / f"checked-{width}.html"
    page = report.read_text(encoding="utf-8")
    checked.write_text(
        page.replace("<head>", "<head>" + CHECK_HEAD, 1).replace(
            "</body>", CHECK_TAIL + "</body>", 1
        ),
        encoding="utf-8",
    )
    frame, window = framed(checked, width, 1000)
    return dumped_check(frame, window, tmp_path / f"profile-{width}", "analysis-check")


def dumped_check(page: Path, window: int, profile: Path, pre_id: str) -> dict:
    """`page` run in headless Chromium, `window` px wide: the JSON its scripts left in
    `<pre id=pre_id>`."""
    proc = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window},1000",
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    marker = f'<pre id="{pre_id}">'
    start = proc.stdout.find(marker)
    assert start >= 0, f"check did not run: rc={proc.returncode} {proc.stderr[-2000:]}"
    body = proc.stdout[start + len(marker) :]
    return json.loads(html.unescape(body[: body.index("</pre>")]))


# clicks the first header, then the second twice: the clicked column's text after each click
SORT_CHECK = """<script>window.addEventListener('load',function(){
var t=document.getElementById('t'),h=t.tHead.rows[0].cells,out=[];
[0,1,1].forEach(function(i){h[i].click();out.push(Array.prototype.map.call(t.tBodies[0].rows,
 function(r){return r.cells[i].textContent;}));});
var pre=document.createElement('pre');pre.id='sort-check';pre.textContent=JSON.stringify(out);
document.body.appendChild(pre);});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (/usr/bin/chromium)")
def test_a_column_sorts_as_numbers_only_when_every_cell_is_one(tmp_path: Path) -> None:
    """Trial ids that read as numbers ("12345678", "1e345678") still sort as text among the
    others; a column of percentages sorts by value both ways; blank cells stay last."""
    ids = ["a1b2c3d4", "12345678", "0d0c727e", "1e345678", "9f00aa11"]
    scores = ["80.6%", "3.5%", "", "100%", "9.0%"]
    table = html_table.sortable_table(pd.DataFrame({"trial": ids, "score": scores}), "t")
    page = tmp_path / "table.html"
    page.write_text(
        f"<html><head><style>{html_table.CSS}</style></head><body>{table}"
        f"{html_table.SCRIPT}{SORT_CHECK}</body></html>",
        encoding="utf-8",
    )
    by_id, up, down = dumped_check(page, 800, tmp_path / "profile", "sort-check")
    assert by_id == sorted(ids)
    by_value = sorted((s for s in scores if s), key=lambda s: float(s.rstrip("%")))
    assert up == [*by_value, ""] and down == [*by_value[::-1], ""]


def screenshot(report: Path, width: int, folder: Path, tmp_path: Path) -> Path:
    """`<folder>/<width>.png`: the report `width` px wide and SCREEN_HEIGHT tall."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{width}.png"
    frame, window = framed(report, width, SCREEN_HEIGHT)
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / f'shot-{width}'}",
            f"--window-size={window},{SCREEN_HEIGHT}",
            "--virtual-time-budget=20000",
            f"--screenshot={out}",
            frame.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    return out


def assert_draws(report: Path, study: Path, expected: set[str], tmp_path: Path) -> None:
    """At every width of WIDTHS: no JS error, every figure drew, the verdict card, every trial
    in the table (sortable, filterable), nothing wider than the window outside a scroll box;
    screenshots into $MTL_STUDY_SCREENSHOTS when set."""
    trials = len(raw_results(study))
    for width in WIDTHS:
        result = browser_check(report, width, tmp_path)
        assert result["errors"] == [] and result["plotly"] == "object", result
        assert set(result["figures"]) >= expected
        assert all(n >= 1 for n in result["figures"].values()), result["figures"]
        assert result["verdict"] >= 1 and result["rows"] == trials, result
        assert result["sorted"] and 1 <= result["filtered"] < trials, result
        assert result["too_wide"] == [] and result["page_width"] <= width, (width, result)
        if os.environ.get("MTL_STUDY_SCREENSHOTS"):
            screenshot(report, width, Path(os.environ["MTL_STUDY_SCREENSHOTS"]), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (/usr/bin/chromium)")
def test_fake_report_draws_in_a_browser(tmp_path: Path) -> None:
    folder = make_confirmed_study(tmp_path, seeds=3)
    report = build_report(folder, tmp_path / "report.html", figure_files=False)
    expected = {"learning-curves", "lr-scheme", "schemes", "pareto", "parallel", "test-seeds"}
    assert_draws(report, folder, expected, tmp_path)


@pytest.mark.slow
def test_real_report_draws_in_a_browser(
    real_study: Path, real_report: Path, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium binary (/usr/bin/chromium); apt-get install chromium")
    assert_draws(real_report, real_study, EXPECTED_FIGURES, tmp_path)
