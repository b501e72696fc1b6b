"""Training budgets: the plan's step counts for unequal tasks under every scheme (4,000 vs 400
images), the engine training exactly the plan, exact resume under each budget, `--budget` in a
study's settings (an old study.json reads back as the original rule) and in the table."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math

import numpy as np
import pytest
import torch
from fake_study import make_confirmed_study
from helpers import ROOT

from analysis.results import load_study
from analysis.table import comparison
from errors import UserError
from names import BUDGETS, DEFAULT_BUDGET, LEGACY_BUDGET, MULTI_SPACE, SETTINGS_FILE, single_space
from study.checks import settings_from_args
from study.cli import build_parser
from study.settings import StudySettings, trial_constants
from trainables.budget import StepPlan, count_steps, describe, quotas
from trainables.checkpoint import load_checkpoint, save_checkpoint
from trainables.config import TrialConfig
from trainables.data import prepare_tasks
from trainables.engine import run_epoch, setup, step_plan
from trainables.sampling import SCHEMES, TaskSampler

SIZES, BATCH = [4000, 400], 128  # q = 32 and 4 steps per epoch alone
PARAMS = {"coin_p": 0.5, "temperature": 2.0, "loss_weights": None}
CPU = torch.device("cpu")


def plan(scheme: str, budget: str, epochs: int, sizes=SIZES, seed: int = 3) -> StepPlan:
    params = {p.name: PARAMS[p.name] for p in SCHEMES[scheme].params}
    sampler = TaskSampler(scheme, sizes, seed=seed, params=params)
    return StepPlan(sampler, sizes, BATCH, epochs, budget)


def single_runs(budget: str, epochs: int) -> np.ndarray:
    """Each task's steps alone (joint over one task, as a single-task space trains)."""
    return np.array([count_steps(plan("joint", budget, epochs, [n])).sum() for n in SIZES])


def timeline(p: StepPlan) -> list[tuple[int, int]]:
    """(iteration of the run, task) of every task-step of a fresh plan run to its end."""
    out, it = [], 0
    for epoch in range(p.max_epochs):
        for _, steps in p.epoch(epoch):
            out += [(it, t) for step in steps for t in step]
            it += 1
    return out


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("epochs", [3, 5])
def test_total_takes_the_single_task_runs_steps_in_all(scheme, epochs):
    alone = single_runs("total", epochs)
    assert alone.tolist() == [32 * epochs, 4 * epochs]  # E * ceil(n / B) each
    counts = count_steps(plan(scheme, "total", epochs))
    per_epoch = np.cumsum(counts.sum(axis=1))  # cumulative: no drift epoch to epoch
    targets = np.arange(1, epochs + 1) * alone.sum() / epochs
    assert np.all(per_epoch >= targets) and np.all(per_epoch - targets <= 1), per_epoch
    assert abs(counts.sum() - alone.sum()) <= epochs  # ±1 per epoch (here at most 1 in all)


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("epochs", [3, 5])
def test_per_task_gives_each_task_its_single_task_steps_spread_over_the_run(scheme, epochs):
    alone = single_runs("per-task", epochs)
    p = plan(scheme, "per-task", epochs)
    steps = timeline(p)
    counts = count_steps(plan(scheme, "per-task", epochs))
    assert np.all(np.abs(counts.sum(axis=0) - alone) <= epochs), counts
    assert counts.tolist() == [[32, 4]] * epochs  # q_t in every epoch, exactly
    iterations = epochs * p.iters_per_epoch
    for task in range(len(SIZES)):
        at = np.array([it for it, t in steps if t == task])
        last_quarter = np.mean(at >= 0.75 * iterations)
        first_quarter = np.mean(at < 0.25 * iterations)
        assert abs(last_quarter - 0.25) <= 0.05 and abs(first_quarter - 0.25) <= 0.05


def test_per_task_one_task_schemes_coincide_and_joint_groups_the_due_tasks():
    runs = {s: timeline(plan(s, "per-task", 2)) for s in SCHEMES}
    one_task = [s for s in SCHEMES if not SCHEMES[s].shares_steps]
    assert len(one_task) >= 2 and all(runs[s] == runs[one_task[0]] for s in one_task)
    assert sorted(runs["joint"]) == sorted(runs[one_task[0]])  # the same task-steps ...
    joint = plan("joint", "per-task", 2)
    groups = [step for epoch in range(2) for _, steps in joint.epoch(epoch) for step in steps]
    assert len(groups) == 2 * 32 and sum(len(g) == 2 for g in groups) == 2 * 4  # ... fewer steps
    for name in one_task + ["joint"]:  # the README and --help say which coincide
        assert name in describe("per-task")


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_epochs_is_todays_rule_step_for_step(scheme):
    """The loop the engine ran before budgets, on the same sampler: the same iterations, the
    same progress and the same steps (so `epochs` studies reproduce bit for bit)."""
    epochs = 3
    p = plan(scheme, LEGACY_BUDGET, epochs)
    new = [(pr, s) for e in range(epochs) for pr, s in p.epoch(e)]
    old_sampler = plan(scheme, LEGACY_BUDGET, epochs).sampler
    total_iters = epochs * math.ceil(max(SIZES) / BATCH)
    old = []
    for _ in range(total_iters):
        progress = old_sampler.iteration / total_iters
        old.append((progress, old_sampler.next(progress)))
    assert new == old and len(new) == 3 * 32


