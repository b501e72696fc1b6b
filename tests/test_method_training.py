"""Multi-task methods wired in: the trial config carries `method` and its parameters, the engine
combines each step over all tasks with the trial's Combiner (ew exactly as the weighted-sum
backward it always was), the method's state is checkpointed and resumes exactly, the `multi`
space suggests a method only where a step trains several tasks, and the command line's
`--methods`, `--compare-methods`, `--method-params` and `--list-methods`."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import optuna
import pytest
import torch
import torch.nn.functional as F
from helpers import SMALL_STUDY, kill_tree, result_rows, run_cli, start_cli, wait_for

import names
from errors import UserError
from names import (
    DEFAULT_METHOD,
    METHOD_KEY,
    METHOD_STEPS,
    METHOD_WEIGHT,
    config_method,
    task_metric,
)
from search_spaces import SPACES, multi, unflatten
from study.checks import settings_from_args
from study.cli import build_parser
from study.run import main
from study.settings import StudySettings, searched_methods, start_points
from trainables.checkpoint import checkpoint_epoch, load_checkpoint, save_checkpoint
from trainables.config import TrialConfig
from trainables.data import augment, normalize, prepare_tasks
from trainables.engine import run_epoch, setup, step_plan, train_epoch
from trainables.methods import METHODS, describe_methods, method_params, step_cost
from trainables.model import autocast
from trainables.optim import lr_factor
from trainables.sampling import SCHEMES

CPU = torch.device("cpu")
TASKS = ["cifar10", "fashionrgb"]


@pytest.fixture(scope="module")
def unequal():
    """Two tasks of 24 and 8 training images (batch 8: 3 and 1 steps per epoch alone)."""
    torch.set_num_threads(1)  # bit-exact comparisons on 2 shared cores
    splits = prepare_tasks(TASKS, "synthetic", ".", limit_train=30, limit_val=10)
    tasks = {name: task.search() for name, task in splits.items()}
    small, big = tasks["fashionrgb"], tasks["cifar10"]
    tasks["fashionrgb"] = dataclasses.replace(
        small, train_x=small.train_x[:8], train_y=small.train_y[:8]
    )
    tasks["cifar10"] = dataclasses.replace(big, train_x=big.train_x[:24], train_y=big.train_y[:24])
    return tasks


def config(**kw) -> TrialConfig:
    base = {"tasks": TASKS, "max_epochs": 2, "batch_size": 8, "scheme": "joint", "budget": "total"}
    return TrialConfig.from_dict({**base, **kw})


def legacy_train_epoch(state, tasks) -> None:
    """The engine's epoch as it was before methods: per step, the losses summed with the
    scheme's loss_weights, one backward (a frozen copy: the reference ew must equal)."""
    cfg, model, opt, dev = state.config, state.model, state.optimizer, state.device
    names_ = list(tasks)
    weights = cfg.scheme_value("loss_weights")
    gen = torch.Generator(dev).manual_seed(cfg.seed * 1_000_003 + state.epoch)
    model.train()
    for progress, drawn in state.plan.epoch(state.epoch):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, progress)
        for step in drawn:
            loss = 0.0
            for i in step:
                task = tasks[names_[i]]
                idx = state.streams[i].next(cfg.batch_size)
                images = augment(task.train_x.index_select(0, idx), gen)
                x = normalize(images, *state.stats[names_[i]], cfg.channels_last)
                y = task.train_y.index_select(0, idx)
                with autocast(cfg.precision, dev):
                    logits = model(x, names_[i])
                task_loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                loss = loss + weights[names_[i]] * task_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    state.epoch += 1


def same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------
# the trial config


def test_method_defaults_to_ew_round_trips_and_an_older_config_reads_as_ew():
    assert DEFAULT_METHOD in METHODS and config().method == DEFAULT_METHOD
    cfg = config(method="cagrad", cagrad_c=0.25)
    out = cfg.to_dict()
    assert out[METHOD_KEY] == "cagrad" and out["cagrad_c"] == 0.25
    assert set(method_params()) <= set(out)  # every method's parameter, flat, defaulted
    assert TrialConfig.from_dict(out) == cfg
    older = {k: v for k, v in out.items() if k != METHOD_KEY and k not in method_params()}
    assert TrialConfig.from_dict(older).method == DEFAULT_METHOD


