"""The facts every package shares, each written once: names, file names, the baseline, ASHA's rule.

Dependency-free (standard library only), so `analysis/` can import it and stay free of torch and
Ray, and the runner, the trainable and the analysis can never disagree on a file name, a space
name, the baseline configuration or the epochs at which ASHA may stop a trial.

Registries that carry their own contract live beside their code instead: task-sampling schemes
in `trainables.sampling.SCHEMES`, dataset loaders in `trainables.data.LOADERS`, search spaces in
`search_spaces.SPACES`.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

# ---------------------------------------------------------------------------------------------
# spaces: `single-<task>` trains one task, `multi` all of the study's tasks, `all` runs them all

MULTI_SPACE = "multi"
ALL_SPACE = "all"
SINGLE_PREFIX = "single-"
# the two kinds of space, as the comparison table's rows name them (a run's "fashion")
SINGLE_KIND = "single"
MULTI_KIND = MULTI_SPACE


def single_space(task: str) -> str:
    """The single-task space of a task: `cifar10` -> `single-cifar10`."""
    return f"{SINGLE_PREFIX}{task}"


def is_single_space(space: str) -> bool:
    return space.startswith(SINGLE_PREFIX)


def confirm_experiment(space: str, round_: int = 1) -> str:
    """The folder of a space's confirmation runs: `multi` -> `confirm-multi`; the runs that a
    later round of `--confirm-seeds auto` adds (Ray cannot grow an experiment) go beside it,
    round 2 -> `confirm-multi-round-2` (task names hold no `-`, so no space ends that way)."""
    suffix = f"{CONFIRM_ROUND_SEP}{round_}" if round_ > 1 else ""
    return f"{CONFIRM_PREFIX}{space}{suffix}"


def confirm_experiment_space(name: str) -> tuple[str, int]:
    """The inverse of `confirm_experiment`: `confirm-multi-round-2` -> (`multi`, 2)."""
    space = name.removeprefix(CONFIRM_PREFIX)
    head, sep, tail = space.rpartition(CONFIRM_ROUND_SEP)
    if sep and tail.isdigit():
        return head, int(tail)
    return space, 1


# ---------------------------------------------------------------------------------------------
# files of a study directory: <storage>/<study name>/...

SETTINGS_FILE = "study.json"  # the study's settings; what --resume reads back
TASKS_FILE = "tasks.json"  # class names and sizes of each task
OPTUNA_DB = "optuna.db"  # Optuna's SQLite storage, one Optuna study per space
RAY_TRIAL_ID = "ray_trial_id"  # user attribute: the Ray trial an Optuna trial became
LOCK_FILE = ".lock"  # held (flock) by the driver running the study
REPORT_FILE = "report.html"  # analysis.report's default output
CONFIRM_PLAN_FILE = "confirmation.json"  # the confirmation stage's planned runs, written once
CONFIRM_PREFIX = "confirm-"  # confirmation experiments: confirm-<space>/ beside <space>/
CONFIRM_ROUND_SEP = "-round-"  # confirm-<space>-round-<k>/: round k's runs (`confirm_experiment`)
CONFIRM_ROUNDS_FILE = "confirmation_rounds.json"  # --confirm-seeds auto: each round's seeds,
# multi - single half-widths (test, points) and decision, in order
AUTO_SEEDS = "auto"  # --confirm-seeds auto: seeds added until the intervals are narrow enough
AUTO_FIRST_SEEDS = 3  # seeds per configuration of an auto confirmation's first round
BASELINE_LABEL = "baseline"  # a confirmation run of the baseline configuration
TUNED_PREFIX = "tuned-"  # tuned-1 .. tuned-K: the search's K best configurations, best first
TUNED_BEST = f"{TUNED_PREFIX}1"  # the tuned run the table shows; the others are in its CSV
RUN_KEY = "run"  # a confirmation trial's Ray config: {"run": {"label", "space", "source_trial",
# "seed", "config": the full trial config}}; its params.json says which planned run it is
# files of a trial folder: <study>/<space>/trial_<id>/...
TRIAL_PREFIX = "trial_"
TRIAL_CONFIG_FILE = "trial_config.json"  # the resolved TrialConfig, written by the trainable
PARAMS_FILE = "params.json"  # Ray's: the config the searcher suggested plus the constants
RESULT_FILE = "result.json"  # Ray's: one JSON object per reported epoch
PROGRESS_FILE = "progress.csv"  # Ray's: one CSV row per reported epoch, under a header
ERROR_FILES = ("error.txt", "error.pkl")  # Ray's: the trial raised past its retries
NODE_KEY = "node_id"  # in every result row: the Ray node the trial ran on (a cluster's)
CHECKPOINT_GLOB = "checkpoint_*"  # Ray's checkpoint folders inside a trial folder
# checkpoints Ray keeps per trial (`study.runner._run_config`): a search trial its 2 best by score
# and its latest, a confirmation run its 2 latest; either way an older one beside the newest
CHECKPOINTS_KEPT = 2

# ---------------------------------------------------------------------------------------------
# data splits: validation is carved from the training set (class-balanced, SPLIT_SEED) and makes
# every search decision; test is the dataset's held-out split, evaluated only by confirmation runs

VALIDATION = "validation"
TEST = "test"
SPLIT_SEED = 0  # the same validation images in every trial and space of every study
SPLIT_SEED_KEY = "split_seed"  # in each task of tasks.json; studies from before the split lack it
VAL_FRACTION = 0.1  # default validation size: this share of the training set ...
VAL_CAP = 5000  # ... but at most this many images per task

# ---------------------------------------------------------------------------------------------
# metrics a trial reports each epoch

SCORE = "score"  # the study metric: mean validation accuracy over the trial's tasks (max)
SCORE_MODE = "max"
TEST_SCORE = "test_score"  # a confirmation run's mean test accuracy, at its last epoch only
EVAL_SPLIT = "eval_split"  # which split a row's evaluation metrics come from
EPOCH = "epoch"  # epochs trained, in every row; ASHA's time attribute (Ray's
# `training_iteration` counts reports, which a restarted or fallen-back trial repeats)
RESTORED = "restored"  # in every row: re-reported from a checkpoint newer than Ray's snapshot
RESTARTED = "restarted"  # in every row: the trial found no readable checkpoint and restarted
# from epoch 0 (true from then on, through later resumes)
UNREADABLE = "unreadable_checkpoint"  # in every row: "", or in the rows of the run that
# restarted, its unreadable files relative to the trial folder (the progress line names them)
# steps: the task's optimizer steps this epoch; single_steps: the planned steps of the task's
# single-task run over all epochs, the same in every row (the table's "4.8x single")
PER_TASK_METRICS = ("acc", "loss", "train_loss", "train_acc", "steps", "step_share")
PER_TASK_METRICS += ("single_steps",)

# ---------------------------------------------------------------------------------------------
# multi-task methods (`trainables.methods.METHODS`): how a step that trains several tasks at
# once combines their losses. Here because the analysis reads the rows and study.json too.

METHOD_KEY = "method"  # in every trial config and result row
DEFAULT_METHOD = "ew"  # equal weights, the plain summed loss: what a config or study naming
# none ran, and the reference every compared method is measured against
METHOD_WEIGHT = "method_weight"  # per task in every row: `method_weight/<task>`, the mean
# weight the method gave the task over the epoch's combined steps (None: none this epoch)
METHOD_STEPS = "method_steps"  # in every row: the epoch's combined steps (all tasks in one)
METHOD_LABEL_PREFIX = "method:"  # a confirmation run of a compared method's best search trial
# that is not already one of the top-K (`method:upgrad`)


def config_method(config: Any) -> str:
    """The method a trial or run config trained with (`DEFAULT_METHOD` where it names none:
    written before methods existed, or a single-task config)."""
    value = config.get(METHOD_KEY) if hasattr(config, "get") else None
    return value if isinstance(value, str) and value else DEFAULT_METHOD


def method_label(method: str) -> str:
    """The label of a compared method's own confirmation runs: `upgrad` -> `method:upgrad`."""
    return f"{METHOD_LABEL_PREFIX}{method}"


