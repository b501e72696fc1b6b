"""One self-contained HTML report of a study: the comparison table and every figure.

    python -m analysis.report <study dir> [--out report.html] [--no-figure-files]
    python -m analysis.report <study dir> --watch [--interval SECONDS]
    python -m analysis.report s3://bucket/prefix/<name> [--storage-endpoint URL] [--watch]

A study in object storage is read from its local cache (`analysis.remote`; with --watch
re-synced every round, only what changed), and its report is written there, on this machine,
as a local study's is written into its folder: never into the store.

The report is the list `SECTIONS`: (id, title, build), where `build(study, options)` returns the
section's parts, HTML fragments and named `Figure`s. A section whose data is missing says what is
missing; a section whose build fails says so, and the rest of the report stands.

plotly.js is inlined once (the report opens offline, alone); each figure is also written as a
standalone HTML file into `<out stem>_figures/` beside the report (those share one
`plotly.min.js` in that folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from analysis import confusion as confusion_mod
from analysis import figures as F
from analysis import html_table, remote, table_notes, verdict_render
from analysis import table as table_mod
from analysis import verdict as verdict_mod
from analysis.confirmation import RUN_STATUSES
from analysis.report_page import Figure, Part, Section, render_html
from analysis.results import Study, load_study
from analysis.status import STOP_REASONS, study_is_running
from errors import AnalysisError
from names import (
    CONFIRM_PLAN_FILE,
    MULTI_SPACE,
    OPTUNA_DB,
    PARAMS_FILE,
    REPORT_FILE,
    RESULT_FILE,
    SETTINGS_FILE,
    TEST,
    TRIAL_PREFIX,
    TUNED_BEST,
    VALIDATION,
    single_space,
)
from studyfiles.storage import write_local


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line may change in the report; section titles may name these fields
    (`{top_k}`)."""

    top_k: int = 5  # learning curves per task


Build = Callable[[Study, Options], list[Part]]


def missing(text: str) -> str:
    """An HTML note that says what a section lacks."""
    return f'<p class="missing">{html.escape(text)}</p>'


def figure(
    name: str, extract: Callable[[Study], Any], render: Callable[[Any], go.Figure], empty: str
) -> Build:
    """The build of a section that shows one figure: `render(extract(study))` named `name`,
    or the note `empty` when the extract finds nothing to show."""

    def build(study: Study, options: Options) -> list[Part]:
        data = extract(study)
        return [missing(empty)] if data.empty else [Figure(name, render(data))]

    return build