@pytest.mark.parametrize(
    "values,message",
    [
        ({"method": "nash"}, "unknown method 'nash'"),
        ({"method": "cagrad", "cagrad_c": -0.5}, "cagrad_c must be >= 0"),
        ({"dwa_temperature": 0.0}, "dwa_temperature must be > 0"),
        ({"method": "uw", "tasks": ["cifar10"]}, "combines several tasks"),
        ({"method": "upgrad", "scheme": "coin"}, "scheme coin trains one task per step"),
        ({"method": "uw", "loss_weights": {"cifar10": 2.0, "fashionrgb": 1.0}}, "must be 1"),
    ],
)
def test_a_config_with_a_meaningless_or_invalid_method_is_refused(values, message):
    with pytest.raises(UserError, match=message):
        config(**values)


# ---------------------------------------------------------------------------------------------
# the engine


@pytest.mark.parametrize("budget", ["total", "per-task"])
def test_ew_is_the_old_joint_path_bit_for_bit(unequal, budget):
    """Static weights that are not 1, and (per-task) steps holding one task or both."""
    cfg = config(budget=budget, loss_weights={"cifar10": 1.7, "fashionrgb": 0.6})
    old, new = setup(cfg, unequal, CPU), setup(cfg, unequal, CPU)
    assert new.combiner is None
    for _ in range(2):
        legacy_train_epoch(old, unequal)
        row = run_epoch(new, unequal, evaluate=False)
    assert same_weights(old, new)
    assert row[METHOD_KEY] == DEFAULT_METHOD
    assert [row[task_metric(METHOD_WEIGHT, t)] for t in TASKS] == pytest.approx([1.7, 0.6])


def test_a_jacobian_method_trains_and_records_its_weights(unequal):
    cfg = config(method="upgrad")
    state, fresh = setup(cfg, unequal, CPU), setup(cfg, unequal, CPU)
    row = run_epoch(state, unequal, evaluate=False)
    assert not same_weights(state, fresh)  # it trained
    assert row[METHOD_KEY] == "upgrad" and not row["diverged"]
    assert row[METHOD_STEPS] == row["steps/cifar10"] == row["steps/fashionrgb"] > 0
    weights = [row[task_metric(METHOD_WEIGHT, t)] for t in TASKS]
    assert all(isinstance(w, float) and w > 0 for w in weights)
    assert state.combiner.step == row[METHOD_STEPS]


def test_per_task_combines_only_the_steps_holding_every_task(unequal):
    """Under per-task, joint groups the tasks due in an iteration: the method combines those
    holding both; the rest (cifar10 alone) are plain steps."""
    cfg = config(method="rlw", budget="per-task")
    plan = step_plan(cfg, TASKS, [len(t.train_y) for t in unequal.values()])
    full = sum(len(s) == 2 for _, steps in plan.epoch(0) for s in steps)
    state = setup(cfg, unequal, CPU)
    row = run_epoch(state, unequal, evaluate=False)
    assert 0 < row[METHOD_STEPS] == full < row["steps/cifar10"]
    assert state.combiner.step == full
    weights = [row[task_metric(METHOD_WEIGHT, t)] for t in TASKS]
    assert sum(weights) == pytest.approx(1.0)  # rlw's softmax weights, averaged


def test_uw_log_variances_move_are_checkpointed_and_resume_exactly(unequal, tmp_path):
    cfg = config(method="uw", weight_decay=1e-3)
    straight = setup(cfg, unequal, CPU)
    log_vars = straight.combiner.log_vars
    assert any(log_vars is p for p in straight.optimizer.param_groups[1]["params"])
    assert straight.optimizer.param_groups[1]["weight_decay"] == 0.0
    rows = [train_epoch_and_count(straight, unequal) for _ in range(2)]
    assert not torch.equal(log_vars.detach(), torch.zeros(2))  # they moved
    first = setup(cfg, unequal, CPU)
    head = train_epoch_and_count(first, unequal)
    save_checkpoint(tmp_path, first.state_dict())
    payload = load_checkpoint(tmp_path)
    assert torch.equal(payload[METHOD_KEY]["log_vars"], first.combiner.log_vars.detach())
    resumed = setup(cfg, unequal, CPU)
    resumed.load_state_dict(payload)
    tail = train_epoch_and_count(resumed, unequal)
    assert [head, tail] == rows  # losses, accuracies and weights, exactly
    assert same_weights(straight, resumed)
    assert torch.equal(resumed.combiner.log_vars, straight.combiner.log_vars)
    assert resumed.combiner.log_vars is resumed.optimizer.param_groups[1]["params"][0]