# ---------------------------------------------------------------------------------------------
# training budgets: what a multi-task run takes against its tasks' single-task runs (each
# epochs x ceil(n_task / batch) steps); a task-step is one task's loss in one optimizer step.
# Here (not beside the planner, trainables.budget) because the analysis states them too.

BUDGET_KEY = "budget"  # in study.json and every trial config
DEFAULT_BUDGET = "total"  # a new study's
# the original project's rule, and what a study or trial config that records no budget ran
# under: they were written before budgets existed
LEGACY_BUDGET = "epochs"
BUDGETS = {  # name -> what a multi-task run takes (`--help`, the table's notes)
    DEFAULT_BUDGET: "as many task-steps in all as the single-task runs of its tasks together "
    "(sum over tasks of epochs x ceil(n_task / batch)); the scheme shares them",
    "per-task": "each task exactly its single-task steps, spread evenly over every epoch; the "
    "scheme only groups them: one that sums the tasks' losses (joint) takes the tasks due in an "
    "iteration in one step, and the one-task-per-step schemes all give the same run",
    LEGACY_BUDGET: "the original project's rule: an epoch is ceil(largest n_task / batch) "
    "iterations of the scheme, whatever each task's size",
}


def task_metric(metric: str, task: str) -> str:
    """Reported key of a per-task metric: `acc`, `cifar10` -> `acc/cifar10`."""
    return f"{metric}/{task}"


def tuned_label(rank: int) -> str:
    """The label of the search's rank-th best configuration: 1 -> `tuned-1`."""
    return f"{TUNED_PREFIX}{rank}"


