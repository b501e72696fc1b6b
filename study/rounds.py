"""`--confirm-seeds auto`: seeds chosen by precision, one round at a time.

The first round runs `names.AUTO_FIRST_SEEDS` seeds of every planned configuration (every
space's baseline and tuned-k). After each round the table's own multi - single intervals (test
accuracy, points: `analysis.table.comparison(...).differences`, so the rule and the table agree)
are read, and:

- every half-width at most `--target-halfwidth`: stop;
- else, at `--max-seeds`: stop;
- else every configuration gets more seeds, as many as the widest interval's observed spread
  says it needs (`projected_seeds`, at least one more, never past the maximum), and the next
  round runs them.

The rule looks only at widths, never at p-values: stopping once a difference looks significant
would re-test the same comparison after every round and inflate its false-positive rate, while
a stop on width does not depend on which way the difference points.

Each round, its half-widths and its decision are recorded in `names.CONFIRM_ROUNDS_FILE`
(written atomically, in the study's storage), so a resumed study continues the rounds exactly
and a reader can check every decision. Round k's runs are Ray experiment
`names.confirm_experiment(space, k)`: an experiment cannot grow once it has run. `decide` and
`projected_seeds` are pure; the rest reads and writes the record.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from names import AUTO_FIRST_SEEDS, CONFIRM_ROUNDS_FILE, MULTI_SPACE, TEST, single_space
from study import location
from study.settings import StudySettings

Record = dict[str, Any]  # the rounds file: {"target_halfwidth", "max_seeds", "rounds": [...]}
CONFIDENCE_T = 0.975  # the two-sided 95 % intervals of the table


@dataclasses.dataclass(frozen=True)
class Decision:
    """After a round: stop, or go on with `next_seeds` seeds per configuration; and why."""

    stop: bool
    reason: str
    next_seeds: int


def projected_seeds(widest: float, seeds: int, target: float, max_seeds: int) -> int:
    """The fewest seeds, more than `seeds` and at most `max_seeds`, at which an interval of
    half-width `widest` at `seeds` would shrink to `target`, its spread staying as observed
    (half-width = t(0.975, n - 1) x sd / sqrt(n)); one more seed when it cannot be projected
    (no finite width, or fewer than 2 seeds)."""
    from scipy import stats

    if not math.isfinite(widest) or seeds < 2:
        return min(seeds + 1, max_seeds)
    t_now = stats.t.ppf(CONFIDENCE_T, seeds - 1)
    for n in range(seeds + 1, max_seeds + 1):
        if widest * stats.t.ppf(CONFIDENCE_T, n - 1) / t_now * math.sqrt(seeds / n) <= target:
            return n
    return max_seeds


def decide(
    halfwidths: Sequence[float | None], seeds: int, target: float, max_seeds: int
) -> Decision:
    """The rule after a round of `seeds` seeds (see the module's docstring). A half-width that
    is missing (None or NaN: no interval, e.g. a configuration's seeds diverged) is not narrow."""
    widths = [math.inf if w is None or math.isnan(w) else float(w) for w in halfwidths]
    if not widths:
        return Decision(True, "no multi - single comparison to measure", seeds)
    widest = max(widths)
    if widest <= target:
        return Decision(True, f"every multi - single half-width is at most {target:g}", seeds)
    if seeds >= max_seeds:
        return Decision(True, f"reached --max-seeds {max_seeds}", seeds)
    more = projected_seeds(widest, seeds, target, max_seeds)
    shown = f"{widest:.2f}" if math.isfinite(widest) else "undefined (no interval)"
    return Decision(False, f"widest half-width {shown} > {target:g}: {more} seeds next", more)


# ---------------------------------------------------------------------------------------------
# the record


def read(study_dir: Path) -> Record | None:
    """The study's rounds record, or None before the first round is planned."""
    path = study_dir / CONFIRM_ROUNDS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write(settings: StudySettings, record: Record) -> Record:
    location.write_text(settings, CONFIRM_ROUNDS_FILE, json.dumps(record, indent=2))
    return record


def load_or_start(settings: StudySettings) -> Record:
    """The record, started (round 1, `AUTO_FIRST_SEEDS` seeds) and written if there is none."""
    record = read(settings.study_dir)
    if record is not None:
        return record
    start = {
        "target_halfwidth": settings.target_halfwidth,
        "max_seeds": settings.max_seeds,
        "split": TEST,
        "unit": "points",
        "rounds": [{"round": 1, "seeds": AUTO_FIRST_SEEDS}],
    }
    return _write(settings, start)


def finished(record: Record | None) -> bool:
    """Whether the last round decided to stop."""
    return bool(record and record["rounds"] and record["rounds"][-1].get("decision") == "stop")


def round_seed_range(record: Record, k: int) -> range:
    """Indices (0-based, into `study.plan.confirm_seeds`) of the seeds round k adds."""
    rounds = record["rounds"]
    before = rounds[k - 2]["seeds"] if k > 1 else 0
    return range(before, rounds[k - 1]["seeds"])


def measure(study_dir: Path) -> list[dict[str, Any]]:
    """The table's multi - single half-widths now (test, points): one per task and
    configuration label planned in both its single-task space and `multi`, None where the
    table has no interval; tasks the table refuses to compare (different data under one name)
    and labels one side never planned (no trial of that space ran all its epochs) are left
    out: no number of seeds would give them an interval."""
    from analysis.arms import refused_tasks
    from analysis.results import load_study
    from analysis.table import comparison, table_tasks

    study = load_study(study_dir)
    diffs = comparison(study).differences
    refused = refused_tasks(study, table_tasks(study))
    planned = {(space, r.get("label")) for space, runs in study.plan.items() for r in runs}
    out = []
    for row in diffs.to_dict("records") if len(diffs) else []:
        sides = {(single_space(row["task"]), row["label"]), (MULTI_SPACE, row["label"])}
        if row["task"] in refused or not sides <= planned:
            continue
        half = (row["ci_high"] - row["ci_low"]) / 2
        finite = half is not None and not math.isnan(half)
        out.append(
            {"task": row["task"], "label": row["label"], "halfwidth": half if finite else None}
        )
    return out


def _widest(widths: list[dict[str, Any]]) -> float | None:
    """The widest half-width; None when one has no interval (or there are none)."""
    values = [w["halfwidth"] for w in widths]
    return None if not values or None in values else max(values)


def close_round(settings: StudySettings, record: Record) -> Decision:
    """After the last round's runs ended: measure, decide, and record both (with the next
    round, when there is one, in the same atomic write); prints one line."""
    current = record["rounds"][-1]
    widths = measure(settings.study_dir)
    decision = decide(
        [w["halfwidth"] for w in widths],
        current["seeds"],
        record["target_halfwidth"],
        record["max_seeds"],
    )
    current.update(
        halfwidths=widths,
        widest=_widest(widths),
        decision="stop" if decision.stop else "add",
        reason=decision.reason,
    )
    if not decision.stop:
        record["rounds"].append({"round": current["round"] + 1, "seeds": decision.next_seeds})
    _write(settings, record)
    print(
        f"confirmation round {current['round']} ({current['seeds']} seeds per configuration, "
        f"{TEST}): {'stop' if decision.stop else 'more seeds'}: {decision.reason}",
        flush=True,
    )
    return decision
