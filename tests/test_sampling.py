"""Task-sampling schemes: long-run step shares match each scheme's definition; order-free."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.sampling import SCHEMES, TaskSampler

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
