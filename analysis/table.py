"""The comparison table: per task, single- vs multi-task *test* accuracy over seeds, for the
baseline configuration and for the tuned one, with 95 % confidence intervals.

The search selects on validation; the confirmation stage (`confirmation`) then retrains each
space's baseline and top-K configurations from scratch with R seeds on train + validation and
scores every run once on test at its last epoch. Rows per task:

  baseline single-task   confirm-single-<task>, label `baseline`
  baseline multi-task    confirm-multi, label `baseline`
  tuned single-task      confirm-single-<task>, label `tuned-1` (the search's best by validation)
  tuned multi-task       confirm-multi, label `tuned-1`

Each cell is the mean test accuracy over seeds ± the half-width of its 95 % Student-t interval
("80.6% ± 1.2 (n=3)"; with one seed "80.6% (1 seed, no interval)"; with a seed that did not
count "80.6% ± 1.2 (n=2 of 3, 1 diverged)"; an interval reaching past 0 or 100 % is clipped
there and marked "*": "58.3% [16.1%, 100.0%*] (n=2)"). Per task, multi - single for baseline
and tuned, in points: the paired t over seed pairs when both arms have the same seeds (Welch's
test otherwise), its 95 % interval, p-value, Holm-adjusted p-value and minimum detectable
difference (80 % power); Δm (mean over tasks of (multi - single) / single, in %) with the same
over seed pairs. The multi - single tests of the shown labels and their Δm are one Holm family.
Optimizer steps and images seen per task and row. The other tuned runs (`tuned-2` ..) are in the
CSV. Then, in a separate section, the search-stage selection figures (`search_table`:
validation, optimistic).

A row without a finished run says why ("missing (no single-fashionrgb run)"); a study without
confirmation runs says that it has no test figures and how to get them. A task is compared only
when its single- and multi-task runs trained the same source (`Study.source_problem`: one spec,
the one tasks.json records with its files' fingerprint); otherwise its multi - single and Δm
say why they are not computed.

Its notes (what each row trained, the budget, runs not counted, the tests) are
`analysis.table_notes`'s.

    python -m analysis.table <study dir> [--format text|markdown|csv|html] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import typing
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import remote
from analysis.results import Study, load_study
from analysis.search_table import COLUMNS as SEARCH_COLUMNS
from analysis.search_table import SearchComparison, search_comparison
from errors import AnalysisError
from names import (
    MULTI_ARM,
    MULTI_SPACE,
    SETTINGS_FILE,
    SINGLE_ARM,
    TEST,
    VALIDATION,
)

if typing.TYPE_CHECKING:
    from analysis.methods import MethodsSection
from analysis.arms import (
    DELTA_M,
    KINDS,
    SELECTION,
    SHOWN,
    delta_m_frame,
    difference_frame,
    holm_family,
    refused_tasks,
    seed_frame,
    summary_frame,
)
from analysis.cells import (
    _count,
    _times,
    acc_cell,
    delta_m_cell,
    diff_cell,
    is_nan,
    text_of,
)
from analysis.table_notes import confirmation_notes, no_test_reason

CELLS = {
    "acc": "test accuracy",
    "diff": "multi - single (points)",
    "steps": "optimizer steps",
    "images": "images seen",
}


def _steps_cell(r: Mapping, summary: pd.DataFrame) -> str:
    """A row's mean optimizer steps of its task; on a multi-task row also as a multiple of the
    task's single-task run's ("5,750 (4.8× single)"): the planned steps the run recorded, else
    (a study from before budgets) the same label's single-task row's mean."""
    if text_of(r["missing"]):
        return ""
    if r["fashion"] != MULTI_ARM:
        return _count(r["steps"])
    single = r.get("single_steps")
    if is_nan(single):
        rival = summary[
            (summary["task"] == r["task"])
            & (summary["label"] == r["label"])
            & (summary["fashion"] == SINGLE_ARM)
        ]
        single = rival["steps"].iloc[0] if len(rival) else np.nan
    if is_nan(single) or not single or is_nan(r["steps"]):
        return _count(r["steps"])
    return f"{_count(r['steps'])} ({_times(r['steps'] / single)} single)"


def display_cells(summary: pd.DataFrame, diffs: pd.DataFrame, dm: pd.DataFrame) -> pd.DataFrame:
    """The shown table: per task its four rows (baseline, then tuned; single, then multi; the
    difference on the multi-task row), then one Δm row per shown label."""
    diff_of = {(d["task"], d["label"]): d for d in diffs.to_dict("records")}
    cells = []
    shown = summary[summary["label"].isin(SHOWN)]
    for r in shown.to_dict("records"):
        is_multi = r["fashion"] == MULTI_ARM
        cells.append(
            {
                "task": r["task"],
                "row": r["row"],
                CELLS["acc"]: acc_cell(r),
                CELLS["diff"]: diff_cell(
                    diff_of.get((r["task"], r["label"])) if is_multi else None
                ),
                CELLS["steps"]: _steps_cell(r, summary),
                CELLS["images"]: "" if text_of(r["missing"]) else _count(r["images"]),
            }
        )
    for d in dm.to_dict("records"):
        row = {"task": DELTA_M, "row": KINDS[d["label"]], CELLS["diff"]: delta_m_cell(d)}
        cells.append({**dict.fromkeys(["task", "row", *CELLS.values()], ""), **row})
    return pd.DataFrame(cells, columns=["task", "row", *CELLS.values()])


@dataclasses.dataclass
class Comparison:
    """The comparison table of a study.

    `cells`: the shown test table (four rows per task, then the Δm rows); empty when the study
    has no test figures, and then `no_test` says why and how to get them. `seeds`: one row per
    confirmation run and task (`SEED_COLUMNS`). `summary`: one row per task, label and fashion
    (`summary_frame`). `differences`: multi - single per task and label (`difference_frame`).
    `delta_m`: per shown label (`delta_m_frame`). `search`: the search-stage selection figures
    (validation, optimistic)."""

    title: str
    cells: pd.DataFrame
    seeds: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    delta_m: pd.DataFrame
    notes: list[str]
    no_test: str | None
    search: SearchComparison
    synthetic: bool
    methods: MethodsSection | None = None  # with --compare-methods: `analysis.methods`


def table_tasks(study: Study) -> list[str]:
    """The table's tasks: the multi-task space's, else every task of the study."""
    return list(study.space_tasks.get(MULTI_SPACE, ())) or study.task_names


def test_frames(
    study: Study, seeds: pd.DataFrame, tasks: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The test figures of a study with confirmation runs: its summary (`summary_frame`), its
    multi - single differences and its Δm, Holm-corrected as one family (`holm_family`)."""
    summary = summary_frame(study, seeds, tasks)
    refused = refused_tasks(study, tasks)
    diffs, dm = holm_family(
        difference_frame(seeds, summary, refused), delta_m_frame(seeds, summary, tasks, refused)
    )
    return summary, diffs, dm


