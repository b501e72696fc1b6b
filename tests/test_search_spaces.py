"""Search spaces: define-by-run functions that only suggest what the trainable uses."""

from __future__ import annotations

import optuna
import pytest

import names
from search_spaces import SPACES, unflatten
from search_spaces.multi import SCHEMES
from trainables.config import TrialConfig
from trainables.sampling import SCHEMES as SAMPLING_SCHEMES

RUNNABLE = [s for s in SPACES.values() if not s.parts]


def _resolve(space, params: dict) -> TrialConfig:
    return TrialConfig.from_dict({"tasks": list(space.tasks), **unflatten(params)})


@pytest.mark.parametrize("space", RUNNABLE, ids=lambda s: s.name)
def test_baseline_is_a_valid_trial_of_its_space(space):
    assert space.baseline == names.baseline(len(space.tasks))
    trial = optuna.trial.FixedTrial(space.baseline)
    params = space.define(trial, space.tasks)
    assert params == space.baseline  # define returns exactly what it suggested
    cfg = _resolve(space, params)
    assert (cfg.optimizer, cfg.lr, cfg.lr_schedule) == ("adam", 1e-3, "step")


@pytest.mark.parametrize("space", RUNNABLE, ids=lambda s: s.name)
def test_every_suggested_parameter_is_a_trial_config_field(space):
    """Sample many trials: every suggested key is a config field the trainable reads."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[str] = set()
    for _ in range(60):
        trial = study.ask()
        params = space.define(trial, space.tasks)
        assert set(trial.params) == set(params)  # nothing suggested but not returned
        cfg = _resolve(space, params)  # unknown keys would raise
        seen |= set(unflatten(params))
        study.tell(trial, 0.5)
        if "scheme" in params:  # scheme parameters only for the scheme that reads them
            own = set(SAMPLING_SCHEMES[cfg.scheme].params)
            scheme_keys = {"coin_p", "temperature", "loss_weights"} & set(unflatten(params))
            assert scheme_keys <= own
    if space.name == "multi":
        assert {"scheme", "coin_p", "temperature", "loss_weights"} <= seen


def test_multi_offers_every_sampling_scheme():
    assert set(SCHEMES) == set(SAMPLING_SCHEMES)


def test_all_is_the_three_spaces():
    assert [s.name for s in SPACES["all"].leaves] == [
        "single-cifar10",
        "single-fashionrgb",
        "multi",
    ]
