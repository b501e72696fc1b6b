"""The comparison table: per task, single-task vs multi-task accuracy, tuned and seed.

Per task:
  single-task  the best epoch (by score) of the best trial (by score) of `single-<task>`
  multi-task   the best trial of `multi` by the study metric (score = mean accuracy over its
               tasks), every task's accuracy at that trial's best-score epoch: one trial and one
               epoch for all tasks, never per-task maxima from different trials
  seed         the seed configuration's trial of each space, at its best-score epoch
and the change multi vs single in absolute points ("80.6% (↓ 8.1)"), plus
Δm = mean over tasks of (acc_multi - acc_single) / acc_single, in %.

A baseline that is missing is shown as missing, never invented.

    python -m analysis.table <study dir> [--format text|markdown|csv] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.results import AnalysisError, Study, load_study

MULTI = "multi"
COLUMNS = {
    "single": "single-task (best)",
    "multi": "multi-task (best by score)",
    "seed_single": "seed single-task",
    "seed_multi": "seed multi-task",
}


# ---------------------------------------------------------------------------------------------
# pure pieces


def format_pct(acc: float) -> str:
    """0.806 -> "80.6%"."""
    return f"{acc * 100:.1f}%"


def format_change(multi: float, single: float | None) -> str:
    """Multi-task accuracy with its change from single-task in points: "80.6% (↓ 8.1)"."""
    if single is None or _nan(single):
        return format_pct(multi)
    points = round((multi - single) * 100, 1)
    if points > 0:
        change = f"↑ {points:.1f}"
    elif points < 0:
        change = f"↓ {-points:.1f}"
    else:
        change = "= 0.0"
    return f"{format_pct(multi)} ({change})"


def delta_m(multi: Mapping[str, float], single: Mapping[str, float]) -> float:
    """Δm in %: mean over tasks of (multi - single) / single. NaN if a task lacks either."""
    tasks = list(multi)
    if not tasks or set(tasks) != set(single):
        return math.nan
    values = [(multi[t] - single[t]) / single[t] for t in tasks]
    if any(_nan(v) or math.isinf(v) for v in values):
        return math.nan
    return float(np.mean(values) * 100)


def format_delta_m(value: float) -> str:
    return f"{value:+.1f}%"


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def best_trial(trials: pd.DataFrame) -> pd.Series | None:
    """The trial with the highest best score (ties: earliest trial), or None."""
    scored = trials.dropna(subset=["best_score"])
    if scored.empty:
        return None
    return scored.sort_values(["best_score", "order"], ascending=[False, True]).iloc[0]


def _pick(study: Study, space: str, seed: bool) -> tuple[pd.Series | None, str | None]:
    """A space's best (or seed) trial, or why there is none."""
    if space not in study.space_tasks:
        return None, f"missing (no {space} run)"
    rows = study.space_trials(space)
    if seed:
        rows = rows[rows["is_seed"]]
        if rows.empty:
            return None, f"missing (no seed trial in {space})"
    if rows.empty:
        return None, f"missing (no {space} trials)"
    errored = (rows["stop_reason"] == "errored").all() and rows["best_score"].isna().all()
    if errored:
        what = f"the seed trial of {space} errored" if seed else f"{space}: all trials errored"
        return None, f"missing ({what})"
    picked = best_trial(rows)
    if picked is None:
        what = f"the seed trial of {space}" if seed else space
        return None, f"missing ({what}: no finished epoch)"
    return picked, None


# ---------------------------------------------------------------------------------------------
# the table


@dataclasses.dataclass
class Comparison:
    """Numbers (`frame`, one row per task) and display cells (`cells`) of the table."""

    title: str
    frame: pd.DataFrame
    cells: pd.DataFrame
    notes: list[str]
    delta_m: float
    seed_delta_m: float
    synthetic: bool


