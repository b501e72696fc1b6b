"""Training and evaluation of one trial: plain functions, no Ray, no files, no globals.

Read top to bottom: `BatchStream` (a task's endlessly reshuffled batches), `setup` (model,
optimizer, sampler for a config; the optimizer and the LR schedule are `trainables.optim`'s
registered ones), `train_epoch`, `evaluate` and `evaluation_metrics` (on each task's eval
split: validation in a search trial, test in a confirmation run), and `run_epoch`, which is all
the Ray adapter calls.

Which steps an epoch takes is the trial's budget's (`trainables.budget.StepPlan`: `total`,
`per-task` or `epochs`) and its task-sampling scheme's; `train_epoch` trains exactly what the plan
yields. All randomness derives from (seed, epoch) or (seed, iteration), so a trial resumed from a
checkpoint continues exactly as if it had not stopped.

How a step that trains several tasks becomes an update is the trial's method's
(`trainables.methods`, `config.method`). Under `ew` (the default) every step is one backward of
the losses summed with the scheme's `loss_weights`, exactly as before methods existed. Any other
method combines each step that holds all the trial's tasks (every `joint` step; under the
`per-task` budget, the iterations where every task is due) through its `Combiner`, which keeps
its own state in the checkpoint; a step holding fewer tasks (per-task's remainder) takes the
plain sum (one task: its own backward). Each epoch's row records the mean weight the method gave
each task over its combined steps (`names.METHOD_WEIGHT`) and how many there were.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from names import (
    ACC,
    CONFUSION,
    DEFAULT_METHOD,
    EPOCH,
    EVAL_METRICS,
    EVAL_SPLIT,
    LOSS,
    METHOD_KEY,
    METHOD_STEPS,
    METHOD_WEIGHT,
    SCORE,
    SINGLE_STEPS,
    STEP_SHARE,
    STEPS,
    TEST,
    TEST_SCORE,
    TRAIN_ACC,
    TRAIN_LOSS,
    VALIDATION,
    eval_metric,
    task_metric,
)
from trainables import optim
from trainables.budget import StepPlan
from trainables.config import TrialConfig
from trainables.data import TaskData, augment, normalize
from trainables.model import Classifier, MultiTaskNet, autocast, build_model
from trainables.optim import lr_factor
from trainables.sampling import LOSS_WEIGHTS, SCHEMES, TaskSampler

if TYPE_CHECKING:
    from trainables.methods import Combiner

EVAL_BATCH = 512  # images per evaluation batch
SCORE_KEYS = {VALIDATION: SCORE, TEST: TEST_SCORE}  # an eval split's mean accuracy key


class BatchStream:
    """Batches of one task's training indices: a fresh permutation per pass, from (seed, task,
    pass); a batch that crosses the end of a pass continues into the next. State: pass, pos.

    Each pass's permutation is drawn on the CPU (the same on every device) and copied to
    `device` once, so a batch is a slice of a device tensor: no host-to-device copy per step.
    """

    def __init__(
        self, size: int, seed: int, task_index: int, device: torch.device | str = "cpu"
    ) -> None:
        self.size, self.seed, self.task_index = size, seed, task_index
        self.device = torch.device(device)
        self.pass_, self.pos = 0, 0
        self._cached: tuple[int, torch.Tensor] = (-1, torch.empty(0, dtype=torch.long))

    def _perm(self) -> torch.Tensor:
        if self._cached[0] != self.pass_:  # one permutation per pass, not per batch
            rng = np.random.default_rng([self.seed, 1 + self.task_index, self.pass_])
            perm = torch.from_numpy(rng.permutation(self.size)).to(self.device)
            self._cached = (self.pass_, perm)
        return self._cached[1]

    def next(self, batch: int) -> torch.Tensor:
        parts, need = [], batch
        while need:
            take = min(need, self.size - self.pos)
            parts.append(self._perm()[self.pos : self.pos + take])
            self.pos += take
            need -= take
            if self.pos == self.size:
                self.pass_, self.pos = self.pass_ + 1, 0
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict[str, int]:
        return {"pass": self.pass_, "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.pass_, self.pos = int(state["pass"]), int(state["pos"])


@dataclasses.dataclass
class TrialState:
    """Everything that changes while a trial trains; `state_dict` is its checkpoint."""

    config: TrialConfig
    device: torch.device
    model: MultiTaskNet
    optimizer: torch.optim.Optimizer
    sampler: TaskSampler
    plan: StepPlan  # the budget's steps, drawn from `sampler` (whose state is all it keeps)
    streams: list[BatchStream]
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]]  # per-task normalization mean, std
    epoch: int = 0  # epochs completed
    combiner: Combiner | None = None  # the trial's method; None: ew (the weighted-sum backward)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint payload; `stats` (recomputed from the data on resume) is there so the
        model can be used without its training data (`trainables.checkpoint.load_model`)."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "streams": [s.state_dict() for s in self.streams],
            "config": self.config.to_dict(),
            "stats": {task: list(stats) for task, stats in self.stats.items()},
            METHOD_KEY: None if self.combiner is None else self.combiner.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        for stream, s in zip(self.streams, state["streams"]):
            stream.load_state_dict(s)
        if self.combiner is not None:  # in place: the optimizer holds its parameters (uw)
            self.combiner.load_state_dict(state[METHOD_KEY])
        self.epoch = int(state["epoch"])


def build_optimizer(
    config: TrialConfig,
    model: torch.nn.Module,
    device: torch.device,
    extra: list[torch.nn.Parameter] | None = None,
) -> torch.optim.Optimizer:
    """The trial's optimizer (`trainables.optim.OPTIMIZERS`) over the model and, in a second
    group without weight decay, a method's own parameters (`extra`: uw's log-variances)."""
    params: Any = model.parameters()
    if extra:
        params = [{"params": list(params)}, {"params": extra, "weight_decay": 0.0}]
    return optim.build_optimizer(config.optimizer, params, config)


def setup(config: TrialConfig, tasks: Mapping[str, TaskData], device: torch.device) -> TrialState:
    """Fresh trial state; `tasks` (already on `device`) in the order of `config.tasks`."""
    torch.manual_seed(config.seed)
    names = list(tasks)
    classes = {n: t.num_classes for n, t in tasks.items()}
    model = build_model(classes, device, config.channels_last, config.stem)
    if config.compile != "off":  # in place: parameters and state_dict keys stay the model's own
        model.backbone.compile(mode=config.compile, dynamic=False)
    sizes = [len(t.train_y) for t in tasks.values()]
    plan = step_plan(config, names, sizes)
    combiner = make_combiner(config, len(names), device)
    extra = combiner.parameters() if combiner is not None else None
    return TrialState(
        config=config,
        device=device,
        model=model,
        optimizer=build_optimizer(config, model, device, extra),
        combiner=combiner,
        sampler=plan.sampler,
        plan=plan,
        streams=[BatchStream(n, config.seed, i, device) for i, n in enumerate(sizes)],
        stats={n: tuple(s.to(device) for s in tasks[n].channel_stats()) for n in names},
    )


def make_combiner(config: TrialConfig, n_tasks: int, device: torch.device) -> Combiner | None:
    """The trial's method for its `n_tasks` tasks; None for ew, which the engine runs as the
    weighted-sum backward it always did (bit for bit)."""
    if config.method == DEFAULT_METHOD:
        return None
    from trainables.methods import JacobianCombiner, get_method

    method = get_method(config.method)
    own = {p.name: config.method_params[p.name] for p in method.params}
    combiner = method.create(n_tasks, own, config.seed, device)
    if isinstance(combiner, JacobianCombiner) and config.compile != "off":
        combiner.parallel_chunk_size = 1  # vmap cannot run through a compiled backbone
    return combiner


def step_plan(config: TrialConfig, names: list[str], sizes: list[int]) -> StepPlan:
    """A fresh sampler and the budget's plan over it, for tasks `names` of training-set
    `sizes` (in that order): no model needed, so tests can count a trial's steps."""
    params = _sampler_params(config, names)
    sampler = TaskSampler(config.scheme, sizes, seed=config.seed, params=params)
    return StepPlan(sampler, sizes, config.batch_size, config.max_epochs, config.budget)


