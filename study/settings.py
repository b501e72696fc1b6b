"""A study's settings: the command line, its validation, and `study.json`.

Everything a user can get wrong is checked here, before any Ray instance starts or any file is
written; problems raise `UserError` with one line that names them. The resolved settings are
saved as `study.json` in the study directory, which is what `--resume` reads back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    AUTO_FIRST_SEEDS,
    AUTO_SEEDS,
    BUDGET_KEY,
    BUDGETS,
    DEFAULT_BUDGET,
    DEFAULT_METHOD,
    LEGACY_BUDGET,
    METHOD_KEY,
    MULTI_SPACE,
    NAME_PATTERN,
    NAME_SEP,
    SETTINGS_FILE,
    SPLIT_SEED_KEY,
    TASKS_FILE,
    VAL_CAP,
    VAL_FRACTION,
    is_single_space,
    split_task_spec,
    task_name,
    valid_task_name,
)
from search_spaces import SPACES, Space, leaf_spaces
from studyfiles.storage import cache_folder, is_remote, resolve
from trainables.budget import describe
from trainables.config import COMPILE_MODES, DATA_SOURCES, STEMS
from trainables.sampling import LOSS_WEIGHTS, SCHEMES, scheme_params

SCHEDULERS = ("asha", "fifo")
QUICK = {  # <= 4 minutes on a 2-core CPU (3m42s, quiet), synthetic data: every space (each task
    # alone and together), a small search, then a confirmation stage of 2 seeds (the fewest that
    # give an interval; a real study wants 3 or more), so the first table has every cell. Each
    # experiment's ~20 s of trial start-up (importing torch and timm) dominates: few images
    "space": "all",
    "data": "synthetic",
    "num_samples": 3,
    "max_epochs": 2,
    "limit_train": 128,
    "limit_val": 64,
    "limit_test": 64,
    "batch_size": 32,
    "cpus_per_trial": 1.0,
    "confirm_seeds": 2,
}

GPU_SHARE = 0.25  # default GPU share of a trial where a GPU is visible: four trials per GPU
# numeric settings that must be positive when given (they also take --quick's preset)
POSITIVE = (
    "num_samples",
    "max_epochs",
    "limit_train",
    "limit_val",
    "limit_test",
    "val_size",
    "batch_size",
    "cpus_per_trial",
    "confirm_top",
)


@dataclasses.dataclass(frozen=True)
class StudySettings:
    name: str
    space: str = MULTI_SPACE
    storage: str = "./studies"
    num_samples: int = 20  # trials per space
    max_epochs: int = 30
    max_concurrent: int | None = None  # None: as many as resources allow
    scheduler: str = "asha"
    seed: int = 0
    data: str = "real"
    data_root: str = "./dataset"
    cache_dir: str | None = None
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    val_size: int | None = None  # validation images carved from train; None: names' default rule
    batch_size: int = 128
    budget: str = DEFAULT_BUDGET  # names.BUDGETS; a study.json without one: LEGACY_BUDGET
    tasks: tuple[str, ...] | None = None  # the study's tasks (multi's; all's: one space each)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    compile: str = "off"  # torch.compile mode of every trial's backbone
    stem: str = "imagenet"  # the backbone's stem: timm's (imagenet) or the original's (cifar)
    confirm_top: int = 1  # configurations per space retrained by the confirmation stage
    confirm_seeds: int | str = 3  # seeds per retrained configuration; 0: no confirmation stage;
    # AUTO_SEEDS: from AUTO_FIRST_SEEDS, more until each multi - single interval is narrow enough
    target_halfwidth: float = 1.0  # auto: the widest multi - single half-width allowed (points)
    max_seeds: int = 10  # auto: seeds per configuration at most
    quick: bool = False
    storage_endpoint: str | None = None  # S3-compatible endpoint of a remote --storage
    optuna_storage: str | None = None  # SQLAlchemy URL; None: SQLite in the study dir
    # multi-task methods (trainables.methods), registry order; a study.json without them: off
    methods: tuple[str, ...] | None = None  # --methods: the searched ones; None: ew only
    compare_methods: tuple[str, ...] | None = None  # --compare-methods: ew first; None: off
    method_params: dict[str, float] | None = None  # --method-params: fixed, not searched

    @property
    def study_dir(self) -> Path:
        """Local folder of the study (metadata, Optuna database, and Ray's experiments); for a
        study in object storage, its local cache (see study.location)."""
        if is_remote(self.storage):
            loc = resolve(self.storage, self.storage_endpoint).child(self.name)
            return cache_folder(loc, self.cache_dir)
        return Path(self.storage).expanduser().resolve() / self.name

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        values["optuna_storage"] = _without_password(self.optuna_storage)
        values["tasks"] = list(self.tasks) if self.tasks else None
        return json.dumps(values, indent=2)

    @classmethod
    def from_study_dir(cls, folder: Path) -> StudySettings:
        path = folder / SETTINGS_FILE
        try:
            values = json.loads(path.read_text())
            for key in ("tasks", "methods", "compare_methods"):  # JSON lists
                if values.get(key):
                    values[key] = tuple(values[key])
            values.setdefault(BUDGET_KEY, LEGACY_BUDGET)  # written before budgets existed
            return cls(**values)
        except FileNotFoundError:
            raise UserError(f"{folder} is not a study: no {SETTINGS_FILE} in it") from None
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"{path} is unreadable ({exc}); is {folder} a study?") from None


DEFAULTS = {f.name: f.default for f in dataclasses.fields(StudySettings) if f.name != "name"}


def _default(key: str) -> str:
    """ "default X" or "default X; --quick Y" for a setting's help text, from the code itself."""
    value = DEFAULTS[key]
    text = f"default {'all' if value is None else value}"
    return f"{text}; --quick {QUICK[key]}" if key in QUICK else text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m study.run",
        description="Run (or resume) a Ray Tune + Optuna hyperparameter study.",
    )
    for group, add_flags in FLAG_GROUPS.items():
        add_flags(p.add_argument_group(group).add_argument)
    return p


