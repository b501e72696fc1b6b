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
from pathlib import Path
from typing import Any

from search_spaces import SPACES
from trainables.config import COMPILE_MODES
from trainables.errors import UserError

SETTINGS_FILE = "study.json"
SCHEDULERS = ("asha", "fifo")
QUICK = {  # about 3 minutes on a 2-core CPU, synthetic data; trials long enough that Ray's
    # fixed start-up (~30 s per CPU) stays under a fifth of the study
    "data": "synthetic",
    "num_samples": 8,
    "max_epochs": 3,
    "limit_train": 2000,
    "limit_val": 500,
    "batch_size": 32,
    "cpus_per_trial": 1.0,
}


@dataclasses.dataclass(frozen=True)
class StudySettings:
    name: str
    space: str = "multi"
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
    batch_size: int = 128
    tasks: tuple[str, ...] | None = None  # override of the multi space's tasks
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    compile: str = "off"  # torch.compile mode of every trial's backbone
    quick: bool = False

    @property
    def study_dir(self) -> Path:
        """Local folder of the study (metadata, Optuna database, and Ray's experiments)."""
        return Path(self.storage).expanduser().resolve() / self.name

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        values["tasks"] = list(self.tasks) if self.tasks else None
        return json.dumps(values, indent=2)

    @classmethod
    def from_study_dir(cls, folder: Path) -> StudySettings:
        path = folder / SETTINGS_FILE
        try:
            values = json.loads(path.read_text())
            if values.get("tasks"):
                values["tasks"] = tuple(values["tasks"])
            return cls(**values)
        except FileNotFoundError:
            raise UserError(f"{folder} is not a study: no {SETTINGS_FILE} in it") from None
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"{path} is unreadable ({exc}); is {folder} a study?") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m study.run",
        description="Run (or resume) a Ray Tune + Optuna hyperparameter study.",
    )
    add = p.add_argument
    add("--space", default="multi", help="search space (see --list-spaces)")
    add("--list-spaces", action="store_true", help="print the spaces and exit")
    add("--resume", metavar="STUDY_DIR", help="resume the study in this directory")
    add("--quick", action="store_true", help="a few-minute study on synthetic data (CPU)")
    add("--name", help="study name (default: <space>-<date>-<time>)")
    add("--storage", default="./studies", help="folder that holds studies (default ./studies)")
    add("--num-samples", type=int, help="trials per space (default 20; quick 6)")
    add("--max-epochs", type=int, help="epochs per trial at most (default 30; quick 3)")
    add("--max-concurrent", type=int, help="trials at once at most (default: resources decide)")
    add("--scheduler", default="asha", help="asha (early stopping) or fifo")
    add("--seed", type=int, default=0)
    add(
        "--data", help="real (files under --data-root) or synthetic (default real; quick synthetic)"
    )
    add("--data-root", default="./dataset", help="where the datasets are (default ./dataset)")
    add("--cache-dir", help="decoded-dataset cache (default ~/.cache/mtl-study)")
    add("--tasks", help="comma-separated tasks of the multi space, e.g. cifar10,imagefolder:/x")
    add("--limit-train", type=int, help="training images per task (class-balanced subset)")
    add("--limit-val", type=int, help="validation images per task (class-balanced subset)")
    add("--batch-size", type=int, help="images per task per step (default 128; quick 32)")
    add("--cpus-per-trial", type=float, help="CPU share of each trial (default 1)")
    add(
        "--gpus-per-trial",
        type=float,
        help="GPU share of each trial, e.g. 0.25 packs four on a GPU (default 0.25 with a GPU)",
    )
    add("--max-failures", type=int, default=2, help="retries of a crashing trial (default 2)")
    add(
        "--compile",
        default="off",
        help="torch.compile the backbone: off, default, reduce-overhead (CUDA graphs), "
        "max-autotune (default off)",
    )
    add(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join this Ray cluster (default $RAY_ADDRESS; none: start a local instance)",
    )
    add("--num-cpus", type=float, help=argparse.SUPPRESS)  # logical resources of a local Ray
    add("--num-gpus", type=float, help=argparse.SUPPRESS)
    add("--dashboard", action="store_true", help="start the Ray dashboard (local Ray only)")
    return p


