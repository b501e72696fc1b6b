"""Ray and Optuna internals we rely on: every private member the product touches, one function each.

Nothing else in the product reads a private member (a name starting with `_`) of `ray`, `optuna`
or `torchjd`, or of the standard library's `atexit`: `tests/test_internals.py` scans the product
and fails with file:line on any such access outside this module, and pins each member below
(present, with the shape we use), naming the installed versions when one changes. Why each is
needed, what breaks if it changes and which public API was tried: `docs/internals.md`.

Light to import (no Ray, no Optuna at import time): `study.finish` and `study.preload` use it.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.tune.schedulers import AsyncHyperBandScheduler

# Ray Tune prints through its new output engine unless this is "0"; only the classic engine
# honours a `ProgressReporter` (ray.tune.experimental.output.get_air_verbosity).
LEGACY_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"
LEGACY_OUTPUT_VALUE = "0"

# Optuna's SQLAlchemy models, which `RDBStorage` imports lazily (study.preload imports it early)
OPTUNA_RDB_MODELS = "optuna.storages._rdb.models"

# Ray's GCS client: answers whether a cluster accepts this process's token (study.cluster)
GCS_CLIENT_MODULE = "ray._raylet"
GCS_CLIENT_CLASS = "GcsClient"


# ---------------------------------------------------------------------------------------------
# process-level: output engine, exit, cluster probe


def keep_legacy_reporter(env: MutableMapping[str, str] | None = None) -> None:
    """Set `RAY_AIR_NEW_OUTPUT=0` (unless the user set it): Tune's new output engine ignores a
    passed `ProgressReporter` (`tune.tune.run` drops it when `get_air_verbosity` is not None),
    and `study.progress.StudyReporter` is the study's own report."""
    env = os.environ if env is None else env
    env.setdefault(LEGACY_OUTPUT_ENV, LEGACY_OUTPUT_VALUE)


def run_exit_handlers() -> None:
    """`atexit._run_exitfuncs()`: run the atexit handlers now, in a normal exit's order (Ray's
    shutdown among them), so `study.finish.exit_now` can skip the interpreter's finalization
    with `os._exit`. The standard library has no public call for it."""
    atexit._run_exitfuncs()


def gcs_probe_code(timeout_s: float) -> str:
    """Python source that asks a cluster's GCS for its nodes with `ray._raylet.GcsClient`
    (`GcsClient(address=...).get_all_node_info(timeout=...)`), run in a child process by
    `study.cluster.check_address`: it fails when the cluster refuses this process's token,
    without starting a driver or registering a job as `ray.init(address=...)` would."""
    return (
        "import sys\n"
        f"from {GCS_CLIENT_MODULE} import {GCS_CLIENT_CLASS}\n"
        f"{GCS_CLIENT_CLASS}(address=sys.argv[1]).get_all_node_info(timeout={timeout_s:g})\n"
    )


# ---------------------------------------------------------------------------------------------
# Ray's OptunaSearch: the pickled state of a searcher saved before study.search.StudySearch
# owned its Optuna study (a migration: read, never written)

# {our field: OptunaSearch's attribute} for what a restored StudySearch needs of such a state
OPTUNA_SEARCH_FIELDS = {
    "define": "_space",
    "study_name": "_study_name",
    "storage": "_storage",
    "sampler": "_sampler",
    "points_to_evaluate": "_points_to_evaluate",
    "max_trials": "_max_trials",  # set by the old StudySearch itself, not by Ray
}


def optuna_search_fields(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of `StudySearch` read from a pickled state of Ray's `OptunaSearch` (its
    `__dict__`, as `tuner.pkl` and `searcher-state-*.pkl` of a study saved by an earlier
    version hold it; `OptunaSearch._ot_study` marks one), or None for any other state. Which
    trials it asked and told are not taken: a restored searcher reads them from the database."""
    if "_ot_study" not in state:
        return None
    return {ours: state.get(theirs) for ours, theirs in OPTUNA_SEARCH_FIELDS.items()}


# ---------------------------------------------------------------------------------------------
# Ray's ASHA: its rungs, rebuilt on resume (study.search.StudyASHA)


def asha_rungs(scheduler: AsyncHyperBandScheduler, trial_id: str) -> list[tuple[float, dict]]:
    """The rungs of the bracket ASHA put a trial in: `scheduler._trial_info[trial_id]._rungs`,
    [(milestone, {trial id: metric_op * score})], in Ray's order. Ray saves none of it, so a
    resumed study replays each restored trial's recorded scores into them."""
    return scheduler._trial_info[trial_id]._rungs


def asha_judges(scheduler: AsyncHyperBandScheduler) -> tuple[str, str, float]:
    """What ASHA records in its rungs: (`_time_attr`, `metric`, `_metric_op`): the result key
    of a rung's milestone, the metric (public), and its sign (1 to maximize, -1 to minimize),
    which ASHA derives from the mode its constructor or the Tuner gave (no public reader)."""
    return scheduler._time_attr, scheduler.metric, scheduler._metric_op