def _study_flags(add: Callable[..., Any]) -> None:
    add(
        "--space",
        help=f"search space (see --list-spaces; {_default('space')})",
    )
    add("--list-spaces", action="store_true", help="print the spaces and exit")
    add("--resume", metavar="STUDY_DIR", help="resume the study in this directory")
    quick = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in QUICK.items())
    add("--quick", action="store_true", help=f"a few-minute study on the CPU: {quick}")
    add("--name", help="study name (default: <space>-<date>-<time>)")
    add(
        "--storage",
        default=DEFAULTS["storage"],
        help="folder or object-store URI (s3://bucket/prefix, any URI pyarrow understands) that "
        f"holds studies ({_default('storage')})",
    )
    add("--storage-endpoint", help="endpoint of an S3-compatible store (http(s)://host:port)")
    add(
        "--optuna-storage",
        metavar="URL",
        help="Optuna's database, a SQLAlchemy URL (postgresql://user@host/db; default: SQLite "
        "in the study directory)",
    )


def _search_flags(add: Callable[..., Any]) -> None:
    add("--num-samples", type=int, help=f"trials per space ({_default('num_samples')})")
    add("--max-epochs", type=int, help=f"epochs per trial at most ({_default('max_epochs')})")
    add("--batch-size", type=int, help=f"images per task per step ({_default('batch_size')})")
    add("--max-concurrent", type=int, help="trials at once at most (default: resources decide)")
    add(
        "--scheduler",
        default=DEFAULTS["scheduler"],
        help=f"{' or '.join(SCHEDULERS)} ({_default('scheduler')})",
    )
    add(
        "--seed",
        type=int,
        default=DEFAULTS["seed"],
        help=f"random seed of TPE, data order and init ({_default('seed')})",
    )
    add(
        "--budget",
        default=DEFAULTS["budget"],
        metavar="|".join(BUDGETS),
        help="the training each run gets, search and confirmation alike: "
        + "; ".join(f"{name}: {describe(name)}" for name in BUDGETS)
        + f" ({_default('budget')})",
    )
    add(
        "--stem",
        default=DEFAULTS["stem"],
        help=f"backbone stem: {' or '.join(STEMS)} (the original project's stride-1 CIFAR stem: "
        f"slower, more accurate at 32x32; {_default('stem')})",
    )
    add(
        "--max-failures",
        type=int,
        default=DEFAULTS["max_failures"],
        help=f"retries of a crashing trial ({_default('max_failures')})",
    )
    add(
        "--compile",
        default=DEFAULTS["compile"],
        help=f"torch.compile the backbone: {', '.join(COMPILE_MODES)} ({_default('compile')})",
    )