def comparison(study: Study) -> Comparison:
    """Build the comparison table of a loaded study."""
    tasks = table_tasks(study)
    name = study.settings.get("name", study.path.name)
    title = f"Test accuracy, single- vs multi-task, study {name!r}"
    notes = []
    if study.synthetic:
        title += " (synthetic data: the numbers say nothing about real accuracy)"
        notes.append("synthetic data: trained on built-in stand-ins, not the real datasets")
    search = search_comparison(study)
    no_test = no_test_reason(study)
    seeds = seed_frame(study, tasks)
    if no_test:
        empty = pd.DataFrame()
        return Comparison(
            title, empty, seeds, empty, empty, empty, notes, no_test, search, study.synthetic
        )
    summary, diffs, dm = test_frames(study, seeds, tasks)
    cells = display_cells(summary, diffs, dm)
    notes += confirmation_notes(study, tasks, summary, diffs, dm)
    methods = _methods_section(study, seeds, tasks)
    return Comparison(
        title, cells, seeds, summary, diffs, dm, notes, None, search, study.synthetic, methods
    )


def _methods_section(
    study: Study, seeds: pd.DataFrame, tasks: Sequence[str]
) -> MethodsSection | None:
    """The methods section (`analysis.methods`) of a study run with --compare-methods, else
    None."""
    from analysis import methods

    if not methods.compared_methods(study.settings):
        return None
    return methods.methods_section(study, seeds, tasks)


