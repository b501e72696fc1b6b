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
)
from helpers import run_module

from analysis import report
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
        if tag == "script" and a.get("src"):
            self.scripts_with_src.append(a["src"])
        if tag in ("h1", "h2"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
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
        "trials",
    }
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
    assert "Validation: best trial at its best epoch (search stage, optimistic)" in text
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
    assert "trials" in page.figures  # the trial table still shows the errored trials


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
    "trials",
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
    assert "importances" in page.sections and "not enough trials" in page.text
    assert "SYNTHETIC" not in page.headings[0]  # real-format files: not labelled synthetic
    text = real_report.read_text(encoding="utf-8")
    assert text.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    figures = real_report.parent / "report_figures"
    assert {p.stem for p in figures.glob("*.html")} == page.figures


CHECK_HEAD = """<script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||e))});
window.addEventListener('unhandledrejection',function(e){window.__errors.push(String(e.reason))});
</script>"""
CHECK_TAIL = """<script>window.addEventListener('load',function(){setTimeout(function(){
var out={errors:window.__errors,plotly:typeof Plotly,figures:{}};
document.querySelectorAll('div.figure').forEach(function(d){
 out.figures[d.getAttribute('data-figure')]=d.querySelectorAll('.plotly .main-svg').length;});
var pre=document.createElement('pre');pre.id='analysis-check';
pre.textContent=JSON.stringify(out);document.body.appendChild(pre);},1500);});</script>"""


@pytest.mark.slow
def test_real_report_draws_in_a_browser(real_report: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium binary (/usr/bin/chromium); apt-get install chromium")
    page = real_report.read_text(encoding="utf-8")
    checked = tmp_path / "checked.html"
    checked.write_text(
        page.replace("<head>", "<head>" + CHECK_HEAD, 1).replace(
            "</body>", CHECK_TAIL + "</body>", 1
        ),
        encoding="utf-8",
    )
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    start = proc.stdout.find('<pre id="analysis-check">')
    assert start >= 0, f"check did not run: rc={proc.returncode} {proc.stderr[-2000:]}"
    body = proc.stdout[start + len('<pre id="analysis-check">') :]
    result = json.loads(html.unescape(body[: body.index("</pre>")]))
    assert result["errors"] == [] and result["plotly"] == "object", result
    assert set(result["figures"]) >= EXPECTED_FIGURES
    assert all(n >= 1 for n in result["figures"].values()), result["figures"]
