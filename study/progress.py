"""What a running study tells its user: the plan once at the start, then a few lines per space.

Every line names the study as its user finds it (`study.location.shown_path`): its folder, or
its URI for a study in object storage, never the driver's local cache of it.

The plan block (`plan_text`) says what will run before anything does: the study folder, the
spaces, trials x epochs and the scheduler, the confirmation stage, the data (real or SYNTHETIC,
per task and split) and how many trials run at once on what share of the machine.

While an experiment runs, `StudyReporter` (a Tune `ProgressReporter`, in place of Ray's trial
table) prints a few lines every ~30 s and whenever a trial ends: the study folder and the space,
the trials done / running / pending / stopped early / errored, the best score so far and the
split it was measured on, and an ETA for the space and the whole study once epochs have been
timed (`eta_seconds`, `study_eta`: pure, unit-tested). Each errored trial gets one line naming
its error file; each trial that found no readable checkpoint and restarted from epoch 0, one
line naming the unreadable files.

Ray pickles a Tuner's reporter into the experiment (`tuner.pkl`) and a resumed experiment gets
that copy back; so the reporter keeps only its experiment's name and split, and reads the study
(folder, stages, concurrency) from the context the driver sets with `watch` at each start.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune import ProgressReporter

from names import (
    BUDGETS,
    EPOCH,
    ERROR_FILES,
    SCORE,
    TEST,
    TEST_SCORE,
    TRIAL_PREFIX,
    UNREADABLE,
    VALIDATION,
    confirm_experiment,
    confirm_experiment_space,
    task_name,
)

REPORT_EVERY_S = 30.0  # a progress block at most this often, besides one per trial end


# ---------------------------------------------------------------------------------------------
# the study's stages and the ETA


@dataclasses.dataclass(frozen=True)
class Stage:
    """One experiment of a study, in running order: its trials, their epochs (at most), and the
    relative cost of one epoch (the task-steps its budget plans: `epoch_cost`)."""

    name: str
    trials: int
    epochs: int
    cost: float


def confirm_runs(settings: Any) -> int:
    """Runs per space of the confirmation stage (of its first round, with `--confirm-seeds
    auto`): the baseline and the top K, R seeds each."""
    from study.settings import first_seeds

    if not settings.confirm_seeds:
        return 0
    return (1 + min(settings.confirm_top, settings.num_samples)) * first_seeds(settings)


def study_stages(settings: Any, tasks: Mapping[str, Mapping[str, Any]]) -> list[Stage]:
    """Every experiment of the study in running order: each space's search, then (when the
    study has one) each space's confirmation, which trains on train + validation. A stage's
    cost per epoch is the task-steps its budget plans (`epoch_cost`), times the mean step cost
    of the methods it may train with (`method_cost`); a multi-task confirmation also counts
    the compared methods' own runs."""
    from study.settings import searched_methods, space_tasks, study_spaces

    leaves = study_spaces(settings)

    def cost(space: Any, keys: tuple[str, ...], methods: Sequence[str]) -> float:
        names = [task_name(t) for t in space_tasks(settings, space.name)]
        sizes = [int(sum(tasks[n][k] for k in keys)) for n in names]
        steps = epoch_cost(sizes, settings.batch_size, settings.budget, space.baseline)
        return steps * method_cost(methods, len(names))

    searched = searched_methods(settings)
    compared = tuple(settings.compare_methods or ()) or searched
    stages = [
        Stage(s.name, settings.num_samples, settings.max_epochs, cost(s, ("train_size",), searched))
        for s in leaves
    ]
    runs = confirm_runs(settings)
    if runs:
        stages += [
            Stage(
                confirm_experiment(s.name),
                runs + method_runs(settings, len(s.tasks)),
                settings.max_epochs,
                cost(s, ("train_size", "val_size"), compared),
            )
            for s in leaves
        ]
    return stages


