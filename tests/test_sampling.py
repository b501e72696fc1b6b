"""Task-sampling schemes: long-run step shares match each scheme's definition; order-free; a new
scheme is one registry entry that the search space, the trial config and the engine all follow."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from errors import UserError
from search_spaces import SPACES, unflatten
from trainables.config import TrialConfig
from trainables.data import prepare_tasks
from trainables.engine import setup
from trainables.sampling import SCHEMES, Param, Scheme, TaskSampler

SIZES = [5000, 1000, 2500]
PARAMS = {"coin_p": 0.3, "temperature": 2.0}


def run(scheme: str, sizes=SIZES, n: int = 6000, seed: int = 0) -> TaskSampler:
    sampler = TaskSampler(scheme, sizes, seed=seed, params=PARAMS)
    for i in range(n):
        sampler.next(i / n)
    return sampler


def expected(scheme: str, sizes=SIZES, n: int = 200) -> np.ndarray:
    """The definition averaged over training progress (annealed changes along the way)."""
    s = SCHEMES[scheme]
    return np.mean([s.probs(i / n, np.asarray(sizes, float), PARAMS) for i in range(n)], axis=0)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_long_run_shares_match_the_definition(scheme):
    sampler = run(scheme)
    assert np.allclose(sampler.shares(), expected(scheme), atol=0.02), sampler.shares()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_task_order_does_not_matter(scheme):
    perm = [2, 0, 1]
    shares = run(scheme).shares()
    permuted = run(scheme, sizes=[SIZES[i] for i in perm], seed=1).shares()
    assert np.allclose(permuted, shares[perm], atol=0.02)


def test_coin_trains_each_task_with_probability_p_in_its_own_step():
    sampler = TaskSampler("coin", SIZES, seed=3, params=PARAMS)
    plans = [sampler.next(0.0) for _ in range(5000)]
    assert all(len(step) == 1 for plan in plans for step in plan)  # never a summed loss
    per_iteration = np.mean([len(plan) for plan in plans])
    assert abs(per_iteration - 3 * PARAMS["coin_p"]) < 0.05
    assert any(plan == [] for plan in plans)  # some iterations train nothing


def test_joint_and_round_robin_shapes():
    assert TaskSampler("joint", SIZES).next(0.0) == [(0, 1, 2)]
    rr = TaskSampler("round_robin", SIZES)
    assert [rr.next(0.0) for _ in range(4)] == [[(0,)], [(1,)], [(2,)], [(0,)]]


def test_annealed_moves_from_proportional_to_uniform():
    s = SCHEMES["annealed"]
    sizes = np.asarray(SIZES, float)
    assert np.allclose(s.probs(0.0, sizes, {}), sizes / sizes.sum())
    assert np.allclose(s.probs(1.0, sizes, {}), 1 / 3)


def test_temperature_interpolates_between_proportional_and_uniform():
    s, sizes = SCHEMES["temperature"], np.asarray(SIZES, float)
    assert np.allclose(s.probs(0, sizes, {"temperature": 1.0}), sizes / sizes.sum())
    hot = s.probs(0, sizes, {"temperature": 1e6})
    assert np.allclose(hot, 1 / 3, atol=1e-4)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_resuming_from_state_reproduces_the_sequence(scheme):
    a = TaskSampler(scheme, SIZES, seed=7, params=PARAMS)
    first = [a.next(i / 100) for i in range(50)]
    state = a.state_dict()
    rest = [a.next(i / 100) for i in range(50, 100)]
    b = TaskSampler(scheme, SIZES, seed=7, params=PARAMS)
    b.load_state_dict(state)
    assert [b.next(i / 100) for i in range(50, 100)] == rest
    assert first and b.counts.tolist() == a.counts.tolist()


# ---------------------------------------------------------------------------------------------
# the recipe "Add a sampling scheme", followed once: a registry entry and nothing else


def _preferred(progress: float, sizes: np.ndarray, params: dict) -> np.ndarray:
    preference = np.asarray(params["preference"], dtype=float)
    return params["mix"] / len(sizes) + (1 - params["mix"]) * preference / preference.sum()


PREFERRED = Scheme(
    "preferred",
    _preferred,
    "one task per iteration: uniform mixed with a per-task preference",
    params=(
        Param("mix", default=0.5, bounds=(0.0, 1.0), search=(0.0, 1.0)),
        Param("preference", 1.0, bounds=(0.1, 10.0), search=(0.25, 4.0), log=True, per_task=True),
    ),
)
TASKS = ["cifar10", "fashionrgb"]


@pytest.fixture
def preferred(monkeypatch):
    monkeypatch.setitem(SCHEMES, PREFERRED.name, PREFERRED)
    return PREFERRED


def test_a_new_scheme_is_searched_only_with_its_parameters(preferred):
    space = SPACES["multi"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    chosen = []
    for _ in range(40):
        trial = study.ask()
        params = unflatten(space.define(trial, space.tasks))
        study.tell(trial, 0.0)
        if params["scheme"] == "preferred":
            chosen.append(params)
        else:
            assert not {"mix", "preference"} & set(params)
    assert chosen
    for params in chosen:
        assert 0 <= params["mix"] <= 1 and set(params["preference"]) == set(space.tasks)
        assert all(0.25 <= w <= 4 for w in params["preference"].values())
        cfg = TrialConfig.from_dict({"tasks": list(space.tasks), **params})
        assert cfg.to_dict()["mix"] == params["mix"]  # flat keys, as Ray's config has them


def test_a_new_scheme_is_validated_by_the_trial_config(preferred):
    cfg = TrialConfig.from_dict({"tasks": TASKS, "scheme": "preferred"})
    assert cfg.scheme_value("mix") == 0.5
    assert cfg.scheme_value("preference") == {"cifar10": 1.0, "fashionrgb": 1.0}
    with pytest.raises(UserError, match=r"mix must be in \[0, 1\], got 1.5"):
        TrialConfig.from_dict({"scheme": "preferred", "mix": 1.5})
    with pytest.raises(UserError, match=r"preference must be in \[0.1, 10\], got 0.0"):
        TrialConfig.from_dict({"preference": {"cifar10": 0.0}})
    with pytest.raises(UserError, match="preference must have one value per task"):
        TrialConfig.from_dict({"tasks": TASKS, "preference": {"cifar10": 1.0}})


def test_a_new_scheme_is_trained_by_the_engine(preferred):
    splits = prepare_tasks(TASKS, "synthetic", ".", limit_train=32, limit_val=8)
    tasks = {name: task.search() for name, task in splits.items()}
    cfg = TrialConfig.from_dict(
        {
            "tasks": TASKS,
            "scheme": "preferred",
            "mix": 0.0,
            "preference": {"fashionrgb": 3.0, "cifar10": 1.0},
        }
    )
    sampler = setup(cfg, tasks, torch.device("cpu")).sampler
    assert sampler.params["mix"] == 0.0 and sampler.params["preference"].tolist() == [1.0, 3.0]
    for _ in range(3000):
        assert len(sampler.next(0.5)) == 1  # the default plan: one task drawn from probs
    assert np.allclose(sampler.shares(), [0.25, 0.75], atol=0.03)
