"""The command line of `python -m study.run`: its flags in groups, their help texts made from the
defaults themselves, and what a resume may be told.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from errors import UserError
from names import (
    AUTO_FIRST_SEEDS,
    AUTO_SEEDS,
    BUDGETS,
    DEFAULT_METHOD,
    SETTINGS_FILE,
    VAL_CAP,
    VAL_FRACTION,
)
from study.settings import DEFAULTS, GPU_SHARE, QUICK, SCHEDULERS
from trainables.budget import describe
from trainables.config import COMPILE_MODES, DATA_SOURCES, STEMS


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
