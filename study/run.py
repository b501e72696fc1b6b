"""`python -m study.run`: start or resume a hyperparameter study.

    python -m study.run --quick                      # a few minutes, synthetic data, CPU
    python -m study.run --space multi --data real    # the real study
    python -m study.run --resume studies/multi-...   # continue an interrupted study

A study searches each space on validation data, then (unless `--confirm-seeds 0`) retrains the
baseline and the best configurations with several seeds and scores them on test data.
User errors end with exit status 2 and one line on stderr, before Ray starts or files are written.
A study taken over by another driver (its lock: studyfiles.lock) stops at once: one line naming that
driver, exit status `studyfiles.lock.LOCK_LOST_STATUS`, nothing more written.
Every line names a study in object storage by its URI (`location.shown_path`), and the commands
printed for it carry `--storage-endpoint` when it has one (`location.store_flags`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from errors import UserError
from names import CHECKPOINT_GLOB, RESTARTED, TRIAL_PREFIX
from study import location
from study.cli import build_parser, check_resume_flags
from study.settings import StudySettings, describe_spaces


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_spaces:
        print(describe_spaces())
        return 0
    if args.list_methods:
        from trainables.methods import describe_methods  # imports torch: kept out of --help

        print(describe_methods())
        return 0
    try:
        if args.resume:
            check_resume_flags(args)
            return execute(location.for_resume(args), new=False, **_ray_args(args))
        return execute(location.for_new(args), new=True, **_ray_args(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _ray_args(args: argparse.Namespace) -> dict:
    return {
        "address": args.address,
        "num_cpus": args.num_cpus,
        "num_gpus": args.num_gpus,
        "dashboard": args.dashboard,
        "verbose": args.verbose,
    }


def execute(
    settings: StudySettings,
    *,
    new: bool,
    search: bool = True,
    address: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    dashboard: bool = False,
    verbose: bool = False,
) -> int:
    """Prepare the data, print the plan, then run the study's stages under its lock; 130 when
    interrupted (Ctrl-C: one line on what was saved and the resume command)."""
    from study import experiments, interrupts, preload, ray_session, runner, studydir  # torch
    from studyfiles.lock import LOCK_LOST_STATUS, LockLost

    where, flags = location.shown_path(settings), location.store_flags(settings)
    if not new and experiments.study_complete(settings):
        print(f"{where}: complete: nothing to do (no trial left to run)\n")
        print(summary(settings.study_dir, where, flags))
        return 0
    preload.start()  # Ray Tune's, the trainable's and Optuna's imports overlap the data preparation
    interrupts.catch_interrupts()
    folder = None
    try:
        data = studydir.prepare_data(settings)  # decode, split and validate every task before Ray
        tasks = studydir.describe_tasks(data)
        folder = studydir.create_study_dir(settings, data) if new else settings.study_dir
        if not new:
            experiments.check_experiments(settings)
            studydir.check_recorded_tasks(settings, data)
        with studydir.locked(settings):
            from study import progress  # Ray Tune: imported by study.preload meanwhile

            slots = ray_session.init_ray(settings, address, num_cpus, num_gpus, dashboard, verbose)
            print(progress.plan_text(settings, tasks, slots, resumed=not new), flush=True)
            progress.watch(settings, tasks, slots)
            runner.run_study(settings, data, search=search)
    except runner.StudyInterrupted as exc:
        return _interrupted(folder, str(exc), settings)
    except KeyboardInterrupt:
        return _interrupted(folder, "", settings)
    except LockLost as exc:
        print(f"stopped: {exc}", file=sys.stderr, flush=True)
        return LOCK_LOST_STATUS
    stopping = None if verbose else ray_session.stop_ray()  # Ray stops while the summary is made
    try:
        print(summary(folder, where, flags))
    finally:
        if stopping is not None:
            stopping.join()
    return 0


def _interrupted(folder: Path | None, saved: str, settings: StudySettings) -> int:
    """One line on what was saved, the resume command, exit status 130."""
    if folder is None:
        print("interrupted before the study folder was made: nothing was written", flush=True)
        return 130
    print(f"interrupted: {saved or 'every ended trial is saved'}", flush=True)
    print(f"Resume it with: {location.resume_command(settings)}", flush=True)
    return 130


def summary(folder: Path, where: str | None = None, flags: str = "") -> str:
    """The end of a study, by the table's rules: the verdict first (multi- vs single-task per
    task and Δm, then tuned vs the baseline; `analysis.verdict`), the comparison table (test
    data, when the study has a confirmation stage), each space's best search trial with the
    checkpoint of the model behind its number, then where the study is and the commands that
    show more (`where`: the study as the user names it; `flags`: what those commands need to
    reach it, `location.store_flags`)."""
    from analysis.results import load_study
    from analysis.table import comparison, to_text
    from analysis.verdict import verdict
    from analysis.verdict_render import render_text

    where = where or str(folder)  # a remote study: its URI (`folder` is its local cache)
    study = load_study(folder, shown=where + flags)
    lines = [render_text(verdict(study), study.synthetic), ""]
    lines += [to_text(comparison(study)), "Top search trial per space (validation, optimistic):"]
    lines += [f"  {line}" for line in best_search_trials(study, where)]
    lines += restarted_line(study)
    lines += [
        f"\nstudy directory: {where}",
        f"table:   python -m analysis.table {where}{flags}",
        f"report:  python -m analysis.report {where}{flags}",
    ]
    return "\n".join(lines)


def restarted_line(study: Any) -> list[str]:
    """How many trials and runs found no readable checkpoint and started over from epoch 0
    (their result rows say `restarted`); nothing when none did."""
    trials = sum(bool(x) for x in study.trials.get(RESTARTED, []))
    runs = sum(bool(x) for x in study.runs.get(RESTARTED, []))
    if not trials + runs:
        return []
    return [
        f"Restarted from epoch 0 (no readable checkpoint): {trials} search trial(s), "
        f"{runs} confirmation run(s)"
    ]


def best_search_trials(study: Any, where: str | None = None) -> list[str]:
    """Per space: its top trial (best validation score at the last epoch among trials that
    ran all their epochs: the one confirmed as tuned-1; the report's verdict card, from
    `analysis.verdict.search_picks`), its peak score and epoch, its change against the
    baseline trial's peak, and the checkpoint of that epoch (in the store, under `where`, for
    a remote study)."""
    from analysis.verdict import search_picks
    from trainables.checkpoint import checkpoint_epoch

    lines = []
    for pick in search_picks(study):
        errored = f", {pick.errored} errored" if pick.errored else ""
        head = f"{pick.space}: {pick.trials} trials{errored}"
        best = pick.best
        if best is None:
            lines.append(f"{head}; no trial ran all its epochs")
            continue
        trial_dir = study.path / pick.space / f"{TRIAL_PREFIX}{best['trial_id']}"
        epoch = int(best["best_epoch"])
        found = [c for c in trial_dir.glob(CHECKPOINT_GLOB) if checkpoint_epoch(c) == epoch]
        found.sort(key=lambda c: c.name, reverse=True)  # the latest saved (a restart's, if any)
        model = found[0] if found else "not kept"
        if found and where:
            model = f"{where}/{found[0].relative_to(study.path)}"
        versus = (
            "it is the baseline"
            if best["is_baseline"]
            else f"peak {pick.change_pts:+.1f} points vs the baseline trial "
            f"{pick.baseline['trial_id']}'s peak"
            if pick.baseline is not None
            else "no baseline trial to compare"
        )
        lines.append(
            f"{head}; top: trial {best['trial_id']}, validation score "
            f"{best['last_score']:.2%} at its last epoch, peak {best['best_score']:.2%} at epoch "
            f"{epoch} ({versus}); its model: {model}"
        )
    return lines


if __name__ == "__main__":
    from study.finish import exit_now

    exit_now(main())  # without Python's finalization: seconds of garbage collection at exit