def _sampler_params(config: TrialConfig, names: list[str]) -> dict[str, Any]:
    """What the trial's scheme reads, from the config: each parameter it declares, a per-task one
    as an array in the order of `names` (the order the sampler indexes tasks in)."""
    out: dict[str, Any] = {}
    for param in SCHEMES[config.scheme].params:
        value = config.scheme_value(param.name)
        out[param.name] = np.array([value[n] for n in names]) if param.per_task else value
    return out


def _new_graph_step(config: TrialConfig, device: torch.device) -> None:
    """Tell CUDA-graph trees a new step begins (its earlier outputs may then be overwritten)."""
    if device.type == "cuda" and config.compile in ("reduce-overhead", "max-autotune"):
        torch.compiler.cudagraph_mark_step_begin()


@dataclasses.dataclass
class EpochTally:
    """What an epoch accumulates, on the device (no sync per step): per task the summed loss,
    correct predictions, images and steps; over the combined steps (all tasks in one), the
    weights the method returned (`weight_sum` over `weighed` steps; ew's static weights count
    in `static_steps`)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    weight_sum: torch.Tensor
    static: list[float]  # the scheme's loss_weights, in task order
    seen: list[int]
    steps: list[int]
    combined: int = 0
    weighed: int = 0
    static_steps: int = 0

    @classmethod
    def zeros(cls, static: list[float], device: torch.device) -> EpochTally:
        n = len(static)
        z = functools.partial(torch.zeros, n, device=device)
        return cls(z(), z(), z(dtype=torch.float64), static, [0] * n, [0] * n)

    def mean_weights(self) -> list[float] | None:
        """Each task's mean weight over the steps that returned weights; None without any."""
        if not self.weighed + self.static_steps:
            return None
        total = self.weight_sum.cpu() + self.static_steps * torch.tensor(self.static).double()
        return (total / (self.weighed + self.static_steps)).tolist()

    def result(self, names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"diverged": not bool(torch.isfinite(self.loss_sum).all())}
        out[METHOD_STEPS] = self.combined
        weights = self.mean_weights()
        for i, name in enumerate(names):
            n = max(self.seen[i], 1)
            out[name] = {
                LOSS: float(self.loss_sum[i]) / n,
                ACC: float(self.correct[i]) / n,
                STEPS: self.steps[i],
                METHOD_WEIGHT: None if weights is None else weights[i],
            }
        return out


