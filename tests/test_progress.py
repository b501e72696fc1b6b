"""What a running study tells its user: the plan block, the progress lines and their ETA, and a
quiet, honest Ctrl-C (the last under a pseudo-terminal, as a user at a terminal lives it)."""

from __future__ import annotations

import itertools
import math
import pickle
import random
import re
from pathlib import Path

import pytest
from helpers import REPORT_TRIAL_ROWS

from names import BUDGETS, LEGACY_BUDGET
from study import progress
from study.checks import settings_from_args
from study.cli import build_parser
from study.progress import (
    Stage,
    StudyReporter,
    concurrent_slots,
    count_trials,
    epochs_left,
    eta_seconds,
    plan_text,
    study_eta,
)
from study.settings import QUICK

pytest_plugins = ["interrupted_study", "real_study"]

# ---------------------------------------------------------------------------------------------
# the ETA


def test_no_eta_before_an_epoch_is_timed():
    assert eta_seconds(0, 10, 0.0, 2) is None
    assert eta_seconds(0, 10, 5.0, 2) is None
    assert eta_seconds(3, 10, 0.0, 2) is None
    assert study_eta(None, 2.0, 1.0, [Stage("x", 2, 2, 1.0)], 2) is None


def test_eta_grows_with_the_work_left_and_shrinks_with_slots():
    rng = random.Random(0)
    for _ in range(200):
        done, seconds = rng.randint(1, 50), rng.uniform(0.1, 500)
        left, more, slots = rng.randint(0, 100), rng.randint(1, 50), rng.randint(1, 8)
        eta = eta_seconds(done, left, seconds, slots)
        assert eta is not None and eta >= 0
        assert eta_seconds(done, left + more, seconds, slots) > eta or left + more == 0
        assert eta_seconds(done, left, seconds, slots + 1) <= eta
        assert eta_seconds(done, left, seconds * 2, slots) == pytest.approx(2 * eta)
    assert eta_seconds(4, 0, 10.0, 2) == 0  # nothing left


def test_study_eta_adds_every_later_stage_at_the_measured_pace():
    later = [Stage("b", 3, 2, 1.0), Stage("confirm-a", 2, 2, 2.0)]
    assert study_eta(30.0, 5.0, 1.0, [], 2) == 30.0
    whole = study_eta(30.0, 5.0, 1.0, later, 2)
    assert whole > study_eta(30.0, 5.0, 1.0, later[:1], 2) > 30.0
    # a stage twice as costly per epoch takes twice as long; more slots, less time
    assert study_eta(0.0, 5.0, 1.0, [Stage("c", 2, 2, 2.0)], 2) == pytest.approx(
        2 * study_eta(0.0, 5.0, 1.0, [Stage("c", 2, 2, 1.0)], 2)
    )
    assert study_eta(30.0, 5.0, 1.0, later, 4) <= whole


def test_counts_and_epochs_left():
    states = [("TERMINATED", 3), ("TERMINATED", 1), ("ERROR", 2), ("RUNNING", 2), ("PENDING", 0)]
    counts = count_trials(states, total=7, max_epochs=3)
    assert (counts.done, counts.stopped_early, counts.errored) == (1, 1, 1)
    assert (counts.running, counts.pending) == (1, 1 + 2)  # two trials not created yet
    assert counts.text(asha=False) == "1 done, 1 running, 3 pending, 1 stopped early, 1 errored"
    assert count_trials([("RUNNING", 1)], 1, 3).text(asha=True) == "1 running"  # no zeros
    assert (
        counts.done + counts.running + counts.pending + counts.stopped_early + counts.errored == 7
    )
    assert epochs_left(states, total=7, max_epochs=3) == 1 + 3 + 2 * 3
    assert epochs_left([("TERMINATED", 3)] * 4, total=4, max_epochs=3) == 0
    # every reported epoch lowers the work left by one
    for e in range(3):
        assert epochs_left([("RUNNING", e + 1)], 1, 3) == epochs_left([("RUNNING", e)], 1, 3) - 1


