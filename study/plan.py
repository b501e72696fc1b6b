"""The confirmation plan: which runs the confirmation stage trains, with which seeds (pure, no Ray).

Per space the plan holds the baseline configuration and the search's top-K configurations
(`analysis.search_table.ranked_trials`: by validation score at their last epoch, among trials
that ran all their epochs, so selection matches what is confirmed), plus each compared method's
best configuration, each with R new seeds. The plan is computed once, when the search has ended,
and written to `confirmation.json`; a resumed study runs exactly that plan. With
`--confirm-seeds auto` (`study.rounds`) the plan grows by whole rounds of seeds, each
configuration the same seeds (`confirm_seeds`, a fixed sequence), and the file is rewritten with
each round. `plan_runs` reads the search's recorded results; `study.runner` runs each round of
the plan as one Ray Tune experiment per space.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from names import (
    BASELINE_LABEL,
    CONFIRM_PLAN_FILE,
    MULTI_SPACE,
    PARAMS_FILE,
    TRIAL_PREFIX,
    TUNED_PREFIX,
    method_label,
    tuned_label,
)
from study import location
from study.settings import StudySettings, first_seeds, study_spaces, trial_constants

Run = dict[str, Any]  # {"label", "space", "source_trial", "seed", "config": TrialConfig dict}


def confirm_seeds(settings: StudySettings, count: int | None = None) -> list[int]:
    """The first `count` seeds (default: the first round's) of every confirmation run: new
    ones, none equal to the search's seed; a longer list starts with a shorter one, so the
    rounds of `--confirm-seeds auto` add seeds without changing those already run."""
    count = first_seeds(settings) if count is None else count
    return [settings.seed + 1 + r for r in range(count)]


def _runs(
    label: str, space: str, source: str | None, config: Mapping[str, Any], seeds: list[int]
) -> list[Run]:
    return [
        {
            "label": label,
            "space": space,
            "source_trial": source,
            "seed": seed,
            "config": {**config, "seed": seed},
        }
        for seed in seeds
    ]


def _trial_config(settings: StudySettings, space: str, trial_id: str) -> dict[str, Any]:
    folder = settings.study_dir / space / f"{TRIAL_PREFIX}{trial_id}"
    return json.loads((folder / PARAMS_FILE).read_text())


def method_runs(
    settings: StudySettings, ranked: Any, top: list[str], seeds: list[int]
) -> list[Run]:
    """The multi-task space's runs of `--compare-methods`: for each named method whose best
    eligible search trial is not already one of the top-K, that trial's configuration as
    `method:<name>`, the same seeds. A method already in the top-K is compared through its
    `tuned-k` runs (its config names it); one without an eligible trial gets none
    (`method_notes` says so)."""
    from analysis.methods import best_of_methods

    runs: list[Run] = []
    for method, trial_id in best_of_methods(ranked, settings.compare_methods or ()).items():
        if trial_id is None or trial_id in top:
            continue
        config = _trial_config(settings, MULTI_SPACE, trial_id)
        runs += _runs(method_label(method), MULTI_SPACE, trial_id, config, seeds)
    return runs


def plan_runs(settings: StudySettings) -> dict[str, list[Run]]:
    """Per leaf space: the baseline's runs, then tuned-1..K's runs (`ranked_trials`: only
    trials that ran all their epochs, so fewer than K when fewer did: `short_notes`), the
    first round's seeds each; in the multi-task space with `--compare-methods`, then the
    compared methods' own runs (`method_runs`)."""
    from analysis.results import load_study
    from analysis.search_table import ranked_trials

    seeds = confirm_seeds(settings)
    trials = load_study(settings.study_dir).trials
    plan: dict[str, list[Run]] = {}
    for space in study_spaces(settings):
        baseline = {**trial_constants(settings, space.name), **space.baseline}
        runs = _runs(BASELINE_LABEL, space.name, None, baseline, seeds)
        ranked = ranked_trials(trials[trials["space"] == space.name])
        top = list(ranked["trial_id"].head(settings.confirm_top))
        for rank, trial_id in enumerate(top, 1):
            config = _trial_config(settings, space.name, trial_id)
            runs += _runs(tuned_label(rank), space.name, trial_id, config, seeds)
        if space.name == MULTI_SPACE and settings.compare_methods:
            runs += method_runs(settings, ranked, top, seeds)
        plan[space.name] = runs
    return plan


def short_notes(plan: Mapping[str, list[Run]], confirm_top: int) -> list[str]:
    """One line per space whose plan has fewer tuned configurations than `--confirm-top`
    asked for: only trials that ran all their epochs are confirmed."""
    notes = []
    for space, runs in plan.items():
        tuned = len({r["label"] for r in runs if str(r["label"]).startswith(TUNED_PREFIX)})
        if tuned < confirm_top:
            notes.append(
                f"{space}: {tuned} search trial(s) ran all their epochs, so {tuned} tuned "
                f"configuration(s) are confirmed, not the {confirm_top} of --confirm-top "
                "(trials stopped early are never confirmed)"
            )
    return notes


def method_plan_notes(settings: StudySettings, plan: Mapping[str, list[Run]]) -> list[str]:
    """One line per method of `--compare-methods` that the plan cannot compare (no search trial
    of it ran all its epochs); the table and the report say it too (`analysis.methods`)."""
    from analysis.methods import compared_methods, method_labels, method_notes

    methods = compared_methods(dataclasses.asdict(settings))
    return method_notes(method_labels(plan.get(MULTI_SPACE, []), methods)) if methods else []


def load_or_write_plan(settings: StudySettings) -> dict[str, list[Run]]:
    """The study's plan: read when it exists (a resume runs exactly it), else planned now,
    written atomically, and any configurations short of `--confirm-top`, or compared methods
    without a configuration, said (one line each)."""
    path = settings.study_dir / CONFIRM_PLAN_FILE
    if path.is_file():
        return json.loads(path.read_text())
    plan = plan_runs(settings)
    location.write_text(settings, CONFIRM_PLAN_FILE, json.dumps(plan, indent=2))
    for line in short_notes(plan, settings.confirm_top) + method_plan_notes(settings, plan):
        print(f"note: {line}", flush=True)
    return plan


def grow_plan(plan: Mapping[str, list[Run]], seeds: list[int]) -> dict[str, list[Run]]:
    """The plan with a run for each of `seeds` of every configuration it holds, those it has
    kept as they are (so growing twice, or again after a crash, plans the same runs), in the
    order of the plan's configurations, then of `seeds`."""
    grown: dict[str, list[Run]] = {}
    for space, runs in plan.items():
        labels = list(dict.fromkeys(r["label"] for r in runs))
        out: list[Run] = []
        for label in labels:
            mine = [r for r in runs if r["label"] == label]
            have = {r["seed"] for r in mine}
            first = mine[0]
            config = {k: v for k, v in first["config"].items() if k != "seed"}
            extra = [s for s in seeds if s not in have]
            out += mine + _runs(label, space, first["source_trial"], config, extra)
        grown[space] = out
    return grown


def plan_for_seeds(settings: StudySettings, plan: dict[str, list[Run]], count: int) -> dict:
    """The written plan grown to `count` seeds per configuration, rewritten when it grew."""
    grown = grow_plan(plan, confirm_seeds(settings, count))
    if grown != plan:
        location.write_text(settings, CONFIRM_PLAN_FILE, json.dumps(grown, indent=2))
    return grown
