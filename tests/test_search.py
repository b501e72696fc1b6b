"""StudyASHA on real Ray Trial objects: the baseline is never stopped, and a resumed scheduler's
rungs equal those of the uninterrupted one. StudySearch on a real Optuna database: a restored
searcher catches up with it, and no trial Ray ended (or never ran) stays RUNNING there."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

from names import RESULT_FILE, TRIAL_PREFIX
from study.search import (
    ABANDONED,
    RAY_TRIAL_ID,
    StudyASHA,
    StudySearch,
    StudyStorage,
    close_ended_trials,
    trial_handle,
)

BASELINE = {"lr": 1e-3, "optimizer": "adam"}
MAX_T = 9  # rungs at epochs 1 and 3 (grace 1, reduction factor 3)


def scheduler() -> StudyASHA:
    return StudyASHA(
        baseline=BASELINE,
        time_attr="training_iteration",
        metric="score",
        mode="max",
        max_t=MAX_T,
        grace_period=1,
        reduction_factor=3,
    )


def make_trial(root: Path, trial_id: str, config: dict, scores: list[float] = ()) -> Trial:
    """A real Ray Trial whose result file holds one row per epoch with these scores."""
    storage = StorageContext(
        storage_path=str(root), experiment_dir_name="exp", trial_dir_name=TRIAL_PREFIX + trial_id
    )
    folder = root / "exp" / (TRIAL_PREFIX + trial_id)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"training_iteration": i + 1, "score": s} for i, s in enumerate(scores)]
    (folder / RESULT_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Trial("fake", config=config, trial_id=trial_id, stub=True, storage=storage)


def feed(sched: StudyASHA, trial: Trial, scores: list[float], start: int = 1) -> list[str]:
    """Report scores from epoch `start` on, as Tune does; returns the scheduler's actions."""
    return [
        sched.on_trial_result(None, trial, {"training_iteration": i, "score": s})
        for i, s in enumerate(scores, start=start)
    ]


def rungs(sched: StudyASHA) -> list[tuple[int, dict]]:
    return [(m, dict(r)) for m, r in sched._brackets[0]._rungs]


def test_the_baseline_is_never_stopped_but_counts_in_the_rungs(tmp_path):
    sched = scheduler()
    good = [make_trial(tmp_path, f"g{i}", {"lr": 0.01 * (i + 1)}) for i in range(3)]
    for t in good:
        sched.on_trial_add(None, t)
        feed(sched, t, [0.9])
    base = make_trial(tmp_path, "base", dict(BASELINE))
    bad = make_trial(tmp_path, "bad", {"lr": 0.5, "optimizer": "adam"})
    for t in (base, bad):
        sched.on_trial_add(None, t)
    assert feed(sched, bad, [0.1]) == [StudyASHA.STOP]  # worst at the first rung: stopped
    assert feed(sched, base, [0.1, 0.1, 0.1]) == [StudyASHA.CONTINUE] * 3
    assert rungs(sched)[-1][1]["base"] == pytest.approx(0.1)  # still judged others


def test_a_restored_scheduler_rebuilds_the_rungs_from_recorded_results(tmp_path):
    histories = {"a": [0.5, 0.6, 0.7, 0.72], "b": [0.4, 0.45], "c": [0.8], "d": []}
    live = scheduler()
    for tid, scores in histories.items():
        trial = make_trial(tmp_path / "live", tid, {"lr": 0.1})
        live.on_trial_add(None, trial)
        feed(live, trial, scores)
    restored = scheduler()  # as unpickled from tuner.pkl: empty rungs
    for tid, scores in histories.items():
        restored.on_trial_add(None, make_trial(tmp_path / "disk", tid, {"lr": 0.1}, scores))
    assert rungs(restored) == rungs(live)
    # and the next decision is the same as without the interruption
    late_live, late_restored = (make_trial(tmp_path / p, "e", {"lr": 0.2}) for p in ("l", "r"))
    live.on_trial_add(None, late_live)
    restored.on_trial_add(None, late_restored)
    assert feed(live, late_live, [0.45]) == feed(restored, late_restored, [0.45])


def test_a_new_trial_without_a_folder_yet_has_nothing_to_replay(tmp_path):
    """Ray adds a new trial to the scheduler before it names the trial's folder."""
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp")
    trial = Trial("fake", config={"lr": 0.1}, trial_id="new", stub=True, storage=storage)
    sched = scheduler()
    sched.on_trial_add(None, trial)
    assert all(not recorded for _, recorded in rungs(sched))