def method_cost(methods: Sequence[str], n_tasks: int) -> float:
    """The mean time of a step with one of `methods` relative to `ew`'s
    (`trainables.methods.step_cost`: a Jacobian method takes about one backward per task); 1
    for a single task, which combines nothing."""
    from trainables.methods import step_cost

    if n_tasks < 2 or not methods:
        return 1.0
    return float(np.mean([step_cost(m, n_tasks) for m in methods]))


def method_runs(settings: Any, n_tasks: int) -> int:
    """The runs a multi-task confirmation adds for `--compare-methods` (at most: one
    configuration per compared method, fewer where one is already a top-K run)."""
    from study.settings import first_seeds

    if n_tasks < 2 or not settings.confirm_seeds or not settings.compare_methods:
        return 0
    return len(settings.compare_methods) * first_seeds(settings)


def epoch_cost(sizes: Sequence[int], batch_size: int, budget: str, baseline: Mapping) -> float:
    """Task-steps in one epoch of a run over tasks of these training-set `sizes` under `budget`
    (`trainables.budget`): sum_t ceil(n_t / B) under `total` and `per-task`; under `epochs`,
    what the space's baseline scheme draws in its first epoch (counted, no model)."""
    from names import LEGACY_BUDGET
    from trainables.budget import StepPlan, count_steps, quotas
    from trainables.sampling import SCHEMES, TaskSampler

    if budget != LEGACY_BUDGET or len(sizes) < 2:
        return float(quotas(sizes, batch_size).sum()) or 1.0
    scheme = baseline.get("scheme", next(iter(SCHEMES)))
    params = {  # the scheme's own defaults: the cost of its typical draw
        p.name: np.full(len(sizes), p.default) if p.per_task else p.default
        for p in SCHEMES[scheme].params
    }
    sampler = TaskSampler(scheme, list(sizes), seed=0, params=params)
    plan = StepPlan(sampler, sizes, batch_size, 1, budget)
    return float(count_steps(plan).sum()) or 1.0