def train_epoch_and_count(state, tasks) -> dict:
    out = train_epoch(state, tasks)
    state.epoch += 1
    return out


def test_dwa_rolls_its_history_every_epoch(unequal):
    state = setup(config(method="dwa", max_epochs=3), unequal, CPU)
    rows = [run_epoch(state, unequal, evaluate=False) for _ in range(3)]
    first = [rows[0][task_metric(METHOD_WEIGHT, t)] for t in TASKS]
    third = [rows[2][task_metric(METHOD_WEIGHT, t)] for t in TASKS]
    assert first == [1.0, 1.0]  # weights 1 for the first two epochs
    assert third != [1.0, 1.0] and sum(third) == pytest.approx(2.0)
    assert len(state.combiner.history) == 2


def test_a_one_task_scheme_records_no_combined_step(unequal):
    row = run_epoch(setup(config(scheme="round_robin"), unequal, CPU), unequal, evaluate=False)
    assert row[METHOD_STEPS] == 0
    assert [row[task_metric(METHOD_WEIGHT, t)] for t in TASKS] == [None, None]


def test_step_cost_is_one_backward_per_task_for_jacobian_methods():
    assert step_cost(DEFAULT_METHOD, 3) == step_cost("uw", 3) == 1.0
    assert step_cost("upgrad", 3) == 3.0 and step_cost("pcgrad", 2) == 2.0
    with pytest.raises(UserError):
        step_cost("nope", 2)


# ---------------------------------------------------------------------------------------------
# the search space

PAIR = ("a", "b")
ALLOWED = ("ew", "uw", "dwa", "upgrad", "cagrad")


