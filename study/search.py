"""Ray Tune's searcher over an Optuna study it owns, and Ray's ASHA with the gaps a long,
trustworthy study cannot afford closed.

`StudySearch` implements Ray's public `Searcher` interface (`suggest`, `on_trial_result`,
`on_trial_complete`, `save`, `restore`) over Optuna's public ask/tell: it creates (or loads) the
Optuna study, enqueues the starting points, asks a trial per Ray trial and calls the space's
define-by-run function on it, reports each epoch's score as an intermediate value (the Optuna
dashboard shows learning curves) and tells each trial's end. On top of that:

- A diverged trial (loss NaN or infinite) is told to Optuna as PRUNED with a `diverged` user
  attribute: a bad result the sampler learns from, never a crash and never a zombie.
- Any trial Optuna refused to close (e.g. a non-finite value) is closed as FAIL instead of
  staying RUNNING forever in the database and the dashboard.
- The database is the truth. Each Optuna trial records its Ray trial id (`ray_trial_id`),
  linking the database to the trial folders, and a restored searcher rebuilds which trials it
  asked and told from it. A study in object storage is saved file by file; a driver lost
  mid-save (kill -9 of the head) can leave a searcher state older than the experiment state
  beside it, and Tune then resumes a trial the saved state never saw. A trial the database does
  not know either is adopted with the parameters of its config. A stale state also undercounts
  the trials created (Ray's search generator would add one more than the study asked for):
  `max_trials` stops suggestions once the trials of the restored experiment state (`restored`,
  bound by the runner) and those asked since reach it. (Not the database's count: with
  PostgreSQL it may hold a trial asked just before the loss that Ray never saved, and never
  runs.)
- No Optuna trial stays RUNNING after its experiment: `tell_outcome` is the one place a trial's
  end is told to Optuna, from `on_trial_complete` and from `close_ended_trials`, which the runner
  calls after each search experiment with the trials Ray's experiment state records as ended.
  Ray's notice can be lost: with `max_concurrent_trials` Tune wraps this searcher in its
  ConcurrencyLimiter, whose saved `live_trials` can be as stale as the searcher's state, and
  it drops the completion of a trial it does not list. Once the experiment is complete, a
  RUNNING trial that Ray never ran (asked just before a loss, never saved) is closed as FAIL
  with an `abandoned` user attribute, as Optuna's own `fail_stale_trials` marks such trials.

Studies saved before this searcher pickled Ray's `OptunaSearch` state; `__setstate__` and
`restore` read it through `study.internals.optuna_search_fields` (the one private layout left).

`StudyASHA` is Ray's ASHA, plus:
- It never stops the baseline configuration: the comparison needs it trained for the full budget.
  Its results still count in the rungs that judge the other trials.
- A resumed study decides as the uninterrupted one would: Ray does not save ASHA's rungs, so
  each trial restored from the experiment state replays its recorded scores into the rungs.

`StudyStorage` is Optuna's RDB storage that is pickled without its password and that a
restored experiment binds to this driver's database URL (see there).

Kept apart from `runner.py` because it subclasses Ray classes at import time.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.result import TRAINING_ITERATION
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher
from ray.tune.utils.util import flatten_dict

from names import RAY_TRIAL_ID, RESULT_FILE, SCORE
from search_spaces import unflatten
from study import internals
from study.settings import without_password

ABANDONED = "abandoned"  # user attribute: why a trial Ray never ran was closed
ABANDONED_WHY = (
    "asked by a driver lost before Ray saved the trial; Ray never ran it and its experiment "
    "has ended"
)
_logger = logging.getLogger(__name__)
_UNPICKLED = ("_study", "_handles")  # rebuilt after unpickling: the database holds them


class StudyStorage(RDBStorage):
    """Optuna's RDB storage, pickled without its password, whose pickled URL yields to this
    driver's (`current_url`).

    Ray pickles the searcher with its storage into the experiment folder (`tuner.pkl` and
    `searcher-state-*.pkl`), which goes to the study's storage, maybe a bucket readable by more
    people than the database should be: the pickled URL has its password hidden (`***`, as
    study.json records it). A restored experiment connects to the URL the runner set here
    (`--optuna-storage` of this run, password included, or the SQLite file in this machine's
    cache), never to the saving driver's; without one it keeps the hidden URL, which does not
    authenticate."""

    current_url: ClassVar[str | None] = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {**state, "url": without_password(state["url"])}  # as study.json has it

    def __setstate__(self, state: dict[str, Any]) -> None:
        url = type(self).current_url
        super().__setstate__({**state, "url": url} if url else state)


class StudySearch(Searcher):
    """Ray Tune's `Searcher` over the Optuna study `study_name` in `storage`: `define(trial)`
    suggests a trial's parameters and returns its constants (a define-by-run space);
    `points_to_evaluate` are enqueued when the study is set up; `max_trials` is the study's
    num_samples."""

    # the trial ids of the experiment state being restored (studyfiles.ray_files.saved_trial_ids)
    restored: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        define: Callable[[optuna.trial.Trial], dict[str, Any] | None],
        *,
        metric: str,
        mode: str,
        study_name: str,
        storage: BaseStorage,
        sampler: optuna.samplers.BaseSampler,
        points_to_evaluate: Sequence[Mapping[str, Any]] = (),
        max_trials: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.define, self.study_name, self.storage = define, study_name, storage
        self.sampler, self.max_trials = sampler, max_trials
        self.points_to_evaluate = [dict(p) for p in points_to_evaluate]
        self.asked: dict[str, int] = {}  # {Ray trial id: Optuna trial number}
        self.told: set[str] = set()  # Ray trial ids whose end Optuna has (never told twice)
        self.asked_here: set[str] = set()  # trials suggested by this process
        self._study: optuna.Study | None = None
        self._handles: dict[str, optuna.trial.Trial] = {}
        for point in self.points_to_evaluate:
            self.study.enqueue_trial(point)

    @property
    def study(self) -> optuna.Study:
        """The Optuna study, created or loaded on first use (Optuna's public create_study)."""
        if self._study is None:
            self._study = optuna.create_study(
                storage=self.storage,
                sampler=self.sampler,
                pruner=optuna.pruners.NopPruner(),
                study_name=self.study_name,
                direction="maximize" if self.mode == "max" else "minimize",
                load_if_exists=True,
            )
        return self._study

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(_current_fields(state))
        self._study, self._handles = None, {}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        """The saved state (its sampler's random state included), with this driver's
        `max_trials`; which trials were asked and told comes from the database."""
        most = self.max_trials  # this driver's, not the saved state's
        with open(checkpoint_path, "rb") as f:
            self.__setstate__(pickle.load(f))  # a searcher state is the study's own file
        self.max_trials, self.asked_here = most, set()
        self._catch_up()

    def _catch_up(self) -> None:
        """Every Optuna trial that names a Ray trial is this searcher's, finished or not."""
        self.asked, self.told = {}, set()
        for frozen in self.study.get_trials(deepcopy=False):
            ray_id = frozen.user_attrs.get(RAY_TRIAL_ID)
            if ray_id is None:
                continue
            self.asked[ray_id] = frozen.number
            if frozen.state.is_finished():
                self.told.add(ray_id)

    def _handle(self, trial_id: str) -> optuna.trial.Trial:
        if trial_id not in self._handles:
            self._handles[trial_id] = trial_handle(self.study, self.storage, self.asked[trial_id])
        return self._handles[trial_id]

    def _ask(self, trial_id: str) -> dict[str, Any]:
        """A new Optuna trial for `trial_id`: the define-by-run function suggests on it (the
        enqueued values first); returns its flat config, parameters then constants."""
        trial = self.study.ask()
        trial.set_user_attr(RAY_TRIAL_ID, trial_id)
        self.asked[trial_id], self._handles[trial_id] = trial.number, trial
        constants = self.define(trial) or {}
        return {**trial.params, **constants}

    def _adopt(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        """A trial neither the restored state nor the database knows: a new Optuna trial with
        the parameters of its config (enqueued, so the sampler's suggestions are its values)."""
        if trial_id in self.asked or not result:
            return
        params = _config_params(result)
        if params:
            self.study.enqueue_trial(params)
            self._ask(trial_id)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        most, asked = self.max_trials, self.asked_here
        if most is not None and trial_id not in asked and len(self.restored | asked) >= most:
            return self.FINISHED  # every trial of the study exists (restored or asked here)
        asked.add(trial_id)
        if trial_id in self.asked:  # asked before: the same parameters again
            trial = self._handle(trial_id)
            return unflatten({**trial.params, **(self.define(trial) or {})})
        return unflatten(self._ask(trial_id))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._adopt(trial_id, result)
        if trial_id not in self.asked or trial_id in self.told:
            return  # no config to adopt it by, or already ended: never told
        if self.metric in result and TRAINING_ITERATION in result:
            self._handle(trial_id).report(result[self.metric], result[TRAINING_ITERATION])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._adopt(trial_id, result)
        if trial_id not in self.asked or trial_id in self.told:
            return  # no config to adopt it by (Optuna never hears of it), or told before
        tell_outcome(self.study, self._handle(trial_id), self.metric, result, error)
        self.told.add(trial_id)


def _current_fields(state: dict[str, Any]) -> dict[str, Any]:
    """A pickled StudySearch state; one saved by a version that subclassed Ray's OptunaSearch
    becomes this class's fields (its trials come from the database on restore)."""
    old = internals.optuna_search_fields(state)
    if old is None:
        return state
    keep = {k: v for k, v in state.items() if k in ("_metric", "_mode")}  # Searcher's own
    return {**keep, **old, "asked": {}, "told": set(), "asked_here": set()}


def trial_handle(study: optuna.Study, storage: BaseStorage, number: int) -> optuna.trial.Trial:
    """An `optuna.trial.Trial` on the existing trial `number` of `study` (in `storage`), to
    report to, set user attributes on and tell: Optuna's public storage API gives its id."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id)


def tell_outcome(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    metric: str,
    result: Mapping[str, Any] | None,
    error: bool,
) -> TrialState:
    """Tell Optuna how a RUNNING trial ended, from its last result (Tune's `on_trial_complete`
    arguments: an errored trial comes with no result); returns the state it ends in.

    Ray's OptunaSearch rules, plus ours: diverged -> PRUNED with the user attribute `diverged`;
    a score -> COMPLETE with it; no score -> FAIL after an error, else PRUNED (stopped before
    its first score); a score Optuna refuses (NaN) -> FAIL, never left RUNNING."""
    if result and result.get("diverged"):
        trial.set_user_attr("diverged", True)
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED
    value = result.get(metric) if result else None
    if value is not None:
        state = TrialState.COMPLETE
    else:
        state = TrialState.FAIL if error else TrialState.PRUNED
    try:
        study.tell(trial, value, state=state)
    except Exception as exc:  # as Ray's OptunaSearch does: logged, then closed below
        _logger.info("Optuna refused the end of trial %d: %s", trial.number, exc)
    if study.get_trials(deepcopy=False)[trial.number].state == TrialState.RUNNING:
        study.tell(trial, state=TrialState.FAIL)  # refused: closed anyway
        return TrialState.FAIL
    return state


def close_ended_trials(
    study: optuna.Study,
    storage: BaseStorage,
    ended: Mapping[str, tuple[Mapping[str, Any] | None, bool]],
    complete: bool,
    metric: str = SCORE,
) -> dict[int, TrialState]:
    """Close every RUNNING trial of `study` (in `storage`) that Ray has ended, as `tell_outcome`
    does; `ended`: {Ray trial id: (last result, errored)} (studyfiles.ray_files.ended_trials).
    When the experiment is `complete` (all its trials exist and ended), a RUNNING trial it does
    not hold was abandoned: FAIL, with the user attribute `abandoned` saying why. Trials
    already finished, and those still running in Ray, are left as they are, so calling it
    again changes nothing. Returns {Optuna trial number: the state it was closed in}."""
    closed = {}
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        ray_id = frozen.user_attrs.get(RAY_TRIAL_ID)
        if ray_id not in ended and not complete:
            continue  # still running in Ray, or not run yet
        trial = trial_handle(study, storage, frozen.number)
        if ray_id in ended:
            last, errored = ended[ray_id]
            result = None if errored else last  # Ray tells an errored trial no result
            closed[frozen.number] = tell_outcome(study, trial, metric, result, errored)
        else:
            trial.set_user_attr(ABANDONED, ABANDONED_WHY)
            study.tell(trial, state=TrialState.FAIL)
            closed[frozen.number] = TrialState.FAIL
    return closed


def _config_params(result: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar entries of a result's trial config, flat (`coin_p/cifar10`), as Optuna has
    them: from `config` (nested) or from Tune's flattened `config/...` keys."""
    config = result.get("config")
    if isinstance(config, Mapping):
        flat = flatten_dict(dict(config), delimiter="/")
    else:
        flat = {k.removeprefix("config/"): v for k, v in result.items() if k.startswith("config/")}
    return {k: v for k, v in flat.items() if isinstance(v, bool | int | float | str)}


class StudyASHA(ASHAScheduler):
    """ASHA that exempts the baseline configuration and rebuilds its rungs on resume."""

    def __init__(self, *, baseline: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._baseline = dict(baseline)

    def is_baseline(self, trial: Trial) -> bool:
        return all(trial.config.get(k) == v for k, v in self._baseline.items())

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)
        self._replay(trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if self.is_baseline(trial):
            return self.CONTINUE  # recorded in the rungs above, never stopped early
        return action

    def _replay(self, trial: Trial) -> None:
        """Record a restored trial's scores at each rung it already reached, as `on_result`
        did when they were reported (one result per epoch: the score at the rung's epoch)."""
        time_attr, metric, metric_op = internals.asha_judges(self)
        scores = _recorded_scores(trial, time_attr, metric)
        for milestone, recorded in internals.asha_rungs(self, trial.trial_id):
            if milestone in scores and trial.trial_id not in recorded:
                recorded[trial.trial_id] = metric_op * scores[milestone]


def _recorded_scores(trial: Trial, time_attr: str, metric: str) -> dict[int, float]:
    """{iteration: metric} from the trial's result file; empty for a new trial (which has no
    folder yet: Ray names it after the scheduler has seen the trial)."""
    if trial.storage is None or not trial.storage.trial_dir_name:
        return {}
    fs, path = trial.storage.storage_filesystem, f"{trial.storage.trial_fs_path}/{RESULT_FILE}"
    try:
        with fs.open_input_stream(path) as f:
            lines = f.readall().decode("utf-8", errors="replace").splitlines()
    except (FileNotFoundError, OSError):
        return {}
    scores = {}
    for line in lines:
        try:
            row = json.loads(line)
            scores[int(row[time_attr])] = float(row[metric])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line, or a row without the metric
    return scores