def concurrent_slots(
    cpus_per_trial: float,
    gpus_per_trial: float,
    max_concurrent: int | None,
    cpus: float,
    gpus: float,
) -> int:
    """How many trials run at once: the CPU (and GPU) shares that fit, at most max_concurrent."""
    slots = cpus // cpus_per_trial
    if gpus_per_trial:
        slots = min(slots, gpus // gpus_per_trial)
    if max_concurrent:
        slots = min(slots, max_concurrent)
    return max(1, int(slots))


def eta_seconds(epochs_done: int, epochs_left: int, seconds: float, slots: int) -> float | None:
    """Wall seconds until `epochs_left` more epochs are trained, `slots` trials at a time, at
    the pace measured so far (`seconds` of training for `epochs_done` epochs). None before any
    epoch has been timed."""
    if epochs_done <= 0 or seconds <= 0:
        return None
    return max(0, epochs_left) * (seconds / epochs_done) / max(1, slots)


def study_eta(
    space_eta: float | None,
    seconds_per_epoch: float | None,
    current_cost: float,
    later: Sequence[Stage],
    slots: int,
) -> float | None:
    """The space's ETA plus the stages after it (each trial for its full budget), at the pace
    measured in this space scaled by each stage's cost per epoch. None until timed."""
    if space_eta is None or not seconds_per_epoch:
        return None
    per_cost = seconds_per_epoch / max(current_cost, 1e-9)
    rest = sum(
        s.trials * s.epochs * s.cost * per_cost / max(1, min(slots, s.trials)) for s in later
    )
    return space_eta + rest


def duration(seconds: float) -> str:
    """3s, 4m05s, 2h10m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# ---------------------------------------------------------------------------------------------
# the plan block


def plan_text(
    settings: Any,
    tasks: Mapping[str, Mapping[str, Any]],
    slots: int | None,
    resumed: bool = False,
) -> str:
    """The block printed once at the start: what will run, on what data, how many at once.
    `tasks` maps each task to its description (`TaskSplits.describe()`, as in tasks.json);
    `slots` is None when a cluster decides."""
    from study.location import shown_path
    from study.settings import study_spaces

    leaves = [s.name for s in study_spaces(settings)]
    early = (
        "ASHA stops poor trials early" if settings.scheduler == "asha" else "FIFO, no early stop"
    )
    runs = confirm_runs(settings)
    confirm = "off (--confirm-seeds 0)"
    if runs:
        from study.settings import first_seeds, is_auto

        top = min(settings.confirm_top, settings.num_samples)
        seeds = f"{first_seeds(settings)} seeds"
        if is_auto(settings):
            seeds += (
                f" (auto: more, up to {settings.max_seeds}, until every multi - single 95% "
                f"half-width is at most {settings.target_halfwidth:g} points)"
            )
        confirm = (
            f"{runs // first_seeds(settings)} runs (baseline, top {top}) x {seeds} per space, "
            f"{settings.max_epochs} epochs each, scored on {TEST}"
        )
    gpu = f" + {settings.gpus_per_trial:g} GPU" if settings.gpus_per_trial else ""
    at_once = f"{slots} trials at once" if slots else "as many at once as the cluster allows"
    lines = [
        f"{'Resuming' if resumed else 'Study'} {shown_path(settings)}",
        f"  spaces:       {', '.join(leaves)}"
        + (" (one after another)" if len(leaves) > 1 else ""),
        f"  search:       {settings.num_samples} trial{'s' if settings.num_samples != 1 else ''} "
        f"x up to {settings.max_epochs} epochs per "
        f"space ({early}), scored on {VALIDATION}",
        f"  confirmation: {confirm}",
        f"  budget:       {settings.budget}: a multi-task run takes {BUDGETS[settings.budget]}",
        *_data_lines(tasks),
        f"  resources:    {settings.cpus_per_trial:g} CPU{gpu} per trial, {at_once}",
    ]
    return "\n".join(lines)


def _data_lines(tasks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for i, (name, t) in enumerate(sorted(tasks.items())):
        kind = "SYNTHETIC" if t.get("synthetic") else "real"
        lines.append(
            f"  {'data:' if i == 0 else '':<14}{name} ({kind}): {t['train_size']:,} train / "
            f"{t['val_size']:,} {VALIDATION} / {t['test_size']:,} {TEST}"
        )
    if any(t.get("synthetic") for t in tasks.values()):
        lines.append(f"  {'':<14}synthetic data: for trying the pipeline; its scores mean nothing")
    return lines


# ---------------------------------------------------------------------------------------------
# what the driver sets at each start: read by the reporters of every experiment


@dataclasses.dataclass(frozen=True)
class StudyContext:
    folder: str  # the study as the user names it (`location.shown_path`: its URI when remote)
    stages: tuple[Stage, ...]
    slots: int
    asha: bool


_CONTEXT: StudyContext | None = None


def watch(settings: Any, tasks: Mapping[str, Mapping[str, Any]], slots: int) -> None:
    """Tell the reporters which study runs: its folder, stages and trials at once."""
    from study.location import shown_path

    global _CONTEXT
    _CONTEXT = StudyContext(
        shown_path(settings),
        tuple(study_stages(settings, tasks)),
        slots,
        settings.scheduler == "asha",
    )


# ---------------------------------------------------------------------------------------------
# counting trials


@dataclasses.dataclass(frozen=True)
class Counts:
    done: int = 0
    running: int = 0
    pending: int = 0
    stopped_early: int = 0
    errored: int = 0

    @property
    def ended(self) -> int:
        return self.done + self.stopped_early + self.errored

    def text(self, asha: bool) -> str:
        """ "2 done, 1 running, 3 pending": the non-zero counts only."""
        parts = [
            (self.done, "done"),
            (self.running, "running"),
            (self.pending, "pending"),
            (self.stopped_early, "stopped early" + (" (ASHA)" if asha else "")),
            (self.errored, "errored"),
        ]
        return ", ".join(f"{n} {label}" for n, label in parts if n) or "none yet"


def count_trials(states: Iterable[tuple[str, int]], total: int, max_epochs: int) -> Counts:
    """Counts from (Ray status, epochs reported) per trial; trials not created yet are pending.
    A trial that ended before its last epoch was stopped early (ASHA, or it diverged)."""
    n = dict(done=0, running=0, pending=0, stopped_early=0, errored=0)
    seen = 0
    for status, epochs in states:
        seen += 1
        if status == "TERMINATED":
            n["done" if epochs >= max_epochs else "stopped_early"] += 1
        elif status == "ERROR":
            n["errored"] += 1
        elif status == "RUNNING":
            n["running"] += 1
        else:  # PENDING, PAUSED
            n["pending"] += 1
    n["pending"] += max(0, total - seen)
    return Counts(**n)


def epochs_left(states: Iterable[tuple[str, int]], total: int, max_epochs: int) -> int:
    """Epochs still in the budget: the unfinished trials' rest and the trials not created yet."""
    left, seen = 0, 0
    for status, epochs in states:
        seen += 1
        if status not in ("TERMINATED", "ERROR"):
            left += max(0, max_epochs - epochs)
    return left + max(0, total - seen) * max_epochs


# ---------------------------------------------------------------------------------------------
# the reporter


class StudyReporter(ProgressReporter):
    """Tune progress reporter of one experiment (a search, or a confirmation scored on test):
    a few lines every REPORT_EVERY_S seconds and whenever a trial ends; see the module docstring.
    Its pickled state is its experiment's name and split only."""

    def __init__(self, experiment: str, confirm: bool = False) -> None:
        self.experiment = experiment
        self.confirm = confirm
        self._since = time.time()  # this driver's run: restarts before it were said then
        self._shown_restarts: set[str] = set()
        self.setup()

    def __getstate__(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "confirm": self.confirm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def setup(self, start_time: float | None = None, total_samples: int | None = None, **_: Any):
        self._start = start_time or time.time()
        self._total = total_samples or 0
        self._last = 0.0
        self._ended = -1
        self._timed = False
        self._shown_errors: set[str] = set()

    @property
    def split(self) -> str:
        return TEST if self.confirm else VALIDATION

    def should_report(self, trials: list, done: bool = False) -> bool:
        """At the end, when a trial ends, when the first epoch is timed, and every ~30 s."""
        ended = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        if done:
            return True
        if trials and ended == max(len(trials), self._total):
            return False  # the final block follows at once
        timed = any(_epochs(t) for t in trials)
        return (
            ended != self._ended
            or timed != self._timed
            or time.time() - self._last >= REPORT_EVERY_S
        )

    def report(self, trials: list, done: bool, *sys_info: str) -> None:
        self._last = time.time()
        self._ended = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        self._timed = any(_epochs(t) for t in trials)
        lines = self.lines(trials, done)
        if lines:
            print("\n".join(lines), flush=True)

    def lines(self, trials: list, done: bool) -> list[str]:
        """The block for the trials' present state (a method of its own for the tests)."""
        ctx = _CONTEXT
        stage = _stage(ctx, self.experiment, self._total)
        states = [(t.status, _epochs(t)) for t in trials]
        counts = count_trials(states, max(stage.trials, len(trials)), stage.epochs)
        asha = bool(ctx and ctx.asha and not self.confirm)
        elapsed = duration(time.time() - self._start)
        if done:  # one line; none when interrupted: the driver says what was saved, once
            if counts.running or counts.pending:
                return self._errors(trials)
            return [
                f"[{self.experiment}] finished in {elapsed}: {counts.text(asha)}; "
                f"{self._best(trials)}",
                *self._errors(trials),
            ]
        folder = f"{ctx.folder}/{self.experiment}" if ctx else self.experiment
        kind, units = ("confirmation", "runs") if self.confirm else ("search", "trials")
        eta = self._eta(ctx, stage, states, trials)
        return [
            f"[{self.experiment}] {kind}, {elapsed}: {folder}",
            f"  {units} {len(trials)}/{stage.trials}: {counts.text(asha)}",
            f"  {self._best(trials)}; {eta}",
            *self._errors(trials),
        ]

    def _best(self, trials: list) -> str:
        """The search's best validation score so far. A confirmation stage shows no "best" run:
        its test scores are only ever compared in the table (seeds pooled, with intervals)."""
        key = TEST_SCORE if self.confirm else SCORE
        scores = [
            (t.metric_analysis[key]["max"], t)
            for t in trials
            if key in getattr(t, "metric_analysis", {})
        ]
        if self.confirm:
            total = max(len(trials), self._total)
            return f"{len(scores)} of {total} runs scored on {self.split} (compared in the table)"
        if not scores:
            return f"best {self.split} score: none yet"
        score, trial = max(scores, key=lambda x: x[0])
        return f"best {self.split} score {score:.2%} ({TRIAL_PREFIX}{trial.trial_id})"

    def _eta(self, ctx: StudyContext | None, stage: Stage, states: list, trials: list) -> str:
        epochs = sum(e for _, e in states)
        seconds = sum(float(t.last_result.get("time_total_s", 0.0) or 0.0) for t in trials)
        left = epochs_left(states, stage.trials, stage.epochs)
        slots = ctx.slots if ctx else max(1, sum(s == "RUNNING" for s, _ in states))
        unfinished = sum(1 for s, _ in states if s not in ("TERMINATED", "ERROR"))
        unfinished += max(0, stage.trials - len(states))
        space = eta_seconds(epochs, left, seconds, min(slots, max(1, unfinished)))
        if space is None:
            return "ETA after the first epochs"
        at_most = "at most " if ctx and ctx.asha and not self.confirm else ""
        text = f"ETA {self.experiment} {at_most}{duration(space)}"
        if ctx:
            names = [s.name for s in ctx.stages]
            later = (
                ctx.stages[names.index(self.experiment) + 1 :] if self.experiment in names else ()
            )
            whole = study_eta(space, seconds / epochs, stage.cost, later, ctx.slots)
            if whole is not None and later:
                text += f", study about {duration(whole)}"
        return text

    def _errors(self, trials: list) -> list[str]:
        """One line per trial that errored past its retries, naming its error file, and one per
        trial that restarted from epoch 0 in this run, naming its unreadable checkpoints."""
        lines = []
        folder = f"{_CONTEXT.folder}/{self.experiment}" if _CONTEXT else self.experiment
        for t in trials:
            trial = f"{folder}/{TRIAL_PREFIX}{t.trial_id}"
            unreadable = _restarted_now(t, self._since)
            if unreadable and t.trial_id not in self._shown_restarts:
                self._shown_restarts.add(t.trial_id)
                files = ", ".join(f"{trial}/{f}" for f in unreadable.split(", "))
                lines.append(
                    f"  {TRIAL_PREFIX}{t.trial_id} restarted from epoch 0: no readable "
                    f"checkpoint ({files})"
                )
            if t.status == "ERROR" and t.trial_id not in self._shown_errors:
                self._shown_errors.add(t.trial_id)
                lines.append(f"  {TRIAL_PREFIX}{t.trial_id} errored: see {trial}/{ERROR_FILES[0]}")
        return lines


def _restarted_now(trial: Any, since: float) -> str:
    """The unreadable checkpoints of a trial that restarted from epoch 0 and has reported since
    `since` (this driver's run); "" for any other."""
    last = trial.last_result or {}
    return str(last.get(UNREADABLE) or "") if last.get("wall_time", 0) >= since else ""


def _epochs(trial: Any) -> int:
    """Epochs trained (a restarted trial's Ray `training_iteration` counts its reports)."""
    last = trial.last_result or {}
    return int(last.get(EPOCH, last.get("training_iteration", 0)) or 0)


def _stage(ctx: StudyContext | None, experiment: str, total: int) -> Stage:
    """The experiment's stage; a later confirmation round's is its space's first round's,
    with its own number of runs."""
    space, round_ = confirm_experiment_space(experiment)
    first = confirm_experiment(space) if round_ > 1 else experiment
    for stage in ctx.stages if ctx else ():
        if stage.name == first and first == experiment:
            return stage
        if stage.name == first:
            return dataclasses.replace(stage, name=experiment, trials=total or stage.trials)
    return Stage(experiment, total, 0, 1.0)
