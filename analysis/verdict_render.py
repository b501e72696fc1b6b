"""The verdict written out: its blocks as plain lines (the terminal, `python -m analysis.table`)
and as HTML (the report), from a `Verdict` computed by `analysis.verdict` (render only: no
statistics here).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

from analysis import methods as methods_mod
from analysis.arms import KINDS
from analysis.cells import format_bound
from analysis.stats import ALPHA, CONFIDENCE
from analysis.verdict import (
    BETTER,
    NO_DIFFERENCE,
    PCT,
    SEARCH_CAVEAT,
    UNDETERMINED,
    WORSE,
    Verdict,
    _blank,
    _text,
)
from names import (
    DEFAULT_METHOD,
    TEST,
    TUNED_BEST,
)


def headline(rows: pd.DataFrame) -> str:
    """A space's line of the tuned-vs-baseline block: "tuned-1 better than the baseline on
    cifar10", "... worse ...", "no detectable difference ..."; a search pick; or why missing."""
    first = rows.iloc[0]
    if first["split"] != TEST:
        pick = _text(first["config"])
        return f"best search trial: {pick} ({SEARCH_CAVEAT})" if pick else str(first["missing"])
    on = {w: [t for t, v in zip(rows["task"], rows["verdict"]) if v == w] for w in (BETTER, WORSE)}
    parts = [f"{w} than the baseline on {', '.join(ts)}" for w, ts in on.items() if ts]
    if parts:
        text = f"{TUNED_BEST} " + "; ".join(parts)
    elif rows["verdict"].eq(NO_DIFFERENCE).any():
        text = f"{NO_DIFFERENCE} between {TUNED_BEST} and the baseline"
    else:
        text = next((m for m in rows["missing"] if _text(m)), f"{UNDETERMINED} (no test)")
    failed = [f for f in rows["failed"] if _text(f)]
    return text + (f" (not every seed counted: {failed[0]})" if failed else "")


def _diff_text(diff: float, low: float, high: float, unit: str) -> str:
    """ "-4.0 points [-9.0, +1.0]" (no interval: the number alone)."""
    if _blank(diff):
        return "n/a"
    unit = "%" if unit == "%" else " points"
    interval = "" if _blank(low) or _blank(high) else f" [{low:+.1f}, {high:+.1f}]"
    return f"{diff:+.1f}{unit}{interval}"


def _acc_text(value: float, low: float, high: float, clipped: bool) -> str:
    """ "86.0% [83.5%, 88.5%]", a clipped bound marked (`table.format_bound`)."""
    if _blank(value):
        return "missing"
    if _blank(low) or _blank(high):
        return f"{value:.1%}"
    if not clipped:
        return f"{value:.1%} [{low:.1%}, {high:.1%}]"
    return f"{value:.1%} [{format_bound(low)}, {format_bound(high)}]"


def question_lines(v: Verdict) -> list[str]:
    """The first block as plain lines (head line first)."""
    if v.no_test:
        lines = [
            f"Multi-task vs single-task: no answer yet, no {TEST} figures (the comparison "
            "table says why, and how to get them)",
            f"  search stage ({SEARCH_CAVEAT}; one seed, no significance test):",
        ]
        for r in v.search.to_dict("records"):
            multi, single = r.get("multi_acc"), r.get("single_acc")
            if not (_blank(multi) or _blank(single)):
                lines.append(
                    f"    {r['task']}: multi-task {multi:.1%} vs single-task {single:.1%}"
                    f" ({(multi - single) * PCT:+.1f} points)"
                )
        if len(lines) == 2:
            lines.append("    none: no task has both a single- and a multi-task search figure")
        return lines
    family = int(v.question["p_holm"].notna().sum())
    lines = [
        f"Multi-task vs single-task ({TEST}, multi - single, mean over seeds; {v.budget}; "
        f"Holm over {_tests(family)}, significant when Holm p < {ALPHA:g}):"
    ]
    for r in v.question.to_dict("records"):
        what = _diff_text(r["diff"], r["ci_low"], r["ci_high"], r["unit"])
        test = f", {r['test']}" if _text(r["test"]) and not _blank(r["p_value"]) else ""
        kind = KINDS.get(r["label"], r["label"])
        lines.append(f"  {kind} {r['task']}: {what}{test}: {r['says']}")
    return lines