def _html_list(items: Sequence[str]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _summary(study: Study, options: Options) -> list[Part]:
    settings = study.settings
    facts = {
        "study": settings.get("name", study.path.name),
        "space": settings.get("space"),
        "data": settings.get("data"),
        "trials per space": settings.get("num_samples"),
        "max epochs": settings.get("max_epochs"),
        "scheduler": settings.get("scheduler"),
        "seed": settings.get("seed"),
        "confirmation seeds / top-K": f"{settings.get('confirm_seeds', '-')} / "
        f"{settings.get('confirm_top', '-')}",
        "trials found": len(study.trials),
        "confirmation runs found": len(study.runs),
        "status": "running now" if study.running else "not running",
    }
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    counts = F.stop_reason_counts(study)
    table = (
        counts.rename_axis("space").reset_index().to_html(classes="plain", border=0, index=False)
    )
    parts: list[Part] = [
        f'<table class="plain">{rows}</table>',
        "<h3>Stop reasons</h3>" + table,
        _html_list(
            [
                f"<b>{html.escape(k)}</b>: {html.escape(v)}"
                for k, v in STOP_REASONS.items()
                if k in counts.columns
            ]
        ),
    ]
    parts += _confirmation_summary(study)
    expected = [single_space(t) for t in study.task_names] + [MULTI_SPACE]
    absent = [space for space in expected if space not in study.space_tasks]
    if absent:
        parts.append(missing("not in this study: " + ", ".join(absent)))
    if study.notes:
        parts.append(_html_list([html.escape(n) for n in study.notes]))
    return parts


def _confirmation_summary(study: Study) -> list[Part]:
    """Confirmation runs per space, label and status (`RUN_STATUSES`), when there are any."""
    if study.runs.empty:
        return []
    counts = pd.crosstab([study.runs["space"], study.runs["label"]], study.runs["status"])
    counts.columns.name = None
    table = counts.reset_index().to_html(classes="plain", border=0, index=False)
    meaning = [
        f"<b>{html.escape(k)}</b>: {html.escape(v)}"
        for k, v in RUN_STATUSES.items()
        if k in counts.columns
    ]
    return ["<h3>Confirmation runs</h3>" + table, _html_list(meaning)]


def _comparison(study: Study, options: Options) -> list[Part]:
    return [table_mod.to_html(table_mod.comparison(study))]


def _seed_accuracy(study: Study, options: Options) -> list[Part]:
    data = F.seed_accuracy_data(study)
    if data.empty:
        reason = table_notes.no_test_reason(study) or "no confirmation run finished yet"
        return [missing(reason)]
    return [Figure("test-seeds", F.plot_seed_accuracy(data))]


def _learning_curves(study: Study, options: Options) -> list[Part]:
    extract = functools.partial(F.learning_curves_data, k=options.top_k)
    build = figure(
        "learning-curves",
        extract,
        F.plot_learning_curves,
        "no trial reported a validation accuracy",
    )
    return build(study, options)


def _history(study: Study, options: Options) -> list[Part]:
    data = F.history_data(study)
    if data.empty:
        return [missing("no scored trial yet")]
    parts: list[Part] = []
    if data["source"].iloc[0] != OPTUNA_DB:
        parts.append(
            missing(f"no {OPTUNA_DB}: showing each trial's best score from its results instead")
        )
    return [*parts, Figure("history", F.plot_history(data))]


def _needs_multi(note: str, build: Build, go_on: bool) -> Build:
    """`build`, after the note `note` when the study has no multi-task space (and then only
    when `go_on`)."""

    def checked(study: Study, options: Options) -> list[Part]:
        if MULTI_SPACE in study.space_tasks:
            return build(study, options)
        return [missing(note), *build(study, options)] if go_on else [missing(note)]

    return checked


def _confusions(study: Study, options: Options) -> list[Part]:
    """Test matrices of each space's tuned-1 confirmation run (when the study has them), then
    the search's validation matrices, each under a heading that names its split."""
    parts: list[Part] = []
    tests, notes = confusion_mod.confirmation_confusions(study)
    if tests or notes:
        parts.append(f"<h3>{TEST.capitalize()}: {TUNED_BEST} run of each space, first seed</h3>")
        figures = [Figure(f"confusion-test-{c.space}-{c.task}", F.plot_confusion(c)) for c in tests]
        parts += [*map(missing, notes), '<div class="grid">', *figures, "</div>"]
    items, notes = confusion_mod.best_confusions(study)
    parts.append(
        f"<h3>{VALIDATION.capitalize()}: {confusion_mod.SEARCH_SELECTION} "
        "(search stage, optimistic)</h3>"
    )
    figures = [Figure(f"confusion-{c.space}-{c.task}", F.plot_confusion(c)) for c in items]
    return [*parts, *map(missing, notes), '<div class="grid">', *figures, "</div>"]


def _trials(study: Study, options: Options) -> list[Part]:
    """Every trial, as a sortable, filterable HTML table (its dot: the trial's colour in the
    figures)."""
    data = F.trial_table_data(study)
    legend = _html_list(
        [f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in STOP_REASONS.items()]
    )
    table = html_table.sortable_table(data, "trials-table", F.trial_table_colors(study))
    return [
        '<p class="notes">Click a header to sort, type to filter. Scores and accuracies: '
        f"{VALIDATION}, at each trial's best-score epoch. Epochs: trained / max_epochs.</p>",
        table,
        "<details><summary>stop reasons</summary>" + legend + "</details>",
    ]


def _verdict(study: Study, options: Options) -> list[Part]:
    return [verdict_render.render_html(verdict_mod.verdict(study), study.synthetic)]


def _importances(study: Study, options: Options) -> list[Part]:
    data = F.importance_data(study)
    parts: list[Part] = [missing(f"{space}: {note}") for space, note in data.notes.items()]
    parts += [
        f'<p class="caution">Caution, {html.escape(space)}: {html.escape(text)}</p>'
        for space, text in data.cautions.items()
    ]
    if not data.frame.empty:
        parts.append(Figure("importances", F.plot_importances(data)))
    return parts


def _methods(study: Study, options: Options) -> list[Part]:
    """The methods' figures (`figures.methods`) of a study run with --compare-methods; no
    section otherwise (its table is in the comparison section)."""
    from analysis.methods import compared_methods

    if not compared_methods(study.settings):
        return []
    pareto = F.method_pareto_data(study)
    if pareto.empty:
        return [missing(table_notes.no_test_reason(study) or "no compared method's run finished")]
    parts: list[Part] = [Figure("method-pareto", F.plot_method_pareto(pareto))]
    curves, weights = F.method_curves_data(study), F.method_weights_data(study)
    parts.append(
        Figure("method-curves", F.plot_method_curves(curves))
        if len(curves)
        else missing("no method's search trial reported a validation score")
    )
    parts.append(
        Figure("method-weights", F.plot_method_weights(weights))
        if len(weights)
        else missing("no method's search trial recorded per-task weights (method_weight/<task>)")
    )
    return parts


# The report, in order: (id, title, build). Adding a figure: an extract + render pair in its
# family's module of analysis/figures/ and one row here (`figure(...)` builds the usual
# one-figure section).
SECTIONS: list[tuple[str, str, Build]] = [
    ("verdict", "Verdict", _verdict),
    ("summary", "Summary", _summary),
    ("comparison", "Single- vs multi-task comparison", _comparison),
    ("trials", "Trials", _trials),
    ("test-seeds", "Test accuracy per seed", _seed_accuracy),
    ("learning-curves", "Learning curves (top {top_k} per task)", _learning_curves),
    ("history", "Optimization history", _history),
    ("importances", "Parameter importances", _importances),
    (
        "lr-scheme",
        "Learning rate × sampling scheme",
        figure(
            "lr-scheme", F.lr_scheme_data, F.plot_lr_scheme, "no scored trial with a learning rate"
        ),
    ),
    (
        "schemes",
        "Sampling schemes compared",
        _needs_multi(
            f"no {MULTI_SPACE} run: sampling schemes need the {MULTI_SPACE} space",
            figure("schemes", F.scheme_data, F.plot_schemes, "no scored trial"),
            go_on=True,
        ),
    ),
    (
        "pareto",
        "Multi-task Pareto front",
        _needs_multi(
            f"no {MULTI_SPACE} run: the Pareto front needs the {MULTI_SPACE} space",
            figure(
                "pareto",
                F.pareto_figure_data,
                F.plot_pareto,
                f"{MULTI_SPACE}: no trial with both tasks' accuracies "
                "(all errored or none finished an epoch)",
            ),
            go_on=False,
        ),
    ),
    (
        "parallel",
        f"{MULTI_SPACE}: parallel coordinates",
        _needs_multi(
            f"no {MULTI_SPACE} run: the parallel coordinates show the {MULTI_SPACE} space",
            figure("parallel", F.parallel_data, F.plot_parallel, f"no scored {MULTI_SPACE} trial"),
            go_on=False,
        ),
    ),
    ("methods", "Multi-task methods compared", _methods),
    ("confusion", "Confusion matrices", _confusions),
]


def _guarded(title: str, build: Build, study: Study, options: Options) -> list[Part]:
    """Run one section's build; a failure becomes a note in that section, not a crash."""
    try:
        return list(build(study, options))
    except Exception as exc:  # one broken figure must not lose the report
        return [missing(f"{title} could not be drawn: {type(exc).__name__}: {exc}")]


def build_sections(
    study: Study, options: Options | None = None
) -> tuple[list[Section], list[Figure]]:
    """Every section of `SECTIONS` built for a study, and the figures they show; a section whose
    build returns no part does not apply to the study and is left out."""
    options = options or Options()
    fields = dataclasses.asdict(options)
    sections = []
    for sid, title, build in SECTIONS:
        title = title.format(**fields)
        parts = _guarded(title, build, study, options)
        if parts:
            sections.append(Section(sid, title, parts))
    figures = [p for s in sections for p in s.parts if isinstance(p, Figure)]
    return sections, figures


def build_report(
    study_dir: str | Path,
    out: str | Path | None = None,
    figure_files: bool = True,
    top_k: int = Options.top_k,
    reload_s: float | None = None,
    shown: str = "",
) -> Path:
    """Write the report (default `<study dir>/report.html`) and, beside it, the figures as
    standalone files in `<out stem>_figures/`. Returns the report's path. With `reload_s`
    (watch mode) the page reloads itself that often. `shown`: how the commands it prints name
    the study (a remote one's URI and flags, `remote.shown_name`; default its folder)."""
    study = load_study(study_dir, shown)
    out = Path(out) if out else Path(study_dir) / REPORT_FILE
    sections, figures = build_sections(study, Options(top_k=top_k))
    page = render_html(study, sections, reload_s=reload_s)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_local(out, page)
    if figure_files:
        folder = out.parent / f"{out.stem}_figures"
        folder.mkdir(exist_ok=True)
        for fig in figures:
            fig.figure.write_html(
                folder / f"{fig.name}.html",
                include_plotlyjs="directory",
                full_html=True,
                div_id=f"fig-{fig.name}",
            )
    return out


def results_signature(study_dir: Path) -> tuple:
    """What changes when a study's results do: size and mtime of its settings, plan, Optuna
    database and every trial's params and result files (search and confirmation)."""
    files = [study_dir / SETTINGS_FILE, study_dir / CONFIRM_PLAN_FILE, study_dir / OPTUNA_DB]
    files += sorted(study_dir.glob(f"*/{TRIAL_PREFIX}*/{RESULT_FILE}"))
    files += sorted(study_dir.glob(f"*/{TRIAL_PREFIX}*/{PARAMS_FILE}"))
    out = []
    for f in files:
        try:
            info = f.stat()
        except OSError:
            continue
        out.append((str(f), info.st_size, info.st_mtime_ns))
    return tuple(out)


def watch(
    study_dir: str | Path,
    out: str | Path | None = None,
    interval: float = 10.0,
    figure_files: bool = True,
    top_k: int = Options.top_k,
    log: Callable[[str], None] = print,
    refresh: Callable[[], str | None] | None = None,
    shown: str = "",
) -> Path:
    """Rewrite the report whenever the study's results change, every `interval` seconds at
    most, until the study is complete (no driver holds its lock: a last rewrite, without the
    self-reload, then return). Until the study has results, wait for them. `refresh` (a study
    in object storage, `study_dir` its local cache: `remote.refresher`) re-syncs the cache at
    the start of every round; a line it returns is logged. `shown`: as in `build_report`."""
    study_dir = Path(study_dir)
    out = Path(out) if out else study_dir / REPORT_FILE
    if refresh is not None:
        log(f"watching the local cache {study_dir}, re-synced from the store every round")
    last: tuple | None = None
    while True:
        note = refresh() if refresh is not None else None
        if note:
            log(note)
        running = study_is_running(study_dir)
        signature = results_signature(study_dir)
        if signature != last or not running:
            try:
                reload_s = interval if running else None
                build_report(study_dir, out, figure_files, top_k, reload_s, shown)
            except AnalysisError as exc:
                if not running and (study_dir / SETTINGS_FILE).is_file():
                    raise
                log(f"waiting for results: {exc}")
            else:
                last = signature
                trials = sum(1 for _ in study_dir.glob(f"*/{TRIAL_PREFIX}*/{PARAMS_FILE}"))
                log(f"{time.strftime('%H:%M:%S')} report: {out} ({trials} trial folders)")
                if not running:
                    log("the study is not running: report complete")
                    return out
        time.sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Write one self-contained HTML report of a study.",
    )
    parser.add_argument(
        "study", help=f"study directory (holds {SETTINGS_FILE}) or its URI (s3://...)"
    )
    parser.add_argument(
        "--out", help=f"report file (default: <study dir, or its local cache>/{REPORT_FILE})"
    )
    remote.add_arguments(parser)
    parser.add_argument(
        "--no-figure-files",
        action="store_true",
        help="do not also write each figure as its own HTML file",
    )
    parser.add_argument("--top-k", type=int, default=Options.top_k, help="learning curves per task")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="rewrite the report whenever the study's results change, until the study is "
        "complete or Ctrl-C; the page then reloads itself",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --watch: how often to look for new results and reload the page (10)",
    )
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error(f"--interval must be a positive number of seconds, got {args.interval:g}")
    try:
        # a study in object storage: synced into the local cache (--watch: every round), and
        # its report written there (as a local study's is written into its folder)
        study = remote.local_study(args.study, args.storage_endpoint, args.cache_dir)
        shown = remote.shown_name(args.study, args.storage_endpoint)
        options = (not args.no_figure_files, args.top_k)
        if args.watch:
            refresh = remote.refresher(args.study, args.storage_endpoint, args.cache_dir)
            path = watch(study, args.out, args.interval, *options, refresh=refresh, shown=shown)
        else:
            path = build_report(study, args.out, *options, shown=shown)
    except KeyboardInterrupt:
        print("\nstopped watching")
        return 0
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
