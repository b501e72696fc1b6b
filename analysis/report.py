"""One self-contained HTML report of a study: the comparison table and every figure.

    python -m analysis.report <study dir> [--out report.html] [--no-figure-files]

plotly.js is inlined once (the report opens offline, alone); each figure is also written as a
standalone HTML file into `<out stem>_figures/` beside the report (those share one
`plotly.min.js` in that folder). A section whose data is missing says what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import plotly.graph_objects as go

from analysis import confusion as confusion_mod
from analysis import figures as F
from analysis import table as table_mod
from analysis.results import AnalysisError, Study, load_study
from analysis.status import STOP_REASONS
from names import MULTI_SPACE, OPTUNA_DB, REPORT_FILE, SETTINGS_FILE, single_space

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;
max-width:1200px;padding:1rem 2rem;color:#222}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
nav a{margin-right:1rem} .meta{color:#555}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.6rem 1rem;font-weight:600;
margin:1rem 0;font-size:1.1rem}
.missing{color:#9a3412;font-style:italic}
table.comparison,table.plain{border-collapse:collapse;margin:.5rem 0}
table.comparison td,table.comparison th,table.plain td,table.plain th{border:1px solid #ccc;
padding:.3rem .6rem;text-align:right}
table.comparison td:first-child,table.plain td:first-child{text-align:left}
table.comparison caption{font-weight:600;text-align:left;padding:.3rem 0}
tr.delta-m{font-weight:600;background:#f6f6f6} .notes{color:#444;font-size:.92rem}
.figure{margin:1rem 0} .grid{display:flex;flex-wrap:wrap;gap:1rem}
"""


@dataclasses.dataclass
class Section:
    id: str
    title: str
    body: list[str] = dataclasses.field(default_factory=list)  # HTML fragments


@dataclasses.dataclass
class Figure:
    name: str  # also the div id ("fig-<name>") and the standalone file's stem
    figure: go.Figure


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _figure_div(fig: Figure) -> str:
    inner = fig.figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{fig.name}",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="figure" data-figure="{html.escape(fig.name)}">{inner}</div>'


def _guarded(section: Section, what: str, build: Callable[[], None]) -> None:
    """Run one section's builder; a failure becomes a note in that section, not a crash."""
    try:
        build()
    except Exception as exc:  # one broken figure must not lose the report
        section.body.append(_missing(f"{what} could not be drawn: {type(exc).__name__}: {exc}"))