def test_a_torn_result_line_is_skipped(tmp_path):
    trial = make_trial(tmp_path, "t", {"lr": 0.1}, [0.5, 0.6, 0.7])
    path = tmp_path / "exp" / "trial_t" / RESULT_FILE
    path.write_text(path.read_text() + '{"training_iteration": 4, "sco')
    sched = scheduler()
    sched.on_trial_add(None, trial)
    assert rungs(sched)[1][1] == {"t": 0.7} and rungs(sched)[2][1] == {"t": 0.5}


def _define(trial: optuna.trial.Trial) -> None:
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)


def _searcher(url: str, max_trials: int | None = None) -> StudySearch:
    return StudySearch(
        _define,
        metric="score",
        mode="max",
        study_name="m",
        storage=StudyStorage(url),
        sampler=optuna.samplers.TPESampler(seed=0),
        max_trials=max_trials,
    )


def test_a_restored_searcher_uses_this_drivers_optuna_storage(tmp_path, monkeypatch):
    """A remote study resumed on another machine: the saved searcher names the SQLite file of
    the first machine's cache, which does not exist here; it is never opened (or created)."""
    first, here = tmp_path / "first", tmp_path / "here"
    first.mkdir()
    here.mkdir()
    saved = _searcher(f"sqlite:///{first / 'optuna.db'}")
    saved.suggest("t1")
    saved.save(str(first / "searcher.pkl"))
    for name in ("optuna.db", "searcher.pkl"):  # what the resume downloads into its cache
        shutil.copy(first / name, here / name)
    shutil.rmtree(first)
    url = f"sqlite:///{here / 'optuna.db'}"
    monkeypatch.setattr(StudyStorage, "current_url", url)
    restored = _searcher(url)
    restored.restore(str(here / "searcher.pkl"))
    assert restored.storage.url == url
    restored.on_trial_complete("t1", {"score": 0.5})
    assert restored.suggest("t2") is not None and not first.exists()
    states = [t.state for t in optuna.load_study(study_name="m", storage=url).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING]


def test_a_restored_searcher_catches_up_with_the_database(tmp_path):
    """A driver lost mid-save can leave the searcher state older than the experiment state
    (seen with a study on S3: Tune resumed a trial the state never saw). The restored searcher
    takes every trial the database knows, and adopts one it does not know by its config."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    saved = _searcher(url)
    saved.suggest("t1")
    saved.save(str(tmp_path / "searcher.pkl"))  # the state saved before the loss ...
    saved.suggest("t2")  # ... then the database went on: t2 asked, t1 completed
    saved.on_trial_complete("t1", {"score": 0.5})

    restored = _searcher(url, max_trials=3)
    restored.restore(str(tmp_path / "searcher.pkl"))
    StudySearch.restored = frozenset({"t1", "t2"})  # what Ray's experiment state restores
    try:
        assert restored.suggest("t4") is not None  # two of three restored: one more ...
        assert restored.suggest("t5") == StudySearch.FINISHED  # ... and no more than asked
    finally:
        StudySearch.restored = frozenset()
    restored.on_trial_result("t2", {"score": 0.25, "training_iteration": 1})  # no KeyError
    restored.on_trial_complete("t2", {"score": 0.75})
    restored.on_trial_complete("t1", {"score": 0.5})  # already told: not told twice
    restored.on_trial_result("t3", {"score": 0.1, "training_iteration": 1, "config/lr": 0.02})
    restored.on_trial_complete("t3", {"score": 0.2, "config/lr": 0.02})
    restored.on_trial_complete("t4", {"score": 0.3})

    trials = {
        t.user_attrs["ray_trial_id"]: t
        for t in optuna.load_study(study_name="m", storage=url).trials
    }
    assert {k: (t.state.name, t.value) for k, t in trials.items()} == {
        "t1": ("COMPLETE", 0.5),
        "t2": ("COMPLETE", 0.75),
        "t3": ("COMPLETE", 0.2),
        "t4": ("COMPLETE", 0.3),
    }
    assert trials["t2"].intermediate_values == {1: 0.25}
    assert trials["t3"].params == {"lr": 0.02}  # adopted with its own config's value


def test_a_searcher_saved_as_rays_optuna_search_resumes(tmp_path, monkeypatch):
    """Studies saved while StudySearch subclassed Ray's OptunaSearch hold its pickled state in
    `tuner.pkl` (unpickled into this class) and `searcher-state-*.pkl` (restored): the study
    goes on from the database, with the saved define-by-run function and sampler."""
    from ray.tune.search.optuna import OptunaSearch

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    old = OptunaSearch(
        space=_define,
        metric="score",
        mode="max",
        points_to_evaluate=[{"lr": 0.01}],
        sampler=optuna.samplers.TPESampler(seed=0),
        study_name="m",
        storage=StudyStorage(url),
    )
    assert old.suggest("t1") == {"lr": 0.01}
    study, storage = _load(url)  # the old StudySearch recorded the Ray trial id, as this one
    trial_handle(study, storage, 0).set_user_attr(RAY_TRIAL_ID, "t1")
    old.save(str(tmp_path / "searcher.pkl"))
    state = pickle.loads((tmp_path / "searcher.pkl").read_bytes())

    monkeypatch.setattr(StudyStorage, "current_url", url)
    monkeypatch.setattr(StudySearch, "restored", frozenset({"t1"}))  # Ray's experiment state
    restored = StudySearch.__new__(StudySearch)  # what unpickling tuner.pkl does
    restored.__setstate__(state)
    restored.max_trials = 2  # the runner's, as it builds the searcher
    restored.restore(str(tmp_path / "searcher.pkl"))  # as Tune restores the searcher state
    assert (restored.define, restored.study_name, restored.metric) == (_define, "m", "score")
    restored.on_trial_result("t1", {"score": 0.25, "training_iteration": 1})
    restored.on_trial_complete("t1", {"score": 0.5})
    assert set(restored.suggest("t2")) == {"lr"}
    assert restored.suggest("t3") == StudySearch.FINISHED
    trials = _trials(url)
    assert (trials["t1"].state, trials["t1"].value) == (TrialState.COMPLETE, 0.5)
    assert trials["t1"].intermediate_values == {1: 0.25}
    assert trials["t2"].state == TrialState.RUNNING and len(trials) == 2


def test_a_trial_only_the_database_knows_does_not_count(tmp_path):
    """With PostgreSQL the database can hold a trial asked just before the driver was lost that
    Ray never saved (and never runs): the study still gets all its trials."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    saved = _searcher(url, max_trials=2)
    saved.suggest("t1")
    saved.save(str(tmp_path / "searcher.pkl"))
    saved.suggest("lost")  # asked, in the database, never in Ray's experiment state
    restored = _searcher(url, max_trials=2)
    restored.restore(str(tmp_path / "searcher.pkl"))
    StudySearch.restored = frozenset({"t1"})
    try:
        assert restored.suggest("t2") is not None  # the study's second trial is made
        assert restored.suggest("t3") == StudySearch.FINISHED
    finally:
        StudySearch.restored = frozenset()


