"""Trial faults through real Ray: retries from checkpoints, errored trials, diverged trials.

Faults are injected with the test-only MTL_STUDY_FAULT variable read by `trainables.faults`
(the trainable's one hook), so the real retry and divergence paths run.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
from pathlib import Path

import optuna
import pandas as pd
import pytest
from fake_study import FR
from helpers import SMALL_STUDY, experiment_rows, kill_tree, run_cli, start_cli, wait_for

from names import (
    CHECKPOINT_GLOB,
    CONFIRM_PLAN_FILE,
    DEFAULT_BUDGET,
    EVAL_SPLIT,
    RESTARTED,
    RESTORED,
    SETTINGS_FILE,
    TASKS_FILE,
    TEST,
    TRIAL_CONFIG_FILE,
    confirm_experiment,
    eval_metric,
)
from studyfiles.ray_files import ended_trials
from trainables.budget import count_steps
from trainables.checkpoint import STATE_FILE, CorruptCheckpoint, checkpoint_epoch, load_checkpoint
from trainables.config import TrialConfig
from trainables.engine import step_plan

pytestmark = pytest.mark.slow

BASELINE_TRIAL = "lr=0.001"  # only the baseline configuration has exactly this learning rate
OTHER_TRIAL = "lr!=0.001"  # the other (sampled) trial


def run(tmp_path, fault: str, max_failures: int):
    """A single-task study of 2 trials x 3 epochs with `MTL_STUDY_FAULT=<fault>`: its output,
    {"baseline" | "other": (trial folder, epochs)} and its Optuna trials."""
    out = run_cli(
        "--space",
        "single-fashionrgb",
        "--data",
        "synthetic",
        "--num-samples",
        "2",
        "--max-epochs",
        "3",
        "--limit-train",
        "128",
        "--limit-val",
        "64",
        "--batch-size",
        "32",
        "--scheduler",
        "fifo",
        "--max-failures",
        str(max_failures),
        "--confirm-seeds",
        "0",
        "--storage",
        str(tmp_path),
        "--name",
        "f",
        cwd=tmp_path,
        env={"MTL_STUDY_FAULT": fault},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return (out.stdout, *_outcome(tmp_path / "f"))


def _outcome(folder: Path) -> tuple[dict, list]:
    """A single-fashionrgb study's {"baseline" | "other": (trial folder, epochs)} and its
    Optuna trials."""
    trials = {}
    for trial in (folder / "single-fashionrgb").glob("trial_*"):
        params = json.loads((trial / "params.json").read_text())
        rows = [json.loads(x) for x in (trial / "result.json").read_text().splitlines()]
        trials["baseline" if params["lr"] == 0.001 else "other"] = (trial, rows)
    optuna_trials = optuna.load_study(
        study_name="single-fashionrgb", storage=f"sqlite:///{folder / 'optuna.db'}"
    ).trials
    return trials, optuna_trials


@pytest.mark.parametrize(
    "match,hit",
    [("", True), ("lr=0.001", True), ("lr=0.01", False), ("lr!=0.001", False), ("lr!=0.01", True)],
)
def test_a_fault_matches_its_trials(match, hit):
    from trainables.faults import fault_matches

    assert fault_matches({"lr": 0.001, "optimizer": "adam"}, match) is hit


def trials_dirs(tmp_path):
    return list((tmp_path / "f" / "single-fashionrgb").glob("trial_*"))


@pytest.fixture(scope="module")
def crash_and_divergence(tmp_path_factory):
    """One study, one retry allowed: the baseline's trial raises before epoch 2 (retried from
    its checkpoint), the other trial's weights turn to NaN before epoch 2 (diverged). The two
    faults hit different trials, so each test below checks one of them."""
    tmp = tmp_path_factory.mktemp("faults")
    fault = f"raise@2:{BASELINE_TRIAL};nan@2:{OTHER_TRIAL}"
    return (tmp, *run(tmp, fault, max_failures=1))


def test_a_crash_is_retried_from_the_checkpoint(crash_and_divergence):
    _, out, trials, optuna_trials = crash_and_divergence
    trial, rows = trials["baseline"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # all epochs, none repeated
    failures = (trial / "error.txt").read_text().count("Failure #")
    assert failures == 1  # exactly one retry, and it succeeded
    assert "single-fashionrgb: 2 trials; top" in out  # none errored
    retried = next(t for t in optuna_trials if t.params["lr"] == 0.001)
    assert retried.state == optuna.trial.TrialState.COMPLETE
    assert not [t for t in optuna_trials if t.state == optuna.trial.TrialState.FAIL]


def test_without_retries_the_trial_errors_and_the_study_goes_on(start_up_kill):
    """No retry allowed (--max-failures 0; here the start-up-window study's resume): the
    baseline's trial raises before epoch 2 and errors; the other trial runs to its end."""
    out, trials, optuna_trials = start_up_kill
    _, rows = trials["baseline"]
    assert [r["epoch"] for r in rows] == [1]
    assert [r["epoch"] for r in trials["other"][1]] == [1, 2]
    assert "1 errored" in out
    states = sorted(t.state.name for t in optuna_trials)
    assert states == ["COMPLETE", "FAIL"]  # never left RUNNING


def test_a_diverged_trial_stops_and_is_a_bad_result(crash_and_divergence):
    tmp, out, trials, optuna_trials = crash_and_divergence
    diverged, rows = trials["other"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["diverged"] is True and rows[-1]["score"] == 0.0
    assert [r["epoch"] for r in trials["baseline"][1]] == [1, 2, 3]  # the study goes on
    assert "errored" not in out  # not an error, and not retried though a retry was allowed
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in optuna_trials)
    lr = json.loads((diverged / "params.json").read_text())["lr"]
    other = next(t for t in optuna_trials if t.params["lr"] == lr)
    assert other.state == optuna.trial.TrialState.PRUNED and other.user_attrs["diverged"]
    from analysis.results import load_study

    reasons = load_study(tmp / "f").trials.set_index("lr")["stop_reason"]
    assert reasons[lr] == "diverged"  # the report's trial table lists it
    assert {t.user_attrs["ray_trial_id"] for t in optuna_trials} == {
        p.name.removeprefix("trial_") for p in trials_dirs(tmp)
    }


def _one_done_one_midway(snapshot: dict) -> bool:
    lengths = [len(rows) for rows in snapshot.values()]
    return 3 in lengths and any(0 < n < 3 for n in lengths)


def _newest_complete(trial: Path) -> int:
    """The epoch of a trial's newest checkpoint that loads (0: none), as restore_newest ranks
    them: a kill while Ray copies a checkpoint into the trial folder can leave its meta file
    beside a partial state.pt, and the resume then falls back to the one before."""
    loads = []
    for folder in trial.glob("checkpoint_*"):
        try:
            load_checkpoint(folder)
        except CorruptCheckpoint:
            continue
        loads.append(checkpoint_epoch(folder))
    return max(loads, default=0)


def _one_done_one_at_two(snapshot: dict) -> bool:
    """A trial finished and another has reported 2 of 3 epochs (so it has two checkpoints)."""
    lengths = [len(rows) for rows in snapshot.values()]
    return 3 in lengths and 2 in lengths


def _kill_once(proc, experiment: Path, ready=_one_done_one_midway) -> None:
    """kill -9 of `proc` and its Ray once `ready(rows of experiment)` (by default: a run
    finished and another is mid-way)."""
    wait_for(lambda: ready(experiment_rows(experiment)), proc)
    kill_tree(proc)


def _by_epoch(trial: Path) -> list[Path]:
    """A trial's checkpoint folders, newest epoch first."""
    folders = trial.glob(CHECKPOINT_GLOB)
    return sorted(folders, key=lambda c: (checkpoint_epoch(c), c.name), reverse=True)


def _truncate(folder: Path) -> str:
    """Cut a checkpoint's state.pt to 200 bytes, as a full disk or a copy cut short leaves it;
    returns it relative to its trial folder."""
    path = folder / STATE_FILE
    path.write_bytes(path.read_bytes()[:200])
    return f"{folder.name}/{STATE_FILE}"


def _truncate_newest(experiment: Path) -> dict[str, list[str]]:
    """The newest checkpoint of every trial truncated: {trial: the files cut}."""
    return {t.name: [_truncate(c) for c in _by_epoch(t)[:1]] for t in experiment.glob("trial_*")}


def _truncate_midway(experiment: Path) -> dict[str, list[str]]:
    """Every checkpoint of each trial that has not reported its last epoch truncated."""
    rows = experiment_rows(experiment)
    return {
        name: [_truncate(c) for c in _by_epoch(experiment / name)]
        for name, trial_rows in rows.items()
        if len(trial_rows) < 3 and _by_epoch(experiment / name)
    }


def _refused(*argv: str) -> subprocess.CompletedProcess:
    """`python -m study.run <argv>` run in this process (a driver other than the study's: its
    own PID, the same host), as a completed process. A refusal comes before Ray and costs no
    interpreter start, so it lands while the study still holds its lock however fast that runs.
    Restores this process's SIGINT handler, which a resume installs before it is refused."""
    from study.run import main

    handler, out, err = signal.getsignal(signal.SIGINT), io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(argv))
    finally:
        signal.signal(signal.SIGINT, handler)
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def killed_study(tmp_path_factory) -> dict:
    """A multi study of 3 trials with its confirmation stage (baseline and tuned-1, 2 seeds):
    while it runs, started again and resumed by two other drivers (both refused); kill -9 of
    the driver and Ray once a trial finished and another has reported 2 of its 3 epochs; the
    newest checkpoint of every trial then cut short (an older one beside it); --resume,
    killed the same way once a confirmation run finished and another is mid-way; every
    checkpoint of each mid-way run then cut short (none readable left); --resume to the end;
    --resume once more (nothing to do). Returns the refused runs, the search's epochs and
    newest readable checkpoints at the first kill and at the second, the files cut, the plan,
    the confirmation's epochs after the last two resumes, and those resumes' output."""
    tmp = tmp_path_factory.mktemp("killed")
    args = [*SMALL_STUDY, "--space", "multi", "--num-samples", "3", "--storage", str(tmp)]
    # one trial at a time: a trial's epoch 2 is then its own event, an epoch before its end
    # (two trials in step can reach 3 and 2 within one of Ray's result writes, leaving no moment)
    args += ["--confirm-seeds", "2", "--limit-test", "64", "--max-concurrent", "1"]
    experiment, confirm = tmp / "k" / "multi", tmp / "k" / confirm_experiment("multi")
    with open(tmp / "killed.log", "w") as log:
        proc = start_cli(*args, "--name", "k", cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        wait_for(experiment.exists, proc)  # it holds the study now
        again = _refused(*args, "--name", "k")
        resume = _refused("--resume", str(tmp / "k"))
        _kill_once(proc, experiment, _one_done_one_at_two)
    ended = {f"trial_{t}" for t in ended_trials(experiment)}
    kept = {t.name: len(_by_epoch(t)) for t in experiment.glob("trial_*")}
    truncated = _truncate_newest(experiment)
    newest = {t.name: _newest_complete(t) for t in experiment.glob("trial_*")}
    before = experiment_rows(experiment)  # results recorded up to the kill
    with open(tmp / "resumed.log", "w") as log:
        proc = start_cli("--resume", str(tmp / "k"), cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        _kill_once(proc, confirm)  # the search has ended: the confirmation stage runs
    confirm_truncated = _truncate_midway(confirm)
    searched = experiment_rows(experiment)
    out = run_cli("--resume", str(tmp / "k"), cwd=tmp)
    confirmed = experiment_rows(confirm)
    return {
        "again": again,
        "refused_resume": resume,
        "before": before,
        "newest": newest,
        "searched": searched,
        "plan": json.loads((tmp / "k" / CONFIRM_PLAN_FILE).read_text())["multi"],
        "out": out,
        "after": experiment_rows(experiment),
        "confirmed": confirmed,
        "params": [json.loads((t / "params.json").read_text()) for t in confirm.glob("trial_*")],
        "done": run_cli("--resume", str(tmp / "k"), cwd=tmp),  # all done: no Ray started
        "done_confirmed": experiment_rows(confirm),
        "dir": tmp / "k",
        "ended": ended,
        "kept": kept,
        "truncated": truncated,
        "resumed_out": (tmp / "resumed.log").read_text(),
        "confirm_truncated": confirm_truncated,
    }


def test_driver_killed_with_sigkill_resumes_without_losing_epochs(killed_study):
    """kill -9 of the driver once a trial finished and another has a checkpoint at epoch >= 1;
    --resume ends with the requested trials, no finished trial re-run, and the interrupted one
    continuing at its newest checkpoint's epoch + 1 (even if Ray's snapshot is older)."""
    before, newest, out = killed_study["before"], killed_study["newest"], killed_study["out"]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    after = killed_study["searched"]  # the resume's search ended; it was killed in confirmation
    assert len(after) == 3
    ended = killed_study["ended"]  # the trials Ray's saved state records as ended
    for name, rows in before.items():
        if name in ended:
            assert after[name] == rows  # ended: not run again
        elif len(rows) == 3:  # its last epoch recorded, its end not saved: it resumes from its
            # newest readable checkpoint (the newest was cut: the one before) to its last epoch
            assert after[name][: len(rows)] == rows and after[name][-1]["epoch"] == 3
    resumed = {n: r for n, r in before.items() if 0 < len(r) < 3}
    assert resumed
    for name, rows in resumed.items():
        trained = [r for r in after[name] if r["pid"] != rows[-1]["pid"] and not r.get(RESTORED)]
        if newest[name] < 3:  # continues at its newest checkpoint's epoch + 1
            assert trained and trained[0]["epoch"] == newest[name] + 1, (newest, after[name])
        else:  # its last epoch was checkpointed but never recorded: reported, not retrained
            # (by the trial from its checkpoint, or from Ray's experiment state: ray_files)
            assert not trained and after[name][-1]["epoch"] == 3, after[name]
        epochs = sorted({r["epoch"] for r in after[name]})
        assert epochs == [1, 2, 3]  # every epoch reported, at most one trained again
    # Optuna heard how every trial ended: none left RUNNING by the kill
    seen = optuna.load_study(
        study_name="multi", storage=f"sqlite:///{killed_study['dir']}/optuna.db"
    )
    states = [t.state for t in seen.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3, states
    assert optuna.trial.TrialState.RUNNING not in states, states


def test_a_kill_during_confirmation_resumes_exactly_the_planned_runs(killed_study):
    """kill -9 of the driver and Ray mid-confirmation, then --resume: every planned run ends
    once with its test figures; no search trial runs again; a last --resume starts no Ray."""
    out, plan = killed_study["out"], killed_study["plan"]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    search_before = killed_study["searched"]
    assert killed_study["after"] == search_before  # the search: untouched
    runs = killed_study["confirmed"]
    assert len(runs) == len(plan) == 4
    for rows in runs.values():
        assert sorted({r["epoch"] for r in rows}) == [1, 2, 3]
        last = rows[-1]
        assert last[EVAL_SPLIT] == TEST and eval_metric("acc", FR, TEST) in last
    ran = sorted((p["run"]["label"], p["run"]["seed"]) for p in killed_study["params"])
    assert ran == sorted((r["label"], r["seed"]) for r in plan)
    for rows in search_before.values():  # the search never saw test data
        assert all(not any(k.startswith("test_") for k in r) for r in rows)
    again = killed_study["done"]
    assert again.returncode == 0 and "complete: nothing to do" in again.stdout
    assert f"python -m analysis.table {killed_study['dir']}" in again.stdout
    assert "Ray" not in again.stderr and killed_study["done_confirmed"] == runs
    for trial in killed_study["dir"].glob("*/trial_*"):  # Ray's CSV: the same keys in every row
        assert len(pd.read_csv(trial / "progress.csv")) >= 1  # raises on a ragged row


def test_killed_and_resumed_runs_take_the_steps_their_budget_plans(killed_study):
    """Every search trial and confirmation run, killed and resumed or not, took in each epoch
    exactly the steps per task that the pure planner plans under the study's budget (the
    default); search trials train on train, confirmation runs on train + validation."""
    study = killed_study["dir"]
    assert json.loads((study / SETTINGS_FILE).read_text())["budget"] == DEFAULT_BUDGET
    tasks = json.loads((study / TASKS_FILE).read_text())
    stages = [("multi", killed_study["after"], ("train_size",))]
    stages += [(confirm_experiment("multi"), killed_study["confirmed"], ("train_size", "val_size"))]
    for experiment, runs, splits in stages:
        assert runs
        for trial, rows in runs.items():
            config = json.loads((study / experiment / trial / TRIAL_CONFIG_FILE).read_text())
            cfg = TrialConfig.from_dict(config)
            assert cfg.budget == DEFAULT_BUDGET
            names = list(cfg.task_names)
            sizes = [sum(tasks[n][split] for split in splits) for n in names]
            planned = count_steps(step_plan(cfg, names, sizes)).tolist()
            by_epoch = {r["epoch"]: r for r in rows if not r["diverged"]}  # a repeat: the same
            assert by_epoch, (experiment, trial)
            for epoch, row in by_epoch.items():
                assert [row[f"steps/{n}"] for n in names] == planned[epoch - 1], (trial, epoch)
                assert [row[f"single_steps/{n}"] for n in names] == [
                    cfg.max_epochs * -(-size // cfg.batch_size) for size in sizes
                ]


def _restart_line(experiment: str, trial: str, files: list[str], out: str) -> bool:
    """The progress line of a trial that restarted from epoch 0, naming its unreadable files."""
    head = f"{trial} restarted from epoch 0: no readable checkpoint ("
    return head in out and all(f"{experiment}/{trial}/{f}" in out for f in files)


def test_a_truncated_newest_checkpoint_falls_back_to_an_older_one(killed_study):
    """The newest checkpoint of every trial cut short after the kill: a trial with an older
    one continues from it (never errored, never restarted); one whose only checkpoint was cut
    starts over from epoch 0, says so once and is flagged; every trial reaches its last epoch
    and the study counts all of them."""
    kept, cut, before = killed_study["kept"], killed_study["truncated"], killed_study["before"]
    searched, newest = killed_study["searched"], killed_study["newest"]
    assert all(kept[name] >= 2 for name, rows in before.items() if len(rows) >= 2), kept
    at_two = [name for name, rows in before.items() if len(rows) == 2]
    assert at_two, before  # the kill's moment: a trial at 2 of its 3 epochs
    for name, rows in searched.items():
        assert sorted({r["epoch"] for r in rows}) == [1, 2, 3], rows
        if name in at_two:
            assert newest[name] >= 1  # an older checkpoint was left, and it was used
        reported = len(before.get(name, []))  # a trial not started at the kill: none
        if name in at_two or reported == 3:
            assert not any(r.get(RESTARTED) for r in rows), rows
        elif 0 < reported and newest[name] == 0:  # its only checkpoint was cut
            assert all(r[RESTARTED] for r in rows[reported:]), rows
            assert _restart_line("multi", name, cut[name], killed_study["resumed_out"])
    assert "errored" not in killed_study["resumed_out"]
    from analysis.results import load_study

    trials = load_study(killed_study["dir"]).trials
    assert sorted(trials["stop_reason"]) == ["finished"] * 3
    assert trials[RESTARTED].sum() == sum(
        any(r.get(RESTARTED) for r in rows) for rows in searched.values()
    )


def test_a_confirmation_run_without_a_readable_checkpoint_restarts_from_epoch_0(killed_study):
    """Every checkpoint of each mid-way confirmation run cut short after the second kill: it
    starts over from epoch 0 rather than erroring, says so once in the progress output, its
    rows say `restarted`, and the summary and the runs frame count it."""
    cut, runs, out = (
        killed_study["confirm_truncated"],
        killed_study["confirmed"],
        killed_study["out"],
    )
    assert cut  # the kill's moment: a run mid-way, with a checkpoint
    experiment = confirm_experiment("multi")
    for name, rows in runs.items():
        if name in cut:
            assert [r["epoch"] for r in rows[-3:]] == [1, 2, 3], rows
            assert all(r[RESTARTED] for r in rows[-3:])
            assert _restart_line(experiment, name, cut[name], out.stdout)
        else:
            assert not any(r.get(RESTARTED) for r in rows)
    assert out.stdout.count("restarted from epoch 0: no readable checkpoint") == len(cut)
    from analysis.results import load_study

    study = load_study(killed_study["dir"])
    assert sorted(study.runs["status"]) == ["finished"] * 4
    assert study.runs[RESTARTED].sum() == len(cut)
    searched = int(study.trials[RESTARTED].sum())
    assert (
        f"Restarted from epoch 0 (no readable checkpoint): {searched} search trial(s), "
        f"{len(cut)} confirmation run(s)" in out.stdout
    )


def test_two_drivers_never_share_a_study(killed_study):
    """While a study runs, starting it again or resuming it is refused; it is never touched."""
    again, resume = killed_study["again"], killed_study["refused_resume"]
    assert again.returncode == 2 and "already exists" in again.stderr
    assert resume.returncode == 2 and "is being run by" in resume.stderr
    finished = [rows for rows in killed_study["before"].values() if len(rows) == 3]
    assert finished  # the first driver alone ran them: each epoch reported once
    assert all([r["epoch"] for r in rows] == [1, 2, 3] for rows in finished), finished


def test_resume_refuses_a_damaged_experiment_state(tmp_path, capsys):
    """A truncated experiment_state file with results beside it: refuse, never start over."""
    from study.run import main
    from study.settings import StudySettings
    from study.studydir import create_study_dir, prepare_data

    settings = StudySettings(name="s", storage=str(tmp_path), data="synthetic", limit_train=16)
    folder = create_study_dir(settings, prepare_data(settings))
    experiment = folder / "multi"
    (experiment / "trial_x").mkdir(parents=True)
    (experiment / "trial_x" / "result.json").write_text('{"epoch": 1}\n')
    (experiment / "tuner.pkl").write_bytes(b"\x80")
    (experiment / "experiment_state-2026.json").write_text('{"trial_data": [')
    listing = sorted(folder.rglob("*"))
    assert main(["--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "experiment state is missing or damaged" in err and "refusing" in err
    assert sorted(folder.rglob("*")) == listing


@pytest.fixture(scope="module")
def start_up_kill(tmp_path_factory) -> tuple[str, dict, list]:
    """A single-fashionrgb study of 2 trials x 2 epochs, no retries, killed after Ray wrote
    tuner.pkl but before its first experiment snapshot, then resumed with the baseline's trial
    raising before epoch 2 (`MTL_STUDY_FAULT`): the resume's output, its trials (as `run`'s)
    and its Optuna trials. One study for two properties: the resume runs the requested study,
    and a crash with no retry allowed errors that trial only."""
    from study.settings import StudySettings
    from study.studydir import create_study_dir, prepare_data

    tmp = tmp_path_factory.mktemp("start-up")
    settings = StudySettings(
        name="w",
        space="single-fashionrgb",
        storage=str(tmp),
        num_samples=2,
        max_epochs=2,
        scheduler="fifo",
        data="synthetic",
        limit_train=64,
        limit_val=32,
        batch_size=32,
        max_failures=0,
        confirm_seeds=0,
    )
    experiment = tmp / "w" / "single-fashionrgb"
    create_study_dir(settings, prepare_data(settings))  # what the runner writes before Ray
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(b"\x80\x04N.")  # all a start-up kill leaves behind
    fault = {"MTL_STUDY_FAULT": f"raise@2:{BASELINE_TRIAL}"}
    out = run_cli("--resume", str(tmp / "w"), cwd=tmp, env=fault)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return (out.stdout, *_outcome(tmp / "w"))


def test_a_kill_in_the_start_up_window_resumes_the_full_study(start_up_kill):
    """Killed after Ray wrote tuner.pkl but before its first experiment snapshot: --resume
    runs the requested study rather than a different, smaller one."""
    out, trials, _ = start_up_kill
    experiment = trials["baseline"][0].parent
    assert len(list(experiment.glob("trial_*/result.json"))) == 2  # the requested trials
    assert sorted(trials) == ["baseline", "other"]
    assert "single-fashionrgb: 2 trials, 1 errored" in out
