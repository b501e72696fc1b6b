"""The trial config: frozen, rejects unknown keys and bad values, round-trips through JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trainables.config import TrialConfig
from trainables.errors import UserError


def test_round_trip_through_json():
    cfg = TrialConfig.from_dict(
        {
            "tasks": ["cifar10", "fashionrgb"],
            "scheme": "joint",
            "loss_weights": {"cifar10": 2.0, "fashionrgb": 0.5},
            "lr": 3e-3,
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
        ({"loss_weights": {"cifar10": 1.0, "other": 1.0}}, "one weight per task"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"compile": "jit"}, "compile must be one of"),
    ],
)
def test_bad_values_are_rejected(values, message):
    with pytest.raises(UserError, match=message):
        TrialConfig.from_dict(values)