def _positive(name: str, value: float | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise UserError(f"--{name} must be a positive number, got {value}")


def local_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no CUDA runtime: no GPUs
        return 0


def settings_from_args(args: argparse.Namespace) -> StudySettings:
    """Validate a new study's arguments (no files are touched)."""
    if args.space not in SPACES:
        raise UserError(f"unknown space {args.space!r}; expected one of {', '.join(SPACES)}")
    if args.scheduler not in SCHEDULERS:
        raise UserError(f"unknown scheduler {args.scheduler!r}; expected one of {SCHEDULERS}")
    quick = QUICK if args.quick else {}
    pick = lambda key, default: (
        getattr(args, key) if getattr(args, key) is not None else quick.get(key, default)
    )
    for name in (
        "num_samples",
        "max_epochs",
        "max_concurrent",
        "limit_train",
        "limit_val",
        "batch_size",
        "cpus_per_trial",
    ):
        _positive(name.replace("_", "-"), getattr(args, name))
    if args.max_failures < 0:
        raise UserError(f"--max-failures must be >= 0, got {args.max_failures}")
    if args.compile not in COMPILE_MODES:
        raise UserError(f"unknown --compile {args.compile!r}; expected one of {COMPILE_MODES}")
    data = pick("data", "real")
    if data not in ("real", "synthetic"):
        raise UserError(f"--data must be 'real' or 'synthetic', got {data!r}")
    gpus = args.gpus_per_trial
    visible = args.num_gpus if args.num_gpus is not None else local_gpu_count()
    if gpus is None:
        gpus = 0.25 if visible else 0.0
    if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise UserError(
            f"--gpus-per-trial {gpus} cannot be scheduled: use a fraction in (0, 1] "
            "(e.g. 0.25 packs four trials per GPU) or a whole number of GPUs"
        )
    if args.address is None and gpus > visible:
        raise UserError(f"--gpus-per-trial {gpus:g} is more than the {visible:g} GPU(s) here")
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None
    if tasks is not None and len(tasks) < 2:
        raise UserError("--tasks needs at least two comma-separated tasks for the multi space")
    name = args.name or f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain folder name")
    if "://" in args.storage:
        raise UserError(
            f"--storage {args.storage}: only local or mounted shared folders are supported "
            "(the Optuna database lives in the study directory)"
        )
    return StudySettings(
        name=name,
        space=args.space,
        storage=args.storage,
        num_samples=pick("num_samples", 20),
        max_epochs=pick("max_epochs", 30),
        max_concurrent=args.max_concurrent,
        scheduler=args.scheduler,
        seed=args.seed,
        data=data,
        data_root=args.data_root,
        cache_dir=args.cache_dir,
        limit_train=pick("limit_train", None),
        limit_val=pick("limit_val", None),
        batch_size=pick("batch_size", 128),
        tasks=tasks,
        cpus_per_trial=pick("cpus_per_trial", 1.0),
        gpus_per_trial=gpus,
        max_failures=args.max_failures,
        compile=args.compile,
        quick=args.quick,
    )


def check_resumable(folder: Path) -> StudySettings:
    """A study directory to resume: exists, ours, not writable by others, has settings."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"--resume {folder}: no such study directory")
    info = folder.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UserError(f"--resume {folder}: not owned by you; a study is as trusted as code")
    if info.st_mode & stat.S_IWOTH:
        raise UserError(f"--resume {folder}: writable by others; a study is as trusted as code")
    settings = StudySettings.from_study_dir(folder)
    return dataclasses.replace(settings, storage=str(folder.parent), name=folder.name)


def space_tasks(settings: StudySettings, space_name: str) -> tuple[str, ...]:
    space = SPACES[space_name]
    if space_name == "multi" and settings.tasks:
        return settings.tasks
    return space.tasks


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
        "max_epochs": settings.max_epochs,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "cpus": settings.cpus_per_trial,
        "gpus": settings.gpus_per_trial,
        "compile": settings.compile,
    }
