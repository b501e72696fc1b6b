"""Search spaces: define-by-run functions that only suggest what the trainable uses."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

import names
from search_spaces import SPACES, Space, leaf_spaces, single, unflatten
from trainables.config import TrialConfig, default_value
from trainables.sampling import SCHEMES, scheme_params

THREE_TASKS = ("cifar10", "fashionrgb", "imagefolder:/data/birds=birds")
# the registry's runnable spaces, and those a 3-task `--space all` derives from them (a
# single-task space per task, `multi` over the three: every scheme's per-task parameters x 3)
RUNNABLE = [s for s in SPACES.values() if not s.parts]
RUNNABLE += [
    s
    for s in leaf_spaces(names.ALL_SPACE, THREE_TASKS)
    if s.name not in SPACES or s.name == names.MULTI_SPACE
]


def _names(space: Space) -> tuple[str, ...]:
    """The task names a space's define is called with (as the runner does): per-task keys."""
    return tuple(names.task_name(t) for t in space.tasks)


def _space_id(space: Space) -> str:
    return f"{space.name}-{len(space.tasks)}"


def _resolve(space: Space, params: dict) -> TrialConfig:
    return TrialConfig.from_dict({"tasks": list(space.tasks), **unflatten(params)})


def check_baseline(space: Space) -> TrialConfig:
    """The space's baseline is one of its own trials and a valid trial config."""
    trial = optuna.trial.FixedTrial(space.baseline)
    params = space.define(trial, _names(space))
    assert params == space.baseline  # define returns exactly what it suggested
    return _resolve(space, params)


def check_suggestions(space: Space, trials: int = 60) -> set[str]:
    """Sample many trials: every suggested key is a config field the trainable reads, and a
    scheme's parameters come only with that scheme. Returns the keys seen."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[str] = set()
    for _ in range(trials):
        trial = study.ask()
        params = space.define(trial, _names(space))
        assert set(trial.params) == set(params)  # nothing suggested but not returned
        cfg = _resolve(space, params)  # unknown keys and invalid values would raise
        seen |= set(unflatten(params))
        study.tell(trial, 0.5)
        own = {p.name for p in SCHEMES[cfg.scheme].params}
        assert set(scheme_params()) & set(unflatten(params)) <= own
    return seen


@pytest.mark.parametrize("space", RUNNABLE, ids=_space_id)
def test_baseline_is_a_valid_trial_of_its_space(space):
    fixed = names.baseline(len(space.tasks))
    assert {k: space.baseline.get(k) for k in fixed} == fixed  # the original project's choices
    others = {k: v for k, v in space.baseline.items() if k not in fixed}
    assert others == {k: default_value(k) for k in others}  # the rest: the trainable's defaults
    cfg = check_baseline(space)
    # the original project's: Adam at 1e-3; its single-task runs dropped the LR in steps, its
    # multi-task run kept it constant
    schedule = "constant" if len(space.tasks) > 1 else "step"
    assert (cfg.optimizer, cfg.lr, cfg.lr_schedule) == ("adam", 1e-3, schedule)


@pytest.mark.parametrize("space", RUNNABLE, ids=_space_id)
def test_every_suggested_parameter_is_a_trial_config_field(space):
    seen = check_suggestions(space)
    if space.name == names.MULTI_SPACE:
        assert {"scheme", *scheme_params()} <= seen


def test_multi_offers_every_sampling_scheme_in_registry_order():
    trial = optuna.create_study().ask()
    SPACES[names.MULTI_SPACE].define(trial)
    assert trial.distributions["scheme"].choices == tuple(SCHEMES)


def test_multi_keeps_the_distributions_of_existing_studies():
    """A resumed Optuna study must see the scheme parameters' distributions it was created with."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(60):
        trial = study.ask()
        SPACES[names.MULTI_SPACE].define(trial, ("a", "b"))
        seen.update(trial.distributions)
        study.tell(trial, 0.0)
    assert {k: v for k, v in seen.items() if k in ("coin_p", "temperature") or "/" in k} == {
        "coin_p": FloatDistribution(0.2, 0.9),
        "temperature": FloatDistribution(1.0, 10.0, log=True),
        "loss_weights/a": FloatDistribution(0.5, 2.0, log=True),
        "loss_weights/b": FloatDistribution(0.5, 2.0, log=True),
    }


def test_a_new_space_is_one_entry(monkeypatch):
    """The recipe "Add a search space": a define and an entry in SPACES. A key the original
    project's baseline does not fix takes the trainable's default in the baseline trial."""

    def define(trial, tasks=()):
        params = single.define(trial, tasks)
        params["label_smoothing"] = trial.suggest_float("label_smoothing", 0.0, 0.2)
        return params

    space = Space(
        "smoothing-cifar10",
        "CIFAR-10 alone: the single-task knobs plus label smoothing",
        ("cifar10",),
        define,
    )
    single_baseline = SPACES[names.single_space("cifar10")].baseline  # the space it extends
    assert space.baseline == {**single_baseline, "label_smoothing": 0.0}
    monkeypatch.setitem(SPACES, space.name, space)
    assert check_baseline(SPACES[space.name]).label_smoothing == 0.0
    assert "label_smoothing" in check_suggestions(SPACES[space.name])


def test_all_is_the_three_spaces():
    assert [s.name for s in SPACES[names.ALL_SPACE].leaves] == [
        "single-cifar10",
        "single-fashionrgb",
        "multi",
    ]