def _data_flags(add: Callable[..., Any]) -> None:
    add("--data", help=f"{' or '.join(DATA_SOURCES)} ({_default('data')})")
    add(
        "--data-root",
        default=DEFAULTS["data_root"],
        help=f"where the datasets are ({_default('data_root')})",
    )
    add("--cache-dir", help="decoded-dataset cache (default ~/.cache/mtl-study)")
    add(
        "--tasks",
        help="comma-separated tasks of the study: multi trains them together, all adds "
        "single-<name> for each; e.g. cifar10,imagefolder:/data/x=birds (=name: its name)",
    )
    add(
        "--limit-train",
        type=int,
        help=f"training images per task, class-balanced ({_default('limit_train')})",
    )
    add(
        "--limit-val",
        type=int,
        help=f"validation images per task, class-balanced ({_default('limit_val')})",
    )
    add(
        "--limit-test",
        type=int,
        help=f"test images per task, class-balanced ({_default('limit_test')})",
    )
    add(
        "--val-size",
        type=int,
        help=f"validation images carved from each task's training set (default "
        f"{VAL_FRACTION * 100:.0f}%% of it, at most {VAL_CAP})",
    )


def _confirmation_flags(add: Callable[..., Any]) -> None:
    add(
        "--confirm-top",
        type=int,
        help=f"configurations per space retrained on train+validation and scored on test "
        f"({_default('confirm_top')}; the baseline is always retrained too)",
    )
    add(
        "--confirm-seeds",
        type=confirm_seeds_value,
        help="seeds per retrained configuration, 0: no confirmation, or auto: start at "
        f"{AUTO_FIRST_SEEDS} and add seeds to every configuration until each multi - single "
        f"interval's half-width is at most --target-halfwidth ({_default('confirm_seeds')})",
    )
    add(
        "--target-halfwidth",
        type=float,
        help="with --confirm-seeds auto: the widest multi - single 95%% half-width allowed, in "
        f"test accuracy points ({_default('target_halfwidth')})",
    )
    add(
        "--max-seeds",
        type=int,
        help="with --confirm-seeds auto: seeds per configuration at most "
        f"({_default('max_seeds')})",
    )


def confirm_seeds_value(text: str) -> int | str:
    """`--confirm-seeds`: a whole number, or `auto`."""
    if text.strip().lower() == AUTO_SEEDS:
        return AUTO_SEEDS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or {AUTO_SEEDS}, got {text!r}"
        ) from None


def is_auto(settings: StudySettings) -> bool:
    """Whether the study's confirmation chooses its seeds by precision (`--confirm-seeds auto`)."""
    return settings.confirm_seeds == AUTO_SEEDS


def first_seeds(settings: StudySettings) -> int:
    """Seeds per configuration of the confirmation's first (with a number: only) round."""
    return AUTO_FIRST_SEEDS if is_auto(settings) else int(settings.confirm_seeds)


def check_confirmation(settings: StudySettings, given: argparse.Namespace | None = None) -> None:
    """The confirmation flags make sense together (UserError, before Ray): auto compares multi-
    with single-task intervals, so it needs both kinds of space (`--space all`); its target is
    positive and its maximum at least its first round; the auto-only flags (`given`: the
    command line) only come with auto."""
    auto = is_auto(settings)
    for flag in ("target_halfwidth", "max_seeds"):
        if not auto and given is not None and getattr(given, flag, None) is not None:
            name = flag.replace("_", "-")
            raise UserError(f"--{name} applies only with --confirm-seeds {AUTO_SEEDS}")
    if not auto:
        return
    kinds = {is_single_space(s.name) for s in study_spaces(settings)}
    if kinds != {True, False}:
        raise UserError(
            f"--confirm-seeds {AUTO_SEEDS} stops on the multi - single intervals, so it needs "
            f"single- and multi-task spaces (--space all, not {settings.space}); give a number "
            "of seeds instead"
        )
    if not settings.target_halfwidth > 0:
        raise UserError(
            f"--target-halfwidth must be a positive number, got {settings.target_halfwidth}"
        )
    if settings.max_seeds < AUTO_FIRST_SEEDS:
        raise UserError(
            f"--max-seeds must be at least {AUTO_FIRST_SEEDS} (the first round's seeds), got "
            f"{settings.max_seeds}"
        )