def build_sections(study: Study, top_k: int = 5) -> tuple[list[Section], list[Figure]]:
    """Every section of the report (HTML fragments) and the figures they show."""
    figs: list[Figure] = []
    sections: list[Section] = []

    def add(section: Section, name: str, fig: go.Figure) -> None:
        item = Figure(name, fig)
        figs.append(item)
        section.body.append(_figure_div(item))

    # summary
    s = Section("summary", "Summary")
    settings = study.settings
    facts = {
        "study": settings.get("name", study.path.name),
        "space": settings.get("space"),
        "data": settings.get("data"),
        "trials per space": settings.get("num_samples"),
        "max epochs": settings.get("max_epochs"),
        "scheduler": settings.get("scheduler"),
        "seed": settings.get("seed"),
        "trials found": len(study.trials),
        "status": "running now" if study.running else "not running",
    }
    s.body.append(
        '<table class="plain">'
        + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in facts.items()
        )
        + "</table>"
    )
    counts = F.stop_reason_counts(study)
    s.body.append(
        "<h3>Stop reasons</h3>"
        + counts.rename_axis("space").reset_index().to_html(classes="plain", border=0, index=False)
    )
    s.body.append(
        '<ul class="notes">'
        + "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
            for k, v in STOP_REASONS.items()
            if k in counts.columns
        )
        + "</ul>"
    )
    expected = [single_space(t) for t in study.task_names] + [MULTI_SPACE]
    missing_spaces = [sp for sp in expected if sp not in study.space_tasks]
    if missing_spaces:
        s.body.append(_missing("not in this study: " + ", ".join(missing_spaces)))
    if study.notes:
        s.body.append(
            '<ul class="notes">'
            + "".join(f"<li>{html.escape(n)}</li>" for n in study.notes)
            + "</ul>"
        )
    sections.append(s)

    # comparison table
    s = Section("comparison", "Single- vs multi-task comparison")
    _guarded(
        s,
        "The comparison table",
        lambda: s.body.append(table_mod.to_html(table_mod.comparison(study))),
    )
    sections.append(s)

    def learning(sec: Section) -> None:
        data = F.learning_curves_data(study, k=top_k)
        if data.empty:
            sec.body.append(_missing("no trial reported a validation accuracy"))
        else:
            add(sec, "learning-curves", F.plot_learning_curves(data))

    def history(sec: Section) -> None:
        data = F.history_data(study)
        if data.empty:
            sec.body.append(_missing("no scored trial yet"))
            return
        if data["source"].iloc[0] != OPTUNA_DB:
            sec.body.append(
                _missing(
                    f"no {OPTUNA_DB}: showing each trial's best score from its results instead"
                )
            )
        add(sec, "history", F.plot_history(data))

    def importances(sec: Section) -> None:
        data = F.importance_data(study)
        for space, note in data.notes.items():
            sec.body.append(_missing(f"{space}: {note}"))
        if not data.frame.empty:
            add(sec, "importances", F.plot_importances(data))

    def lr_scheme(sec: Section) -> None:
        data = F.lr_scheme_data(study)
        if data.empty:
            sec.body.append(_missing("no scored trial with a learning rate"))
        else:
            add(sec, "lr-scheme", F.plot_lr_scheme(data))

    def schemes(sec: Section) -> None:
        if MULTI_SPACE not in study.space_tasks:
            sec.body.append(
                _missing(f"no {MULTI_SPACE} run: sampling schemes need the {MULTI_SPACE} space")
            )
        data = F.scheme_data(study)
        if data.empty:
            sec.body.append(_missing("no scored trial"))
        else:
            add(sec, "schemes", F.plot_schemes(data))

    def pareto(sec: Section) -> None:
        if MULTI_SPACE not in study.space_tasks:
            sec.body.append(
                _missing(f"no {MULTI_SPACE} run: the Pareto front needs the {MULTI_SPACE} space")
            )
            return
        data = F.pareto_data(study)
        if data.empty:
            sec.body.append(
                _missing(
                    f"{MULTI_SPACE}: no trial with both tasks' accuracies "
                    "(all errored or none finished an epoch)"
                )
            )
        else:
            add(sec, "pareto", F.plot_pareto(data))

    def confusions(sec: Section) -> None:
        items, notes = confusion_mod.best_confusions(study)
        for note in notes:
            sec.body.append(_missing(note))
        grid = Section("grid", "")
        for conf in items:
            add(grid, f"confusion-{conf.space}-{conf.task}", F.plot_confusion(conf))
        sec.body.append('<div class="grid">' + "".join(grid.body) + "</div>")

    def trials(sec: Section) -> None:
        add(sec, "trials", F.plot_trial_table(F.trial_table_data(study)))

    for sid, title, build in [
        ("learning-curves", f"Learning curves (top {top_k} per task)", learning),
        ("history", "Optimization history", history),
        ("importances", "Parameter importances", importances),
        ("lr-scheme", "Learning rate × sampling scheme", lr_scheme),
        ("schemes", "Sampling schemes compared", schemes),
        ("pareto", "Multi-task Pareto front", pareto),
        ("confusion", "Confusion matrices of the best trials", confusions),
        ("trials", "Trials", trials),
    ]:
        sec = Section(sid, title)
        _guarded(sec, title, lambda b=build, x=sec: b(x))
        sections.append(sec)
    return sections, figs


def render_html(study: Study, sections: Sequence[Section]) -> str:
    """The report page, with plotly.js inlined once in the head."""
    from plotly.offline import get_plotlyjs

    name = html.escape(str(study.settings.get("name", study.path.name)))
    synthetic = study.synthetic
    title = f"Study {name}" + (" — SYNTHETIC DATA" if synthetic else "")
    banner = (
        '<div class="banner synthetic" id="synthetic-banner">Synthetic data: this study trained '
        "on built-in synthetic stand-ins, not the real datasets. Its accuracies say nothing "
        "about real performance.</div>"
        if synthetic
        else ""
    )
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>{"".join(s.body)}</section>'
        for s in sections
    )
    made = time.strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f'<h1>{title}</h1><p class="meta">report made {made} from {html.escape(study.path.name)}'
        f"</p>{banner}<nav>{nav}</nav>{body}</body></html>\n"
    )


def build_report(
    study_dir: str | Path, out: str | Path | None = None, figure_files: bool = True, top_k: int = 5
) -> Path:
    """Write the report (default `<study dir>/report.html`) and, beside it, the figures as
    standalone files in `<out stem>_figures/`. Returns the report's path."""
    study = load_study(study_dir)
    out = Path(out) if out else Path(study_dir) / REPORT_FILE
    sections, figs = build_sections(study, top_k=top_k)
    page = render_html(study, sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    if figure_files:
        folder = out.parent / f"{out.stem}_figures"
        folder.mkdir(exist_ok=True)
        for fig in figs:
            fig.figure.write_html(
                folder / f"{fig.name}.html",
                include_plotlyjs="directory",
                full_html=True,
                div_id=f"fig-{fig.name}",
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Write one self-contained HTML report of a study.",
    )
    parser.add_argument("study", help=f"study directory (holds {SETTINGS_FILE})")
    parser.add_argument("--out", help=f"report file (default: <study dir>/{REPORT_FILE})")
    parser.add_argument(
        "--no-figure-files",
        action="store_true",
        help="do not also write each figure as its own HTML file",
    )
    parser.add_argument("--top-k", type=int, default=5, help="learning curves per task")
    args = parser.parse_args(argv)
    try:
        path = build_report(
            args.study, args.out, figure_files=not args.no_figure_files, top_k=args.top_k
        )
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or args.out or args.study
        print(f"error: cannot write {where}: {exc.strerror or exc} (try --out)", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
