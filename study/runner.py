"""Build, run and resume the Ray Tune experiments of a study: one Tuner per space and stage.

A study directory holds `study.json`, `optuna.db` (one Optuna study per space, openable with
`optuna-dashboard`), and one Ray experiment folder per space (`multi/`, or the three parts of
`all`). Each experiment is a Tuner with `study.search.StudySearch` (seeded TPE, the seed's
configuration enqueued first) and an ASHA or FIFO scheduler over
`trainables.trainable.train_trial`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    ASHA_REDUCTION_FACTOR,
    CHECKPOINTS_KEPT,
    EPOCH,
    RUN_KEY,
    SCORE,
    SCORE_MODE,
    TRIAL_PREFIX,
    asha_grace_period,
    confirm_experiment,
    task_name,
)
from search_spaces import Space
from study import location, rounds
from study.experiments import (
    _round_runs,
    check_experiments,
    experiment_complete,
    experiment_state_ok,
    unfinished_trials,
)
from study.plan import load_or_write_plan, plan_for_seeds
from study.settings import (
    StudySettings,
    is_auto,
    method_options,
    space_tasks,
    start_points,
    study_spaces,
    trial_constants,
)
from study.studydir import StudyData
from studyfiles.ray_files import ended_trials, restore_rows, saved_trial_ids
from trainables.data import TaskData

SYNC_PERIOD_S = 30  # a remote study: Ray uploads results and state at most this often (a kill


def _define(
    trial: Any,
    define: Callable[..., dict],
    tasks: tuple[str, ...],
    constants: dict[str, Any],
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The space's suggestions plus the study's constants (module-level: it is pickled);
    `options`: what a multi-task space takes besides (`settings.method_options`)."""
    define(trial, tasks, **(options or {}))
    return constants


def _trainable(settings: StudySettings, data: dict[str, TaskData]):
    from ray import tune

    from trainables.trainable import train_trial

    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(train_trial, tasks=data), resources)


def _run_config(settings: StudySettings, space: Space, confirm: bool = False, round_: int = 1):
    """Where and how an experiment runs. A search trial keeps its two best checkpoints by score
    (the best: the model behind its numbers) and, always, its latest; a confirmation run its
    two latest (the last: its model). Ray deletes a checkpoint only after registering a newer
    one, and either rule keeps one older than the newest: a newest cut short (a full disk, a
    copy killed mid-way) falls back to it (trainables.trainable.restore_newest).
    Progress is study.progress's reporter (a few lines per space, with an ETA)."""
    from ray import tune

    from study.progress import StudyReporter

    name = confirm_experiment(space.name, round_) if confirm else space.name
    keep = {"checkpoint_score_attribute": SCORE, "checkpoint_score_order": SCORE_MODE}
    loc = location.location(settings)
    return tune.RunConfig(
        name=name,
        storage_path=loc.path,
        storage_filesystem=None if loc.is_local else loc.fs,
        callbacks=_callbacks(settings),
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=CHECKPOINTS_KEPT, **({} if confirm else keep)
        ),
        # trial_config.json beside results; a remote study's results go up every SYNC_PERIOD_S
        sync_config=tune.SyncConfig(sync_artifacts=True, sync_period=SYNC_PERIOD_S),
        progress_reporter=StudyReporter(name, confirm=confirm),
        verbose=1,  # the reporter's level; Tune's own messages are quieted in init_ray
    )


def _callbacks(settings: StudySettings) -> list:
    """Every experiment stops once the study's lock is taken over (study.lockwatch, first: it
    checks before anything is saved). A remote study without a database URL: its Optuna SQLite
    file goes up beside it at every experiment checkpoint (study.remote.OptunaUpload)."""
    from study.lockwatch import LockWatch

    if not location.is_remote(settings) or settings.optuna_storage:
        return [LockWatch()]
    from study.remote import OptunaUpload

    OptunaUpload.settings = settings  # the instance is pickled with the Tuner: not in it
    return [LockWatch(), OptunaUpload()]


def _search_class():
    from study.search import StudySearch

    return StudySearch


