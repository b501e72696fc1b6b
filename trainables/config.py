"""One trial's resolved configuration: a frozen dataclass that rejects unknown keys.

Ray hands a trial a plain dict (what the search space suggested plus the study's constants);
`TrialConfig.from_dict` turns it into this typed, validated object, and `to_dict` gives back the
JSON that is saved beside the trial's results. A typo in a key is an error, never silently ignored.

The task-sampling schemes' parameters are not spelled out here: each scheme declares its own
(`trainables.sampling.Param`: key, default, bounds), and the config accepts, defaults and
validates whatever the registered schemes declare, under the same flat keys Ray's config and a
study's `params.json` use (`coin_p`, `temperature`, `loss_weights` as {task: weight}, ...).
The optimizer and LR schedule names are `trainables.optim`'s registries'.
The multi-task methods' parameters (`trainables.methods.METHODS`) are handled the same way,
beside `method` (a config without one ran `names.DEFAULT_METHOD`, as every study before
methods did); the registry is imported where it is used, so this module stays free of torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from errors import UserError
from names import BUDGETS, DEFAULT_METHOD, LEGACY_BUDGET, task_name
from trainables.optim import LR_SCHEDULES, OPTIMIZERS
from trainables.sampling import LOSS_WEIGHTS, SCHEMES, Param, scheme_params

PRECISIONS = ("auto", "fp32", "bf16")
DATA_SOURCES = ("real", "synthetic")
# torch.compile of the backbone; "reduce-overhead" and "max-autotune" also replay CUDA graphs (on
# CUDA). Default off: measured on CPU it compiles for ~2.5 min and then trains 13% slower.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
# the backbone's stem: timm's ImageNet stride-2 convolution, or the original project's CIFAR
# variant with stride 1 (a 32 x 32 image ends at 2 x 2 instead of 1 x 1 before pooling)
STEMS = ("imagenet", "cifar")


@dataclasses.dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs; units in the comments."""

    tasks: tuple[str, ...] = ("cifar10",)  # task specs: cifar10, fashionrgb, imagefolder:<path>
    data: str = "synthetic"  # "real" (files under data_root) or "synthetic" (built-in stand-ins)
    data_root: str = "./dataset"
    # images per task: validation carved from the training split (None: names.VAL_FRACTION of
    # it, at most names.VAL_CAP), then class-balanced subsets of each split (None: all)
    val_size: int | None = None
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    max_epochs: int = 10  # epochs; the LR schedule spans this many
    batch_size: int = 128  # images per task per step
    # training budget (names.BUDGETS); a study always names one (default total),
    # so this default is the rule of a config that names none, written before budgets existed
    budget: str = LEGACY_BUDGET
    optimizer: str = "adam"  # trainables.optim.OPTIMIZERS
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw)
    momentum: float = 0.9  # sgd only (Nesterov)
    lr_schedule: str = "step"  # trainables.optim.LR_SCHEDULES
    label_smoothing: float = 0.0
    scheme: str = "joint"  # task-sampling scheme; see trainables.sampling.SCHEMES
    # every registered scheme's parameters (trainables.sampling.Param) under their flat keys
    # (coin_p, temperature, loss_weights, ...), each defaulting to its Param's default; a
    # per-task one is {task name: value}, or None for the default on every task
    scheme_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # how a step that trains every task at once combines their losses (trainables.methods);
    # anything but ew needs a scheme that shares steps (joint), and ignores its loss_weights
    method: str = DEFAULT_METHOD
    # every registered method's parameters under their flat keys (cagrad_c, ...), defaulted
    method_params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    seed: int = 0
    stem: str = "imagenet"  # STEMS: imagenet (stride-2 stem convolution) or cifar (stride 1)
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    channels_last: bool = True
    compile: str = "off"  # torch.compile mode of the backbone (COMPILE_MODES); off = eager
    cpus: float = 1.0  # CPU share of the trial: torch threads = max(1, floor(cpus))
    gpus: float = 0.0  # GPU share of the trial; on CUDA, caps its memory to this fraction

    def __post_init__(self) -> None:
        defaults = {p.name: None if p.per_task else p.default for p in scheme_params().values()}
        object.__setattr__(self, "scheme_params", {**defaults, **self.scheme_params})
        methods = {p.name: p.default for p in _method_params().values()}
        object.__setattr__(self, "method_params", {**methods, **self.method_params})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrialConfig:
        """Validate and build from flat keys; unknown keys and bad values raise UserError."""
        params, mparams = scheme_params(), _method_params()
        keys = {f.name for f in dataclasses.fields(cls)} - {"scheme_params", "method_params"}
        keys |= set(params) | set(mparams)
        unknown = sorted(set(values) - keys)
        if unknown:
            raise UserError(
                f"unknown trial config key(s) {unknown}; expected some of {sorted(keys)}"
            )
        kwargs = {k: v for k, v in values.items() if k not in params and k not in mparams}
        if "tasks" in kwargs:
            tasks = kwargs["tasks"]
            kwargs["tasks"] = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        given = {k: _coerce(params[k], v) for k, v in values.items() if k in params}
        chosen = {k: v for k, v in values.items() if k in mparams}
        config = cls(**kwargs, scheme_params=given, method_params=chosen)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of flat keys (scheme parameters beside `scheme`, as Ray's config has
        them); `from_dict(to_dict())` round-trips."""
        params = scheme_params()
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            if field.name == "method_params":
                out.update(self.method_params)
                continue
            if field.name != "scheme_params":
                out[field.name] = getattr(self, field.name)
                continue
            for name, value in self.scheme_params.items():
                out[name] = (dict(value) if value else None) if params[name].per_task else value
        out["tasks"] = list(self.tasks)
        return out

    def scheme_value(self, name: str) -> Any:
        """A scheme parameter's value; a per-task one as {task name: value} for every task,
        its default where none was given."""
        param, value = scheme_params()[name], self.scheme_params[name]
        if not param.per_task:
            return value
        return {task: (value or {}).get(task, param.default) for task in self.task_names}

    def validate(self) -> None:
        """Raise UserError naming the first bad value."""
        _need(len(self.tasks) >= 1, "tasks must name at least one task")
        _need(len(set(self.tasks)) == len(self.tasks), f"tasks must be distinct, got {self.tasks}")
        _need(
            len(set(self.task_names)) == len(self.tasks),
            f"task names must be distinct, got {self.task_names} (rename one with =<name>)",
        )
        _need(self.data in DATA_SOURCES, f"data must be one of {DATA_SOURCES}, got {self.data!r}")
        _need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {tuple(OPTIMIZERS)}")
        _need(
            self.lr_schedule in LR_SCHEDULES,
            f"lr_schedule must be one of {tuple(LR_SCHEDULES)}",
        )
        _need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
        _need(self.compile in COMPILE_MODES, f"compile must be one of {COMPILE_MODES}")
        _need(self.stem in STEMS, f"stem must be one of {STEMS}, got {self.stem!r}")
        _need(
            self.scheme in SCHEMES, f"scheme must be one of {sorted(SCHEMES)}, got {self.scheme!r}"
        )
        _need(self.budget in BUDGETS, f"budget must be one of {list(BUDGETS)}, got {self.budget!r}")
        _need(self.max_epochs >= 1, f"max_epochs must be >= 1, got {self.max_epochs}")
        _need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("limit_train", "limit_val", "limit_test", "val_size"):
            value = getattr(self, name)
            _need(value is None or value >= 1, f"{name} must be >= 1 or None, got {value}")
        _need(math.isfinite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}")
        _need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _need(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        self._validate_scheme_params()
        self._validate_method()
        _need(self.cpus > 0, f"cpus must be > 0, got {self.cpus}")
        _need(self.gpus >= 0, f"gpus must be >= 0, got {self.gpus}")

    def _validate_scheme_params(self) -> None:
        """Every scheme parameter within its Param's bounds; per-task ones name every task."""
        params = scheme_params()
        for name, value in self.scheme_params.items():
            _need(name in params, f"unknown scheme parameter {name!r}")
            param = params[name]
            if param.per_task and value is not None:
                tasks = list(self.task_names)
                _need(set(value) == set(tasks), f"{name} must have one value per task {tasks}")
            values = (value or {}).values() if param.per_task else [value]
            for v in values:
                _need(param.admits(v), f"{name} must be {param.rule()}, got {v}")

    def _validate_method(self) -> None:
        """A registered method; every method parameter within its bounds (the chosen one's by
        `Method.resolve`); a method other than ew only where it combines something: several
        tasks, a scheme that trains them in one step, and no static loss weights."""
        from trainables.methods import get_method

        method = get_method(self.method)  # UserError naming the known ones
        own = {p.name for p in method.params}
        method.resolve({k: v for k, v in self.method_params.items() if k in own})
        for name, value in self.method_params.items():
            param = _method_params().get(name)
            _need(param is not None, f"unknown method parameter {name!r}")
            _need(param.admits(value), f"{name} must be {param.rule()}, got {value}")
        if self.method == DEFAULT_METHOD:
            return
        _need(len(self.tasks) > 1, f"method {self.method} combines several tasks; one is given")
        _need(
            SCHEMES[self.scheme].shares_steps,
            f"method {self.method} combines the tasks of one step; scheme {self.scheme} "
            "trains one task per step (use joint, or method ew)",
        )
        weights = set(self.scheme_value(LOSS_WEIGHTS).values())
        _need(
            weights <= {1.0},
            f"method {self.method} does its own weighting: {LOSS_WEIGHTS} must be 1 (ew's only)",
        )

    @property
    def task_names(self) -> tuple[str, ...]:
        """Short names used as head keys and metric names (imagefolder:<path> -> folder name)."""
        return tuple(task_name(spec) for spec in self.tasks)


def _need(ok: bool, what: str) -> None:
    """A trial config check: raise UserError saying `what` unless `ok`."""
    if not ok:
        raise UserError(f"trial config: {what}")


def default_value(key: str) -> Any:
    """The value a trial takes for the flat config key `key` when nothing sets it: the field's
    default (`label_smoothing`), or the scheme's or method's parameter default (`coin_p`; a
    per-task one, `loss_weights/<task>`, each task's). KeyError for a key no trial reads."""
    head = key.partition("/")[0]
    fields = {f.name: f for f in dataclasses.fields(TrialConfig)}
    if head in fields and fields[head].default is not dataclasses.MISSING:
        return fields[head].default
    if head in scheme_params():
        return scheme_params()[head].default
    if head in _method_params():
        return _method_params()[head].default
    raise KeyError(f"{key!r} is not a trial config key")


def _method_params() -> dict[str, Param]:
    """The registered methods' parameters (imported here: the registry needs torch)."""
    from trainables.methods import method_params

    return method_params()


def _coerce(param: Param, value: Any) -> Any:
    """A per-task parameter's mapping as {str: float} (Ray's config may hold other types)."""
    if param.per_task and value is not None:
        return {str(k): float(v) for k, v in value.items()}
    return value