def sample(methods=ALLOWED, fixed=None, trials: int = 150) -> list[tuple[dict, dict]]:
    """Trials of a real in-memory Optuna study (random sampler): (params, distributions)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    out = []
    for _ in range(trials):
        trial = study.ask()
        params = multi.define(trial, PAIR, methods, fixed)
        assert set(trial.params) == set(params)  # nothing returned that was not suggested
        out.append((params, dict(trial.distributions)))
        study.tell(trial, 0.5)
    return out


def test_method_is_suggested_only_where_a_step_trains_several_tasks_and_only_allowed_ones():
    seen = set()
    for params, dists in sample():
        shares = SCHEMES[params["scheme"]].shares_steps
        assert (METHOD_KEY in params) == shares
        if shares:
            assert dists[METHOD_KEY].choices == ALLOWED  # registry order, only the allowed
        method = params.get(METHOD_KEY, DEFAULT_METHOD)
        seen.add(method)
        own = {p.name for p in METHODS[method].params}
        assert set(params) & set(method_params()) == own  # only the chosen method's
        for name in own:
            param = method_params()[name]
            assert param.search[0] <= params[name] <= param.search[1]
        weights = {k for k in params if k.startswith("loss_weights/")}
        assert bool(weights) == (params["scheme"] == "joint" and method == DEFAULT_METHOD)
        cfg = TrialConfig.from_dict(
            {"tasks": ["cifar10", "fashionrgb"], **unflatten(rename(params))}
        )
        assert cfg.method == method  # a valid trial that runs the method it names
    assert seen == set(ALLOWED)


def rename(params: dict) -> dict:
    """The space's task names a, b -> the config's tasks."""
    mapping = dict(zip(PAIR, ["cifar10", "fashionrgb"]))
    out = {}
    for key, value in params.items():
        head, sep, tail = key.partition("/")
        out[f"{head}/{mapping[tail]}" if sep else key] = value
    return out


def test_without_methods_the_space_is_todays_and_fixed_parameters_are_not_suggested():
    for _, dists in sample(methods=(DEFAULT_METHOD,), trials=40):
        assert METHOD_KEY not in dists and not set(dists) & set(method_params())
    for params, _ in sample(methods=("ew", "cagrad"), fixed={"cagrad_c": 0.3}, trials=40):
        assert "cagrad_c" not in params


# ---------------------------------------------------------------------------------------------
# the command line


def parse(*argv: str, tmp_path) -> StudySettings:
    args = ["--storage", str(tmp_path), "--name", "m", "--quick", "--cpus-per-trial", "1", *argv]
    return settings_from_args(build_parser().parse_args(args))


def test_flags_are_validated_saved_read_back_and_an_older_study_reads_as_off(tmp_path):
    flags = ["--space", "all", "--num-samples", "4", "--compare-methods", "upgrad,uw"]
    flags += ["--method-params", "dwa_temperature=3", "--methods", "dwa,uw,upgrad,ew"]
    settings = parse(*flags, tmp_path=tmp_path)
    assert settings.compare_methods == ("ew", "upgrad", "uw")  # ew first: the reference
    assert searched_methods(settings) == ("ew", "uw", "dwa", "upgrad")  # registry order
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / names.SETTINGS_FILE).write_text(settings.to_json())
    back = StudySettings.from_study_dir(folder)
    assert back == settings
    old = json.loads(settings.to_json())
    for key in ("methods", "compare_methods", "method_params"):
        del old[key]  # a study.json written before methods
    (folder / names.SETTINGS_FILE).write_text(json.dumps(old))
    older = StudySettings.from_study_dir(folder)
    assert older.methods is older.compare_methods is None
    assert searched_methods(older) == (DEFAULT_METHOD,)


def test_every_compared_method_gets_a_starting_trial_after_the_baseline(tmp_path):
    settings = parse("--compare-methods", "upgrad,cagrad", "--num-samples", "4", tmp_path=tmp_path)
    space = SPACES[names.MULTI_SPACE]
    points = start_points(settings, space)
    assert points[0] == space.baseline
    assert [p[METHOD_KEY] for p in points[1:]] == ["ew", "upgrad", "cagrad"]
    for point in points[1:]:  # each one trial of the space, as the space would suggest it
        trial = optuna.trial.FixedTrial(point)
        options = {"methods": searched_methods(settings), "fixed": {}}
        assert space.define(trial, ("cifar10", "fashionrgb"), **options) == point
        cfg = TrialConfig.from_dict({"tasks": TASKS, **unflatten(point)})
        assert (cfg.scheme, cfg.method) == ("joint", point[METHOD_KEY])
        assert cfg.scheme_value("loss_weights") == {t: 1.0 for t in TASKS}
        assert cfg.method_params["cagrad_c"] == METHODS["cagrad"].params[0].default


BAD = [
    (["--methods", "ew,nash"], "unknown method 'nash'"),
    (["--compare-methods", "ew"], "needs a method besides ew"),
    (["--space", "single-cifar10", "--methods", "upgrad"], "methods combine several tasks"),
    (["--methods", "upgrad", "--compare-methods", "pcgrad"], "lacks ew"),
    (["--methods", "ew,cagrad", "--method-params", "cagrad_c=-1"], "cagrad_c must be >= 0"),
    (["--methods", "ew,upgrad", "--method-params", "cagrad_c=0.2"], "no parameter of the"),
    (["--method-params", "cagrad_c"], "expected KEY=NUMBER"),
    (["--compare-methods", "upgrad,uw,dwa,rlw,pcgrad", "--num-samples", "6"], "fewer than the 7"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_method_flags_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    code = main([*argv, "--quick", "--storage", str(tmp_path / "studies")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_a_method_whose_extra_is_missing_is_refused(tmp_path, capsys, monkeypatch):
    """cagrad's extra may be installed here: pretend its solver is not."""
    monkeypatch.setattr(type(METHODS["cagrad"]), "missing", lambda self: list(self.requires))
    code = main(["--methods", "ew,cagrad", "--quick", "--storage", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "method cagrad needs cvxpy" in err and "mtl-study[cagrad]" in err
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_list_methods_describes_every_method(tmp_path):
    listed = run_cli("--list-methods", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split()[0] for line in rows] == list(METHODS)
    assert "cagrad_c: >= 0, default 0.5, searched in [0.1, 0.9]" in listed.stdout
    assert describe_methods() == listed.stdout.rstrip("\n")


def test_the_search_of_a_study_enqueues_the_starting_trials_and_offers_the_methods(tmp_path):
    """The runner's searcher (no Ray started): its points are `start_points`, and its space
    function suggests from the study's methods."""
    from study.runner import _tune_config

    settings = parse("--compare-methods", "upgrad", tmp_path=tmp_path)
    settings.study_dir.mkdir()  # where the study's Optuna database goes
    space = SPACES[names.MULTI_SPACE]
    searcher = _tune_config(settings, space).search_alg
    assert searcher.points_to_evaluate == start_points(settings, space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        constants = searcher.define(trial)
        assert constants["tasks"] == TASKS and METHOD_KEY not in constants
        if METHOD_KEY in trial.distributions:
            assert trial.distributions[METHOD_KEY].choices == ("ew", "upgrad")
        study.tell(trial, 0.0)
    assert any(METHOD_KEY in t.params for t in study.trials)


# ---------------------------------------------------------------------------------------------
# uw through a kill -9 of a running study (driver and Ray) and --resume

# the baseline, ew's and uw's starting trials (joint; uw's log-variances from 0), 3 epochs each
UW_STUDY = (*SMALL_STUDY, "--num-samples", "3", "--compare-methods", "uw")
# what training decides in a row (not its timing or Ray's bookkeeping): losses, accuracies,
# steps, task weights, score
TRAINED = ("train_loss/", "train_acc/", "loss/", "acc/", "steps/", f"{METHOD_WEIGHT}/", "score")


def _uw_trial(experiment: Path) -> Path | None:
    """The trial folder of `experiment` whose config names uw (None before it started)."""
    for trial in sorted(experiment.glob(f"{names.TRIAL_PREFIX}*")):
        params = trial / "params.json"
        if params.exists() and config_method(json.loads(params.read_text())) == "uw":
            return trial
    return None


def _trained(rows: list[dict]) -> dict[int, dict]:
    """Epoch -> what training decided in it (an epoch run twice: its last report)."""
    return {r["epoch"]: {k: v for k, v in r.items() if k.startswith(TRAINED)} for r in rows}


def _newest_state(trial: Path) -> dict:
    return load_checkpoint(max(trial.glob(names.CHECKPOINT_GLOB), key=checkpoint_epoch))


@pytest.mark.slow
def test_uw_killed_with_sigkill_resumes_to_the_uninterrupted_runs_weights_and_losses(tmp_path):
    """kill -9 of a study while its uw trial is mid-way; --resume continues that trial from its
    checkpoint and it ends with the losses, accuracies, steps and task weights of every epoch,
    the log-variances and the model weights of the same trial run uninterrupted, bit for bit."""
    flags = [*UW_STUDY, "--storage", str(tmp_path)]
    straight = run_cli(*flags, "--name", "u", cwd=tmp_path)
    assert straight.returncode == 0, straight.stdout[-2000:] + straight.stderr[-2000:]
    killed = tmp_path / "k" / names.MULTI_SPACE
    with open(tmp_path / "killed.log", "w") as log:
        proc = start_cli(*flags, "--name", "k", cwd=tmp_path, stdout=log, stderr=log)
        # at 2 of 3 epochs: Ray's own record of the trial has a checkpoint by then
        wait_for(lambda: len(result_rows(_uw_trial(killed) or tmp_path)) == 2, proc)
        kill_tree(proc)
    cut = len(result_rows(_uw_trial(killed)))
    resumed = run_cli("--resume", str(tmp_path / "k"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    u, k = _uw_trial(tmp_path / "u" / names.MULTI_SPACE), _uw_trial(killed)
    rows = result_rows(k)
    assert [r["epoch"] for r in rows][:cut] == list(range(1, cut + 1))  # before the kill
    after = rows[cut:]  # in a new process, from a checkpoint: not from epoch 0
    assert after and after[0]["pid"] != rows[0]["pid"] and after[0]["epoch"] > 1, rows
    assert not any(r["restarted"] for r in rows), rows
    assert _trained(rows) == _trained(result_rows(u)) and sorted(_trained(rows)) == [1, 2, 3]
    assert rows[-1][task_metric(METHOD_WEIGHT, TASKS[0])] != 1.0  # uw's weights moved off 1
    ends = [_newest_state(trial) for trial in (u, k)]
    assert ends[0]["epoch"] == ends[1]["epoch"] == 3
    assert not torch.equal(ends[1][METHOD_KEY]["log_vars"], torch.zeros(len(TASKS)))
    assert torch.equal(ends[0][METHOD_KEY]["log_vars"], ends[1][METHOD_KEY]["log_vars"])
    assert ends[0]["model"].keys() == ends[1]["model"].keys()
    assert all(torch.equal(ends[0]["model"][n], ends[1]["model"][n]) for n in ends[0]["model"])