def test_concurrent_slots():
    for cpus, share, cap in itertools.product([1, 2, 16], [0.5, 1, 3], [None, 1, 4]):
        slots = concurrent_slots(share, 0.0, cap, cpus, 0)
        assert slots >= 1 and (cap is None or slots <= cap)
        assert slots == max(1, min(int(cpus // share), cap or 10**9))
    assert concurrent_slots(1, 0.25, None, 16, 1) == 4  # four trials per GPU
    assert concurrent_slots(0.5, 0.5, None, 4, 1) == 2  # two per GPU, though CPUs fit 8


# ---------------------------------------------------------------------------------------------
# the plan block


def _settings(*argv: str):
    return settings_from_args(build_parser().parse_args(["--quick", *argv]))


def _tasks(settings) -> dict:
    from study.studydir import prepare_data

    data = prepare_data(settings)
    return {t.name: t.describe() for space in data.values() for t in space.values()}


def test_plan_names_every_space_the_data_and_the_resources(tmp_path):
    settings = _settings("--space", "all", "--storage", str(tmp_path), "--limit-train", "64")
    tasks = _tasks(settings)
    plan = plan_text(settings, tasks, slots=2)
    assert plan.splitlines()[0] == f"Study {settings.study_dir}"
    for space in ("single-cifar10", "single-fashionrgb", "multi"):
        assert space in plan
    assert f"{QUICK['num_samples']} trials x up to {QUICK['max_epochs']} epochs" in plan
    assert "ASHA" in plan
    for name, t in tasks.items():
        assert f"{name} (SYNTHETIC): {t['train_size']:,} train / {t['val_size']:,} validation / "
        assert f"{t['test_size']:,} test" in plan
    # --quick: baseline and top 1, 2 seeds each, scored on test
    assert "2 runs (baseline, top 1) x 2 seeds per space" in plan and "on test" in plan
    assert "1 CPU per trial, 2 trials at once" in plan
    off = _settings("--storage", str(tmp_path), "--confirm-seeds", "0", "--scheduler", "fifo")
    plan = plan_text(off, tasks, slots=None, resumed=True)
    assert plan.startswith("Resuming ") and "confirmation: off" in plan and "FIFO" in plan
    assert "as many at once as the cluster allows" in plan


def test_stages_follow_the_running_order(tmp_path):
    settings = _settings("--space", "all", "--storage", str(tmp_path))
    tasks = {
        n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in ("cifar10", "fashionrgb")
    }
    stages = progress.study_stages(settings, tasks)
    assert [s.name for s in stages] == [
        "single-cifar10",
        "single-fashionrgb",
        "multi",
        "confirm-single-cifar10",
        "confirm-single-fashionrgb",
        "confirm-multi",
    ]
    assert stages[2].cost == 2 * stages[0].cost  # `total`: both tasks' single-task steps
    assert stages[0].cost == math.ceil(100 / settings.batch_size)  # task-steps per epoch
    # train + validation; 2 runs x 2 seeds
    assert stages[3].cost == math.ceil(110 / settings.batch_size) and stages[3].trials == 4


def test_stages_count_the_methods_step_cost_and_the_compared_methods_runs(tmp_path):
    from trainables.methods import METHODS, step_cost

    tasks = {
        n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in ("cifar10", "fashionrgb")
    }
    common = ("--space", "all", "--storage", str(tmp_path), "--num-samples", "4")
    plain = progress.study_stages(_settings(*common), tasks)
    jacobian = next(m.name for m in METHODS.values() if m.jacobian)
    weighting = next(m.name for m in METHODS.values() if not m.jacobian and m.name != "ew")
    compare = _settings(*common, "--compare-methods", f"{jacobian},{weighting}")
    stages = {s.name: s for s in progress.study_stages(compare, tasks)}
    before = {s.name: s for s in plain}
    # a single-task space combines nothing: unchanged
    assert stages["single-cifar10"] == before["single-cifar10"]
    assert stages["confirm-single-cifar10"] == before["confirm-single-cifar10"]
    # the multi-task stages cost the mean of their methods' step costs (ew, jacobian, weighting)
    factor = (1 + step_cost(jacobian, 2) + 1) / 3
    assert factor > 1 and stages["multi"].cost == pytest.approx(before["multi"].cost * factor)
    assert stages["confirm-multi"].cost == pytest.approx(before["confirm-multi"].cost * factor)
    # and the confirmation retrains each compared method's best configuration, seed for seed
    extra = len(compare.compare_methods) * compare.confirm_seeds
    assert stages["confirm-multi"].trials == before["confirm-multi"].trials + extra


@pytest.mark.parametrize("budget", BUDGETS)
def test_an_epochs_cost_is_the_task_steps_its_budget_plans(budget):
    sizes, batch = [4000, 400], 128  # 32 and 4 steps per single-task epoch
    for scheme, per_iteration in (("joint", 2), ("coin", None)):
        cost = progress.epoch_cost(sizes, batch, budget, {"scheme": scheme})
        if budget != LEGACY_BUDGET:
            assert cost == 32 + 4  # the single-task runs' steps together, whatever the scheme
        elif per_iteration:
            assert cost == 32 * per_iteration  # 32 iterations, both tasks in each
        else:  # a coin per task per iteration: about one task-step per iteration
            assert 0.5 * 32 < cost < 1.5 * 32
    assert progress.epoch_cost([400], batch, budget, {}) == 4  # one task: its own steps


# ---------------------------------------------------------------------------------------------
# the reporter, over Ray's own Trial objects


def _trial(trial_id: str, status: str, epochs: int = 0, score: float | None = None):
    from ray.tune.experiment import Trial

    trial = Trial("__fake", config={}, trial_id=trial_id, stub=True)
    if epochs:
        key = "test_score" if score is not None and trial_id.startswith("c") else "score"
        trial.update_last_result(
            {"training_iteration": epochs, "time_total_s": 2.0 * epochs, key: score}
        )
    trial.set_status(status)
    return trial


def test_reporter_lines(tmp_path):
    settings = _settings("--space", "all", "--storage", str(tmp_path), "--num-samples", "4")
    tasks = {
        n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in ("cifar10", "fashionrgb")
    }
    progress.watch(settings, tasks, slots=2)
    reporter = StudyReporter("single-fashionrgb")
    reporter.setup(total_samples=4)
    pending = [_trial("a1", "PENDING"), _trial("a2", "PENDING")]
    lines = reporter.lines(pending, done=False)
    assert str(settings.study_dir / "single-fashionrgb") in lines[0]
    assert "ETA after the first epochs" in lines[-1]
    trials = [
        _trial("a1", "TERMINATED", 2, 0.4),
        _trial("a2", "TERMINATED", 1, 0.2),  # stopped early by ASHA (max 2 epochs)
        _trial("a3", "RUNNING", 1, 0.5),
        _trial("a4", "ERROR", 1, 0.1),
    ]
    text = "\n".join(reporter.lines(trials, done=False))
    assert "1 done, 1 running, 1 stopped early (ASHA), 1 errored" in text
    assert "best validation score 50.00% (trial_a3)" in text
    eta = re.search(r"ETA single-fashionrgb at most (\S+), study about (\S+)", text)
    assert eta, text
    assert (
        f"trial_a4 errored: see {settings.study_dir}/single-fashionrgb/trial_a4/error.txt" in text
    )
    assert "trial_a4 errored" not in "\n".join(reporter.lines(trials, done=False))  # once
    confirm = StudyReporter("confirm-multi", confirm=True)
    confirm.setup(total_samples=4)
    text = "\n".join(confirm.lines([_trial("c1", "TERMINATED", 2, 0.3)], done=False))
    assert "runs 1/" in text and "ETA confirm-multi" in text
    assert "1 of 4 runs scored on test" in text and "best" not in text  # no best run on test
    assert "study about" not in text  # the last stage: nothing after it


def test_reporter_pickles_its_name_only_and_reads_the_live_study(tmp_path):
    """Ray pickles the reporter into tuner.pkl; a resumed experiment gets that copy back."""
    old = _settings("--storage", str(tmp_path / "old"), "--name", "s")
    tasks = {
        n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in ("cifar10", "fashionrgb")
    }
    progress.watch(old, tasks, slots=2)
    copy = pickle.loads(pickle.dumps(StudyReporter("multi")))
    moved = _settings("--storage", str(tmp_path / "new"), "--name", "s")
    progress.watch(moved, tasks, slots=2)
    copy.setup(total_samples=6)
    assert str(moved.study_dir / "multi") in copy.lines([_trial("a", "PENDING")], done=False)[0]


def test_the_final_line_is_silent_on_an_interrupted_experiment(tmp_path):
    settings = _settings("--storage", str(tmp_path), "--num-samples", "2")
    progress.watch(
        settings,
        {n: {"train_size": 1, "val_size": 1, "test_size": 1} for n in ("cifar10", "fashionrgb")},
        slots=2,
    )
    reporter = StudyReporter("multi")
    reporter.setup(total_samples=2)
    assert (
        reporter.lines([_trial("a", "TERMINATED", 2, 0.3), _trial("b", "RUNNING", 1)], True) == []
    )
    done = reporter.lines([_trial("a", "TERMINATED", 2, 0.3), _trial("b", "TERMINATED", 2)], True)
    assert len(done) == 1 and done[0].startswith("[multi] finished in ") and "2 done" in done[0]


# ---------------------------------------------------------------------------------------------
# at a terminal: a study interrupted with Ctrl-C, then resumed (the session's
# `interrupted_study`, whose files test_study checks)

NOISE = ("Fatal Python error", "Tuner.restore")


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(n in line for n in NOISE)]


def _assert_progress(text: str, folder: Path, spaces: tuple[str, ...]) -> None:
    for space in spaces:
        block = f"[{space}] search, "
        assert f"{block}" in text and f": {folder / space}" in text, (space, text[-3000:])
        assert re.search(rf"ETA {space} \d+(s|m\d\ds)", text), (space, text[-3000:])


@pytest.mark.slow
def test_a_study_at_a_terminal_interrupted_and_resumed(interrupted_study):
    """Plan, progress with an ETA, the study folder; Ctrl-C: one line on what was saved, the
    resume command, exit 130, no crash noise; a second Ctrl-C exits at once; the printed
    command resumes to completion; every progress.csv then loads."""
    import pandas as pd

    folder, out = interrupted_study["dir"], interrupted_study["first_out"]
    trials = interrupted_study["trials"]
    assert interrupted_study["first_status"] == 130, out[-3000:]
    assert not _noise(out)
    assert f"Study {folder}" in out
    assert f"cifar10 (SYNTHETIC): {interrupted_study['limit_train']} train / 64 validation" in out
    assert f"{trials} trials x up to 3 epochs per space (FIFO" in out
    assert "resources:    1 CPU per trial" in out
    _assert_progress(out, folder, ("multi",))
    tail = out[out.index("stopping: saving") :].splitlines()
    ended = rf"interrupted: multi: [1-{trials - 1}] of {trials} trials ended"
    assert re.match(ended, tail[1]), tail
    assert len(tail) == 3, tail  # what was saved, then the resume command, nothing else
    resume = interrupted_study["resume_command"]
    assert resume and resume.split()[-1] == str(folder), out[-2000:]

    # resumed, then two Ctrl-C at once: it exits at once, still 130
    assert interrupted_study["again_status"] == 130, interrupted_study["again_out"][-3000:]
    assert interrupted_study["again_seconds"] < 15
    assert "interrupted twice: exiting now" in interrupted_study["again_out"]

    text = interrupted_study["out"]
    assert interrupted_study["status"] == 0, text[-3000:]
    assert not _noise(text)
    assert "[multi] finished in " in text and "table:   python -m analysis.table" in text
    csvs = list((folder / "multi").glob("trial_*/progress.csv"))
    assert len(csvs) == trials
    for csv in csvs:
        table = pd.read_csv(csv)  # one header, the same fields in every row
        assert table["epoch"].max() == 3 and not table["score"].isna().any(), csv


@pytest.mark.slow
def test_a_report_watches_a_running_study(interrupted_study):
    """`analysis.report --watch` beside the study: the report is rewritten as trials appear,
    reloads itself while the study runs, and the watcher ends by itself with a final page once
    the study's lock is released (at the Ctrl-C)."""
    watched = interrupted_study["watched"]
    log, pages = watched["log"], watched["pages"]
    assert watched["status"] == 0 and "Traceback" not in log, log[-3000:]
    assert "the study is not running: report complete" in log, log[-3000:]
    assert not watched["torn"], watched["torn"]  # never half a file (temp file + rename)
    assert len(set(pages)) >= 2 and pages == sorted(pages), (pages, log[-2000:])
    final = watched["final"]
    assert "location.reload" not in final  # every trial folder of the interrupted study
    assert int(REPORT_TRIAL_ROWS.search(final).group(1)) == len(interrupted_study["before"])


@pytest.mark.slow
def test_every_space_of_all_shows_progress_with_an_eta(real_study):
    """An `all` study (the analysis tests' real one: a single-task space per task, then multi)
    prints a progress block with an ETA for every space, each naming its folder."""
    from real_study import REAL_STUDY_LOG, REAL_TASKS  # a plugin: imported once pytest has it

    out = (real_study.parent / REAL_STUDY_LOG).read_text()
    assert not _noise(out)
    spaces = tuple(f"single-{t}" for t in REAL_TASKS) + ("multi",)
    assert f"spaces:       {', '.join(spaces)} (one after another)" in out
    _assert_progress(out, real_study, spaces)