def _entry(study: Study, trial: pd.Series | None, task: str) -> dict[str, object]:
    if trial is None:
        return {"acc": math.nan, "trial": None, "epoch": None}
    acc = trial.get(f"acc_at_best/{task}", math.nan)
    return {
        "acc": float(acc) if not _nan(acc) else math.nan,
        "trial": f"{trial['space']}/trial_{trial['trial_id']}",
        "epoch": int(trial["best_epoch"]) if not pd.isna(trial["best_epoch"]) else None,
    }


def comparison(study: Study) -> Comparison:
    """Build the comparison table of a loaded study."""
    tasks = list(study.space_tasks.get(MULTI, ())) or study.task_names
    multi, multi_why = _pick(study, MULTI, seed=False)
    seed_multi, seed_multi_why = _pick(study, MULTI, seed=True)
    rows, cells, notes = [], [], []
    why_dm: dict[str, list[str]] = {
        "tuned": [multi_why] if multi_why else [],
        "seed": [seed_multi_why] if seed_multi_why else [],
    }
    for task in tasks:
        space = f"single-{task}"
        single, single_why = _pick(study, space, seed=False)
        seed_single, seed_single_why = _pick(study, space, seed=True)
        why_dm["tuned"] += [single_why] if single_why else []
        why_dm["seed"] += [seed_single_why] if seed_single_why else []
        e = {
            "single": _entry(study, single, task),
            "multi": _entry(study, multi, task),
            "seed_single": _entry(study, seed_single, task),
            "seed_multi": _entry(study, seed_multi, task),
        }
        row: dict[str, object] = {"task": task}
        for key, entry in e.items():
            row.update(
                {
                    f"{key}_acc": entry["acc"],
                    f"{key}_trial": entry["trial"],
                    f"{key}_epoch": entry["epoch"],
                }
            )
        row["change_pts"] = (e["multi"]["acc"] - e["single"]["acc"]) * 100
        row["seed_change_pts"] = (e["seed_multi"]["acc"] - e["seed_single"]["acc"]) * 100
        rows.append(row)
        cells.append(
            {
                "task": task,
                COLUMNS["single"]: single_why or _cell(e["single"]["acc"]),
                COLUMNS["multi"]: multi_why or _cell(e["multi"]["acc"], e["single"]["acc"]),
                COLUMNS["seed_single"]: seed_single_why or _cell(e["seed_single"]["acc"]),
                COLUMNS["seed_multi"]: seed_multi_why
                or _cell(e["seed_multi"]["acc"], e["seed_single"]["acc"]),
            }
        )
    frame = pd.DataFrame(rows)
    for key in COLUMNS:
        frame[f"{key}_epoch"] = pd.to_numeric(frame[f"{key}_epoch"]).astype("Int64")
    dm = _frame_delta_m(frame, "multi", "single")
    seed_dm = _frame_delta_m(frame, "seed_multi", "seed_single")
    frame["delta_m_pct"] = dm
    frame["seed_delta_m_pct"] = seed_dm
    cells.append(
        {
            "task": "Δm",
            COLUMNS["single"]: "",
            COLUMNS["multi"]: format_delta_m(dm) if not _nan(dm) else _na(why_dm["tuned"]),
            COLUMNS["seed_single"]: "",
            COLUMNS["seed_multi"]: format_delta_m(seed_dm)
            if not _nan(seed_dm)
            else _na(why_dm["seed"]),
        }
    )
    notes += _provenance(frame, multi)
    for space in study.spaces:
        errored = study.space_trials(space)["stop_reason"].eq("errored")
        if len(errored) and errored.all():
            notes.append(f"{space}: all {len(errored)} trials errored")
    synthetic = study.synthetic
    name = study.settings.get("name", study.path.name)
    title = f"Single- vs multi-task accuracy, study {name!r}"
    if synthetic:
        title += " (synthetic data: the numbers say nothing about real accuracy)"
        notes.append("synthetic data: trained on built-in stand-ins, not the real datasets")
    notes.append(
        "accuracy = validation top-1 at the trial's best-score epoch; change in points vs "
        "single-task; Δm = mean over tasks of (multi - single) / single"
    )
    return Comparison(title, frame, pd.DataFrame(cells), notes, dm, seed_dm, synthetic)


