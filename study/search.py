"""Ray Tune's searcher and scheduler with the gaps a long, trustworthy study cannot afford closed.

`StudySearch` is Ray's OptunaSearch, plus:

- A diverged trial (loss NaN or infinite) is told to Optuna as PRUNED with a `diverged` user
  attribute: a bad result the sampler learns from, never a crash and never a zombie.
- Any trial Optuna refused to close (e.g. a non-finite value) is closed as FAIL instead of
  staying RUNNING forever in the database and the dashboard.
- A restored searcher catches up with the database. A study in object storage is saved file by
  file; a driver lost mid-save (kill -9 of the head) can leave a searcher state older than the
  experiment state beside it, and Tune then resumes a trial the searcher never saw (Ray's
  OptunaSearch: a KeyError at its first result). The database knows every trial by its
  `ray_trial_id`; a trial it does not know either is adopted with the parameters of its config.
  A stale state also undercounts the trials created (Ray's search generator would add one more
  than the study asked for): `max_trials` stops suggestions once the trials of the restored
  experiment state (`restored`, bound by the runner) and those asked since reach it. (Not the
  database's count: with PostgreSQL it may hold a trial asked just before the loss that Ray
  never saved, and never runs.)

- No Optuna trial stays RUNNING after its experiment: `tell_outcome` is the one place a trial's
  end is told to Optuna, from `on_trial_complete` and from `close_ended_trials`, which the runner
  calls after each search experiment with the trials Ray's experiment state records as ended.
  Ray's notice can be lost: with `max_concurrent_trials` Tune wraps this searcher in its
  ConcurrencyLimiter, whose saved `live_trials` can be as stale as the searcher's state, and
  it drops the completion of a trial it does not list. Once the experiment is complete, a
  RUNNING trial that Ray never ran (asked just before a loss, never saved) is closed as FAIL
  with an `abandoned` user attribute, as Optuna's own `fail_stale_trials` marks such trials.

Each Optuna trial also records its Ray trial id (`ray_trial_id`), linking the database to the
trial folders. (Ray's OptunaSearch already reports every epoch's score to Optuna as an
intermediate value, so the Optuna dashboard shows learning curves.)

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
from collections.abc import Mapping
from typing import Any, ClassVar

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from names import RAY_TRIAL_ID, RESULT_FILE, SCORE
from study import internals
from study.settings import _without_password

ABANDONED = "abandoned"  # user attribute: why a trial Ray never ran was closed
ABANDONED_WHY = (
    "asked by a driver lost before Ray saved the trial; Ray never ran it and its experiment "
    "has ended"
)
_logger = logging.getLogger(__name__)


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
        return {**state, "url": _without_password(state["url"])}  # as study.json has it

    def __setstate__(self, state: dict[str, Any]) -> None:
        url = type(self).current_url
        super().__setstate__({**state, "url": url} if url else state)


class StudySearch(OptunaSearch):
    # the trial ids of the experiment state being restored (studyfiles.ray_files.saved_trial_ids)
    restored: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, max_trials: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_trials = max_trials  # the study's num_samples
        self._asked_here: set[str] = set()  # trials suggested by this process

    def restore(self, checkpoint_path: str) -> None:
        most = getattr(self, "_max_trials", None)  # this driver's, not the saved state's
        super().restore(checkpoint_path)
        self._max_trials, self._asked_here = most, set()
        self._catch_up()

    def _catch_up(self) -> None:
        """Every Optuna trial that names a Ray trial is this searcher's, finished or not."""
        study, asked = internals.ot_study(self), internals.ot_trials(self)
        for frozen in study.get_trials(deepcopy=False):
            ray_id = frozen.user_attrs.get(RAY_TRIAL_ID)
            if ray_id is None:
                continue
            if ray_id not in asked:
                asked[ray_id] = internals.running_trial(study, frozen)
            if frozen.state.is_finished():
                internals.completed_trials(self).add(ray_id)

    def _adopt(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        """A trial neither the restored state nor the database knows: a new Optuna trial with
        the parameters of its config (enqueued, so the sampler's suggestions are its values)."""
        asked = internals.ot_trials(self)
        if trial_id in asked or not result:
            return
        params = _config_params(result)
        if not params:
            return
        study, space = internals.ot_study(self), internals.define_by_run_space(self)
        study.enqueue_trial(params)
        if callable(space):
            ot_trial = study.ask()
            space(ot_trial)  # define-by-run: suggests (the enqueued values) on the trial
        else:
            ot_trial = study.ask(fixed_distributions=space)
        ot_trial.set_user_attr(RAY_TRIAL_ID, trial_id)
        asked[trial_id] = ot_trial

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._adopt(trial_id, result)
        if trial_id in internals.ot_trials(self):  # else no config to adopt it by: never told
            super().on_trial_result(trial_id, result)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        most = getattr(self, "_max_trials", None)  # None in a state saved before it existed
        asked = getattr(self, "_asked_here", set())
        if most is not None and trial_id not in asked and len(self.restored | asked) >= most:
            return self.FINISHED  # every trial of the study exists (restored or asked here)
        asked.add(trial_id)
        self._asked_here = asked
        config = super().suggest(trial_id)
        ot_trial = internals.ot_trials(self).get(trial_id)
        if ot_trial is not None:
            ot_trial.set_user_attr(RAY_TRIAL_ID, trial_id)
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._adopt(trial_id, result)
        asked, completed = internals.ot_trials(self), internals.completed_trials(self)
        if trial_id not in asked:
            return None  # no config to adopt it by: Optuna never hears of it
        if trial_id in completed:
            return super().on_trial_complete(trial_id, result, error)  # Ray warns: told twice
        tell_outcome(internals.ot_study(self), asked[trial_id], self.metric, result, error)
        completed.add(trial_id)
        return None


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
    ended: Mapping[str, tuple[Mapping[str, Any] | None, bool]],
    complete: bool,
    metric: str = SCORE,
) -> dict[int, TrialState]:
    """Close every RUNNING trial of `study` that Ray has ended, as `tell_outcome` does;
    `ended`: {Ray trial id: (last result, errored)} (studyfiles.ray_files.ended_trials). When the
    experiment is `complete` (all its trials exist and ended), a RUNNING trial it does not hold
    was abandoned: FAIL, with the user attribute `abandoned` saying why. Trials already
    finished, and those still running in Ray, are left as they are, so calling it again
    changes nothing. Returns {Optuna trial number: the state it was closed in}."""
    closed = {}
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        ray_id = frozen.user_attrs.get(RAY_TRIAL_ID)
        if ray_id not in ended and not complete:
            continue  # still running in Ray, or not run yet
        trial = internals.running_trial(study, frozen)
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
    from ray.tune.utils import flatten_dict

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