def eval_metric(metric: str, task: str, split: str) -> str:
    """Key of an evaluation metric: validation `acc/cifar10`, test `test_acc/cifar10`."""
    return task_metric(metric if split == VALIDATION else f"{split}_{metric}", task)


# ---------------------------------------------------------------------------------------------
# the baseline: the original project's hand-picked configuration, enqueued first in every space

BASELINE_SINGLE: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "lr_schedule": "step",  # x0.1 at 50% and 75% of the epochs
}
# its multi-task run: the same optimizer, a fair coin per task per batch, and a constant LR (the
# original multi-task run never dropped it; only its single-task runs did)
BASELINE_MULTI: dict[str, Any] = {
    **BASELINE_SINGLE,
    "lr_schedule": "constant",
    "scheme": "coin",
    "coin_p": 0.5,
}


def baseline(n_tasks: int) -> dict[str, Any]:
    """The baseline configuration of a space training `n_tasks` tasks."""
    return dict(BASELINE_MULTI if n_tasks > 1 else BASELINE_SINGLE)


# ---------------------------------------------------------------------------------------------
# ASHA: the study's early-stopping rule, used by the runner and rebuilt by the analysis

ASHA_REDUCTION_FACTOR = 3


def asha_grace_period(max_epochs: int) -> int:
    """Epochs every trial gets before ASHA may stop it: a quarter of the budget, at least 1."""
    return max(1, max_epochs // 4)


def asha_rungs(max_epochs: int) -> list[int]:
    """Epochs at which ASHA may stop a trial (grace x reduction_factor^k below max_epochs)."""
    grace = asha_grace_period(max_epochs)
    if max_epochs <= grace:
        return [grace]
    count = int(math.log(max_epochs / grace) / math.log(ASHA_REDUCTION_FACTOR) + 1)
    return [grace * ASHA_REDUCTION_FACTOR**k for k in range(count)]


# ---------------------------------------------------------------------------------------------
# the local cache: decoded datasets and the caches of remote studies live under it


def default_cache_dir() -> str:
    """`$XDG_CACHE_HOME/mtl-study`, else `~/.cache/mtl-study` (unless `--cache-dir`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mtl-study")


# ---------------------------------------------------------------------------------------------
# tasks: a spec names a dataset (`cifar10`, `imagefolder:/data/birds`), optionally followed by
# `=<name>` (`imagefolder:/data/x=birds`); its name keys heads, metrics and `single-<name>`

IMAGEFOLDER = "imagefolder"
NAME_SEP = "="  # `<dataset>=<name>`: the task's name given explicitly
NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]*"  # an explicit name; stored lowercased
_NAME_RE = re.compile(NAME_PATTERN)


def split_task_spec(spec: str) -> tuple[str, str | None]:
    """`imagefolder:/x=birds` -> (`imagefolder:/x`, `birds`); without `=`, (spec, None).

    The name is what follows the last `=` when that holds no `/`: a path with `=` in a folder
    above its last (`imagefolder:/a=b/x`) needs no name; one whose last folder holds `=` is
    read as a name unless a name follows (`imagefolder:/data/a=b=birds`)."""
    dataset, sep, name = str(spec).rpartition(NAME_SEP)
    if not sep or "/" in name:
        return str(spec), None
    return dataset, name


def valid_task_name(name: str) -> bool:
    """An explicit name: a letter, then letters, digits or `_` (no `/`: it is in metric keys)."""
    return _NAME_RE.fullmatch(name) is not None


def task_name(spec: str) -> str:
    """The task's name, used as head key, in metric keys (`acc/<name>`) and in `single-<name>`.

    Pure and total: the explicit `=name`, lowercased; else the kind itself (`cifar10`); else,
    for `<kind>:<path>`, the folder's name. Always a lowercase identifier. The path is made
    absolute without following links, so every machine derives the same name from one spec.
    Two different specs may still derive one name (`.../a/birds`, `.../b/birds`): the study's
    settings refuse that (`study.settings`), never this function."""
    dataset, explicit = split_task_spec(spec)
    if explicit is not None:
        return _identifier(explicit, "task")
    kind, _, arg = dataset.partition(":")
    if not arg:
        return _identifier(kind, "task")
    folder = os.path.basename(os.path.abspath(os.path.expanduser(arg)))
    return _identifier(folder, kind)


def _identifier(text: str, fallback: str) -> str:
    """`My Birds` -> `my_birds`; `2020` -> `<fallback>_2020`; `` -> the fallback."""
    stem = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    fallback = re.sub(r"[^a-z0-9_]+", "_", fallback.lower()).strip("_") or "task"
    if not stem:
        return fallback if fallback[0].isalpha() else f"task_{fallback}"
    return stem if stem[0].isalpha() else f"{fallback}_{stem}"
