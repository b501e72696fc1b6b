"""The optimizer and LR-schedule registries: every entry keeps its contract, and every place that
names optimizers or schedules (the trial config, the search spaces, the baselines) reads them."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

import names
from errors import UserError
from search_spaces import SPACES, leaf_spaces
from trainables.config import TrialConfig
from trainables.optim import LR_SCHEDULES, OPTIMIZERS, build_optimizer, lr_factor

PROGRESS = np.linspace(0, 1, 401)  # dense enough to hit step's 50% and 75% and onecycle's 25%


@pytest.mark.parametrize("name", list(LR_SCHEDULES))
def test_a_schedule_rises_to_1_at_its_warmup_and_never_rises_after(name):
    schedule = LR_SCHEDULES[name]
    values = np.array([lr_factor(name, p) for p in PROGRESS])
    assert ((values >= 0) & (values <= 1)).all()
    assert lr_factor(name, schedule.warmup) == 1.0
    before, after = values[PROGRESS <= schedule.warmup], values[PROGRESS >= schedule.warmup]
    assert (np.diff(before) >= 0).all() and (np.diff(after) <= 0).all()
    # progress outside [0, 1] is clamped: before the start and after the end nothing changes
    assert lr_factor(name, -0.5) == values[0] and lr_factor(name, 1.5) == values[-1]


@pytest.mark.parametrize("name", [n for n, s in LR_SCHEDULES.items() if s.warmup == 0])
def test_a_schedule_without_warmup_starts_at_the_peak_lr(name):
    assert lr_factor(name, 0.0) == 1.0


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle"])
def test_lr_schedules_are_bounded_and_end_low(schedule):
    values = [lr_factor(schedule, p) for p in np.linspace(0, 1, 101)]
    assert all(0 <= v <= 1 for v in values)
    assert max(values) == pytest.approx(1.0, abs=0.02)
    assert values[-1] <= 0.01 + 1e-12


def test_constant_schedule_keeps_the_peak_lr():
    assert "constant" in LR_SCHEDULES
    assert all(lr_factor("constant", p) == 1.0 for p in (-1, 0, 0.3, 0.5, 0.75, 1, 2))


def test_step_schedule_is_the_baselines():
    assert [lr_factor("step", p) for p in (0, 0.49, 0.5, 0.74, 0.75, 1)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    with pytest.raises(ValueError):
        lr_factor("linear", 0.5)


def _one_step(name: str, grad_of: str, lr: float = 0.1, wd: float = 0.2) -> torch.Tensor:
    """Weights after one step of optimizer `name` from seeded weights: with weight decay `wd`
    and a zero gradient (`grad_of="zero"`), or without weight decay and the gradient that L2
    decay adds (`grad_of="l2"`: wd x weights)."""
    weights = torch.nn.Parameter(torch.randn(64, generator=torch.Generator().manual_seed(0)))
    decay = wd if grad_of == "zero" else 0.0
    config = TrialConfig.from_dict({"optimizer": name, "lr": lr, "weight_decay": decay})
    opt = build_optimizer(name, [weights], config)
    weights.grad = torch.zeros_like(weights) if grad_of == "zero" else wd * weights.detach()
    opt.step()
    return weights.detach()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_weight_decay_acts_as_the_optimizer_declares(name):
    """Decoupled: a step with no gradient shrinks the weights by lr x wd, nothing else. L2: a
    step with no gradient is the step that the gradient wd x weights takes without decay."""
    lr, wd = 0.1, 0.2
    start = torch.randn(64, generator=torch.Generator().manual_seed(0))
    after = _one_step(name, "zero", lr, wd)
    if OPTIMIZERS[name].decoupled_decay:
        torch.testing.assert_close(after, start * (1 - lr * wd))
    else:
        torch.testing.assert_close(after, _one_step(name, "l2", lr, wd))
        assert not torch.allclose(after, start * (1 - lr * wd))  # a different rule indeed


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_trains_at_the_configs_lr_and_decay(name):
    config = TrialConfig.from_dict({"optimizer": name, "lr": 3e-3, "weight_decay": 1e-4})
    opt = build_optimizer(name, [torch.nn.Parameter(torch.zeros(3))], config)
    assert opt.param_groups[0]["lr"] == 3e-3 and opt.param_groups[0]["weight_decay"] == 1e-4


def _spaces() -> list:
    """Every runnable space of a 2-task `--space all` and the registered ones."""
    tasks = ("cifar10", "fashionrgb")
    found = {s.name: s for s in SPACES.values() if not s.parts}
    found.update({s.name: s for s in leaf_spaces(names.ALL_SPACE, tasks)})
    return list(found.values())


@pytest.mark.parametrize("space", _spaces(), ids=lambda s: s.name)
def test_the_search_offers_registered_names_only_and_every_one(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    space.define(trial, tuple(names.task_name(t) for t in space.tasks))
    for key, registry in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
        assert list(trial.distributions[key].choices) == list(registry)
        assert space.baseline[key] in registry


@pytest.mark.parametrize("key", ["optimizer", "lr_schedule"])
def test_an_unknown_name_in_a_config_is_a_user_error_listing_the_registry(key):
    registry = OPTIMIZERS if key == "optimizer" else LR_SCHEDULES
    for name in registry:
        assert getattr(TrialConfig.from_dict({key: name}), key) == name
    with pytest.raises(UserError, match=f"{key} must be one of") as caught:
        TrialConfig.from_dict({key: "lamb"})
    assert all(name in str(caught.value) for name in registry)