def _resources_flags(add: Callable[..., Any]) -> None:
    add(
        "--cpus-per-trial",
        type=float,
        help=f"CPU share of each trial ({_default('cpus_per_trial')})",
    )
    add(
        "--gpus-per-trial",
        type=float,
        help=f"GPU share of each trial, e.g. 0.25 packs four on a GPU (default {GPU_SHARE} with "
        "a GPU, else 0)",
    )
    add(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join this Ray cluster (default $RAY_ADDRESS; none: start a local instance)",
    )
    add("--num-cpus", type=float, help=argparse.SUPPRESS)  # logical resources of a local Ray
    add("--num-gpus", type=float, help=argparse.SUPPRESS)
    add("--dashboard", action="store_true", help="start the Ray dashboard (local Ray only)")
    add(
        "--verbose",
        action="store_true",
        help="show Ray's and Tune's own messages and the trials' output (default: warnings and "
        "errors only, and the study's progress lines)",
    )


def _method_flags(add: Callable[..., Any]) -> None:
    add(
        "--methods",
        metavar="M1,M2",
        help="multi-task methods the search may pick for a step that trains every task at once "
        f"(scheme joint); see --list-methods (default {DEFAULT_METHOD} only; multi and all)",
    )
    add(
        "--compare-methods",
        metavar="M1,M2",
        help=f"methods compared with {DEFAULT_METHOD} (always included): each is searched, gets "
        "a starting trial, and its best configuration is confirmed over the same seeds",
    )
    add(
        "--method-params",
        metavar="KEY=V,...",
        help="fix method parameters instead of searching them, e.g. cagrad_c=0.3",
    )
    add("--list-methods", action="store_true", help="print the methods and exit")


FLAG_GROUPS = {
    "the study": _study_flags,
    "the search (each trial)": _search_flags,
    "multi-task methods": _method_flags,
    "data": _data_flags,
    "confirmation (test figures)": _confirmation_flags,
    "resources and Ray": _resources_flags,
}


# what a resume may be told: where the study is and how to reach it, and this run's Ray; every
# other flag is part of the study (saved in study.json), so giving it with --resume is refused
RESUME_FLAGS = (
    "resume",
    "storage_endpoint",
    "cache_dir",
    "optuna_storage",
    "address",
    "num_cpus",
    "num_gpus",
    "dashboard",
    "verbose",
)


def check_resume_flags(args: argparse.Namespace) -> None:
    """With --resume, refuse a flag that would change the saved study (it would be ignored)."""
    defaults = vars(build_parser().parse_args([]))
    given = [k for k, v in vars(args).items() if k not in RESUME_FLAGS and v != defaults[k]]
    if given:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in given)
        raise UserError(
            f"--resume continues the study with its saved settings ({SETTINGS_FILE}); {flags} "
            f"cannot change them: drop {'it' if len(given) == 1 else 'them'}, or start a new "
            "study with --name"
        )


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise UserError(f"--{name} must be a positive number, got {value}")


def local_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no CUDA runtime: no GPUs
        return 0


def _check_choices(args: argparse.Namespace) -> None:
    if args.scheduler not in SCHEDULERS:
        raise UserError(f"unknown scheduler {args.scheduler!r}; expected one of {SCHEDULERS}")
    if args.compile not in COMPILE_MODES:
        raise UserError(f"unknown --compile {args.compile!r}; expected one of {COMPILE_MODES}")
    if args.stem not in STEMS:
        raise UserError(f"unknown --stem {args.stem!r}; expected one of {STEMS}")
    if args.budget not in BUDGETS:
        raise UserError(f"unknown --budget {args.budget!r}; expected one of {tuple(BUDGETS)}")
    if args.confirm_seeds not in (None, AUTO_SEEDS) and args.confirm_seeds < 0:
        raise UserError(
            f"--confirm-seeds must be >= 0 (0: no confirmation), got {args.confirm_seeds}"
        )
    for name in (*POSITIVE, "max_concurrent"):
        _positive(name.replace("_", "-"), getattr(args, name))
    if args.max_failures < 0:
        raise UserError(f"--max-failures must be >= 0, got {args.max_failures}")