def _na(reasons: list[str]) -> str:
    """ "n/a (no single-x run)" from the first missing cell's "missing (no single-x run)"."""
    first = reasons[0].removeprefix("missing ") if reasons else "(an accuracy is missing)"
    return f"n/a {first}"


def _cell(acc: float, baseline: float | None = None) -> str:
    if _nan(acc):
        return "missing (no accuracy reported)"
    return format_change(acc, baseline)


def _frame_delta_m(frame: pd.DataFrame, multi: str, single: str) -> float:
    m = dict(zip(frame["task"], frame[f"{multi}_acc"], strict=True))
    s = dict(zip(frame["task"], frame[f"{single}_acc"], strict=True))
    return delta_m(m, s)


def _provenance(frame: pd.DataFrame, multi: pd.Series | None) -> list[str]:
    out = []
    for _, r in frame.iterrows():
        if isinstance(r["single_trial"], str):
            out.append(f"single-task {r['task']}: {r['single_trial']} epoch {r['single_epoch']}")
    if multi is not None:
        out.append(
            f"multi-task: {frame['multi_trial'].iloc[0]} epoch {frame['multi_epoch'].iloc[0]} "
            f"(score {multi['best_score']:.4f}, scheme {multi.get('scheme')})"
        )
    seeds = {
        f"{t} epoch {e}"
        for key in ("seed_single", "seed_multi")
        for t, e in zip(frame[f"{key}_trial"], frame[f"{key}_epoch"], strict=True)
        if isinstance(t, str)
    }
    if seeds:
        out.append("seed configuration: " + ", ".join(sorted(seeds)))
    return out


# ---------------------------------------------------------------------------------------------
# output formats


def to_text(table: Comparison) -> str:
    """Aligned plain text for a terminal."""
    cells = table.cells
    header = list(cells.columns)
    body = [[str(v) for v in row] for row in cells.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [table.title, "", line(header), rule]
    lines += [line(r) for r in body[:-1]] + [rule, line(body[-1]), ""]
    lines += [f"* {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def to_markdown(table: Comparison) -> str:
    """A GitHub-flavoured Markdown table with the title and notes."""
    esc = lambda v: str(v).replace("|", "\\|")
    header = list(table.cells.columns)
    lines = [
        f"**{esc(table.title)}**",
        "",
        "| " + " | ".join(map(esc, header)) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row in table.cells.itertuples(index=False):
        lines.append("| " + " | ".join(esc(v) for v in row) + " |")
    lines += [""] + [f"- {esc(n)}" for n in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Comparison) -> str:
    """Machine-readable numbers (accuracies as fractions, changes in points, Δm in %)."""
    frame = table.frame.copy()
    frame["data"] = "synthetic" if table.synthetic else "real"
    return frame.to_csv(index=False, float_format="%.6g")


def to_html(table: Comparison) -> str:
    """An HTML table (used by the report)."""
    import html

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.cells.columns)
    body = []
    for i, row in enumerate(table.cells.itertuples(index=False)):
        cls = ' class="delta-m"' if i == len(table.cells) - 1 else ""
        tds = "".join(
            f'<td class="missing">{html.escape(str(v))}</td>'
            if str(v).startswith(("missing", "n/a"))
            else f"<td>{html.escape(str(v))}</td>"
            for v in row
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (
        f'<table class="comparison"><caption>{html.escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f'<ul class="notes">{notes}</ul>'
    )


FORMATS = {"text": to_text, "markdown": to_markdown, "csv": to_csv}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.table",
        description="Print the single- vs multi-task comparison table of a study.",
    )
    parser.add_argument("study", help="study directory (holds study.json)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument("--out", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    try:
        text = FORMATS[args.format](comparison(load_study(args.study)))
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
