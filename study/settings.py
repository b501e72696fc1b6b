"""A study's settings: what `study.json` records, and what follows from them (its spaces, their
tasks, the constants of every trial, the methods it searches and its starting trials).

The command line is `study.cli`; `study.checks` turns it into these settings, or into a one-line
`UserError` before any Ray instance starts or any file is written. The resolved settings are saved
as `study.json` in the study directory, which is what `--resume` reads back.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    AUTO_FIRST_SEEDS,
    AUTO_SEEDS,
    BUDGET_KEY,
    DEFAULT_BUDGET,
    DEFAULT_METHOD,
    LEGACY_BUDGET,
    METHOD_KEY,
    MULTI_SPACE,
    SETTINGS_FILE,
    task_name,
)
from search_spaces import SPACES, Space, leaf_spaces
from studyfiles.storage import cache_folder, is_remote, resolve
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
        values["optuna_storage"] = without_password(self.optuna_storage)
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


def is_auto(settings: StudySettings) -> bool:
    """Whether the study's confirmation chooses its seeds by precision (`--confirm-seeds auto`)."""
    return settings.confirm_seeds == AUTO_SEEDS


def first_seeds(settings: StudySettings) -> int:
    """Seeds per configuration of the confirmation's first (with a number: only) round."""
    return AUTO_FIRST_SEEDS if is_auto(settings) else int(settings.confirm_seeds)


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


def without_password(url: str | None) -> str | None:
    """A database URL as study.json records it: never its password."""
    if not url:
        return None
    import sqlalchemy

    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)


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