def _task_loss(
    state: TrialState, task: TaskData, name: str, i: int, gen: torch.Generator, tally: EpochTally
) -> torch.Tensor:
    """Task `i`'s loss on its next batch (augmented with `gen`), counted in `tally`."""
    cfg = state.config
    idx = state.streams[i].next(cfg.batch_size)
    images = augment(task.train_x.index_select(0, idx), gen)
    x = normalize(images, *state.stats[name], cfg.channels_last)
    y = task.train_y.index_select(0, idx)
    with autocast(cfg.precision, state.device):
        logits = state.model(x, name)
    task_loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    tally.loss_sum[i] += task_loss.detach() * len(y)
    tally.correct[i] += (logits.argmax(1) == y).sum()
    tally.seen[i] += len(y)
    tally.steps[i] += 1
    return task_loss


def _backward(
    state: TrialState, step: tuple[int, ...], losses: list[torch.Tensor], tally: EpochTally
) -> None:
    """The step's gradients. A step over all tasks (2 or more) is combined by the method, ew's
    as the weighted sum with the scheme's static weights (as ever); any other step is that
    weighted sum (a non-ew method's weights are all 1: the config allows nothing else)."""
    combined = len(step) == len(tally.static) > 1
    tally.combined += combined
    if state.combiner is None or not combined:
        loss = 0.0
        for i, task_loss in zip(step, losses):
            loss = loss + tally.static[i] * task_loss
        loss.backward()
        tally.static_steps += combined
        return
    names = state.config.task_names
    heads = [p for i in step for p in state.model.heads[names[i]].parameters()]
    shared = list(state.model.backbone.parameters())
    weights = state.combiner.backward(losses, shared=shared, heads=heads)
    if weights is not None:
        tally.weight_sum += weights.to(tally.weight_sum)
        tally.weighed += 1


