"""The configuration a space enqueues first: the original project's, completed for the space.

`names.baseline` holds what the original project chose (optimizer, learning rate, ...). A space
may search more keys than it fixes (say, `label_smoothing`); the baseline trial must not draw
those at random, so each one takes the value the trainable uses when nothing sets it
(`trainables.config.default_value`), which is what the original project trained with. Adding a
searched key is then one line in the space's file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trainables.config import default_value


class _BaselineTrial:
    """Answers a space's suggestions (Optuna's `suggest_*` calls, by name) with the fixed
    value, else the trainable's default, recording each in `params`."""

    def __init__(self, fixed: Mapping[str, Any]) -> None:
        self.fixed, self.params = dict(fixed), {}

    def _value(self, name: str) -> Any:
        self.params[name] = self.fixed[name] if name in self.fixed else default_value(name)
        return self.params[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._value(name)

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self._value(name)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self._value(name)


def complete_baseline(
    define: Callable[..., dict[str, Any]], tasks: Sequence[str], fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """`fixed` plus, for each key `define` suggests under it that it does not fix, the
    trainable's default (after the fixed keys, in the order the space suggests them)."""
    trial = _BaselineTrial(fixed)
    define(trial, tuple(tasks))
    return {**fixed, **{k: v for k, v in trial.params.items() if k not in fixed}}