def _tests(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def _tuned_vs_base(r: Mapping) -> tuple[str, str, str]:
    """A tuned-vs-baseline row's texts: the tuned accuracy, the baseline's, and the change."""
    tuned = _acc_text(r["value"], r["ci_low"], r["ci_high"], r["clipped"] is True)
    base = _acc_text(
        r["baseline_value"],
        r["baseline_ci_low"],
        r["baseline_ci_high"],
        r["baseline_clipped"] is True,
    )
    return tuned, base, _diff_text(r["change_pts"], r["change_ci_low"], r["change_ci_high"], "pts")


def tuned_lines(v: Verdict) -> list[str]:
    """The second block as plain lines."""
    if v.tuned.empty:
        return ["Tuned vs the baseline: no trial finished an epoch"]
    first = v.tuned.iloc[0]
    if first["split"] == TEST:
        family = int(v.tuned["p_holm"].notna().sum())
        head = (
            f"Tuned ({TUNED_BEST}) vs the baseline configuration, per space ({TEST}, mean over "
            f"seeds; Holm over {_tests(family)}):"
        )
    else:
        head = f"Search picks vs the baseline trial, per space ({SEARCH_CAVEAT}; one seed):"
    lines = [head]
    for space, rows in v.tuned.groupby("space", sort=False):
        lines.append(f"  {space}: {headline(rows)}")
        for r in rows.to_dict("records"):
            tuned, base, change = _tuned_vs_base(r)
            says = f": {r['says']}" if first["split"] == TEST else ""
            lines.append(f"    {r['task']}: {tuned} vs {base}, {change}{says}")
    return lines


def method_headline(method: str, rows: pd.DataFrame) -> str:
    """A method's line: "upgrad better than ew on cifar10, Δm", "... worse ...", "no detectable
    difference from ew", "not compared (...)", or undetermined."""
    on = {w: [t for t, v in zip(rows["task"], rows["verdict"]) if v == w] for w in (BETTER, WORSE)}
    parts = [f"{w} than {DEFAULT_METHOD} on {', '.join(ts)}" for w, ts in on.items() if ts]
    if parts:
        return f"{method} " + "; ".join(parts)
    if rows["verdict"].eq(NO_DIFFERENCE).any():
        return f"{method}: {NO_DIFFERENCE} from {DEFAULT_METHOD}"
    missing = next((m for m in rows["missing"] if _text(m)), None)
    return f"{method}: {missing or UNDETERMINED + ' (no test)'}"


def method_lines(v: Verdict) -> list[str]:
    """The methods block as plain lines ([] without --compare-methods or test figures)."""
    if v.methods.empty:
        return []
    family = int(v.methods["p_holm"].notna().sum())
    lines = [
        f"Methods vs {DEFAULT_METHOD} ({TEST}, method - {DEFAULT_METHOD}, mean over seeds; "
        f"{v.budget}; Holm over {_tests(family)}, significant when Holm p < {ALPHA:g}):"
    ]
    for method, rows in v.methods.groupby("method", sort=False):
        lines.append(f"  {method_headline(str(method), rows)}")
        for r in rows.to_dict("records"):
            if _text(r["missing"]) == methods_mod.NOT_COMPARED:
                continue
            what = _diff_text(r["diff"], r["ci_low"], r["ci_high"], r["unit"])
            test = f", {r['test']}" if _text(r["test"]) and not _blank(r["p_value"]) else ""
            lines.append(f"    {r['task']}: {what}{test}: {r['says']}")
    return lines


def render_text(v: Verdict, synthetic: bool) -> str:
    """The verdict for a terminal: the question first, then tuned vs the baseline, then the
    methods against ew (with --compare-methods)."""
    note = ["(synthetic data: these numbers say nothing about real accuracy)"] if synthetic else []
    methods = ["", *method_lines(v)] if not v.methods.empty else []
    return "\n".join(["Verdict", *note, *question_lines(v), "", *tuned_lines(v), *methods])


def _question_html(v: Verdict) -> str:
    head, *rest = question_lines(v)
    if v.no_test:
        items = "".join(f"<li>{html.escape(x.strip())}</li>" for x in rest[1:])
        return (
            f'<div class="verdict-question"><h3>{html.escape(head)}</h3>'
            f'<p class="meta">{html.escape(rest[0].strip())}</p><ul>{items}</ul></div>'
        )
    cells = "".join(
        f"<tr><td>{html.escape(KINDS.get(r['label'], r['label']))}</td>"
        f"<td>{html.escape(str(r['task']))}</td>"
        f"<td>{html.escape(_diff_text(r['diff'], r['ci_low'], r['ci_high'], r['unit']))}</td>"
        f"<td>{html.escape(str(r['says']))}</td></tr>"
        for r in v.question.to_dict("records")
    )
    return (
        f'<div class="verdict-question"><h3>{html.escape(head)}</h3>'
        '<div class="scroll"><table class="plain"><tr><th>configuration</th><th>task</th>'
        f"<th>multi - single [{CONFIDENCE:.0%} interval]</th><th>verdict</th></tr>{cells}"
        "</table></div></div>"
    )


def _space_row_html(r: Mapping, test: bool) -> str:
    tuned, base, change = _tuned_vs_base(r)
    cells = [str(r["task"]), tuned, base, change] + ([str(r["says"])] if test else [])
    small = f" <small>n={r['n']}</small>" if test else ""
    out = [f"<td>{html.escape(c)}</td>" for c in cells]
    out[1] = out[1].removesuffix("</td>") + small + "</td>"
    return "<tr>" + "".join(out) + "</tr>"


def _space_html(space: str, rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    test = first["split"] == TEST
    cells = "".join(_space_row_html(r, test) for r in rows.to_dict("records"))
    heads = ["task", _text(first["config"]) or "pick", "baseline", "change"]
    heads += ["verdict"] if test else []
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return (
        f'<div class="verdict-space" data-space="{html.escape(space)}">'
        f"<h3>{html.escape(space)}: {html.escape(headline(rows))}</h3>"
        f'<p class="params">{html.escape(_text(first["params"]) or "")}</p>'
        f'<p class="meta">baseline: {html.escape(_text(first["baseline"]) or "missing")}</p>'
        f'<div class="scroll"><table class="plain"><tr>{head}</tr>{cells}</table></div></div>'
    )


def _methods_html(v: Verdict) -> str:
    """The methods block of the card ("" without one)."""
    lines = method_lines(v)
    if not lines:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(str(r['method']))}</td><td>{html.escape(str(r['task']))}</td>"
        f"<td>{html.escape(_diff_text(r['diff'], r['ci_low'], r['ci_high'], r['unit']))}</td>"
        f"<td>{html.escape(str(r['says']))}</td></tr>"
        for r in v.methods.to_dict("records")
    )
    heads = [line.strip() for line in lines[1:] if not line.startswith("    ")]
    items = "".join(f"<li>{html.escape(h)}</li>" for h in heads)
    return (
        f'<div class="verdict-methods"><h3>{html.escape(lines[0])}</h3><ul>{items}</ul>'
        '<div class="scroll"><table class="plain"><tr><th>method</th><th>task</th>'
        f"<th>method - {DEFAULT_METHOD} [{CONFIDENCE:.0%} interval]</th><th>verdict</th></tr>"
        f"{cells}</table></div></div>"
    )


def render_html(v: Verdict, synthetic: bool) -> str:
    """The verdict card: the question block, then one block per space (tuned vs baseline)."""
    note = " Synthetic data: these numbers say nothing about real accuracy." if synthetic else ""
    if v.tuned.empty and v.question.empty:
        why = "no verdict yet: no trial finished an epoch"
        return f'<div class="verdict"><p class="missing">{why}</p></div>'
    head, *_ = tuned_lines(v)
    selection = html.escape(str(v.tuned.iloc[0]["selection"])) if len(v.tuned) else ""
    return (
        '<div class="verdict">'
        f'<p class="meta">The answer first, then tuned against the baseline.{note}</p>'
        + _question_html(v)
        + f'<h3>{html.escape(head)}</h3><p class="meta">{selection}.</p>'
        + "".join(_space_html(space, rows) for space, rows in v.tuned.groupby("space", sort=False))
        + _methods_html(v)
        + "</div>"
    )
