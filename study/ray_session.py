"""The Ray instance a study runs on: a fresh local one or a cluster it joins (checked to fit the
trials' resources), Tune kept quiet, and stopped in the background at the end.
"""

from __future__ import annotations

import os
import threading

from errors import UserError
from study.settings import StudySettings


def init_ray(
    settings: StudySettings,
    address: str | None,
    num_cpus=None,
    num_gpus=None,
    dashboard: bool = False,
    verbose: bool = False,
) -> int:
    """Start (or join) Ray; returns how many trials run at once. Ray's and Tune's own output
    stays below warning level unless `verbose` (study.progress reports instead)."""
    import ray

    from study.internals import keep_legacy_reporter
    from study.progress import concurrent_slots

    keep_legacy_reporter()  # the classic engine: our own reporter
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C is study.progress's
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from study.cluster import private_token

    token_mode = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    private_token(create=token_mode and not address)  # 0600, before Ray reads or writes it
    level = "INFO" if verbose else "WARNING"
    if address:
        ray.init(address=address, log_to_driver=verbose, logging_level=level)
    else:
        ray.init(
            address="local",  # always a new instance, never a stale `ray start` left on the host
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",  # only when --dashboard; Ray 2.60 maps a 127.0.0.1
            # node address back to the host's IP, so its own servers rely on token auth
            configure_logging=True,
            logging_level=level,
            log_to_driver=verbose,  # the trials' own prints and warnings: in their log files
        )
    _quiet_tune(verbose)
    resources = ray.cluster_resources()
    slots = concurrent_slots(
        settings.cpus_per_trial,
        settings.gpus_per_trial,
        settings.max_concurrent,
        resources.get("CPU", 1),
        resources.get("GPU", 0),
    )
    # Tune keeps one trial pending at a time when a searcher is used: trials would start one
    # actor start-up (seconds) apart. Let as many start together as can run together.
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(slots))
    _check_fits(settings, [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")])
    return slots


def stop_ray() -> threading.Thread:
    """Shut Ray down (its processes stop, or a cluster's driver disconnects) in a thread, while
    the driver writes what needs no Ray (the summary); join it before the process ends. Ray's
    own exit hook would do it later, after a 0.5 s pause for the trials' log lines, which go
    to their log files here (unless --verbose, when the pause is kept)."""
    import ray

    thread = threading.Thread(target=ray.shutdown, name="ray-shutdown")
    thread.start()
    return thread


def _quiet_tune(verbose: bool) -> None:
    """Tune's and Optuna's messages: errors only, unless verbose. A trial's error is one line of
    the reporter (with its error file), not Tune's traceback; the resume hint is ours."""
    import logging

    import optuna

    if verbose:
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    said_by_us = ("Trial task failed", "Trials did not complete")
    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
        logging.getLogger(name).addFilter(lambda r: not r.getMessage().startswith(said_by_us))


def _check_fits(settings: StudySettings, nodes: list[dict[str, float]]) -> None:
    """A trial runs on one node: a share that no node offers would wait forever."""
    import ray

    for key, flag, share in (
        ("CPU", "--cpus-per-trial", settings.cpus_per_trial),
        ("GPU", "--gpus-per-trial", settings.gpus_per_trial),
    ):
        most = max((n.get(key, 0.0) for n in nodes), default=0.0)
        if share and share > most:
            ray.shutdown()
            raise UserError(
                f"{flag} {share:g} is more than any node of the cluster has ({most:g} {key})"
            )
