"""`python -m study.confirm`: the confirmation stage alone, for a study whose search has ended.

    python -m study.confirm studies/<name>     # alone, after a finished search; resumable
    python -m study.confirm s3://bucket/prefix/<name> [--storage-endpoint URL]  # in a store

The search chooses on validation data and is therefore optimistic about what it chose. The
confirmation stage retrains the plan's configurations (`study.plan`) from scratch with new seeds
on train + validation for the full number of epochs (no early stopping) and scores each once, at
its last epoch, on the test split that the search never saw. Nothing is selected here. This
command runs (or finishes) that stage; `python -m study.run` runs it after the search.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from errors import UserError
from names import AUTO_SEEDS, CONFIRM_PLAN_FILE, SETTINGS_FILE
from study import location
from study.checks import check_confirmation
from study.settings import StudySettings

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
    from studyfiles import storage

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
    from study.cli import confirm_seeds_value
    from study.run import execute

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