def _storage_class():
    from study.search import StudyStorage

    return StudyStorage


def _tune_config(settings: StudySettings, space: Space):
    import optuna
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from study.search import StudyASHA, StudySearch

    tasks = space_tasks(settings, space.name)
    searcher = StudySearch(
        functools.partial(
            _define,
            define=space.define,
            tasks=tuple(task_name(t) for t in tasks),
            constants=trial_constants(settings, space.name),
            options=method_options(settings, space),
        ),
        metric=SCORE,
        mode=SCORE_MODE,
        points_to_evaluate=start_points(settings, space),
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        study_name=space.name,
        storage=_storage_class()(location.optuna_url(settings)),
        max_trials=settings.num_samples,
    )
    if settings.scheduler == "asha":
        scheduler = StudyASHA(
            baseline=space.baseline,
            time_attr=EPOCH,  # not Ray's report count: a restarted trial repeats epochs
            max_t=settings.max_epochs,
            grace_period=asha_grace_period(settings.max_epochs),
            reduction_factor=ASHA_REDUCTION_FACTOR,
        )
    else:
        scheduler = FIFOScheduler()
    return tune.TuneConfig(
        metric=SCORE,
        mode=SCORE_MODE,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=settings.num_samples,
        max_concurrent_trials=settings.max_concurrent,
        reuse_actors=True,  # one process per concurrent slot: no re-import of torch per trial
        trial_dirname_creator=_trial_dirname,
    )


def _trial_dirname(trial: Any) -> str:
    return f"{TRIAL_PREFIX}{trial.trial_id}"  # short and stable; the config is in params.json


class StudyInterrupted(Exception):
    """A space's experiment stopped before all its trials ended (Ctrl-C, lost nodes); its
    message says what was saved."""


def _fit(
    settings: StudySettings,
    folder: Path,
    trainable: Any,
    new_tuner: Callable[[], Any],
    expected: int,
    reset: Callable[[], None] = lambda: None,
) -> None:
    """Run an experiment to its end: restore it if Ray saved its state, else start it, over
    what a kill during start-up left (no results; `reset` clears what else it began). Raises
    StudyInterrupted when it stops with trials not ended, or after a Ctrl-C."""
    from ray import tune

    from study.interrupts import fitting, interrupted
    from study.lockwatch import check

    check()  # between experiments: taken over since the last one ended
    loc = location.location(settings).child(folder.name)
    _callbacks(settings)  # a restored Tuner's callbacks are its pickled ones: bind them here
    _storage_class().current_url = location.optuna_url(settings)  # and its searcher's storage
    if experiment_state_ok(folder):
        restore_rows(folder, loc)  # a row its lost driver never saved (studyfiles.ray_files)
        _search_class().restored = saved_trial_ids(folder)  # what Ray restores: the count
        tuner = tune.Tuner.restore(
            loc.path,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            storage_filesystem=None if loc.is_local else loc.fs,
        )
    else:
        if folder.exists():
            check_experiments(settings)
            location.remove_experiment(settings, folder.name)
            reset()
        _search_class().restored = frozenset()  # a new experiment: nothing restored
        tuner = new_tuner()
    with fitting():
        grid = tuner.fit()
    check()  # an experiment restored from before LockWatch existed does not watch the lock
    location.pull(settings)  # a remote study: its cache, for the reads below
    unfinished = unfinished_trials(folder)
    if unfinished is None:  # no readable state: trust the in-memory statuses
        unfinished = len(grid) - grid.num_terminated - grid.num_errors
    if len(grid) < expected or unfinished or interrupted():
        ended = len(grid) - unfinished
        rest = "the others continue from their last epoch checkpoint" if ended < expected else ""
        raise StudyInterrupted(
            f"{folder.name}: {ended} of {expected} trials ended" + (f"; {rest}" if rest else "")
        )


