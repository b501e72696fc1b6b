"""Build, run and resume the Ray Tune experiments of a study (the only Ray calls of `study/`).

A study directory holds `study.json`, `optuna.db` (one Optuna study per space, openable with
`optuna-dashboard`), and one Ray experiment folder per space (`multi/`, or the three parts of
`all`). Each experiment is a Tuner with OptunaSearch (seeded TPE, the seed's configuration
enqueued first) and an ASHA or FIFO scheduler over `trainables.trainable.train_trial`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from names import (
    ASHA_REDUCTION_FACTOR,
    CHECKPOINTS_KEPT,
    CONFIRM_PLAN_FILE,
    EPOCH,
    RUN_KEY,
    SCORE,
    SCORE_MODE,
    SETTINGS_FILE,
    TASKS_FILE,
    TRIAL_PREFIX,
    asha_grace_period,
    confirm_experiment,
    task_name,
)
from search_spaces import Space
from study import location, rounds
from study.confirm import confirm_seeds, load_or_write_plan, plan_for_seeds
from study.lock import StudyLock
from study.repair import ENDED, ended_trials, restore_rows, saved_trial_ids, trial_entries
from study.settings import (
    StudySettings,
    is_auto,
    method_options,
    space_tasks,
    start_points,
    study_spaces,
    trial_constants,
)
from trainables.data import TaskData, TaskSplits, prepare_tasks
from trainables.errors import UserError

StudyData = dict[str, dict[str, TaskSplits]]  # space -> task name -> its three splits
SYNC_PERIOD_S = 30  # a remote study: Ray uploads results and state at most this often (a kill
# -9 of the driver loses at most this much; checkpoints go up as each is reported)

# ---------------------------------------------------------------------------------------------
# study directory: create once, lock while running


def create_study_dir(settings: StudySettings, data: StudyData) -> Path:
    """Make the study folder; refuse (never overwrite) when the name is taken."""
    folder = settings.study_dir
    if location.is_remote(settings):  # in object storage; `folder` is its local cache
        tasks = json.dumps(describe_tasks(data), indent=2)
        texts = {SETTINGS_FILE: settings.to_json(), TASKS_FILE: tasks}
        location.create_remote(settings, texts)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()  # atomic: of two studies started at once under one name, one wins
    except FileExistsError:
        raise UserError(
            f"study {settings.name!r} already exists in {folder.parent}; resume it with: "
            f"python -m study.run --resume {folder}  (or pick another --name)"
        ) from None
    (folder / SETTINGS_FILE).write_text(settings.to_json())
    (folder / TASKS_FILE).write_text(json.dumps(describe_tasks(data), indent=2))
    return folder


def describe_tasks(data: StudyData) -> dict[str, dict[str, Any]]:
    """tasks.json: every task of the study by name, with its spec and fingerprint (its source),
    classes and split sizes. Names are unique (`settings.check_task_names`), so no entry hides
    another."""
    return {t.name: t.describe() for space in data.values() for t in space.values()}


def check_recorded_tasks(settings: StudySettings, data: StudyData) -> None:
    """Before a resume: each task is still the source the study recorded (its spec and, when
    tasks.json has one, the fingerprint of its files); otherwise the study would mix results
    of two datasets under one name."""
    try:
        recorded = json.loads((settings.study_dir / TASKS_FILE).read_text())
    except (OSError, ValueError):
        return  # check_resumable has refused studies without a readable tasks.json
    for name, now in describe_tasks(data).items():
        was = recorded.get(name) if isinstance(recorded, dict) else None
        if not isinstance(was, dict):
            raise UserError(
                f"{location.shown_path(settings)}: task {name!r} is not in its {TASKS_FILE}"
            )
        for key in ("spec", "fingerprint"):
            if was.get(key) and was[key] != now[key]:
                raise UserError(
                    f"{location.shown_path(settings)}: task {name!r} was {key} {was[key]!r} "
                    f"when the study started, now {now[key]!r}; the study would mix two datasets "
                    "under one name (restore the data, or start a new study)"
                )


@contextmanager
def locked(settings: StudySettings) -> Iterator[StudyLock]:
    """Hold the study's lock (in its storage, with a heartbeat: see study.lock) for the whole
    run; a second driver, on this machine or another, is refused, not interleaved. A holder
    that has missed its heartbeats is waited for (one line) until it is stale. Every Tune
    experiment of the run watches the lock (study.lockwatch) and stops if it is taken over."""
    from study import lockwatch

    lock = StudyLock(location.location(settings))
    lock.acquire(say=lambda line: print(line, flush=True))
    lockwatch.bind(lock)
    try:
        yield lock
    finally:
        lockwatch.bind(None)
        lock.release()


# ---------------------------------------------------------------------------------------------
# data: validated and decoded once in the driver, then shared through Ray's object store


def prepare_data(settings: StudySettings) -> StudyData:
    """Every task each space needs, split three ways, keyed by space then task name; raises
    UserError early. Each task is split once, so every space sees the same images."""
    leaves = study_spaces(settings)
    specs = list(dict.fromkeys(t for s in leaves for t in s.tasks))
    loaded = prepare_tasks(
        specs,
        settings.data,
        settings.data_root,
        limit_train=settings.limit_train,
        limit_val=settings.limit_val,
        limit_test=settings.limit_test,
        val_size=settings.val_size,
        cache_dir=settings.cache_dir,
        seed=settings.seed,
    )
    return {s.name: {task_name(t): loaded[task_name(t)] for t in s.tasks} for s in leaves}


# ---------------------------------------------------------------------------------------------
# Ray


def init_ray(
    settings: StudySettings,
    address: str | None,
    num_cpus=None,
    num_gpus=None,
    dashboard: bool = False,
    verbose: bool = False,
) -> int:
    """Start (or join) Ray; returns how many trials run at once. Ray's and Tune's own output
    stays below warning level unless `verbose` (study.progress reports instead)."""
    import ray

    from study.internals import keep_legacy_reporter
    from study.progress import concurrent_slots

    keep_legacy_reporter()  # the classic engine: our own reporter
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C is study.progress's
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from study.cluster import private_token

    token_mode = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    private_token(create=token_mode and not address)  # 0600, before Ray reads or writes it
    level = "INFO" if verbose else "WARNING"
    if address:
        ray.init(address=address, log_to_driver=verbose, logging_level=level)
    else:
        ray.init(
            address="local",  # always a new instance, never a stale `ray start` left on the host
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",  # only when --dashboard; Ray 2.60 maps a 127.0.0.1
            # node address back to the host's IP, so its own servers rely on token auth
            configure_logging=True,
            logging_level=level,
            log_to_driver=verbose,  # the trials' own prints and warnings: in their log files
        )
    _quiet_tune(verbose)
    resources = ray.cluster_resources()
    slots = concurrent_slots(
        settings.cpus_per_trial,
        settings.gpus_per_trial,
        settings.max_concurrent,
        resources.get("CPU", 1),
        resources.get("GPU", 0),
    )
    # Tune keeps one trial pending at a time when a searcher is used: trials would start one
    # actor start-up (seconds) apart. Let as many start together as can run together.
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(slots))
    _check_fits(settings, [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")])
    return slots


def stop_ray() -> threading.Thread:
    """Shut Ray down (its processes stop, or a cluster's driver disconnects) in a thread, while
    the driver writes what needs no Ray (the summary); join it before the process ends. Ray's
    own exit hook would do it later, after a 0.5 s pause for the trials' log lines, which go
    to their log files here (unless --verbose, when the pause is kept)."""
    import ray

    thread = threading.Thread(target=ray.shutdown, name="ray-shutdown")
    thread.start()
    return thread


def _quiet_tune(verbose: bool) -> None:
    """Tune's and Optuna's messages: errors only, unless verbose. A trial's error is one line of
    the reporter (with its error file), not Tune's traceback; the resume hint is ours."""
    import logging

    import optuna

    if verbose:
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    said_by_us = ("Trial task failed", "Trials did not complete")
    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
        logging.getLogger(name).addFilter(lambda r: not r.getMessage().startswith(said_by_us))


def _check_fits(settings: StudySettings, nodes: list[dict[str, float]]) -> None:
    """A trial runs on one node: a share that no node offers would wait forever."""
    import ray

    for key, flag, share in (
        ("CPU", "--cpus-per-trial", settings.cpus_per_trial),
        ("GPU", "--gpus-per-trial", settings.gpus_per_trial),
    ):
        most = max((n.get(key, 0.0) for n in nodes), default=0.0)
        if share and share > most:
            ray.shutdown()
            raise UserError(
                f"{flag} {share:g} is more than any node of the cluster has ({most:g} {key})"
            )


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
        space=functools.partial(
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


def experiment_state_ok(folder: Path) -> bool:
    """Ray can restore this experiment: tuner.pkl and a parseable experiment state exist."""
    if not (folder / "tuner.pkl").is_file():
        return False
    states = sorted(folder.glob("experiment_state-*.json"))
    if not states:
        return False
    try:
        json.loads(states[-1].read_text())
    except (OSError, ValueError):
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
        restore_rows(folder, loc)  # a row its lost driver never saved (study.repair)
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
    try:
        study = optuna.load_study(study_name=name, storage=location.optuna_url(settings))
    except KeyError:
        return  # no such study in the database
    complete = experiment_complete(folder, settings.num_samples)
    if close_ended_trials(study, ended_trials(folder), complete=complete):
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
