"""The trial config: frozen, rejects unknown keys and bad values, round-trips through JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from errors import UserError
from trainables.config import STEMS, TrialConfig
from trainables.sampling import scheme_params


def test_round_trip_through_json():
    cfg = TrialConfig.from_dict(
        {
            "tasks": ["cifar10", "fashionrgb"],
            "scheme": "joint",
            "loss_weights": {"cifar10": 2.0, "fashionrgb": 0.5},
            "lr": 3e-3,
            "lr_schedule": "constant",
            "stem": "cifar",
            "val_size": 500,
            "limit_test": 100,
        }
    )
    assert TrialConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.task_names == ("cifar10", "fashionrgb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]


def test_unknown_keys_are_named():
    with pytest.raises(UserError, match="learning_rate"):
        TrialConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize(
    "values,message",
    [
        ({"lr": -1.0}, "lr must be > 0"),
        ({"scheme": "lottery"}, "scheme must be one of"),
        ({"optimizer": "lamb"}, "optimizer must be one of"),
        ({"tasks": []}, "at least one task"),
        ({"tasks": ["cifar10", "cifar10"]}, "distinct"),
        ({"coin_p": 0.0}, "coin_p"),
        ({"coin_p": 1.5}, r"coin_p must be in \(0, 1\], got 1.5"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"loss_weights": {"cifar10": 1.0, "other": 1.0}}, "one value per task"),
        ({"loss_weights": {"cifar10": -1.0}}, "loss_weights must be >= 0"),
        ({"scheme_params": {}}, "unknown trial config key"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"compile": "jit"}, "compile must be one of"),
        ({"stem": "resnet"}, r"stem must be one of \('imagenet', 'cifar'\), got 'resnet'"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"val_size": 0}, "val_size must be >= 1 or None"),
        ({"limit_test": 0}, "limit_test must be >= 1 or None"),
    ],
)
def test_bad_values_are_rejected(values, message):
    with pytest.raises(UserError, match=message):
        TrialConfig.from_dict(values)


def test_defaults_keep_the_imagenet_stem():
    assert TrialConfig().stem == STEMS[0] == "imagenet"
    assert TrialConfig.from_dict(TrialConfig().to_dict()).stem == "imagenet"


def test_scheme_parameters_are_flat_keys_with_the_schemes_defaults():
    """Ray's config, params.json and trial_config.json keep their flat keys."""
    cfg = TrialConfig.from_dict({"tasks": ["cifar10", "fashionrgb"], "scheme": "coin"})
    out = cfg.to_dict()
    keys = list(out)
    assert keys[keys.index("scheme") :][:4] == ["scheme", "coin_p", "temperature", "loss_weights"]
    assert (out["coin_p"], out["temperature"], out["loss_weights"]) == (0.5, 2.0, None)
    assert cfg.scheme_value("loss_weights") == {"cifar10": 1.0, "fashionrgb": 1.0}
    assert TrialConfig() == TrialConfig.from_dict({}) == TrialConfig.from_dict({"coin_p": 0.5})
    assert "scheme_params" not in out


def test_every_scheme_parameter_has_a_valid_default_and_search_range():
    fields = {f.name for f in dataclasses.fields(TrialConfig)}
    for param in scheme_params().values():
        assert param.name not in fields and "/" not in param.name
        assert param.admits(param.default), param
        assert all(param.admits(v) for v in param.search), param


def test_the_default_of_a_key_is_what_a_trial_takes_when_nothing_sets_it():
    """`default_value` (the baseline's value for a key a space searches but the original project
    did not fix) agrees with a config built from nothing but its tasks."""
    from trainables.config import default_value

    config = TrialConfig.from_dict({"tasks": ["cifar10", "fashionrgb"]})
    for key, value in config.to_dict().items():
        if key not in ("tasks", *scheme_params()) and not isinstance(value, dict):
            assert default_value(key) == value, key
    for name, param in scheme_params().items():
        key = f"{name}/cifar10" if param.per_task else name
        got = config.scheme_value(name)
        assert default_value(key) == (got["cifar10"] if param.per_task else got), key
    with pytest.raises(KeyError):
        default_value("no_such_key")