@pytest.mark.parametrize("budget", list(BUDGETS))
@pytest.mark.parametrize("scheme", ["coin", "annealed", "joint"])
def test_progress_spans_the_runs_own_planned_steps(budget, scheme):
    p = plan(scheme, budget, 4)
    seen = [pr for e in range(4) for pr, _ in p.epoch(e)]
    assert seen[0] == 0 and all(a <= b for a, b in zip(seen, seen[1:]))
    assert seen[-1] < 1 <= p.progress() + 1e-12 and p.progress() <= 1 + 2 / p.planned


@pytest.mark.parametrize("budget", list(BUDGETS))
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_a_plan_resumed_from_the_samplers_state_takes_the_same_steps(budget, scheme):
    straight = count_steps(plan(scheme, budget, 4))
    first = plan(scheme, budget, 4)
    head = [sum(len(s) for _, s in first.epoch(e)) for e in range(2)]
    state = json.loads(json.dumps(first.sampler.state_dict()))  # as a checkpoint keeps it
    resumed = plan(scheme, budget, 4)
    resumed.sampler.load_state_dict(state)
    tail = np.zeros((2, len(SIZES)), dtype=np.int64)
    for e in range(2, 4):
        for _, steps in resumed.epoch(e):
            for step in steps:
                tail[e - 2, list(step)] += 1
    assert head and tail.tolist() == straight[2:].tolist()
    assert resumed.sampler.counts.tolist() == straight.sum(axis=0).tolist()


def test_quotas_are_one_pass_of_each_task():
    assert quotas([4000, 400, 128, 1], 128).tolist() == [32, 4, 1, 1]


# ---------------------------------------------------------------------------------------------
# the engine trains the plan, and resumes it exactly


@pytest.fixture(scope="module")
def unequal():
    """Two tasks of 32 and 8 training images (batch 8: 4 and 1 steps per epoch alone)."""
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend (and bit-exact resume)
    splits = prepare_tasks(
        ["cifar10", "fashionrgb"], "synthetic", ".", limit_train=40, limit_val=10
    )
    tasks = {name: task.search() for name, task in splits.items()}
    small = tasks["fashionrgb"]
    tasks["fashionrgb"] = dataclasses.replace(
        small, train_x=small.train_x[:8], train_y=small.train_y[:8]
    )
    return tasks


def engine_config(budget: str, scheme: str) -> TrialConfig:
    return TrialConfig.from_dict(
        {
            "tasks": ["cifar10", "fashionrgb"],
            "max_epochs": 2,
            "batch_size": 8,
            "scheme": scheme,
            "budget": budget,
            "lr_schedule": "cosine",
        }
    )


def engine_steps(state, tasks, epochs: int) -> list[list[int]]:
    rows = [run_epoch(state, tasks, evaluate=False) for _ in range(epochs)]
    return [[row[f"steps/{t}"] for t in tasks] for row in rows]


CASES = [("total", "coin"), ("per-task", "joint"), ("per-task", "uniform"), ("epochs", "coin")]


@pytest.mark.parametrize("budget,scheme", CASES)
def test_the_engine_trains_exactly_the_plan(unequal, budget, scheme):
    cfg = engine_config(budget, scheme)
    sizes = [len(t.train_y) for t in unequal.values()]
    assert sizes[0] > 2 * sizes[1]
    expected = count_steps(step_plan(cfg, list(unequal), sizes)).tolist()
    state = setup(cfg, unequal, CPU)
    row = run_epoch(state, unequal, evaluate=False)
    got = [[row[f"steps/{t}"] for t in unequal]] + engine_steps(state, unequal, 1)
    assert got == expected
    single = [row[f"single_steps/{t}"] for t in unequal]
    assert single == [2 * math.ceil(n / 8) for n in sizes]  # E * q_t, in every row
    if budget == "total":
        assert sum(map(sum, got)) == sum(single)
    if budget == "per-task":
        assert np.sum(got, axis=0).tolist() == single