def _gpu_share(args: argparse.Namespace) -> float:
    """The GPU share per trial: as given, else GPU_SHARE where a GPU is visible, else 0."""
    visible = args.num_gpus if args.num_gpus is not None else local_gpu_count()
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = GPU_SHARE if visible else 0.0
    if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise UserError(
            f"--gpus-per-trial {gpus} cannot be scheduled: use a fraction in (0, 1] "
            "(e.g. 0.25 packs four trials per GPU) or a whole number of GPUs"
        )
    if args.address is None and gpus > visible:
        raise UserError(f"--gpus-per-trial {gpus:g} is more than the {visible:g} GPU(s) here")
    return gpus


def _check_cpu_share(args: argparse.Namespace, cpus: float) -> None:
    """A local Ray has this machine's cores (or --num-cpus): a larger share per trial could
    never be scheduled, and Ray would wait for it forever."""
    if args.address is not None:
        return  # a cluster's nodes are known once Ray has joined it (ray_session.init_ray checks)
    here = args.num_cpus if args.num_cpus is not None else float(os.cpu_count() or 1)
    if cpus > here:
        raise UserError(
            f"--cpus-per-trial {cpus:g} is more than the {here:g} CPU(s) here: no trial could "
            f"start (use at most {here:g})"
        )


def _tasks(args: argparse.Namespace) -> tuple[str, ...] | None:
    """`--tasks` as specs, each checked for a valid `=name`, no two sharing a name; then the
    space must exist for them (`single-<name>` of one task; else two or more)."""
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None
    for spec in tasks or ():
        explicit = split_task_spec(spec)[1]
        if explicit is not None and not valid_task_name(explicit):
            raise UserError(
                f"task {spec!r}: its name {explicit!r} must match {NAME_PATTERN} (a letter, then "
                f"letters, digits or _), e.g. {split_task_spec(spec)[0]}{NAME_SEP}my_task"
            )
    try:
        leaves = leaf_spaces(args.space, tasks)
    except KeyError:
        singles = [f"single-{task_name(t)}" for t in tasks or ()]
        known = ", ".join(dict.fromkeys([*SPACES, *singles]))
        raise UserError(f"unknown space {args.space!r}; expected one of {known}") from None
    if tasks is not None and len(tasks) < 2 and not is_single_space(args.space):
        raise UserError(f"--tasks needs at least two comma-separated tasks for {args.space}")
    check_task_names([t for leaf in leaves for t in leaf.tasks])
    return tasks


def check_task_names(specs: Sequence[str]) -> None:
    """Every task of a study has its own name: UserError naming both specs when two different
    specs would share one (`.../a/birds`, `.../b/birds`, or `fashionrgb` and an imagefolder
    named FashionRGB) or when one spec is listed twice within a space's tasks."""
    seen: dict[str, str] = {}
    for spec in dict.fromkeys(specs):
        name = task_name(spec)
        other = seen.setdefault(name, spec)
        if other != spec:
            dataset = split_task_spec(spec)[0]
            raise UserError(
                f"tasks {other!r} and {spec!r} would both be named {name!r}; give one its own "
                f"name with =<name>, e.g. {dataset}{NAME_SEP}{name}_2"
            )


def _name(args: argparse.Namespace) -> str:
    name = args.name or f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain folder name")
    return name


def settings_from_args(args: argparse.Namespace) -> StudySettings:
    """Validate a new study's arguments (no files are touched). A value comes from its flag,
    else from the --quick preset, else from StudySettings' default."""
    quick = QUICK if args.quick else {}
    if args.space is None:  # a preset's space, else the default
        args.space = quick.get("space", DEFAULTS["space"])
    _check_choices(args)
    preset = {k: v for k, v in quick.items() if getattr(args, k) is None}
    keys = (*POSITIVE, "data", "confirm_seeds", "target_halfwidth", "max_seeds")
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    values = {**DEFAULTS, **preset, **given}
    if values["data"] not in DATA_SOURCES:
        raise UserError(f"--data must be 'real' or 'synthetic', got {values['data']!r}")
    _check_cpu_share(args, values["cpus_per_trial"])
    settings = StudySettings(
        **{
            **values,
            "name": _name(args),
            "space": args.space,
            "storage": args.storage,
            "max_concurrent": args.max_concurrent,
            "scheduler": args.scheduler,
            "seed": args.seed,
            "data_root": args.data_root,
            "cache_dir": args.cache_dir,
            "tasks": _tasks(args),
            "gpus_per_trial": _gpu_share(args),
            "max_failures": args.max_failures,
            "compile": args.compile,
            "stem": args.stem,
            "budget": args.budget,
            "quick": args.quick,
            "storage_endpoint": args.storage_endpoint,
            "optuna_storage": args.optuna_storage,
            **_method_values(args),
        }
    )
    check_confirmation(settings, args)
    check_methods(settings)
    return settings