def train_epoch(state: TrialState, tasks: Mapping[str, TaskData]) -> dict[str, Any]:
    """One epoch; returns per-task train loss/accuracy, steps taken and the method's mean
    weight, the combined steps (`names.METHOD_STEPS`), and `diverged`."""
    cfg, opt, dev = state.config, state.optimizer, state.device
    names = list(tasks)
    static = cfg.scheme_value(LOSS_WEIGHTS)  # {task: weight}, 1 where none is given
    gen = torch.Generator(dev).manual_seed(cfg.seed * 1_000_003 + state.epoch)  # augmentation
    tally = EpochTally.zeros([static[n] for n in names], dev)
    state.model.train()
    for it, (progress, drawn) in enumerate(state.plan.epoch(state.epoch)):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, progress)
        for step in drawn:
            _new_graph_step(cfg, dev)
            losses = [_task_loss(state, tasks[names[i]], names[i], i, gen, tally) for i in step]
            opt.zero_grad(set_to_none=True)
            _backward(state, step, losses, tally)
            opt.step()
        if it % 8 == 7 and not torch.isfinite(tally.loss_sum).all():  # a rare sync, to stop early
            break
    if state.combiner is not None:
        state.combiner.end_epoch()
    return tally.result(names)


@torch.inference_mode()
def evaluate(state: TrialState, tasks: Mapping[str, TaskData]) -> dict[str, dict[str, Any]]:
    """Per task, on its eval split: mean loss, top-1 accuracy and the confusion matrix (rows =
    true class). Scored through `Classifier`, exactly as a model loaded from a checkpoint is."""
    classifier = Classifier(state.model, state.stats, state.config).eval()
    out = {}
    for name, task in tasks.items():
        k = task.num_classes
        loss_sum = torch.zeros((), device=state.device)
        confusion = torch.zeros(k * k, dtype=torch.long, device=state.device)
        for start in range(0, len(task.eval_y), EVAL_BATCH):
            y = task.eval_y[start : start + EVAL_BATCH]
            _new_graph_step(state.config, state.device)
            logits = classifier(task.eval_x[start : start + EVAL_BATCH], name)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            confusion += torch.bincount(y * k + logits.argmax(1), minlength=k * k)
        matrix = confusion.view(k, k).cpu()
        out[name] = {
            LOSS: float(loss_sum) / len(task.eval_y),
            ACC: float(matrix.diag().sum()) / len(task.eval_y),
            CONFUSION: matrix.tolist(),
        }
    return out


def eval_split_of(tasks: Mapping[str, TaskData]) -> str:
    """The split a trial is scored on (all its tasks share it)."""
    splits = {task.eval_split for task in tasks.values()}
    if len(splits) != 1:
        raise ValueError(f"tasks of one trial must share their eval split, got {sorted(splits)}")
    return splits.pop()