def run_space(settings: StudySettings, space: Space, data: dict[str, TaskData]) -> None:
    """Run (or continue) one space's search to its full number of trials."""
    from ray import tune

    folder = settings.study_dir / space.name
    if not experiment_complete(folder, settings.num_samples):  # else a lost driver's: close
        trainable = _trainable(settings, data)
        try:
            _fit(
                settings,
                folder,
                trainable,
                lambda: tune.Tuner(
                    trainable,
                    tune_config=_tune_config(settings, space),
                    run_config=_run_config(settings, space),
                ),
                settings.num_samples,
                reset=lambda: _drop_optuna_study(settings, space.name),  # its enqueued trial
            )
        except StudyInterrupted:
            close_optuna_trials(settings, space.name, folder)  # the trials that did end
            raise
    close_optuna_trials(settings, space.name, folder)


def close_optuna_trials(settings: StudySettings, name: str, folder: Path) -> None:
    """After a search experiment: every Optuna trial whose Ray trial ended is closed with its
    outcome, and once the experiment is complete, one that Ray never ran as FAIL
    (study.search.close_ended_trials). Ray's own notice is lost when its searcher state was
    older than its experiment state (a driver lost mid-save). A remote study's SQLite file
    goes up again when anything was closed."""
    import optuna

    from study.search import close_ended_trials

    if not location.has_optuna_db(settings):
        return  # nothing to close (and no empty database to create)
    storage = optuna.storages.RDBStorage(location.optuna_url(settings))
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return  # no such study in the database
    complete = experiment_complete(folder, settings.num_samples)
    if close_ended_trials(study, storage, ended_trials(folder), complete=complete):
        location.upload_optuna_db(settings)


def run_confirmation(
    settings: StudySettings,
    space: Space,
    runs: list[dict],
    data: dict[str, TaskData],
    round_: int = 1,
) -> None:
    """Run (or continue) a space's planned confirmation runs (of round `round_`, with
    `--confirm-seeds auto`): a grid over the runs, FIFO, no searcher and no early stopping;
    each run keeps its final checkpoint (its model)."""
    from ray import tune

    folder = settings.study_dir / confirm_experiment(space.name, round_)
    if experiment_complete(folder, len(runs)):
        return
    trainable = _trainable(settings, data)
    run_config = _run_config(settings, space, confirm=True, round_=round_)
    _fit(
        settings,
        folder,
        trainable,
        lambda: tune.Tuner(
            trainable,
            param_space={RUN_KEY: tune.grid_search(runs)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=settings.max_concurrent,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=run_config,
        ),
        len(runs),
    )


def _drop_optuna_study(settings: StudySettings, name: str) -> None:
    import optuna

    if not location.has_optuna_db(settings):
        return
    storage = optuna.storages.RDBStorage(location.optuna_url(settings))
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass


def run_study(settings: StudySettings, data: StudyData, search: bool = True) -> None:
    """Every space's search (skipped with `search=False`: it must have ended), then the
    confirmation stage when the study asks for one."""
    leaves = study_spaces(settings)
    for space in leaves:
        if search:
            run_space(settings, space, {n: t.search() for n, t in data[space.name].items()})
        elif not experiment_complete(settings.study_dir / space.name, settings.num_samples):
            raise UserError(
                f"the search of {space.name} has not ended; finish it first: "
                f"{location.resume_command(settings)}"
            )
    if not settings.confirm_seeds:
        return
    plan = load_or_write_plan(settings)
    if not is_auto(settings):
        for space in leaves:
            run_confirmation(settings, space, plan[space.name], _confirm_views(data, space))
        return
    record = rounds.load_or_start(settings)
    while True:  # one round: its runs in every space, then the rule (study.rounds)
        k = len(record["rounds"])
        plan = plan_for_seeds(settings, plan, record["rounds"][-1]["seeds"])
        for space in leaves:
            runs = _round_runs(settings, plan[space.name], record, k)
            run_confirmation(settings, space, runs, _confirm_views(data, space), k)
        if rounds.finished(record) or rounds.close_round(settings, record).stop:
            return


def _confirm_views(data: StudyData, space: Space) -> dict[str, TaskData]:
    """A space's tasks as confirmation runs see them (train + validation, scored on test);
    made per experiment, so one space's copies at a time are in memory."""
    return {n: t.confirm() for n, t in data[space.name].items()}
