"""The confirmation stage: what the comparison table reports, measured on held-out test data.

    python -m study.confirm studies/<name>     # alone, after a finished search; resumable
    python -m study.confirm s3://bucket/prefix/<name> [--storage-endpoint URL]  # in a store

The search chooses on validation data and is therefore optimistic about what it chose. This
stage takes, per space, the baseline configuration and the search's top-K configurations (by
their best validation score), retrains each from scratch with R new seeds on train + validation
for the full number of epochs (no early stopping) and scores each once, at its last epoch, on the
test split that the search never saw. Nothing is selected here.

The plan is computed once, when the search has ended, and written to `confirmation.json`; a
resumed study runs exactly that plan. Planning is pure (no Ray): `plan_runs` reads the search's
recorded results; `study.runner` runs the plan as one Ray Tune experiment per space.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from names import (
    BASELINE_LABEL,
    CONFIRM_PLAN_FILE,
    PARAMS_FILE,
    SETTINGS_FILE,
    TRIAL_PREFIX,
    tuned_label,
)
from study import location
from study.settings import StudySettings, study_spaces, trial_constants
from trainables.errors import UserError

Run = dict[str, Any]  # {"label", "space", "source_trial", "seed", "config": TrialConfig dict}


def confirm_seeds(settings: StudySettings) -> list[int]:
    """The R seeds of every confirmation run: new ones, none equal to the search's seed."""
    return [settings.seed + 1 + r for r in range(settings.confirm_seeds)]


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


def plan_runs(settings: StudySettings) -> dict[str, list[Run]]:
    """Per leaf space: the baseline's runs, then tuned-1..K's runs, R seeds each."""
    from analysis.results import load_study
    from analysis.search_table import ranked_trials

    seeds = confirm_seeds(settings)
    trials = load_study(settings.study_dir).trials
    plan: dict[str, list[Run]] = {}
    for space in study_spaces(settings):
        baseline = {**trial_constants(settings, space.name), **space.baseline}
        runs = _runs(BASELINE_LABEL, space.name, None, baseline, seeds)
        top = ranked_trials(trials[trials["space"] == space.name])["trial_id"]
        for rank, trial_id in enumerate(top.head(settings.confirm_top), 1):
            folder = settings.study_dir / space.name / f"{TRIAL_PREFIX}{trial_id}"
            config = json.loads((folder / PARAMS_FILE).read_text())
            runs += _runs(tuned_label(rank), space.name, trial_id, config, seeds)
        plan[space.name] = runs
    return plan


def load_or_write_plan(settings: StudySettings) -> dict[str, list[Run]]:
    """The study's plan: read when it exists (a resume runs exactly it), else planned now and
    written atomically."""
    path = settings.study_dir / CONFIRM_PLAN_FILE
    if path.is_file():
        return json.loads(path.read_text())
    plan = plan_runs(settings)
    location.write_text(settings, CONFIRM_PLAN_FILE, json.dumps(plan, indent=2))
    return plan


def with_overrides(settings: StudySettings, top: int | None, seeds: int | None) -> StudySettings:
    """The study's settings with `--confirm-top/--confirm-seeds` of `python -m study.confirm`,
    saved in its study.json; refused once the plan is written (it would no longer hold)."""
    changes = {k: v for k, v in (("confirm_top", top), ("confirm_seeds", seeds)) if v is not None}
    for key, value in changes.items():
        if value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be a positive number, got {value}")
    if not changes or all(getattr(settings, k) == v for k, v in changes.items()):
        return settings
    if (settings.study_dir / CONFIRM_PLAN_FILE).exists():
        raise UserError(
            f"{settings.study_dir}: the confirmation is already planned with "
            f"{settings.confirm_top} configuration(s) x {settings.confirm_seeds} seed(s); "
            "resume it without --confirm-top/--confirm-seeds"
        )
    settings = dataclasses.replace(settings, **changes)
    location.write_text(settings, SETTINGS_FILE, settings.to_json())
    return settings


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

    parser = argparse.ArgumentParser(prog="python -m study.confirm", description=__doc__)
    parser.add_argument(
        "study", help="the study directory or its URI (s3://...); its search must have ended"
    )
    parser.add_argument("--confirm-top", type=int, help="configurations per space (study's)")
    parser.add_argument("--confirm-seeds", type=int, help="seeds per configuration (study's)")
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
        settings = with_overrides(settings, args.confirm_top, args.confirm_seeds)
        return execute(settings, new=False, search=False, address=args.address)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
