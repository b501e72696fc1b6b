"""Checks before Ray starts: a new study's flags become its settings or a one-line `UserError`
(names, numbers, resources, tasks, methods, the confirmation); a resumed study's folder is
ours and of this protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    AUTO_FIRST_SEEDS,
    AUTO_SEEDS,
    BUDGETS,
    DEFAULT_METHOD,
    NAME_PATTERN,
    NAME_SEP,
    SETTINGS_FILE,
    SPLIT_SEED_KEY,
    TASKS_FILE,
    is_single_space,
    split_task_spec,
    task_name,
    valid_task_name,
)
from search_spaces import SPACES, leaf_spaces
from study.settings import (
    DEFAULTS,
    GPU_SHARE,
    POSITIVE,
    QUICK,
    SCHEDULERS,
    StudySettings,
    is_auto,
    searched_methods,
    start_points,
    study_spaces,
)
from trainables.config import COMPILE_MODES, DATA_SOURCES, STEMS


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
    check_split_recorded(folder)
    return dataclasses.replace(settings, storage=str(folder.parent), name=folder.name)


def check_split_recorded(folder: Path) -> None:
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