def evaluation_keys(tasks: Mapping[str, TaskData]) -> list[str]:
    """The keys of a scored row (`names.eval_metric`: `acc/<task>` or `test_acc/<task>`, ...,
    and the split's score); an unscored row carries them as None, so every row of a trial has
    the same keys (Ray's progress.csv takes its header from the first row)."""
    split = eval_split_of(tasks)
    return [SCORE_KEYS[split]] + [eval_metric(m, t, split) for t in tasks for m in EVAL_METRICS]


def evaluation_metrics(
    state: TrialState, tasks: Mapping[str, TaskData], diverged: bool = False
) -> dict[str, Any]:
    """`evaluate` under `evaluation_keys`, its score (mean accuracy, 0 if `diverged`, so the
    searcher sees a bad result, not NaN) and `EVAL_SPLIT`."""
    split = eval_split_of(tasks)
    results = evaluate(state, tasks)
    mean_acc = float(np.mean([results[name][ACC] for name in tasks]))
    metrics: dict[str, Any] = {EVAL_SPLIT: split, SCORE_KEYS[split]: 0.0 if diverged else mean_acc}
    for name in tasks:
        for metric in EVAL_METRICS:
            metrics[eval_metric(metric, name, split)] = results[name][metric]
    return metrics


def run_epoch(
    state: TrialState, tasks: Mapping[str, TaskData], evaluate: bool = True
) -> dict[str, Any]:
    """Train one epoch, advance `state.epoch`, then (if `evaluate`) score the eval split;
    returns the flat metrics to report. Without evaluation the evaluation keys and `EVAL_SPLIT`
    are None."""
    train = train_epoch(state, tasks)
    state.epoch += 1
    total_steps = sum(train[n][STEPS] for n in tasks) or 1
    single = dict(zip(tasks, state.plan.single_task_steps))
    metrics: dict[str, Any] = {
        EPOCH: state.epoch,
        "lr": state.optimizer.param_groups[0]["lr"],
        "diverged": train["diverged"],
        METHOD_KEY: state.config.method,
        METHOD_STEPS: train[METHOD_STEPS],
        EVAL_SPLIT: None,
    }
    for name in tasks:
        per_task = {
            TRAIN_LOSS: train[name][LOSS],
            TRAIN_ACC: train[name][ACC],
            STEPS: train[name][STEPS],
            STEP_SHARE: train[name][STEPS] / total_steps,
            SINGLE_STEPS: single[name],
            METHOD_WEIGHT: train[name][METHOD_WEIGHT],
        }
        metrics.update({task_metric(metric, name): v for metric, v in per_task.items()})
    if evaluate:
        metrics.update(evaluation_metrics(state, tasks, train["diverged"]))
    else:
        metrics.update(dict.fromkeys(evaluation_keys(tasks)))
    return metrics


def scored_this_epoch(state: TrialState, tasks: Mapping[str, TaskData]) -> bool:
    """Whether the epoch about to run is evaluated: validation every epoch, test only at the last
    (`state.epoch` counts completed epochs, so this one ends at `state.epoch + 1`)."""
    split = next(iter(tasks.values())).eval_split
    return split == VALIDATION or state.epoch + 1 == state.config.max_epochs


def train_to_end(
    state: TrialState,
    tasks: Mapping[str, TaskData],
    report: Callable[[dict[str, Any]], None],
    before_epoch: Callable[[TrialState], None] = lambda state: None,
) -> None:
    """Train from `state.epoch` to `max_epochs`, handing each epoch's metrics to `report`.

    A diverged trial stops at once after one last report that carries its (worst) score, also
    when it diverged before the epoch that would have been scored, so a confirmation run always
    ends with a test score."""
    while state.epoch < state.config.max_epochs:
        before_epoch(state)
        metrics = run_epoch(state, tasks, evaluate=scored_this_epoch(state, tasks))
        if metrics["diverged"] and metrics[EVAL_SPLIT] is None:
            metrics.update(evaluation_metrics(state, tasks, diverged=True))
        report(metrics)
        if metrics["diverged"]:  # reported once with the worst score; nothing left to learn
            return