def _method_values(args: argparse.Namespace) -> dict[str, Any]:
    """`--methods` and `--compare-methods` as tuples of names (the compared with ew first),
    `--method-params` as {key: float}; None for a flag not given."""
    methods = _names_list(args.methods)
    compare = _names_list(args.compare_methods)
    if compare is not None:
        compare = tuple(dict.fromkeys([DEFAULT_METHOD, *compare]))
    fixed = None
    if args.method_params:
        fixed = {}
        for item in filter(None, (i.strip() for i in args.method_params.split(","))):
            key, sep, value = item.partition("=")
            try:
                fixed[key.strip()] = float(value)
            except ValueError:
                raise UserError(f"--method-params: expected KEY=NUMBER, got {item!r}") from None
    return {"methods": methods, "compare_methods": compare, "method_params": fixed}


def _names_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def check_methods(settings: StudySettings) -> None:
    """The method flags make sense (UserError, before Ray): known methods whose extras are
    installed, a study with a multi-task space, something besides ew to compare, every compared
    method searched, fixed parameters within bounds and of a searched method, and enough
    trials for every starting point."""
    chosen = (*(settings.methods or ()), *(settings.compare_methods or ()))
    if not chosen and not settings.method_params:
        return
    from trainables.methods import get_method

    for name in chosen:
        method = get_method(name)
        missing = method.missing()
        if missing:
            hint = f': pip install "mtl-study[{method.extra}]"' if method.extra else ""
            raise UserError(f"method {name} needs {', '.join(missing)}{hint}")
    if not any(len(s.tasks) > 1 for s in study_spaces(settings)):
        raise UserError(
            f"methods combine several tasks; --space {settings.space} trains one (use multi or all)"
        )
    compare = settings.compare_methods
    if compare is not None and len(compare) < 2:
        raise UserError(f"--compare-methods needs a method besides {DEFAULT_METHOD}")
    left_out = [m for m in compare or () if m not in searched_methods(settings)]
    if left_out:
        raise UserError(f"--methods must include every compared method; it lacks {left_out[0]}")
    _check_fixed(settings)
    _check_start_points(settings)


def _check_fixed(settings: StudySettings) -> None:
    """Each `--method-params` key is a searched method's parameter, within its bounds."""
    from trainables.methods import get_method

    searched = searched_methods(settings)
    owners = {p.name: m for m in searched for p in get_method(m).params}
    for key, value in (settings.method_params or {}).items():
        if key not in owners:
            raise UserError(
                f"--method-params: {key!r} is no parameter of the searched methods "
                f"({', '.join(searched)})"
            )
        get_method(owners[key]).resolve({key: value})


def _check_start_points(settings: StudySettings) -> None:
    for space in study_spaces(settings):
        points = len(start_points(settings, space))
        if settings.num_samples < points:
            raise UserError(
                f"--num-samples {settings.num_samples} is fewer than the {points} starting trials "
                f"of {space.name} (the baseline and one per compared method)"
            )


def _fixed_method_params(settings: StudySettings) -> dict[str, float]:
    """`--method-params`: constants of every multi-task trial (the space does not search them)."""
    return dict(settings.method_params or {})


def searched_methods(settings: StudySettings) -> tuple[str, ...]:
    """The methods the search may pick, in registry order: `--methods`, else the compared
    ones, else ew alone (then the space suggests none, as before methods existed)."""
    chosen = settings.methods or settings.compare_methods
    if not chosen:
        return (DEFAULT_METHOD,)
    from trainables.methods import METHODS

    return tuple(m for m in METHODS if m in chosen)


