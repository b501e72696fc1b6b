"""What Ray's saved experiment states say about a study, read from its files without Ray: which
experiments can be restored, which have ended, and whether the whole study is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from errors import UserError
from names import (
    CONFIRM_PLAN_FILE,
    confirm_experiment,
)
from study import location, rounds
from study.plan import confirm_seeds
from study.settings import StudySettings, is_auto, study_spaces
from studyfiles.ray_files import ENDED, trial_entries


def experiment_state_ok(folder: Path) -> bool:
    """Ray can restore this experiment: tuner.pkl and a parseable experiment state exist."""
    if not (folder / "tuner.pkl").is_file() or trial_entries(folder) is None:
        return False
    # a searcher's state (search) or the grid's (confirmation: Ray's basic variant generator)
    return any(folder.glob("searcher-state-*.pkl")) or any(folder.glob("basic-variant-state-*"))


def has_trial_results(folder: Path) -> bool:
    return any(p.stat().st_size > 0 for p in folder.glob("*/result.json"))


def _experiments(settings: StudySettings) -> list[Path]:
    """Every experiment folder the study may have: each leaf space's search and confirmation
    (each round's, with `--confirm-seeds auto`)."""
    leaves = [s.name for s in study_spaces(settings)]
    record = rounds.read(settings.study_dir) if is_auto(settings) else None
    count = len(record["rounds"]) if record else 1
    confirms = [confirm_experiment(s, k) for k in range(1, count + 1) for s in leaves]
    return [settings.study_dir / n for n in leaves + confirms]


def check_experiments(settings: StudySettings) -> None:
    """Before Ray starts: refuse to resume an experiment whose state cannot be restored.

    `Tuner.restore` would otherwise silently start a fresh, smaller study over its results.
    """
    for folder in _experiments(settings):
        if folder.exists() and not experiment_state_ok(folder) and has_trial_results(folder):
            raise UserError(
                f"{location.shown_path(settings, folder)}: trial results exist but Ray's "
                "experiment state is missing or damaged; refusing to start over (copy the study "
                "elsewhere to inspect it)"
            )


def experiment_complete(folder: Path, expected: int) -> bool:
    """Ray's saved state records `expected` trials, all ended: nothing left to run."""
    statuses = _saved_statuses(folder)
    return statuses is not None and len(statuses) >= expected and not _not_ended(statuses)


def study_complete(settings: StudySettings) -> bool:
    """Every stage of the study has ended: each space's search and, when the study has one, its
    written confirmation plan. Read from Ray's saved states: no Ray needed."""
    leaves = study_spaces(settings)
    if not all(
        experiment_complete(settings.study_dir / s.name, settings.num_samples) for s in leaves
    ):
        return False
    if not settings.confirm_seeds:
        return True
    plan_file = settings.study_dir / CONFIRM_PLAN_FILE
    if not plan_file.is_file():
        return False
    plan = json.loads(plan_file.read_text())
    record = rounds.read(settings.study_dir) if is_auto(settings) else None
    if is_auto(settings) and not rounds.finished(record):
        return False
    count = len(record["rounds"]) if record else 1
    for k in range(1, count + 1):
        for s in leaves:
            runs = _round_runs(settings, plan[s.name], record, k)
            if not experiment_complete(
                settings.study_dir / confirm_experiment(s.name, k), len(runs)
            ):
                return False
    return True


def _round_runs(
    settings: StudySettings, runs: list[dict], record: rounds.Record | None, k: int
) -> list[dict]:
    """The planned runs of round k (all of them without a rounds record: a number of seeds)."""
    if record is None:
        return runs
    seeds = confirm_seeds(settings, record["rounds"][k - 1]["seeds"])
    added = {seeds[i] for i in rounds.round_seed_range(record, k)}
    return [r for r in runs if r["seed"] in added]


def unfinished_trials(folder: Path) -> int | None:
    """Trials that Ray's last saved experiment state records as not ended. After a Ctrl-C the
    in-memory result grid calls stopped trials TERMINATED; the saved state does not."""
    statuses = _saved_statuses(folder)
    return None if statuses is None else _not_ended(statuses)


def _not_ended(statuses: list[str]) -> int:
    return sum(status not in ENDED for status in statuses)


def _saved_statuses(folder: Path) -> list[str] | None:
    entries = trial_entries(folder)
    try:
        return None if entries is None else [json.loads(e[0])["status"] for e in entries]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
