"""The confirmation stage: what the comparison table reports, measured on held-out test data.

    python -m study.confirm studies/<name>     # alone, after a finished search; resumable
    python -m study.confirm s3://bucket/prefix/<name> [--storage-endpoint URL]  # in a store

The search chooses on validation data and is therefore optimistic about what it chose. This
stage takes, per space, the baseline configuration and the search's top-K configurations
(`analysis.search_table.ranked_trials`: by validation score at their last epoch, among trials
that ran all their epochs, so selection matches what is confirmed), retrains each from scratch
with R new seeds on train + validation for the full number of epochs (no early stopping) and
scores each once, at its last epoch, on the test split that the search never saw. Nothing is
selected here.

The plan is computed once, when the search has ended, and written to `confirmation.json`; a
resumed study runs exactly that plan. With `--confirm-seeds auto` (`study.rounds`) the plan
grows by whole rounds of seeds, each configuration the same seeds (`confirm_seeds`, a fixed
sequence), and the file is rewritten with each round. Planning is pure (no Ray): `plan_runs`
reads the search's recorded results; `study.runner` runs each round of the plan as one Ray Tune
experiment per space.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    AUTO_SEEDS,
    BASELINE_LABEL,
    CONFIRM_PLAN_FILE,
    MULTI_SPACE,
    PARAMS_FILE,
    SETTINGS_FILE,
    TRIAL_PREFIX,
    TUNED_PREFIX,
    method_label,
    tuned_label,
)
from study import location
from study.settings import (
    StudySettings,
    check_confirmation,
    first_seeds,
    study_spaces,
    trial_constants,
)

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


OVERRIDES = ("confirm_top", "confirm_seeds", "target_halfwidth", "max_seeds")


def with_overrides(settings: StudySettings, args: Any) -> StudySettings:
    """The study's settings with the confirmation flags of `python -m study.confirm` (`args`:
    `OVERRIDES` as attributes, None where not given), checked as a new study's are and saved
    in its study.json; refused once the plan is written (it would no longer hold)."""
    changes = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k, None) is not None}
    for key in ("confirm_top", "confirm_seeds"):
        value = changes.get(key)
        if value is not None and value != AUTO_SEEDS and value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be a positive number, got {value}")
    changed = dataclasses.replace(settings, **changes)
    check_confirmation(changed, args)
    if changed == settings:
        return settings
    if (settings.study_dir / CONFIRM_PLAN_FILE).exists():
        seeds = settings.confirm_seeds
        raise UserError(
            f"{settings.study_dir}: the confirmation is already planned with "
            f"{settings.confirm_top} configuration(s) x {seeds} seed(s); resume it without "
            + "/".join(f"--{k.replace('_', '-')}" for k in OVERRIDES)
        )
    location.write_text(changed, SETTINGS_FILE, changed.to_json())
    return changed


def _cached_study(args) -> None:
    """`args.study` is the local cache of a study in object storage (the path `analysis.table`
    shows for one): confirm the study itself, in its store, not the cache as a local study."""
    from study import storage

    if storage.is_remote(args.study):
        return
    try:
        recorded = StudySettings.from_study_dir(Path(args.study))
    except UserError:
        return  # not a study: `location.for_resume` says so
    if storage.is_remote(recorded.storage):
        args.study = location.location(recorded).uri
        args.storage_endpoint = args.storage_endpoint or recorded.storage_endpoint
        args.cache_dir = args.cache_dir or recorded.cache_dir
        print(f"note: that folder is the local cache of {args.study}: confirming it there")


def _settings(args) -> StudySettings:
    """The study `args.study` names, local or in object storage (then synced into its local
    cache first, as `--resume` does), storage and cluster checked before Ray starts."""
    import argparse

    _cached_study(args)
    resume = argparse.Namespace(
        resume=args.study,
        storage_endpoint=args.storage_endpoint,
        cache_dir=args.cache_dir,
        optuna_storage=args.optuna_storage,
        address=args.address,
    )
    try:
        return location.for_resume(resume)
    except UserError as exc:  # its messages name `--resume`; this command takes the study
        raise UserError(str(exc).replace("--resume ", "", 1)) from None


def main(argv: list[str] | None = None) -> int:
    """`python -m study.confirm <study dir or URI>`: run (or finish) the confirmation stage
    alone."""
    import argparse

    from analysis import remote
    from study.run import execute
    from study.settings import confirm_seeds_value

    parser = argparse.ArgumentParser(prog="python -m study.confirm", description=__doc__)
    parser.add_argument(
        "study", help="the study directory or its URI (s3://...); its search must have ended"
    )
    parser.add_argument("--confirm-top", type=int, help="configurations per space (study's)")
    parser.add_argument(
        "--confirm-seeds",
        type=confirm_seeds_value,
        help=f"seeds per configuration, or {AUTO_SEEDS} (study's)",
    )
    parser.add_argument(
        "--target-halfwidth",
        type=float,
        help=f"with {AUTO_SEEDS}: widest multi - single half-width, test points (study's)",
    )
    parser.add_argument("--max-seeds", type=int, help=f"with {AUTO_SEEDS}: at most (study's)")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"))
    remote.add_arguments(parser)  # --storage-endpoint, --cache-dir of a study in object storage
    parser.add_argument(
        "--optuna-storage", help="the study's database URL again, when it needs a password"
    )
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        if not settings.confirm_seeds and args.confirm_seeds is None:
            raise UserError(f"{args.study} was made with --confirm-seeds 0; give --confirm-seeds R")
        settings = with_overrides(settings, args)
        return execute(settings, new=False, search=False, address=args.address)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