def method_options(settings: StudySettings, space: Space) -> dict[str, Any]:
    """What a multi-task space's `define` takes besides the trial and tasks; none otherwise."""
    if len(space.tasks) < 2:
        return {}
    return {"methods": searched_methods(settings), "fixed": _fixed_method_params(settings)}


def start_points(settings: StudySettings, space: Space) -> list[dict[str, Any]]:
    """The trials a space enqueues first: its baseline, then (`--compare-methods`, multi-task
    spaces) one per compared method: the baseline's optimizer under the first scheme whose
    steps hold every task (joint), that method, its default parameters, static weights 1."""
    points = [dict(space.baseline)]
    if len(space.tasks) < 2 or not settings.compare_methods:
        return points
    from search_spaces.multi import method_space, param_keys

    schemes = scheme_params()
    base = {k: v for k, v in space.baseline.items() if k not in schemes}
    joint = next(name for name, s in SCHEMES.items() if s.shares_steps)
    tasks = [task_name(t) for t in space.tasks]
    fixed = settings.method_params or {}
    for method in settings.compare_methods:
        point = {**base, "scheme": joint, METHOD_KEY: method}
        for param in SCHEMES[joint].params:
            if method == DEFAULT_METHOD or param.name != LOSS_WEIGHTS:
                point.update(dict.fromkeys(param_keys(param, tasks), param.default))
        point.update({p.name: p.default for p in method_space(method) if p.name not in fixed})
        points.append(point)
    return points


def _without_password(url: str | None) -> str | None:
    """A database URL as study.json records it: never its password."""
    if not url:
        return None
    import sqlalchemy

    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)


def check_resumable(folder: Path) -> StudySettings:
    """A study directory to resume: exists, ours, not writable by others, has settings."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"--resume {folder}: no such study directory")
    if not (folder / SETTINGS_FILE).is_file():
        raise UserError(f"--resume {folder}: not a study (no {SETTINGS_FILE} in it)")
    info = folder.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UserError(f"--resume {folder}: not owned by you; a study is as trusted as code")
    if info.st_mode & stat.S_IWOTH:
        raise UserError(f"--resume {folder}: writable by others; a study is as trusted as code")
    settings = StudySettings.from_study_dir(folder)
    _check_split_recorded(folder)
    return dataclasses.replace(settings, storage=str(folder.parent), name=folder.name)


def _check_split_recorded(folder: Path) -> None:
    """Studies written before the three-way split scored their search on the test split; a
    resume would mix two protocols in one study, so it is refused (analysis still reads it)."""
    try:
        tasks = json.loads((folder / TASKS_FILE).read_text())
        recorded = all(SPLIT_SEED_KEY in t for t in tasks.values())
    except (OSError, ValueError, AttributeError, TypeError):
        recorded = False
    if not recorded:
        raise UserError(
            f"--resume {folder}: written by an earlier version whose validation split was the "
            f"test split ({TASKS_FILE} records no split); analyse it, but start a new study"
        )


def study_spaces(settings: StudySettings) -> tuple[Space, ...]:
    """The spaces a study runs, in order (`search_spaces.leaf_spaces` of its space and tasks)."""
    return leaf_spaces(settings.space, settings.tasks)


def space_tasks(settings: StudySettings, space_name: str) -> tuple[str, ...]:
    """The task specs a space of the study trains."""
    return next(s.tasks for s in study_spaces(settings) if s.name == space_name)


def describe_spaces() -> str:
    return "\n".join(f"{s.name:18s} {s.description}" for s in SPACES.values())


def trial_constants(settings: StudySettings, space_name: str) -> dict[str, Any]:
    """The trial config values a study fixes (the space suggests the rest)."""
    return {
        "tasks": list(space_tasks(settings, space_name)),
        "data": settings.data,
        "data_root": str(Path(settings.data_root).expanduser().resolve()),
        "limit_train": settings.limit_train,
        "limit_val": settings.limit_val,
        "limit_test": settings.limit_test,
        "val_size": settings.val_size,
        "max_epochs": settings.max_epochs,
        "batch_size": settings.batch_size,
        BUDGET_KEY: settings.budget,
        "seed": settings.seed,
        "cpus": settings.cpus_per_trial,
        "gpus": settings.gpus_per_trial,
        "compile": settings.compile,
        "stem": settings.stem,
        **(_fixed_method_params(settings) if len(space_tasks(settings, space_name)) > 1 else {}),
    }
