"""One trial's resolved configuration: a frozen dataclass that rejects unknown keys.

Ray hands a trial a plain dict (what the search space suggested plus the study's constants);
`TrialConfig.from_dict` turns it into this typed, validated object, and `to_dict` gives back the
JSON that is saved beside the trial's results. A typo in a key is an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from trainables.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("step", "cosine", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16")
DATA_SOURCES = ("real", "synthetic")
# torch.compile of the backbone; "reduce-overhead" and "max-autotune" also replay CUDA graphs (on
# CUDA). Default off: measured on CPU it compiles for ~2.5 min and then trains 13% slower.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


@dataclasses.dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs; units in the comments."""

    tasks: tuple[str, ...] = ("cifar10",)  # task specs: cifar10, fashionrgb, imagefolder:<path>
    data: str = "synthetic"  # "real" (files under data_root) or "synthetic" (built-in stand-ins)
    data_root: str = "./dataset"
    limit_train: int | None = None  # images per task, class-balanced subset; None = all
    limit_val: int | None = None
    max_epochs: int = 10  # epochs; the LR schedule spans this many
    batch_size: int = 128  # images per task per step
    optimizer: str = "adam"
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw)
    momentum: float = 0.9  # sgd only (Nesterov)
    lr_schedule: str = "step"  # step: x0.1 at 50% and 75% of max_epochs; cosine; onecycle
    label_smoothing: float = 0.0
    scheme: str = "joint"  # task-sampling scheme; see trainables.sampling.SCHEMES
    coin_p: float = 0.5  # coin: chance that a task trains in an iteration
    temperature: float = 2.0  # temperature: sampling prob ∝ size^(1/T)
    loss_weights: Mapping[str, float] | None = None  # joint: static weight per task; None = 1
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    channels_last: bool = True
    compile: str = "off"  # torch.compile mode of the backbone (COMPILE_MODES); off = eager
    cpus: float = 1.0  # CPU share of the trial: torch threads = max(1, floor(cpus))
    gpus: float = 0.0  # GPU share of the trial; on CUDA, caps its memory to this fraction

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrialConfig:
        """Validate and build; unknown keys and bad values raise UserError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"unknown trial config key(s) {unknown}; expected some of {sorted(names)}"
            )
        kwargs = dict(values)
        if "tasks" in kwargs:
            tasks = kwargs["tasks"]
            kwargs["tasks"] = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        if kwargs.get("loss_weights") is not None:
            kwargs["loss_weights"] = {str(k): float(v) for k, v in kwargs["loss_weights"].items()}
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict(to_dict())` round-trips."""
        out = dataclasses.asdict(self)
        out["tasks"] = list(self.tasks)
        out["loss_weights"] = dict(self.loss_weights) if self.loss_weights else None
        return out

    def validate(self) -> None:
        from trainables.sampling import SCHEMES  # late import: sampling imports nothing of ours

        def need(ok: bool, what: str) -> None:
            if not ok:
                raise UserError(f"trial config: {what}")

        need(len(self.tasks) >= 1, "tasks must name at least one task")
        need(len(set(self.tasks)) == len(self.tasks), f"tasks must be distinct, got {self.tasks}")
        need(self.data in DATA_SOURCES, f"data must be one of {DATA_SOURCES}, got {self.data!r}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}")
        need(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
        need(self.compile in COMPILE_MODES, f"compile must be one of {COMPILE_MODES}")
        need(
            self.scheme in SCHEMES, f"scheme must be one of {sorted(SCHEMES)}, got {self.scheme!r}"
        )
        need(self.max_epochs >= 1, f"max_epochs must be >= 1, got {self.max_epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("limit_train", "limit_val"):
            value = getattr(self, name)
            need(value is None or value >= 1, f"{name} must be >= 1 or None, got {value}")
        need(math.isfinite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        need(0 < self.coin_p <= 1, f"coin_p must be in (0, 1], got {self.coin_p}")
        need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(self.cpus > 0, f"cpus must be > 0, got {self.cpus}")
        need(self.gpus >= 0, f"gpus must be >= 0, got {self.gpus}")
        if self.loss_weights is not None:
            need(
                set(self.loss_weights) == set(self.task_names),
                f"loss_weights must have one weight per task {list(self.task_names)}",
            )
            need(all(w >= 0 for w in self.loss_weights.values()), "loss_weights must be >= 0")

    @property
    def task_names(self) -> tuple[str, ...]:
        """Short names used as head keys and metric names (imagefolder:<path> -> folder name)."""
        from trainables.data import task_name

        return tuple(task_name(spec) for spec in self.tasks)
