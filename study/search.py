"""Ray's OptunaSearch with the two gaps a long study cannot afford closed.

- A diverged trial (loss NaN or infinite) is told to Optuna as PRUNED with a `diverged` user
  attribute: a bad result the sampler learns from, never a crash and never a zombie.
- Any trial Optuna refused to close (e.g. a non-finite value) is closed as FAIL instead of
  staying RUNNING forever in the database and the dashboard.

Each Optuna trial also records its Ray trial id (`ray_trial_id`), linking the database to the
trial folders. Kept apart from `runner.py` because it subclasses a Ray class at import time.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch


class StudySearch(OptunaSearch):
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials[trial_id]
        if result and result.get("diverged"):
            ot_trial.set_user_attr("diverged", True)
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            self._completed_trials.add(trial_id)
            return None
        super().on_trial_complete(trial_id, result, error)
        frozen = self._ot_study.get_trials(deepcopy=False)[ot_trial.number]
        if frozen.state == TrialState.RUNNING:  # Optuna refused the value: close it anyway
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        return None