def _trials(url: str) -> dict[str, optuna.trial.FrozenTrial]:
    """The Optuna trials of study "m" by Ray trial id (by number for one without an id)."""
    trials = optuna.load_study(study_name="m", storage=url).trials
    return {t.user_attrs.get(RAY_TRIAL_ID, f"#{t.number}"): t for t in trials}


def _load(url: str) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Study "m" and its storage, as the runner loads them to close ended trials."""
    storage = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name="m", storage=storage), storage


def _limited(url: str) -> SearchGenerator:
    """What Tune runs with `max_concurrent_trials=2`: its ConcurrencyLimiter over the searcher."""
    return SearchGenerator(ConcurrencyLimiter(_searcher(url), max_concurrent=2))


def test_a_stale_concurrency_limiter_drops_a_completion_that_closing_ended_trials_tells(
    tmp_path,
):
    """A driver lost mid-save: the searcher's state (with the limiter's `live_trials`) is older
    than the experiment state, which holds t2. Ray's ConcurrencyLimiter drops t2's completion
    (its Optuna trial stays RUNNING); close_ended_trials, fed Ray's ended trials, closes it."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    state_dir = tmp_path / "exp"
    state_dir.mkdir()
    gen = _limited(url)
    gen.searcher.suggest("t1")
    gen.save_to_dir(str(state_dir), session_str="early")  # the state that reached the store
    gen.searcher.suggest("t2")  # ... then the database went on

    restored = _limited(url)
    restored.restore_from_dir(str(state_dir))
    assert restored.searcher.live_trials == {"t1"}  # Ray's own, stale
    last = {"score": 0.75, "training_iteration": 3}
    restored.on_trial_result("t2", {"score": 0.5, "training_iteration": 2})
    restored.on_trial_complete("t2", result=last)  # dropped by the limiter
    restored.on_trial_complete("t1", result={"score": 0.5})  # a live trial: told
    trials = _trials(url)
    assert trials["t2"].state == TrialState.RUNNING  # the gap, with Ray's code
    assert (trials["t1"].state, trials["t1"].value) == (TrialState.COMPLETE, 0.5)

    study, storage = _load(url)
    ended = {"t1": ({"score": 0.1}, False), "t2": (last, False)}
    assert close_ended_trials(study, storage, ended, complete=True) == {
        trials["t2"].number: TrialState.COMPLETE
    }
    trials = _trials(url)
    assert (trials["t2"].state, trials["t2"].value) == (TrialState.COMPLETE, 0.75)
    assert trials["t2"].intermediate_values == {2: 0.5}
    assert trials["t1"].value == 0.5  # already finished: untouched
    assert close_ended_trials(study, storage, ended, complete=True) == {}  # idempotent