def _sections(table: Comparison) -> list[tuple[str, pd.DataFrame, list[str]]]:
    """(title, cells, notes) of each section, the test table first."""
    test = (table.title, table.cells, table.notes)
    if table.no_test:
        test = (table.title, pd.DataFrame(), [table.no_test, *table.notes])
    methods = []
    if table.methods is not None:
        from analysis.methods import TITLE

        methods = [(TITLE, table.methods.cells, table.methods.notes)]
    return [test, *methods, (table.search.title, table.search.cells, table.search.notes)]


def _text_section(title: str, cells: pd.DataFrame, notes: list[str]) -> list[str]:
    lines = [title, ""]
    if not cells.empty:
        header = list(cells.columns)
        body = [[str(v) for v in row] for row in cells.itertuples(index=False)]
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]

        def line(vals: list[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines += [line(header), rule]
        for i, r in enumerate(body):
            if r[0] == DELTA_M and (i == 0 or body[i - 1][0] != DELTA_M):
                lines.append(rule)
            lines.append(line(r))
        lines.append("")
    return lines + [f"* {n}" for n in notes]


def to_text(table: Comparison) -> str:
    """Aligned plain text for a terminal."""
    parts = ["\n".join(_text_section(*s)) for s in _sections(table)]
    return "\n\n".join(parts) + "\n"


def _md_section(title: str, cells: pd.DataFrame, notes: list[str]) -> list[str]:
    esc = lambda v: str(v).replace("|", "\\|")
    lines = [f"**{esc(title)}**", ""]
    if not cells.empty:
        header = list(cells.columns)
        lines.append("| " + " | ".join(map(esc, header)) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
        lines += [
            "| " + " | ".join(esc(v) for v in row) + " |" for row in cells.itertuples(index=False)
        ]
        lines.append("")
    return lines + [f"- {esc(n)}" for n in notes]


def to_markdown(table: Comparison) -> str:
    """GitHub-flavoured Markdown: each section's title, table and notes."""
    return "\n\n".join("\n".join(_md_section(*s)) for s in _sections(table)) + "\n"


def _html_cell(value: object) -> str:
    text = html.escape(str(value))
    missing = str(value).startswith(("missing", "n/a"))
    return f'<td class="missing">{text}</td>' if missing else f"<td>{text}</td>"


def _html_section(title: str, cells: pd.DataFrame, notes: list[str], css: str) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    if cells.empty:
        return f'<p class="caption">{html.escape(title)}</p><ul class="notes">{items}</ul>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells.columns)
    rows = []
    for row in cells.itertuples(index=False):
        css_row = ' class="delta-m"' if row[0] == DELTA_M else ""
        rows.append(f"<tr{css_row}>{''.join(map(_html_cell, row))}</tr>")
    body = "".join(rows)
    return (
        f'<table class="{css}"><caption>{html.escape(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<ul class="notes">{items}</ul>'
    )


def to_html(table: Comparison) -> str:
    """The sections as HTML tables with their notes (used by the report): the test table, the
    methods section (with --compare-methods), the search stage."""
    test, *methods, search = _sections(table)
    parts = [_html_section(*test, "comparison")]
    parts += [_html_section(*m, "comparison methods") for m in methods]
    return "".join(parts) + _html_section(*search, "comparison search")


CSV_COLUMNS = ["record", "split", "selection", "task", "row", "space", "label", "seed"]
CSV_COLUMNS += ["trial_id", "status", "epoch", "n", "planned", "failed", "value", "unit"]
CSV_COLUMNS += ["ci_low", "ci_high", "clipped", "test", "p_value", "p_holm", "mde"]
CSV_COLUMNS += ["steps", "images", "missing", "data"]
SEARCH_SELECTION = "top trial by last-epoch score (ran all epochs), at its peak epoch"


def _seed_records(table: Comparison) -> pd.DataFrame:
    s = table.seeds
    return s.assign(record="seed", split=TEST, selection=SELECTION, n=1, value=s["acc"])


def _summary_records(table: Comparison) -> pd.DataFrame:
    s = table.summary
    return s.assign(record="mean", split=TEST, selection=SELECTION, value=s["mean"])


def _difference_records(table: Comparison) -> pd.DataFrame:
    d = table.differences
    return d.assign(
        record="multi - single",
        split=TEST,
        selection=SELECTION,
        row=d["label"].map(lambda lb: KINDS.get(lb, lb)),
        n=d["n_multi"].astype(str) + "+" + d["n_single"].astype(str),
        value=d["diff_pts"],
        unit="points",
    )


def _delta_m_records(table: Comparison) -> pd.DataFrame:
    d = table.delta_m
    return d.assign(
        record="delta_m",
        split=TEST,
        selection=SELECTION,
        row=d["label"].map(KINDS),
        value=d["delta_m_pct"],
        unit="percent",
    )


def _search_records(table: Comparison) -> pd.DataFrame:
    """The search-stage figures: per task and column, the validation accuracy and its trial."""
    frame = table.search.frame
    parts = []
    for key, name in SEARCH_COLUMNS.items():
        parts.append(
            pd.DataFrame(
                {
                    "task": frame["task"],
                    "row": name,
                    "trial_id": frame[f"{key}_trial"],
                    "epoch": frame[f"{key}_epoch"],
                    "value": frame[f"{key}_acc"],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.assign(record="search", split=VALIDATION, selection=SEARCH_SELECTION, n=1)


def csv_frame(table: Comparison) -> pd.DataFrame:
    """Every number of the table in one long frame (`CSV_COLUMNS`): `record` is `seed` (one
    per confirmation run and task), `mean`, `multi - single`, `delta_m`, the methods section's
    (`analysis.methods.csv_records`) or `search`; `value` is
    an accuracy (fraction) unless `unit` says points or percent. A `mean` has the seeds
    `planned` and `failed` (diverged or errored) beside its n, and `clipped` when its interval
    was clipped to [0, 1]; a comparison has its `test`, raw `p_value`, `p_holm` (Holm within the
    table's family) and `mde` (same unit as `value`); one not made (missing or "not compared")
    has none of them."""
    parts = []
    if not table.no_test:
        parts += [_seed_records(table), _summary_records(table)]
        parts += [_difference_records(table), _delta_m_records(table)]
    if table.methods is not None:
        from analysis.methods import csv_records

        parts.append(csv_records(table.methods))
    parts.append(_search_records(table))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if "unit" not in frame:
        frame["unit"] = np.nan
    frame["unit"] = frame["unit"].fillna("accuracy")
    frame["data"] = "synthetic" if table.synthetic else "real"
    for col in CSV_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return frame[CSV_COLUMNS]


def to_csv(table: Comparison) -> str:
    """The long frame of `csv_frame` as CSV."""
    return csv_frame(table).to_csv(index=False, float_format="%.6g")


FORMATS: dict[str, Callable[[Comparison], str]] = {
    "text": to_text,
    "markdown": to_markdown,
    "csv": to_csv,
    "html": to_html,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.table",
        description="Print the single- vs multi-task comparison table of a study.",
    )
    parser.add_argument(
        "study", help=f"study directory (holds {SETTINGS_FILE}) or its URI (s3://...)"
    )
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument("--out", help="write to this file instead of standard output")
    remote.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        study = remote.local_study(args.study, args.storage_endpoint, args.cache_dir)
        shown = remote.shown_name(args.study, args.storage_endpoint)
        text = FORMATS[args.format](comparison(load_study(study, shown)))
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {args.out}")
        else:
            sys.stdout.write(text)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