@pytest.mark.parametrize("budget,scheme", [("total", "coin"), ("per-task", "joint")])
def test_a_resumed_run_takes_the_same_steps_and_weights(unequal, budget, scheme, tmp_path):
    """1 epoch, its checkpoint payload saved and loaded into a fresh setup, then the rest:
    the steps per task and the weights (bit for bit on CPU) of an uninterrupted run."""
    torch.set_num_threads(1)
    cfg = engine_config(budget, scheme)
    straight = setup(cfg, unequal, CPU)
    expected = engine_steps(straight, unequal, 2)
    first = setup(cfg, unequal, CPU)
    head = engine_steps(first, unequal, 1)
    save_checkpoint(tmp_path, first.state_dict())
    resumed = setup(cfg, unequal, CPU)
    resumed.load_state_dict(load_checkpoint(tmp_path))
    assert head + engine_steps(resumed, unequal, 1) == expected
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]


# ---------------------------------------------------------------------------------------------
# the budget in the trial config and the study's settings


def test_a_trial_config_names_its_budget_and_one_without_ran_under_the_original_rule():
    assert TrialConfig.from_dict({}).budget == LEGACY_BUDGET  # recorded before budgets
    for name in BUDGETS:
        cfg = TrialConfig.from_dict({"budget": name})
        assert TrialConfig.from_dict(cfg.to_dict()).budget == name
    with pytest.raises(UserError, match="budget must be one of"):
        TrialConfig.from_dict({"budget": "half"})


def _settings(*argv: str, tmp_path) -> StudySettings:
    args = ["--storage", str(tmp_path), "--name", "b", "--cpus-per-trial", "1", *argv]
    return settings_from_args(build_parser().parse_args(args))


def test_budget_flag_is_saved_read_back_and_passed_to_every_trial(tmp_path):
    assert _settings(tmp_path=tmp_path).budget == DEFAULT_BUDGET == "total"
    settings = _settings("--budget", "per-task", "--space", "all", tmp_path=tmp_path)
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / SETTINGS_FILE).write_text(settings.to_json())
    back = StudySettings.from_study_dir(folder)
    assert back.budget == "per-task"
    for space in (MULTI_SPACE, single_space("cifar10")):
        assert TrialConfig.from_dict(trial_constants(back, space)).budget == "per-task"
    old = json.loads(settings.to_json())
    del old["budget"]  # a study.json written before budgets
    (folder / SETTINGS_FILE).write_text(json.dumps(old))
    assert StudySettings.from_study_dir(folder).budget == LEGACY_BUDGET


def test_a_bad_budget_exits_2_before_ray(tmp_path):
    from study.run import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["--budget", "half", "--storage", str(tmp_path), "--quick"])
    assert status == 2 and "--budget 'half'" in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1 and not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# the table states the budget and each task's steps against its single-task run's


def test_table_states_the_budget_and_each_tasks_steps_against_its_single_task_run(tmp_path):
    study = make_confirmed_study(tmp_path, seeds=3, top_k=1)  # written before budgets
    table = comparison(load_study(study))
    assert any(f"budget {LEGACY_BUDGET}:" in n for n in table.notes)
    cells = table.cells.set_index(["task", "row"])
    summary = table.summary.set_index(["task", "row"])
    for task in ("cifar10", "fashionrgb"):
        multi = summary.loc[(task, "baseline multi-task"), "steps"]
        single = summary.loc[(task, "baseline single-task"), "steps"]
        ratio = f"{multi / single:.2g}×" if multi < single else f"{multi / single:.1f}×"
        assert cells.loc[(task, "baseline multi-task"), "optimizer steps"] == (
            f"{multi:,.0f} ({ratio} single)"
        )
        assert "×" not in cells.loc[(task, "baseline single-task"), "optimizer steps"]
    for folder in study.glob("confirm-*/trial_*"):  # as recorded now: budget, planned steps
        params = json.loads((folder / "params.json").read_text())
        params["run"]["config"]["budget"] = "total"
        (folder / "params.json").write_text(json.dumps(params))
        rows = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
        for row in rows:
            row.update({"single_steps/cifar10": 10, "single_steps/fashionrgb": 4})
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = comparison(load_study(study))
    assert any("budget total:" in n for n in table.notes)
    assert not any(f"budget {LEGACY_BUDGET}" in n for n in table.notes)
    cells = table.cells.set_index(["task", "row"])
    summary = table.summary.set_index(["task", "row"])
    multi = summary.loc[("fashionrgb", "baseline multi-task"), "steps"]
    cell = cells.loc[("fashionrgb", "baseline multi-task"), "optimizer steps"]
    assert cell == f"{multi:,.0f} ({multi / 4:.1f}× single)"


def test_the_readme_names_every_budget_and_the_schemes_that_coincide():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Training budgets", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{name}`" in section for name in BUDGETS)
    assert all(f"`{s}`" in section for s in SCHEMES if not SCHEMES[s].shares_steps)
    assert "| `--budget` |" in readme