# How Tune ends a trial (its `on_trial_complete` arguments) and the last result Ray saved of it.
ENDINGS = {
    "scored": ({"score": 0.7, "training_iteration": 3}, False),
    "diverged": ({"score": 0.0, "diverged": True, "training_iteration": 2}, False),
    "nan": ({"score": math.nan, "training_iteration": 2}, False),  # Optuna refuses it
    "errored": ({"score": 0.6, "training_iteration": 2}, True),  # Tune tells no result
    "unscored": (None, False),  # stopped before its first result
}


def _outcomes(url: str) -> dict[str, tuple]:
    return {
        k: (t.state, t.value, {a: v for a, v in t.user_attrs.items() if a != RAY_TRIAL_ID})
        for k, t in _trials(url).items()
    }


def test_closing_an_ended_trial_tells_what_tune_would_have(tmp_path):
    """Each way a trial ends, told by Tune to the searcher in one database and by
    close_ended_trials (from Ray's saved last result) in another: the same outcome."""
    told, closed = (f"sqlite:///{tmp_path / name}.db" for name in ("told", "closed"))
    searchers = {url: _searcher(url) for url in (told, closed)}
    for searcher in searchers.values():
        for trial_id in ENDINGS:
            searcher.suggest(trial_id)
            searcher.on_trial_result(trial_id, {"score": 0.3, "training_iteration": 1})
    for trial_id, (last, errored) in ENDINGS.items():  # as Tune tells the searcher
        searchers[told].on_trial_complete(trial_id, None if errored else last, error=errored)
    study, storage = _load(closed)
    closed_now = close_ended_trials(study, storage, ENDINGS, complete=False)

    outcomes = _outcomes(closed)
    assert outcomes == _outcomes(told)
    assert {k: o[0] for k, o in outcomes.items()} == {
        "scored": TrialState.COMPLETE,
        "diverged": TrialState.PRUNED,
        "nan": TrialState.FAIL,
        "errored": TrialState.FAIL,
        "unscored": TrialState.PRUNED,
    }
    assert outcomes["diverged"][2] == {"diverged": True}
    assert outcomes["unscored"][1] == 0.3  # Optuna: a pruned trial's last intermediate value
    assert sorted(closed_now.values()) == sorted(o[0] for o in outcomes.values())


def test_a_trial_ray_never_ran_is_failed_once_its_experiment_is_complete(tmp_path):
    """With PostgreSQL the database can hold a trial asked just before the driver was lost that
    Ray never saved: closed as FAIL (saying why) only when no trial of the experiment is left
    to run; a trial still running in Ray is never touched."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = _searcher(url)
    for trial_id in ("t1", "lost", "t2"):
        searcher.suggest(trial_id)
    study, storage = _load(url)
    study.ask()  # asked, lost before it got its Ray trial id

    ended = {"t1": ({"score": 0.4}, False)}  # t2 still runs in Ray
    closed = close_ended_trials(study, storage, ended, complete=False)
    assert list(closed.values()) == [TrialState.COMPLETE]
    states = {k: t.state for k, t in _trials(url).items()}
    assert states == {
        "t1": TrialState.COMPLETE,
        "lost": TrialState.RUNNING,
        "t2": TrialState.RUNNING,
        "#3": TrialState.RUNNING,
    }
    ended["t2"] = ({"score": 0.6}, False)  # the experiment is complete: t1 and t2 ended
    closed = close_ended_trials(study, storage, ended, complete=True)
    trials = _trials(url)
    assert closed == {
        trials["lost"].number: TrialState.FAIL,
        trials["t2"].number: TrialState.COMPLETE,
        trials["#3"].number: TrialState.FAIL,
    }
    assert ABANDONED in trials["lost"].user_attrs and ABANDONED in trials["#3"].user_attrs
    assert ABANDONED not in trials["t2"].user_attrs and trials["t2"].value == 0.6
    assert close_ended_trials(study, storage, ended, complete=True) == {}
